"""Two language models as one: the primary answers, the fallback steps in when the primary cannot.

The switch happens only before the primary has produced anything. Once a reply has started (text
may already be synthesized and playing), a failure cannot be handed to the fallback: it would
start a second, different answer after words the user has already heard, and we cannot un-say
them. Such a failure is raised as `LLMUnavailable`, and the session apologises as for any other
failed reply. Every turn tries the primary first, so a primary that comes back is used again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voxgate.backends.base import ChatMessage, LanguageModel, LLMEvent, ToolSpec
from voxgate.backends.llm.errors import LLMUnavailable

log = logging.getLogger("voxgate.llm.fallback")


class FallbackLLM:
    def __init__(self, primary: LanguageModel, fallback: LanguageModel) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = f"{primary.name} (fallback {fallback.name})"
        self.fallbacks = 0  # replies the fallback answered because the primary failed first (metrics)

    def warmup(self, system_prompt: str, tools: Sequence[ToolSpec]) -> None:
        """Warm whichever model can be warmed (the embedded one), so a switch does not pay for it."""
        for model in (self.primary, self.fallback):
            warmup: Any = getattr(model, "warmup", None)
            if warmup is not None:
                warmup(system_prompt, tools)

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        started = False
        primary = self.primary.stream(messages, tools)
        try:
            async for event in primary:
                started = True
                yield event
            return
        except Exception as exc:
            if started and isinstance(exc, LLMUnavailable):
                raise
            if started:
                raise LLMUnavailable(f"language model {self.primary.name} failed mid-reply: {exc}") from exc
            log.warning("language model %s failed (%s); answering with %s", self.primary.name, exc, self.fallback.name)
            self.fallbacks += 1
        finally:
            await primary.aclose()  # type: ignore[attr-defined]

        secondary = self.fallback.stream(messages, tools)
        try:
            async for event in secondary:
                yield event
        finally:
            await secondary.aclose()  # type: ignore[attr-defined]
