"""The embedded LLM: llama.cpp through llama-cpp-python, streamed from a thread of its own.

One `Llama` serves every session of the process (llama.cpp is not thread-safe, and a second copy of
the weights would not make 2 cores faster). How it is shared:
- **Its own thread.** Generation runs on a one-thread executor of the model's, not the default
  executor: sessions queued on the model used to hold every default thread and stall Whisper, the
  turn model and TTS for the whole process.
- **First come, first served.** Requests wait their turn in arrival order (an asyncio lock is FIFO);
  each is bounded (the prompt fits the window, session/context_window.py, and the reply
  `max_tokens`), so no session waits behind more than one turn of each other session.
- **A request that is given up stops costing.** One still waiting leaves the queue at once. One
  running checks its cancel flag between chunks of the prompt's evaluation (`PREFILL_CHUNK` tokens)
  and between generated tokens, so barge-in, a timeout or a dropped socket frees the model within a
  fraction of a second, even in the middle of reading a long prompt. What was evaluated stays in the
  cache: the next request with the same beginning does not redo it.
llama-cpp-python reuses the longest common prefix with its last evaluation, and our prompt keeps the
system+tools prefix byte-identical, so later turns of a session skip re-reading it. When a long
conversation's oldest turns are folded away, the prompt skips a span of what was evaluated: that span
is dropped from the cache and what follows is moved up (`_reuse`), so the fold costs the recap alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.backends.base import ChatMessage, LLMEvent, ToolSpec
from voxgate.backends.llm.qwen_prompt import render
from voxgate.backends.llm.tool_call_parser import ToolCallParser

STOP = ["<|im_end|>", "<|endoftext|>", "<|im_start|>"]
PREFILL_CHUNK = 64  # tokens evaluated between two looks at the cancel flag
SHIFT_MIN_TOKENS = 32  # a dropped span is worth shifting past only if this much after it is reused
_END = object()


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class LlamaCppLLM:
    # Its prompt cache is worth filling ahead of a turn (session/replying.py warms a session's prompt).
    caches_prompt = True

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        temperature: float = 0.6,
        top_p: float = 0.9,
        max_tokens: int = 200,
        history_tokens: int = 1536,
        seed: int = -1,
        name: str = "local",
    ) -> None:
        import llama_cpp
        from llama_cpp import Llama

        self.name = name
        self._llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=seed if seed >= 0 else 0xFFFFFFFF,
            verbose=False,
        )
        self.context_tokens = n_ctx
        self.max_tokens = max_tokens
        self.history_tokens = history_tokens  # session/context_window.py folds the turns to fit this
        self._temperature, self._top_p = temperature, top_p
        self._lock = threading.Lock()  # warmup() runs from other threads
        self._turn = asyncio.Lock()  # FIFO admission of streamed requests
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{name}")
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(self._llm._ctx.memory))
        # For tests and metrics:
        self.requests = 0  # started streams
        self.cancelled_in_prefill = 0  # given up between two chunks of a prompt
        self.evaluated_tokens = 0  # prompt tokens evaluated (not found in the cache)
        self.shifted_tokens = 0  # tokens dropped from the middle of the cache instead of re-reading past them

    def count_tokens(self, text: str) -> int:
        """Exact, with the model's own tokenizer (the context window is fitted with it)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0

    def warmup(self, system_prompt: str, tools: Sequence[ToolSpec]) -> None:
        """Evaluate a prompt prefix now so the first real turn finds it cached."""
        prompt = render([ChatMessage(role="system", content=system_prompt)], tools)
        with self._lock:
            for _ in self._llm.create_completion(prompt, max_tokens=1, stream=True, temperature=0.0):
                break

    def _prefill(self, tokens: list[int], cancelled: threading.Event) -> bool:
        """Evaluate all but the last prompt token in chunks, looking at `cancelled` between them; False if
        given up. create_completion then finds the prompt cached and only evaluates its last token."""
        llm: Any = self._llm
        end = len(tokens) - 1
        common = min(self._reuse(tokens), end)  # the last token is evaluated again: its logits start the reply
        if common < llm.n_tokens:
            llm.n_tokens = common  # eval() drops the cache past n_tokens before it evaluates more
        for start in range(common, end, PREFILL_CHUNK):
            if cancelled.is_set():
                return False
            chunk = tokens[start : min(end, start + PREFILL_CHUNK)]
            llm.eval(chunk)
            self.evaluated_tokens += len(chunk)
        return True

    def _reuse(self, tokens: list[int]) -> int:
        """How much of `tokens` the cache already holds. When the prompt skips a span of what was
        evaluated (the oldest turns, folded away by session/context_window.py), that span is dropped
        from the cache and the rest moved up (llama.cpp shifts positions), instead of re-reading
        everything after it: a fold costs its recap, not the whole history."""
        llm: Any = self._llm
        n = int(llm.n_tokens)
        cached = llm.input_ids
        prompt = np.asarray(tokens, dtype=cached.dtype)
        a = _common_prefix(cached[:n], prompt)
        if a == n or len(prompt) - a < SHIFT_MIN_TOKENS or not self._can_shift:
            return a
        # The longest reuse wins: a conversation that repeats itself (the same question, the same answer)
        # holds the prompt's next tokens at several places, and only the last of them goes on to the end.
        best, best_b = 0, -1
        for b in np.flatnonzero(cached[a + 1 : n - SHIFT_MIN_TOKENS + 1] == prompt[a]) + a + 1:
            reused = _common_prefix(cached[b:n], prompt[a:])
            if reused > best:
                best, best_b = reused, int(b)
        if best < SHIFT_MIN_TOKENS:
            return a
        ctx = llm._ctx
        ctx.kv_cache_seq_rm(0, a, best_b)
        ctx.kv_cache_seq_shift(0, best_b, n, a - best_b)
        kept = n - best_b
        cached[a : a + kept] = cached[best_b:n].copy()
        llm.n_tokens = a + kept
        self.shifted_tokens += best_b - a
        return a + best

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        prompt = render(messages, tools)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancelled = threading.Event()

        def generate() -> None:
            try:
                with self._lock:
                    tokens = self._llm.tokenize(prompt.encode("utf-8"), special=True)
                    if not self._prefill(tokens, cancelled):
                        self.cancelled_in_prefill += 1
                        return
                    chunks = self._llm.create_completion(
                        tokens,
                        stream=True,
                        max_tokens=self.max_tokens,
                        stop=STOP,
                        temperature=self._temperature,
                        top_p=self._top_p,
                    )
                    for chunk in chunks:
                        if cancelled.is_set():
                            close = getattr(chunks, "close", None)
                            if close is not None:
                                close()
                            break
                        text = chunk["choices"][0]["text"]  # type: ignore[index]
                        if text:
                            loop.call_soon_threadsafe(queue.put_nowait, text)
            except BaseException as exc:  # handed to the consumer, which raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        async with self._turn:  # waiting here is where a cancelled request costs nothing
            self.requests += 1
            worker = loop.run_in_executor(self._thread, generate)
            parser = ToolCallParser()
            try:
                while (item := await queue.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    for event in parser.feed(str(item)):
                        yield event
                for event in parser.flush():
                    yield event
            finally:
                cancelled.set()
                # The model is free only when the thread has let go of it (within a chunk or a token).
                await asyncio.shield(worker) if not worker.done() else None
