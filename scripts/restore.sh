#!/usr/bin/env bash
# make restore DIR=…: puts a `make backup` back. With `make up`'s set-up it is the whole recovery:
#   1. refuses while the api answers (run `make down` first) and, unless FORCE=1, when the
#      target database already holds events;
#   2. restores the database (one transaction: all or nothing);
#   3. empties the local JetStream store (.dev/nats), whose history belongs to the old database;
#   4. `make up`, then `janitor republish` (the history onto EVENTS, same ids, in order) and
#      `projector rebuild` (read models and KV buckets from EVENTS).
# DB_ONLY=1 stops after step 2 (for a database served elsewhere: then run steps 3–4 your way).
#
# Variables: DATABASE_URL (default: the database `make up` uses), FORCE, DB_ONLY.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=restore

DIR=${1:?usage: restore.sh DIR (a directory made by make backup)}
[[ -f ${DIR}/blacklist.dump ]] || die "${DIR}/blacklist.dump is missing: not a backup made by make backup"
command -v pg_restore >/dev/null || die "pg_restore is missing (apt-get install postgresql-client)"
DATABASE_URL=${DATABASE_URL:-$("${ROOT}/scripts/ensure-postgres.sh")}

if [[ -z ${DB_ONLY:-} ]] && curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:8000/healthz" 2>/dev/null; then
  die "the api answers on 127.0.0.1:8000: run make down first"
fi
# (Two queries: a brand-new database has no events table to count.)
held=0
if [[ $(psql "$DATABASE_URL" -Atc "SELECT to_regclass('public.events') IS NOT NULL") == t ]]; then
  held=$(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM events')
fi
if [[ $held != 0 && -z ${FORCE:-} ]]; then
  die "the database already holds ${held} events; FORCE=1 replaces them with the backup's"
fi
pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
  --dbname "$DATABASE_URL" "${DIR}/blacklist.dump"
# Events the backup had not published yet would reach the new stream ahead of the history:
# republishing queues every event again, in order.
psql "$DATABASE_URL" -Atqc 'DELETE FROM outbox' >/dev/null
restored=$(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM events')
log "restored ${restored} events into the database (queue them with janitor republish)"
[[ -n ${DB_ONLY:-} ]] && exit 0

rm -rf "${NATS_STORE_DIR:?}"
log "emptied the local JetStream store; starting the system"
DATABASE_URL="$DATABASE_URL" bash "${ROOT}/scripts/dev-up.sh"
load_env_file "${DEV_DIR}/secrets.env"
case ${PROFILE:-debug} in release) BIN="${CARGO_TARGET_DIR}/release" ;; *) BIN="${CARGO_TARGET_DIR}/debug" ;; esac
NATS_URL="nats://127.0.0.1:4333"
DATABASE_URL="$DATABASE_URL" NATS_URL="$NATS_URL" NATS_USER=janitor NATS_PASSWORD="$NATS_JANITOR_PASSWORD" \
  "${BIN}/janitor" republish
# The relay (in the api) publishes the queued history; rebuild once the outbox is empty.
for _ in $(seq 1 600); do
  [[ $(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM outbox') == 0 ]] && break
  sleep 0.5
done
DATABASE_URL="$DATABASE_URL" NATS_URL="$NATS_URL" NATS_USER=projector NATS_PASSWORD="$NATS_PROJECTOR_PASSWORD" \
  "${BIN}/projector" rebuild
log "restored: ${restored} events republished and the read models rebuilt"
