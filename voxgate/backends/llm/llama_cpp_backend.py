"""The embedded LLM: llama.cpp through llama-cpp-python, streamed from a worker thread.

One `Llama` is shared and guarded by a lock (llama.cpp is not thread-safe). Generation runs in a
thread that pushes text into the event loop; cancelling the consumer sets a flag the thread checks
every token, so barge-in stops generation within a token and frees the model for the next turn.
llama-cpp-python reuses the longest common prefix with its last evaluation, and our prompt keeps
the system+tools prefix byte-identical, so later turns skip re-reading it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from voxgate.backends.base import ChatMessage, LLMEvent, ToolSpec
from voxgate.backends.llm.qwen_prompt import render
from voxgate.backends.llm.tool_call_parser import ToolCallParser

STOP = ["<|im_end|>", "<|endoftext|>", "<|im_start|>"]
_END = object()


class LlamaCppLLM:
    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        temperature: float = 0.6,
        top_p: float = 0.9,
        max_tokens: int = 200,
        seed: int = -1,
        name: str = "local",
    ) -> None:
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
        self._temperature, self._top_p, self._max_tokens = temperature, top_p, max_tokens
        self._lock = threading.Lock()

    def warmup(self, system_prompt: str, tools: Sequence[ToolSpec]) -> None:
        """Evaluate a prompt prefix now so the first real turn finds it cached."""
        prompt = render([ChatMessage(role="system", content=system_prompt)], tools)
        with self._lock:
            for _ in self._llm.create_completion(prompt, max_tokens=1, stream=True, temperature=0.0):
                break

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        prompt = render(messages, tools)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancelled = threading.Event()

        def generate() -> None:
            try:
                with self._lock:
                    chunks = self._llm.create_completion(
                        prompt,
                        stream=True,
                        max_tokens=self._max_tokens,
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

        worker = loop.run_in_executor(None, generate)
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
            await asyncio.shield(worker) if not worker.done() else None
