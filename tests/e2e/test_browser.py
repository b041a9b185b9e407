"""The browser assistant in headless Chromium with a fake microphone fed from a WAV: token, bubbles, audio.

Needs Debian's `chromium` (CI installs it); Playwright drives that binary, so no browser download.
A screenshot is kept in test-artifacts/browser.png.
"""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server, synthesize
from tests.e2e.wsclient import read_wav

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _microphone_wav(speech_dir: Path) -> Path:
    """The question once, then silence: Chromium loops the file, so the silence must outlast the reply."""
    samples, rate = read_wav(synthesize(speech_dir, "What is the capital city of France?", rate=48_000))
    audio = np.concatenate([np.zeros(rate, np.int16), samples, np.zeros(40 * rate, np.int16)])
    path = speech_dir / "browser-mic.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.astype("<i2").tobytes())
    return path


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt install chromium)")
def test_the_page_talks_with_a_token_and_shows_both_sides(server: Server, speech_dir) -> None:
    from playwright.sync_api import sync_playwright

    mic = _microphone_wav(speech_dir)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
            ],
        )
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(f"{r.method} {r.url} {r.headers.get('authorization', '')}"))
        try:
            page.goto(server.http + "/")
            page.wait_for_function("document.querySelectorAll('#voice option').length > 3")
            page.fill("#prompt", "You are a helpful voice assistant. Answer in one short sentence.")
            page.click("#connect")
            page.wait_for_function("document.querySelector('#status').textContent.startsWith('connected')")
            page.wait_for_selector(".bubble.user.final", timeout=90_000)
            page.wait_for_selector(".bubble.agent", timeout=120_000)
            page.wait_for_function("window.voxgateStats.scheduledChunks > 0")
            page.wait_for_selector(".waterfall .stage", timeout=30_000)  # [Voxgate] the turn's stages, drawn
            waterfall = page.inner_text(".waterfall")
            bars = page.eval_on_selector_all(".waterfall .bar", "bars => bars.map(b => b.style.width)")
            user = page.inner_text(".bubble.user.final").lower()
            agent = page.inner_text(".bubble.agent")
            stats = page.evaluate("window.voxgateStats")
        finally:
            page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
            browser.close()
    assert "france" in user or "capital" in user, user
    assert agent.strip(), agent
    assert stats["tokens"] >= 1 and stats["partials"] >= 1 and stats["scheduledChunks"] > 0, stats
    assert stats["latencies"] >= 1 and "to first audio" in waterfall and "end of turn" in waterfall, waterfall
    assert len(bars) >= 4 and all(w.endswith("%") for w in bars), bars
    assert any("POST" in r and "/v1/web/token" in r for r in requests)
    assert not any(API_KEY in r for r in requests), "the API key reached the browser"
