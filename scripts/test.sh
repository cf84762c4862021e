#!/usr/bin/env bash
# `make test`: the whole workspace's tests in the test environment (see scripts/test-env.sh).
# Uses cargo-nextest when installed, else cargo test. Extra arguments go to the test runner,
# e.g. scripts/test.sh -p api, or make test ARGS='-p api'.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG="test"

if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --workspace --no-fail-fast)
else
  log "cargo-nextest not installed; using cargo test"
  runner=(cargo test --workspace --no-fail-fast)
fi
log "${runner[*]} $*"
exec "${ROOT}/scripts/test-env.sh" "${runner[@]}" "$@"
