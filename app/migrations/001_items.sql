-- Items: the resource the read-replica routing and the streaming export/import work on.
create table items (
  id bigint generated always as identity primary key,
  owner_id bigint,
  title text not null,
  body text not null default '',
  created_at timestamptz not null default now()
);
create index items_owner_id_idx on items (owner_id, id);
