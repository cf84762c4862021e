#!/usr/bin/env bash
# make backup [DIR=…]: a copy of what cannot be derived — the Postgres database (event store,
# outbox, read models, accounts) — in pg_dump's custom format, with a manifest. JetStream needs
# no copy: EVENTS is re-published from the event store (`janitor republish`, same event ids), the
# read models and KV buckets are rebuilt from it (`projector rebuild`), and work in flight on
# TASKS is re-dispatched from the tasks' events by the janitor. `make restore DIR=…` undoes it.
#
# Variables: DATABASE_URL (default: the database `make up` uses). Prints the backup's directory.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=backup

command -v pg_dump >/dev/null || die "pg_dump is missing (apt-get install postgresql-client)"
DATABASE_URL=${DATABASE_URL:-$("${ROOT}/scripts/ensure-postgres.sh")}
DIR=${1:-${ROOT}/backups/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$DIR"
# One snapshot of the whole database (pg_dump runs in a single repeatable-read transaction), so
# the event store, the outbox and the read models agree with each other.
pg_dump --format=custom --no-owner --no-privileges --file "${DIR}/blacklist.dump" "$DATABASE_URL"
events=$(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM events')
printf '{"createdAt":"%s","events":%s,"format":"pg_dump custom","file":"blacklist.dump"}\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$events" >"${DIR}/manifest.json"
log "backed up ${events} events to ${DIR}"
printf '%s\n' "$DIR"
