"""`voxgate talk --input/--output`: a whole spoken turn from files, against a real server, no sound card."""

from __future__ import annotations

import subprocess
import sys
import wave

import pytest

from tests.e2e.conftest import API_KEY, Server, synthesize

pytestmark = pytest.mark.slow


def test_a_question_file_gets_a_reply_file(server: Server, speech_dir, tmp_path) -> None:
    question = synthesize(speech_dir, "What is the capital city of France?")
    reply = tmp_path / "reply.wav"
    run = subprocess.run(
        [sys.executable, "-m", "voxgate.talk", "--url", server.url, "--api-key", API_KEY,
         "--input", str(question), "--output", str(reply),
         "--system-prompt", "You are a helpful voice assistant. Answer in one short sentence."],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "you:" in run.stdout and "france" in run.stdout.lower() and "agent:" in run.stdout
    with wave.open(str(reply)) as w:
        assert w.getframerate() == 24_000 and w.getnframes() > 24_000  # more than a second of speech


def test_without_a_sound_card_talk_says_so_and_exits_2() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "voxgate.talk", "--url", "ws://127.0.0.1:9/v1/ws"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "SD_ENABLE_ASIO": "0"},
    )  # fmt: skip
    assert run.returncode == 2 and "no usable sound card" in run.stderr and "--input" in run.stderr
