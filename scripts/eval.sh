#!/usr/bin/env bash
# `make eval`: render the labelled call corpus (eval/calls/*.jsonl) with Debian's speech
# synthesisers, squeezed to telephone band (scripts/eval-synth.sh), then run every call through
# the worker's analysis with the real speech model (scripts/eval.py prints the figures).
# Extra arguments go to eval.py, e.g. `make eval ARGS='--split heldout'` or ARGS=--details.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=eval

"${ROOT}/scripts/ensure-build-tools.sh"
WHISPER_MODEL=${WHISPER_MODEL:-$("${ROOT}/scripts/ensure-model.sh" base)}
export WHISPER_MODEL
CORPUS=$("${ROOT}/scripts/eval-synth.sh")
log "building the worker"
(cd "$ROOT" && cargo build -q -p worker --bin worker)
log "corpus: $CORPUS"
exec python3 "${ROOT}/scripts/eval.py" "${CARGO_TARGET_DIR}/debug/worker" "$CORPUS" "$@"
