#!/usr/bin/env bash
# Installs what the tests need (the server's own set-up plus test data) and runs lint, types and the suite.
# `--fast`: only the tests that need no model (the turn machine on virtual time, rules, routes): well
# under a minute. CI runs everything. Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
select=()
if [ "${1:-}" = "--fast" ]; then
  shift
  select=(-m "not slow")
fi
# redis-server: the fleet tests start their own (tests/redis_server.py), on a free port in a temporary directory.
# haproxy: tests/e2e/test_balancer.py runs deploy/haproxy.cfg in front of two real replicas.
VOXGATE_EXTRA_APT="pocketsphinx-testdata sox chromium redis-server haproxy" bash scripts/setup.sh
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
echo "== ruff"; .venv/bin/ruff check voxgate tests examples && .venv/bin/ruff format --check voxgate tests examples
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest -ra "${select[@]}" "$@"
