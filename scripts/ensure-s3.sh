#!/usr/bin/env bash
# Prints the path of the pinned S3-compatible server (s3s-fs, a filesystem-backed implementation
# of the S3 protocol from crates.io), installing it into the shared cache on first use.
# Logs go to stderr; S3_SERVER_BIN wins when set.
set -euo pipefail
VERSION=0.14.1
if [[ -n ${S3_SERVER_BIN:-} && -x ${S3_SERVER_BIN} ]]; then
  echo "$S3_SERVER_BIN"
  exit 0
fi
ROOT_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/blacklist/s3s-fs-${VERSION}"
BIN="${ROOT_DIR}/bin/s3s-fs"
if [[ ! -x $BIN ]]; then
  echo "[s3] installing s3s-fs ${VERSION} (one-time, a few minutes)" >&2
  mkdir -p "$ROOT_DIR"
  # flock: parallel test processes install it once.
  (
    flock 9
    [[ -x $BIN ]] || cargo install s3s-fs --version "$VERSION" --features binary --locked --root "$ROOT_DIR" >&2
  ) 9>"${ROOT_DIR}.lock"
fi
echo "$BIN"
