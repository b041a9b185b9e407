#!/usr/bin/env bash
# Installs what the tests need (the server's own set-up plus test data) and runs lint, types and the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VOXGATE_EXTRA_APT="pocketsphinx-testdata sox chromium" bash scripts/setup.sh
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
echo "== ruff"; .venv/bin/ruff check voxgate tests examples && .venv/bin/ruff format --check voxgate tests examples
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest -ra "$@"
