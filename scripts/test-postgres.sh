#!/usr/bin/env bash
# Provide a PostgreSQL server for the test suite and print its SQLAlchemy URL on stdout.
#   scripts/test-postgres.sh start   install Debian's postgresql if missing, start a private
#                                     cluster under .pg/ on port $LEDGER_TEST_PG_PORT (55432)
#   scripts/test-postgres.sh stop
# When LEDGER_TEST_DATABASE_URL is already set, it is printed and nothing is started.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${LEDGER_TEST_PG_PORT:-55432}"
dir="$PWD/.pg"
url="postgresql+psycopg://ledger@127.0.0.1:${port}/ledger_test"

log() { printf '%s\n' "$*" >&2; }

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { printf '%s\n' "$d"; return 0; }
  done
  return 1
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    # initdb and postgres refuse to run as root: run them as the postgres system user.
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

case "${1:-start}" in
start)
  if [ -n "${LEDGER_TEST_DATABASE_URL:-}" ]; then printf '%s\n' "$LEDGER_TEST_DATABASE_URL"; exit 0; fi
  if ! bin=$(pg_bin); then
    log "installing Debian's postgresql (for the PostgreSQL half of the suite)..."
    if [ "$(id -u)" != 0 ]; then log "not root: install postgresql or set LEDGER_TEST_DATABASE_URL"; exit 1; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin=$(pg_bin)
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "'$bin/initdb' -D '$dir/data' -U ledger --auth=trust -E UTF8 --locale=C.UTF-8" >&2
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
  fi
  if ! as_pg "'$bin/pg_ctl' -D '$dir/data' status" >/dev/null 2>&1; then
    as_pg "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w start" >&2
  fi
  as_pg "'$bin/psql' -h 127.0.0.1 -p $port -U ledger -d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname='ledger_test'\"" | grep -q 1 \
    || as_pg "'$bin/createdb' -h 127.0.0.1 -p $port -U ledger ledger_test" >&2
  printf '%s\n' "$url"
  ;;
stop)
  if bin=$(pg_bin) && [ -d "$dir/data" ]; then as_pg "'$bin/pg_ctl' -D '$dir/data' -m fast stop" >&2 || true; fi
  ;;
*) log "usage: $0 start|stop"; exit 2 ;;
esac
