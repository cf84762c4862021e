#!/usr/bin/env bash
# Run a command in the test environment:  scripts/test-env.sh CMD [ARG...]
#
# Exports, for the test suites:
#   NATS_SERVER_BIN      absolute path of the pinned nats-server; tests start their own servers
#                        on random ports (the :4333 one of `make up` is not used, nor started)
#   TEST_DATABASE_URL    a maintenance connection (database `postgres`) on a server where tests
#                        may CREATE DATABASE one database per test
#   BLACKLIST_REPO_ROOT  absolute path of the repository (migrations/, nats/ …)
#   WHISPER_MODEL        the speech model (scripts/ensure-model.sh: fetched once, checksums
#                        verified, converted); the worker tests recognise real speech with it
#   NATS_*_PASSWORD, ADMIN_JWT_SECRET   from .dev/secrets.env (generated on first use), for tests
#                        that start nats-server with nats/dev.conf, which reads the passwords from
#                        the environment
# The environment, then .env, may preset NATS_SERVER_BIN, TEST_DATABASE_URL or DATABASE_URL.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=test-env

(($# > 0)) || die "usage: $0 CMD [ARG...]"

load_dotenv
ensure_secrets

"${ROOT}/scripts/ensure-build-tools.sh"
NATS_SERVER_BIN=$("${ROOT}/scripts/ensure-nats-server.sh")
export NATS_SERVER_BIN
TEST_DATABASE_URL=$("${ROOT}/scripts/ensure-postgres.sh" --maintenance)
export TEST_DATABASE_URL
export BLACKLIST_REPO_ROOT="$ROOT"
# The browser tests (api/tests/it/browser.rs): Debian's chromium and e2e/'s npm packages.
CHROMIUM_BIN=$("${ROOT}/scripts/ensure-browser.sh")
export CHROMIUM_BIN
if [[ -z ${WHISPER_MODEL:-} ]]; then
  WHISPER_MODEL=$("${ROOT}/scripts/ensure-model.sh" base)
fi
export WHISPER_MODEL

log "NATS_SERVER_BIN=$NATS_SERVER_BIN"
log "TEST_DATABASE_URL=$TEST_DATABASE_URL"
log "BLACKLIST_REPO_ROOT=$BLACKLIST_REPO_ROOT"
log "WHISPER_MODEL=$WHISPER_MODEL"

cd "$ROOT"
exec "$@"
