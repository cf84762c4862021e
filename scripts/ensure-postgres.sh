#!/usr/bin/env bash
# Make sure a Postgres server is reachable and print a connection URL on stdout (logs: stderr).
#
#   scripts/ensure-postgres.sh                 the app database (DATABASE_URL), created if missing
#   scripts/ensure-postgres.sh --maintenance   a database on the same server that tests can use to
#                                              CREATE/DROP a database per test (TEST_DATABASE_URL)
#
# Which server, first match wins:
#   1. DATABASE_URL (or, with --maintenance, TEST_DATABASE_URL, then DATABASE_URL's server);
#   2. a server on 127.0.0.1:5432 that lets user `postgres` in without a password;
#   3. our own cluster in .dev/pg on 127.0.0.1:${DEV_PG_PORT:-5433}, trust auth, created and
#      started on demand (Postgres is installed from Debian's packages if no initdb is found).
#      .dev/run/postgres.env records it, so `make down` stops it and `make clean` removes it.
#
# Variables: DATABASE_URL, TEST_DATABASE_URL, BLACKLIST_DB_NAME (default blacklist),
# DEV_PG_PORT (default 5433), DEV_PG_DIR (default .dev/pg).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=postgres

MODE=app
case ${1:-} in
  "") ;;
  --maintenance) MODE=maintenance ;;
  -h | --help)
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

DB_NAME=${BLACKLIST_DB_NAME:-blacklist}
[[ $DB_NAME =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "BLACKLIST_DB_NAME '$DB_NAME' is not a plain identifier"
SYSTEM_PORT=5432
DEV_PG_PORT=${DEV_PG_PORT:-5433}
PG_STATE="${RUN_DIR}/postgres.env"

# --- 1. explicitly configured ---------------------------------------------------------------
if [[ $MODE == maintenance && -n ${TEST_DATABASE_URL:-} ]]; then
  printf '%s\n' "$TEST_DATABASE_URL"
  exit 0
fi
if [[ -n ${DATABASE_URL:-} ]]; then
  if [[ $MODE == maintenance ]]; then
    url_with_db "$DATABASE_URL" postgres
  else
    printf '%s\n' "$DATABASE_URL"
  fi
  exit 0
fi

# psql_at PORT SQL: run one statement as superuser `postgres` on 127.0.0.1:PORT.
psql_at() {
  PGCONNECT_TIMEOUT=5 psql -X -w -q -At -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}

can_connect() {
  have psql && psql_at "$1" 'SELECT 1' >/dev/null 2>&1
}

# ensure_database PORT DB
ensure_database() {
  local port=$1 db=$2 exists
  exists=$(psql_at "$port" "SELECT 1 FROM pg_database WHERE datname = '${db}'") ||
    die "can't query databases on 127.0.0.1:${port}"
  [[ $exists == 1 ]] && return 0
  log "creating database ${db} on 127.0.0.1:${port}"
  if ! psql_at "$port" "CREATE DATABASE \"${db}\"" >/dev/null; then
    # A concurrent run may have created it meanwhile.
    exists=$(psql_at "$port" "SELECT 1 FROM pg_database WHERE datname = '${db}'") || true
    [[ $exists == 1 ]] || die "could not create database ${db}"
  fi
}

# print_url PORT: the URL for this mode, creating the app database if needed.
print_url() {
  local port=$1
  if [[ $MODE == maintenance ]]; then
    printf 'postgres://postgres@127.0.0.1:%s/postgres\n' "$port"
  else
    ensure_database "$port" "$DB_NAME"
    printf 'postgres://postgres@127.0.0.1:%s/%s\n' "$port" "$DB_NAME"
  fi
}

# system_server_usable: a server on :5432 that trusts user postgres.
system_server_usable() {
  have pg_isready || return 1
  pg_isready -q -h 127.0.0.1 -p "$SYSTEM_PORT" -t 3 || return 1
  ensure_cmd psql postgresql-client
  if can_connect "$SYSTEM_PORT"; then
    return 0
  fi
  warn "a server on 127.0.0.1:${SYSTEM_PORT} does not let user postgres in without a password; using our own on :${DEV_PG_PORT} (or set DATABASE_URL)"
  return 1
}

# --- 2. the machine's own server ------------------------------------------------------------
# Unless we already run our own cluster: then keep using it, so the app keeps its data.
if [[ ! -f $PG_STATE ]] && system_server_usable; then
  print_url "$SYSTEM_PORT"
  exit 0
fi

# --- 3. our own cluster ---------------------------------------------------------------------

# The PG_ROOT we use: .dev/pg, unless (as root) the postgres user can't reach it, e.g. a clone
# under /root; then a directory of its own under /var/tmp, named after this clone.
PG_ROOT=${DEV_PG_DIR:-${DEV_DIR}/pg}
FALLBACK_ROOT="/var/tmp/blacklist-pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"

# find_bindir PGDATA: a directory with initdb, pg_ctl and postgres, of the data dir's version.
find_bindir() {
  local pgdata=$1 want="" d major
  local -a candidates=()
  [[ -f $pgdata/PG_VERSION ]] && want=$(<"$pgdata/PG_VERSION")
  [[ -n $want ]] && candidates+=("/usr/lib/postgresql/${want}/bin")
  have pg_ctl && candidates+=("$(dirname -- "$(readlink -f -- "$(command -v pg_ctl)")")")
  have initdb && candidates+=("$(dirname -- "$(readlink -f -- "$(command -v initdb)")")")
  while IFS= read -r d; do
    candidates+=("$d")
  done < <(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V -r)
  for d in "${candidates[@]}"; do
    [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] || continue
    if [[ -n $want ]]; then
      major=$("$d/pg_ctl" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
      [[ $major == "$want" ]] || continue
    fi
    printf '%s\n' "$d"
    return 0
  done
  return 1
}

# prepare_root DIR: create DIR for the cluster; as root, hand it to the postgres user.
# Fails when that user can't write there.
prepare_root() {
  local dir=$1
  mkdir -p "$dir" || return 1
  if [[ ${EUID} -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
      log "creating the system user postgres"
      useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    chown postgres: "$dir"
    run_as_pg test -w "$dir" -a -x "$dir" 2>/dev/null || return 1
  fi
  return 0
}

if [[ -f $PG_STATE ]]; then
  recorded_root=$(sed -n 's/^PG_ROOT=//p' "$PG_STATE")
  [[ -n $recorded_root ]] && PG_ROOT=$recorded_root
fi

PGDATA_DIR="${PG_ROOT}/data"
if ! bindir=$(find_bindir "$PGDATA_DIR"); then
  log "no PostgreSQL server binaries found (initdb, pg_ctl)"
  apt_install postgresql
  bindir=$(find_bindir "$PGDATA_DIR") || die "PostgreSQL installed, but initdb/pg_ctl still not found"
  # The package may have started Debian's own cluster on :5432; use it if it trusts us.
  if [[ ! -f $PG_STATE ]] && system_server_usable; then
    print_url "$SYSTEM_PORT"
    exit 0
  fi
fi
ensure_cmd psql postgresql-client

ensure_dev_dirs
if ! prepare_root "$PG_ROOT"; then
  [[ -z ${DEV_PG_DIR:-} ]] || die "the postgres user can't write to DEV_PG_DIR=${PG_ROOT}"
  warn "the postgres user can't reach ${PG_ROOT}; keeping the cluster in ${FALLBACK_ROOT}"
  PG_ROOT=$FALLBACK_ROOT
  PGDATA_DIR="${PG_ROOT}/data"
  prepare_root "$PG_ROOT" || die "the postgres user can't write to ${PG_ROOT} either"
fi

SOCK_DIR="${PG_ROOT}/sock"
if [[ $PG_ROOT == "${DEV_DIR}/pg" ]]; then
  PG_LOG="${LOG_DIR}/postgres.log"
  if [[ ${EUID} -eq 0 ]]; then
    # The server runs as postgres and appends to its log in .dev/logs.
    chmod a+x "$DEV_DIR" "$LOG_DIR"
  fi
else
  PG_LOG="${PG_ROOT}/postgres.log"
fi
mkdir -p "$SOCK_DIR"
touch "$PG_LOG"
if [[ ${EUID} -eq 0 ]]; then
  chown postgres: "$SOCK_DIR" "$PG_LOG"
fi

if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
  log "initialising a cluster in ${PGDATA_DIR} ($("$bindir/pg_ctl" --version))"
  initdb_log="$(dirname -- "$PG_LOG")/postgres-initdb.log"
  if ! run_as_pg "$bindir/initdb" -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --no-locale \
    >"$initdb_log" 2>&1; then
    cat "$initdb_log" >&2
    die "initdb failed"
  fi
  printf "\n# Local development settings (scripts/ensure-postgres.sh rewrites this file at each start).\ninclude_if_exists = 'blacklist-dev.conf'\n" |
    run_as_pg tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
fi

# Settings are written to a file, not passed with pg_ctl -o, so paths with blanks survive.
sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }
sock_setting=$(sql_quote "$SOCK_DIR")
if ((${#SOCK_DIR} + 20 > 100)); then
  # A Unix socket path is limited to ~107 bytes; TCP alone is enough for us.
  sock_setting="''"
fi
run_as_pg tee "$PGDATA_DIR/blacklist-dev.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = ${DEV_PG_PORT}
unix_socket_directories = ${sock_setting}
max_connections = 200
EOF

{
  printf 'PG_ROOT=%s\n' "$PG_ROOT"
  printf 'PG_DATA=%s\n' "$PGDATA_DIR"
  printf 'PG_BINDIR=%s\n' "$bindir"
  printf 'PG_PORT=%s\n' "$DEV_PG_PORT"
} >"$PG_STATE"

if run_as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
  log "our cluster in ${PGDATA_DIR} is already running"
else
  if port_open 127.0.0.1 "$DEV_PG_PORT"; then
    die "port ${DEV_PG_PORT} is taken by another process; set DEV_PG_PORT or DATABASE_URL"
  fi
  log "starting Postgres on 127.0.0.1:${DEV_PG_PORT} (log ${PG_LOG})"
  if ! run_as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 start >/dev/null; then
    tail -n 30 "$PG_LOG" >&2 || true
    die "Postgres did not start"
  fi
fi

print_url "$DEV_PG_PORT"
