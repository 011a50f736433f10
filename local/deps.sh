#!/bin/sh
# System packages the local topology needs: redis-server, nginx, PostgreSQL server binaries,
# pgbouncer.
# Quick and silent-ish when everything is present. As root on Debian/Ubuntu, installs what is
# missing with apt-get (services are not started: the stack runs its own processes). Elsewhere
# prints exactly what to install and exits 1.
set -eu

missing_apt=""
missing_brew=""
found=""

have() { command -v "$1" >/dev/null 2>&1; }

pg_bindir() {
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/postgres" ]; then echo "$PG_BINDIR"; return 0; fi
  if have pg_config; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  fi
  # shellcheck disable=SC2012
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  if have postgres && have initdb; then dirname "$(command -v postgres)"; return 0; fi
  return 1
}

if have redis-server; then
  found="$found redis-server($(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'))"
else
  missing_apt="$missing_apt redis-server"; missing_brew="$missing_brew redis"
fi

if have nginx || [ -x /usr/sbin/nginx ]; then
  found="$found nginx"
else
  missing_apt="$missing_apt nginx-light"; missing_brew="$missing_brew nginx"
fi

if bindir=$(pg_bindir) && [ -x "$bindir/pg_basebackup" ] && [ -x "$bindir/psql" ] && [ -x "$bindir/pg_isready" ]; then
  found="$found postgresql($("$bindir/postgres" --version | awk '{print $3}'))"
else
  missing_apt="$missing_apt postgresql"; missing_brew="$missing_brew postgresql@15"
fi

# PgBouncer for PGBOUNCER=1 (transaction pooling in front of PostgreSQL); Debian 12 ships 1.18.
if have pgbouncer || [ -x /usr/sbin/pgbouncer ]; then
  pgb=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  found="$found pgbouncer($("$pgb" --version | sed -n '1s/^PgBouncer //p'))"
else
  missing_apt="$missing_apt pgbouncer"; missing_brew="$missing_brew pgbouncer"
fi

if [ -z "$missing_apt" ]; then
  echo "local deps ok:$found"
  exit 0
fi

if [ "${1:-}" != --check-only ] && [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && have apt-get; then
  echo "local deps: installing$missing_apt with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' own services from starting (the stack runs its own processes).
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  status=0
  apt-get update -qq || status=$?
  if [ "$status" = 0 ]; then
    # nginx-light exists up to Debian 12; later releases ship only `nginx`.
    pkgs=""
    for p in $missing_apt; do
      if [ "$p" = nginx-light ] && ! apt-cache show nginx-light >/dev/null 2>&1; then p=nginx; fi
      pkgs="$pkgs $p"
    done
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs || status=$?
  fi
  [ -n "$made_policy" ] && rm -f "$policy"
  if [ "$status" != 0 ]; then
    echo "local deps: apt-get failed (exit $status)" >&2
    exit "$status"
  fi
  exec "$0" --check-only
fi

{
  echo "local deps missing:$missing_apt"
  echo "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y$missing_apt"
  echo "  macOS (Homebrew): brew install$missing_brew"
} >&2
exit 1
