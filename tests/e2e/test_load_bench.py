"""`voxgate bench load` for real, small: setup c (every model remote: the bench's own OpenAI-compatible
stub) with one and then two callers speaking synthetic speech in real time against a spawned replica.

Light enough for CI (VAD and Smart Turn are the only models the replica loads; about a minute), and
it checks what the figures stand on: every turn was answered, the remote backends really were the
stub, and the server's CPU and memory were read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, ROOT

pytestmark = pytest.mark.slow


def test_setup_c_with_one_and_two_callers(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    ARTIFACTS.mkdir(exist_ok=True)
    bench = [str(ROOT / ".venv" / "bin" / "voxgate"), "bench", "load", "--setup", "c", "--steps", "1,2"]
    run = subprocess.run(
        [*bench, "--turns", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    (ARTIFACTS / "bench-load-c.log").write_text(run.stdout + run.stderr)
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]  # 1: a target missed, not a crash
    figures = json.loads(out.read_text())
    c = figures["setups"]["c"]
    assert [s["n"] for s in c["steps"]] == [1, 2]
    for step in c["steps"]:
        assert step["turns"] == 2 * step["n"] and step["failed"] == 0, step
        assert 0.0 < step["p50_s"] <= step["p95_s"] < 10.0
        assert step["server_cores"] > 0 and step["rss_peak_mb"] > 50
        assert step["replies"] >= step["turns"]
    # The backends went to the stub: every turn (and the warm-up) transcribed, answered and spoken there.
    asked = c["stub_requests"]
    turns = 1 + sum(s["turns"] for s in c["steps"])
    assert asked["transcriptions"] >= turns and asked["chat"] >= turns and asked["speech"] >= turns
    assert c["largest_within_margin"] in (1, 2)
    assert {t["name"] for t in c["targets"]} == {"sessions within +50 ms of 1-session p95", "RSS per extra session"}
    assert "setup c: everything remote" in run.stdout and "first audio" in run.stdout
