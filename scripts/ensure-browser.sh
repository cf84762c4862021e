#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium (Debian's `chromium`, installed with apt when
# missing) and installs the browser tests' npm packages (e2e/, from its lock file) when needed.
# Logs go to stderr; CHROMIUM_BIN wins when set.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${CHROMIUM_BIN:-}
if [[ -z $bin || ! -x $bin ]]; then
  bin=$(command -v chromium || true)
fi
if [[ -z $bin ]]; then
  echo "[browser] installing Debian's chromium (one-time)" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "[browser] chromium is missing and this user cannot apt-get install it; set CHROMIUM_BIN" >&2
    exit 1
  fi
  (apt-get install -y --no-install-recommends chromium >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2; })
  bin=$(command -v chromium)
fi
if [[ ! -d $ROOT/e2e/node_modules/playwright-core || $ROOT/e2e/package-lock.json -nt $ROOT/e2e/node_modules/.package-lock.json ]]; then
  echo "[browser] npm ci in e2e/" >&2
  (cd "$ROOT/e2e" && npm ci --no-audit --no-fund >&2)
fi
echo "$bin"
