#!/usr/bin/env bash
# Make the tools the worker's build needs available: whisper-rs-sys builds whisper.cpp from its
# vendored source with cmake and a C++ compiler, and generates its bindings with libclang.
# Installs Debian's packages when one is missing (as root, or with sudo); harmless when all are
# there. Prints nothing on stdout.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=build-tools

ensure_cmd cmake cmake
ensure_cmd g++ g++
# bindgen loads libclang.so at build time; clang's own binary is not needed. libclang-cpp (which
# other packages install) is a different library and does not count.
if ! compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null &&
  ! compgen -G '/usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so*' >/dev/null &&
  [[ -z ${LIBCLANG_PATH:-} ]]; then
  apt_install libclang-dev
fi
