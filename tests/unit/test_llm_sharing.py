"""The embedded LLM shared by sessions (M3, H5 in reliability-findings.md), on the real model.

- A request given up during the prompt's evaluation stops there, and the next one is answered as it
  would have been (the cache holds only what was really evaluated).
- Requests are served in arrival order, on the model's own thread (not the default executor).
- A 300-exchange history, fitted, fits the model's window by its own tokenizer.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from voxgate.backends.base import ChatMessage, TextDelta
from voxgate.backends.llm.embedded_models import resolve_gguf
from voxgate.backends.llm.llama_cpp_backend import LlamaCppLLM
from voxgate.backends.llm.qwen_prompt import render
from voxgate.config import Settings
from voxgate.session.context_window import ContextWindow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm() -> LlamaCppLLM:
    return LlamaCppLLM(resolve_gguf(Settings().llm_model), max_tokens=12, temperature=0.0, seed=7)


async def _answer(llm: LlamaCppLLM, messages: list[ChatMessage], threads: list[str] | None = None) -> str:
    out = []
    async for event in llm.stream(messages, ()):
        if threads is not None:
            threads.append(threading.current_thread().name)
        if isinstance(event, TextDelta):
            out.append(event.text)
    return "".join(out)


SHORT = [
    ChatMessage(role="system", content="Answer in one word."),
    ChatMessage(role="user", content="Capital of France?"),
]
LONG = [
    ChatMessage(role="system", content="You are helpful. " + "Here is some background you may need. " * 250),
    ChatMessage(role="user", content="Hello?"),
]


async def test_a_request_given_up_in_its_prompt_stops_there_and_leaves_the_cache_sound(llm: LlamaCppLLM) -> None:
    before = await _answer(llm, SHORT)
    task = asyncio.create_task(_answer(llm, LONG))
    for _ in range(6000):  # until it has started on the model (bounded: 60 s)
        if llm.requests >= 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert llm.cancelled_in_prefill == 1, "the long prompt was given up between two chunks of its evaluation"
    assert await _answer(llm, SHORT) == before


async def test_requests_are_served_in_arrival_order_on_the_models_own_thread(llm: LlamaCppLLM) -> None:
    order: list[int] = []
    threads: list[str] = []

    async def one(i: int) -> None:
        await _answer(llm, [*SHORT[:1], ChatMessage(role="user", content=f"Say the number {i}.")], threads)
        order.append(i)

    tasks = []
    for i in range(3):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)  # each reaches the queue before the next is made
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


def test_a_long_history_fitted_fits_the_window_by_the_models_tokenizer(llm: LlamaCppLLM) -> None:
    window = ContextWindow()
    history: list[ChatMessage] = []
    for i in range(300):
        history.append(ChatMessage(role="user", content=f"Question {i}: what should I know about item {i} today?"))
        history.append(ChatMessage(role="assistant", content=f"Item {i} is fine. It arrives tomorrow, in the morning."))
        system, view = window.fit(
            "You are a helpful agent.",
            (),
            history,
            context_tokens=llm.context_tokens,
            reply_tokens=200,
            count=llm.count_tokens,
        )
        prompt = render([ChatMessage(role="system", content=system), *view.turns], ())
        assert llm.count_tokens(prompt) + 200 <= llm.context_tokens
    assert window.folds > 0


async def test_a_fold_drops_the_old_turns_from_the_cache_instead_of_re_reading_the_rest(llm: LlamaCppLLM) -> None:
    """After a fold the kept turns are not evaluated again: only the recap and the new question are."""
    window = ContextWindow()
    history: list[ChatMessage] = []

    def fitted() -> list[ChatMessage]:
        system, view = window.fit(
            "Be brief.",
            (),
            history,
            context_tokens=llm.context_tokens,
            reply_tokens=12,
            count=llm.count_tokens,
            turns_tokens=600,
        )
        return [ChatMessage(role="system", content=system), *view.turns]

    for i in range(200):  # turns until the next one folds (bounded)
        history.append(ChatMessage(role="user", content=f"Question {i}: tell me about the number {i} please."))
        messages = fitted()
        if window.folds:
            break
        await _answer(llm, messages)  # the cache now holds this turn's whole prompt
        history.append(ChatMessage(role="assistant", content=f"The number {i} is a fine number to know."))
    before, shifted = llm.evaluated_tokens, llm.shifted_tokens
    messages = fitted()
    await _answer(llm, messages)
    kept = sum(llm.count_tokens(m.content) for m in messages if m.role != "system")
    recap = llm.count_tokens(window._recap)
    assert llm.shifted_tokens > shifted, "the folded span was dropped from the cache"
    assert llm.evaluated_tokens - before < recap + kept // 2, "the kept turns were not read again"
