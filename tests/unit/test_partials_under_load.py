"""Under load the live line gives way (backends/recognition.py): a partial on a local model is skipped
while the server's local decodes fill the cores (`stt_threads` each); finals, guesses and checks take
turns at the decode gate (backends/decode_gate.py), finals first.

Measured before (setup b of `voxgate bench load`, 4 callers, local Whisper, remote LLM and voice): the
callers' partials kept every turn's final decode and end-of-turn check queued behind them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from voxgate.backends import decode_gate
from voxgate.backends.base import Audio, STTCapabilities
from voxgate.backends.recognition import Recognizer
from voxgate.backends.registry import Models
from voxgate.config import Settings

SPEECH = np.zeros(16_000, dtype=np.float32)
_PATCH = pytest.MonkeyPatch()


@pytest.fixture(autouse=True)
def _restore_the_machine() -> Any:
    yield
    _PATCH.undo()


class HeldSTT:
    """A local recognizer whose decodes block until released; it counts what it was asked to read."""

    def __init__(self, name: str, *, local: bool = True) -> None:
        self.name = name
        self.local = local
        self.capabilities = STTCapabilities(keyterms=True, languages=("en",))
        self.release = threading.Event()
        self.started = 0

    def transcribe(self, audio: Audio, **kwargs: Any) -> str:
        self.started += 1
        self.release.wait(10)
        return f"heard by {self.name}"


def _recognizer(*, local: bool = True, fit: int = 2) -> tuple[Recognizer, Models, HeldSTT, HeldSTT]:
    """`fit`: local decodes the cores run at once (a machine of 2 × `fit` cores, 2 threads a decode)."""
    base, tiny = HeldSTT("base", local=local), HeldSTT("tiny.en", local=local)
    models = Models(
        Settings(stt_model="base", stt_partial_model="tiny.en", stt_threads=2, stt_workers=4),
        stt={"base": base, "tiny.en": tiny},
    )
    cores = set(range(2 * fit))
    _PATCH.setattr(decode_gate.os, "sched_getaffinity", lambda _pid: cores)
    models.__dict__["pack_terms"] = ()
    models.__dict__["pack_hints"] = None
    return Recognizer(models), models, base, tiny


async def _read(r: Recognizer, purpose: Any) -> str:
    return await r.transcribe(SPEECH, language="en", keyterms=(), purpose=purpose)


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never came")


@pytest.mark.asyncio
async def test_a_partial_is_skipped_while_local_decodes_fill_the_workers() -> None:
    r, models, base, tiny = _recognizer(fit=2)
    finals = [asyncio.ensure_future(_read(r, "final")) for _ in range(2)]
    await _until(lambda: base.started == 2)
    assert models.local_decodes == 2
    assert await _read(r, "partial") == "" and tiny.started == 0  # not even started
    check = asyncio.ensure_future(_read(r, "check"))  # a check of voice over the agent waits for a slot
    await asyncio.sleep(0.05)
    assert base.started == 2 and models.decode_gate.waiting == 1
    base.release.set()
    assert await asyncio.gather(*finals, check) == ["heard by base"] * 3
    assert models.local_decodes == 0
    tiny.release.set()
    assert await _read(r, "partial") == "heard by tiny.en"  # room again: the live line comes back


@pytest.mark.asyncio
async def test_with_room_left_a_partial_runs_beside_a_final() -> None:
    r, _models, base, tiny = _recognizer(fit=2)
    final = asyncio.ensure_future(_read(r, "final"))
    await _until(lambda: base.started == 1)
    tiny.release.set()
    assert await _read(r, "partial") == "heard by tiny.en"
    base.release.set()
    assert await final == "heard by base"


@pytest.mark.asyncio
async def test_a_remote_recognizer_never_skips_a_partial() -> None:
    """A remote service's decodes do not take this machine's cores; its own limits are its own."""
    r, models, base, tiny = _recognizer(local=False, fit=1)
    finals = [asyncio.ensure_future(_read(r, "final")) for _ in range(3)]
    await _until(lambda: base.started == 3)
    assert models.local_decodes == 0
    tiny.release.set()
    assert await _read(r, "partial") == "heard by tiny.en"
    base.release.set()
    await asyncio.gather(*finals)


@pytest.mark.asyncio
async def test_a_failed_decode_gives_its_slot_back() -> None:
    r, models, base, tiny = _recognizer(fit=1)

    def fail(audio: Audio, **kwargs: Any) -> str:
        raise RuntimeError("decoder broke")

    base.transcribe = fail  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await _read(r, "final")
    assert models.local_decodes == 0
    tiny.release.set()
    assert await _read(r, "partial") == "heard by tiny.en"


class AlwaysHint:
    def for_text(self, text: str) -> list[str]:
        return ["Voxgate"]


class HeldSecondTime(HeldSTT):
    """Its first decode returns at once; the second waits to be released."""

    def transcribe(self, audio: Audio, **kwargs: Any) -> str:
        self.started += 1
        if self.started == 2:
            self.release.wait(10)
        return f"heard by {self.name}"


@pytest.mark.asyncio
async def test_the_second_decode_of_a_pack_term_counts_too() -> None:
    """A final that may have misheard a pack term is decoded again: that decode takes the cores as well."""
    r, models, _base, tiny = _recognizer(fit=1)
    base = HeldSecondTime("base")
    models._stt["base"] = base
    models.__dict__["pack_hints"] = AlwaysHint()
    final = asyncio.ensure_future(_read(r, "final"))
    await _until(lambda: base.started == 2)  # the first decode is done, the second runs
    assert models.local_decodes == 1
    assert await _read(r, "partial") == "" and tiny.started == 0
    base.release.set()
    assert await final == "heard by base"
    assert models.local_decodes == 0


@pytest.mark.asyncio
async def test_finals_waiting_for_the_cores_go_before_checks_in_arrival_order() -> None:
    """Two decodes at once on cores that fit one both finish late; one at a time, the most urgent first."""
    r, models, base, _tiny = _recognizer(fit=1)
    order: list[str] = []

    async def read(purpose: str, name: str) -> None:
        await _read(r, purpose)
        order.append(name)

    first = asyncio.ensure_future(read("final", "first final"))
    await _until(lambda: base.started == 1)
    waiting = [
        asyncio.ensure_future(read("check", "check")),
        asyncio.ensure_future(read("final", "second final")),
        asyncio.ensure_future(read("final", "third final")),
    ]
    await _until(lambda: models.decode_gate.waiting == 3)
    assert base.started == 1  # nothing started beside the running one
    base.release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["first final", "second final", "third final", "check"]
    assert models.decode_gate.running == 0 and models.local_decodes == 0


@pytest.mark.asyncio
async def test_a_cancelled_waiter_leaves_its_place_and_the_slot_goes_on() -> None:
    r, models, base, _tiny = _recognizer(fit=1)
    running = asyncio.ensure_future(_read(r, "final"))
    await _until(lambda: base.started == 1)
    given_up = asyncio.ensure_future(_read(r, "final"))  # a guess the user talked over
    after = asyncio.ensure_future(_read(r, "final"))
    await _until(lambda: models.decode_gate.waiting == 2)
    given_up.cancel()
    base.release.set()
    assert await running == "heard by base" and await after == "heard by base"
    assert given_up.cancelled() and base.started == 2
    assert models.decode_gate.running == 0
