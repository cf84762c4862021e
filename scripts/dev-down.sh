#!/usr/bin/env bash
# `make down`: stop what `make up` started, in order: the app processes, then nats-server, then
# the Postgres cluster we started (if any). Each group gets SIGTERM, up to STOP_TIMEOUT seconds
# (default 15), then SIGKILL. Harmless when nothing runs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=down

STOP_TIMEOUT=${STOP_TIMEOUT:-15}

if [[ ! -d $RUN_DIR ]]; then
  log "nothing to stop"
  exit 0
fi

# App processes: the known ones plus any other pid file, except nats-server's.
apps=(worker janitor projector api)
for file in "$RUN_DIR"/*.pid; do
  [[ -e $file ]] || continue
  name=$(basename -- "$file" .pid)
  case " ${apps[*]} nats-server " in
    *" $name "*) ;;
    *) apps+=("$name") ;;
  esac
done
stop_services "$STOP_TIMEOUT" "${apps[@]}"
stop_services "$STOP_TIMEOUT" nats-server

# Postgres, only if ensure-postgres.sh started our own cluster.
PG_STATE="${RUN_DIR}/postgres.env"
if [[ -f $PG_STATE ]]; then
  pg_data=$(sed -n 's/^PG_DATA=//p' "$PG_STATE")
  pg_bindir=$(sed -n 's/^PG_BINDIR=//p' "$PG_STATE")
  if [[ -n $pg_data && -x $pg_bindir/pg_ctl && -f $pg_data/PG_VERSION ]]; then
    if run_as_pg "$pg_bindir/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
      log "stopping Postgres ($pg_data)"
      if ! run_as_pg "$pg_bindir/pg_ctl" -D "$pg_data" -m fast -w -t "$STOP_TIMEOUT" stop >/dev/null; then
        warn "Postgres did not stop within ${STOP_TIMEOUT}s; stopping it immediately"
        run_as_pg "$pg_bindir/pg_ctl" -D "$pg_data" -m immediate -w stop >&2 || true
      fi
    fi
  fi
fi

rm -f "$RUN_DIR"/*.pid
log "stopped"
