#!/usr/bin/env bash
# Render the evaluation corpus (eval/calls/*.jsonl) to telephone-band WAV files and print the
# directory on stdout (logs: stderr). Usage: scripts/eval-synth.sh [OUT_DIR]
#
# Makes sure the speech synthesisers Debian ships are there (espeak-ng, flite, festival with its
# default voice) plus sox, then runs scripts/eval-synth.py, which does the work: see its header
# for the voices and the telephone chain. Without OUT_DIR the files go to
# ${XDG_CACHE_HOME:-$HOME/.cache}/blacklist/eval/<hash of the corpus, the script and the voices>/,
# so an unchanged corpus is rendered once per machine. Extra options after OUT_DIR (e.g. --force,
# --jobs 1) are passed to the Python script.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=eval-synth

ensure_cmd python3 python3
ensure_cmd espeak-ng espeak-ng
ensure_cmd flite flite
ensure_cmd text2wave festival
ensure_cmd sox sox
ensure_cmd soxi sox

# festival without a voice package fails at synthesis time; Debian's default is kal_diphone.
if ! printf 'test\n' | text2wave -o /dev/null >/dev/null 2>&1; then
  apt_install festvox-kallpc16k
fi
# GSM and the other codecs live in sox's format libraries; the base set normally suffices, and
# eval-synth.py falls back to G.711 when GSM is missing.
sox_help=$(sox -h 2>&1 || true)
if ! grep -qw gsm <<<"$sox_help"; then
  apt_install libsox-fmt-all || warn "libsox-fmt-all could not be installed; GSM may be unavailable"
fi

args=()
if [[ $# -gt 0 && $1 != -* ]]; then
  args+=(--out "$1")
  shift
fi
exec python3 "${ROOT}/scripts/eval-synth.py" "${args[@]}" "$@"
