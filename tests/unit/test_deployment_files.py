"""The container files, checked without a container runtime (none can pull a base image here).

What can be checked is checked for real: the image's install step is the set-up script CI runs, the
compose file parses and names only settings Voxgate has, the balancer's health check is a route the
app serves, and HAProxy itself validates its configuration (`haproxy -c`, when installed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from voxgate.app import create_app
from voxgate.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def test_the_image_installs_with_the_readmes_setup_script_and_nothing_else() -> None:
    steps = _instructions(ROOT / "Dockerfile")
    runs = [args for kind, args in steps if kind == "RUN"]
    assert any(re.search(r"\bbash scripts/setup\.sh\b", run) for run in runs)
    # Nothing is installed beside the script: what CI tests is what the image runs.
    for run in runs:
        assert not re.search(r"\b(pip|pip3)\s+install\b|apt-get\s+install|\bnpm\s+(install|pack)\b", run), run
    # The script the image runs is the one CI's chain reaches: .ci/run -> scripts/test.sh -> scripts/setup.sh.
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in (ROOT / "scripts" / "test.sh").read_text()
    base = next(args for kind, args in steps if kind == "FROM")
    assert base.startswith("python:3.11") and "bookworm" in base  # the Python and Debian setup.sh expects
    cmd = next(args for kind, args in steps if kind == "CMD")
    assert "voxgate" in cmd and "serve" in cmd
    health = next(args for kind, args in steps if kind == "HEALTHCHECK")
    assert "/health" in health


def test_the_image_listens_where_it_says_and_only_with_keys() -> None:
    steps = _instructions(ROOT / "Dockerfile")
    env = " ".join(args for kind, args in steps if kind == "ENV")
    assert "VOXGATE_HOST=0.0.0.0" in env and "VOXGATE_PORT=8000" in env
    assert ("EXPOSE", "8000") in steps
    for name in re.findall(r"\b(VOXGATE_[A-Z_]+)=", env):
        assert _setting(name) in Settings.model_fields or name == "VOXGATE_CACHE_DIR", name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv/" in ignored and ".git/" in ignored  # the venv is built inside, never copied in


def _setting(variable: str) -> str:
    return variable.removeprefix("VOXGATE_").lower()


def test_compose_wires_replicas_redis_and_the_balancer() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "voxgate", "balancer"}
    voxgate = services["voxgate"]
    env = voxgate["environment"]
    for name in env:
        assert _setting(name) in Settings.model_fields, f"{name} is not a Voxgate setting"
    assert env["VOXGATE_REDIS_URL"].startswith("redis://redis:")
    assert "VOXGATE_API_KEYS" in env and "?" in env["VOXGATE_API_KEYS"]  # compose refuses to start without keys
    assert voxgate["expose"] == ["8000"] and "ports" not in voxgate  # only the balancer is published
    assert voxgate["depends_on"]["redis"]["condition"] == "service_healthy"
    grace = int(str(voxgate["stop_grace_period"]).removesuffix("s"))
    assert grace > float(env["VOXGATE_DRAIN_TIMEOUT_S"]) + 10  # the drain, then uvicorn's graceful close
    balancer = services["balancer"]
    mounted = {v.split(":")[0]: v.split(":")[1] for v in balancer["volumes"]}
    assert (ROOT / mounted["./deploy/haproxy.cfg"].lstrip("/")).name == "haproxy.cfg"
    assert (ROOT / "deploy" / "haproxy.cfg").is_file()


def test_the_balancer_checks_a_route_the_app_serves_and_does_not_stick() -> None:
    config = (ROOT / "deploy" / "haproxy.cfg").read_text()
    check = re.search(r"http-check send meth GET uri (\S+)", config)
    assert check is not None and check.group(1) == "/ready"
    with TestClient(create_app(Settings(preload=False))) as http:
        assert http.get("/ready").status_code in (200, 503) and http.get("/health").status_code == 200
    assert re.search(r"^\s*balance leastconn", config, re.M)
    assert not re.search(r"^\s*(cookie|stick|hash-type)\b", config, re.M)  # sessions resume anywhere (Redis)
    assert re.search(r"^\s*timeout tunnel \d+h", config, re.M)  # a call's WebSocket outlives the HTTP timeouts
    assert re.search(r"server-template voxgate \d+ voxgate:8000 ", config)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (VOXGATE_EXTRA_APT)")
def test_haproxy_accepts_the_configuration() -> None:
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
