"""The harness itself: the virtual-time loop and the way the fakes carry the user's words in audio."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import tests.virtual_time as virtual_time
from tests.fakes import FRAME, Lexicon, Phrase, ScriptedVad, silence
from tests.virtual_time import VirtualTimeDeadlock, VirtualTimeLoop, run_virtual, virtual


def test_sleeps_and_timeouts_take_no_wall_time() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        timed_out = False
        try:
            async with asyncio.timeout(30):
                await asyncio.Event().wait()
        except TimeoutError:
            timed_out = True
        return loop.time() - start, timed_out

    wall = time.perf_counter()
    elapsed, timed_out = run_virtual(main(), limit_s=10_000)
    assert elapsed == 3630 and timed_out
    assert time.perf_counter() - wall < 1.0


def test_timers_fire_in_order_of_their_virtual_time() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        order: list[tuple[str, float]] = []

        async def at(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            order.append((name, round(loop.time() - virtual_time.START_S, 6)))

        await asyncio.gather(at("c", 0.3), at("a", 0.1), at("b", 0.2), at("a2", 0.1))
        return order

    assert run_virtual(main()) == [("a", 0.1), ("a2", 0.1), ("b", 0.2), ("c", 0.3)]


def test_blocking_work_runs_inline_at_the_virtual_instant_it_was_asked_for() -> None:
    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ident = await asyncio.to_thread(threading.get_ident)
        with pytest.raises(ValueError, match="bad"):
            await loop.run_in_executor(None, _raise_value_error)
        return ident == threading.get_ident(), loop.time() - start

    on_loop_thread, elapsed = run_virtual(main())
    assert on_loop_thread and elapsed == 0.0


def _raise_value_error() -> None:
    raise ValueError("bad")


def test_a_script_that_never_ends_is_reported() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    with pytest.raises(VirtualTimeDeadlock, match="still running after 5 virtual s"):
        run_virtual(forever(), limit_s=5)


def test_a_loop_with_nothing_to_wait_for_is_a_deadlock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(virtual_time, "DEADLOCK_WAIT_S", 0.01)
    loop = VirtualTimeLoop()
    try:
        with pytest.raises(VirtualTimeDeadlock, match="nothing scheduled"):
            loop.run_until_complete(asyncio.Event().wait())
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


@virtual
async def test_the_virtual_decorator_runs_an_async_test_on_the_virtual_loop() -> None:
    assert isinstance(asyncio.get_running_loop(), VirtualTimeLoop)


def test_the_recognizer_reads_the_phrases_in_the_audio_in_order() -> None:
    lexicon = Lexicon()
    question, more, cough = Phrase("What time is it?"), Phrase("In Paris?"), Phrase("")
    audio = np.concatenate(
        [
            silence(0.3),
            lexicon.voice(question, 1.0),
            silence(0.2),
            lexicon.voice(cough, 0.1),
            lexicon.voice(more, 0.5),
            silence(0.2),
            lexicon.voice(question, 0.4),
        ]
    )
    assert lexicon.read(audio, "final") == "What time is it? In Paris? What time is it?"
    assert lexicon.read(silence(1.0), "final") == ""
    assert lexicon.read(lexicon.voice(cough, 0.3), "final") == ""
    wait = Phrase("Wait, stop", reads={"check": "Wait"})
    assert lexicon.read(lexicon.voice(wait, 0.3), "check") == "Wait"
    assert lexicon.read(lexicon.voice(wait, 0.3), "final") == "Wait, stop"


def test_the_scripted_vad_hears_every_phrase_and_no_silence() -> None:
    lexicon, vad = Lexicon(), ScriptedVad()
    for text in ("a", "b", "c", ""):
        frames = lexicon.voice(Phrase(text), 0.1)
        assert len(frames) % FRAME == 0
        assert {vad.probability(frames[i : i + FRAME]) for i in range(0, len(frames), FRAME)} == {0.9}
    assert vad.probability(silence(0.032)) == 0.0
