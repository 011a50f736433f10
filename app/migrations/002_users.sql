-- Users: credentials for the session flow. The password hash is self-describing
-- (algorithm, parameters, salt), so parameters can be raised without a schema change.
create table users (
  id bigint generated always as identity primary key,
  username text not null unique,
  password_hash text not null,
  created_at timestamptz not null default now()
);
alter table items add constraint items_owner_id_fkey foreign key (owner_id) references users (id);
