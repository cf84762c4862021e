#!/usr/bin/env bash
# `make clean`: `make down`, then remove all local state (.dev/, and our Postgres cluster if it
# had to live outside .dev/). The shared caches (nats-server venv, cargo target dir) are kept.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=clean

"${ROOT}/scripts/dev-down.sh"

PG_STATE="${RUN_DIR}/postgres.env"
if [[ -f $PG_STATE ]]; then
  pg_root=$(sed -n 's/^PG_ROOT=//p' "$PG_STATE")
  # Only the fallback location ensure-postgres.sh uses; never an arbitrary path.
  if [[ $pg_root == /var/tmp/blacklist-pg-* && -d $pg_root ]]; then
    log "removing $pg_root"
    rm -rf -- "$pg_root"
  fi
fi

if [[ -d $DEV_DIR ]]; then
  log "removing ${DEV_DIR}"
  rm -rf -- "$DEV_DIR"
fi
