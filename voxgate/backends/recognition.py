"""The user's words: a decode for each purpose, with the packs' second decode, and the finished transcript.

This is the one place that picks which Whisper model reads what (the partial model for the live line,
the final model for voice over the agent and for the turn) and that turns a recognizer's text into
what the LLM acts on. Blocking decodes run in worker threads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from voxgate.backends.base import Audio
from voxgate.config import input_language

if TYPE_CHECKING:
    from voxgate.backends.registry import Models
    from voxgate.text.keyterms import KeytermCorrector

log = logging.getLogger("voxgate.recognition")

TranscribePurpose = Literal["partial", "check", "final"]


class Recognizer:
    def __init__(self, models: Models) -> None:
        self._models = models
        self._settings = models.settings

    async def transcribe(
        self, audio: Audio, *, language: str | None, keyterms: Sequence[str], purpose: TranscribePurpose
    ) -> str:
        """`partial`: the live line, by the partial model; `check`: a quick read of voice over the agent
        by the final model; `final`: the turn's transcript, decoded as carefully as configured."""
        models = self._models
        model = models.partial_stt_for(language) if purpose == "partial" else models.stt(self._settings.stt_model)
        quick = purpose != "final"
        text = await asyncio.to_thread(model.transcribe, audio, language=language, keyterms=list(keyterms), quick=quick)
        hints = [] if quick else self.pack_terms_maybe_in(text, keyterms)
        if hints and model.capabilities.keyterms:  # a pack term misheard, maybe: decode again, listing it
            log.debug("pack terms %s may be in %r: decoding again", hints, text)
            hinted = [*keyterms, *(h for h in hints if h not in keyterms)]
            text = await asyncio.to_thread(model.transcribe, audio, language=language, keyterms=hinted)
        return text

    def pack_terms_maybe_in(self, text: str, keyterms: Sequence[str]) -> list[str]:
        """Pack terms that `text`, as corrected, may have misheard: worth a second decode that lists them."""
        hints = self._models.pack_hints
        if hints is None:
            return []
        return hints.for_text(_keyterm_corrector(tuple(keyterms), self._models.pack_terms).correct(text))

    def finish_transcript(self, text: str, *, language: str | None, keyterms: Sequence[str]) -> str:
        """What the recognizer wrote → what the LLM should act on: keyterms spelled as given, then
        spoken entities (emails, numbers, IDs, amounts, dates) written the way people write them."""
        from voxgate.text.entities import format_entities

        pack_terms = self._models.pack_terms
        if keyterms or pack_terms:
            text = _keyterm_corrector(tuple(keyterms), pack_terms).correct(text)
        if self._settings.format_entities:
            text = format_entities(text, language or input_language(self._settings.stt_language) or "en")
        return text


@functools.lru_cache(maxsize=64)
def _keyterm_corrector(keyterms: tuple[str, ...], pack_terms: tuple[str, ...]) -> KeytermCorrector:
    """Sessions share keyterm lists (and every session shares the packs): build each matcher once."""
    from voxgate.text.keyterms import KeytermCorrector

    return KeytermCorrector(keyterms, strict_terms=pack_terms)
