"""The user's words: a decode for each purpose, with the packs' second decode, and the finished transcript.

This is the one place that picks which Whisper model reads what (the partial model for the live line,
the final model for voice over the agent and for the turn) and that turns a recognizer's text into
what the LLM acts on. Blocking decodes run in worker threads.

The session's input settings (protocol §4.2) apply here:
- `languages` (`language_codes`): one code is recognised in; several are detected among (the
  backend restricts its language ID to them and takes the most probable); a code a model cannot
  handle falls back to detection, never to an error (`whisper.choose_language`). An English-only
  partial model (tiny.en) serves the live line only when English alone is asked for (or nothing, the
  server's "auto", as before); any other code sends partials to the final model
  (`Models.partial_stt_for`), which is multilingual and detects. With `languages` empty, the older
  single `language` applies as before ("auto" is None: detect).
- `prompt` (`transcription_prompt`): Whisper's initial prompt, beside the keyterms' hotwords, for the
  partial and final decodes. Not for `check` (is this voice over the agent a cue?): Whisper can
  repeat its prompt on audio it cannot read (not seen here on silence or low noise, but echo is
  the agent's own words), and there a word costs a false barge-in while spelling gains nothing.
- Under load the live line gives way: a partial decode on a local model is skipped while the server's
  local decodes (any session's) already fill the cores, `stt_threads` each (one decode on 2 cores).
  Partials are the one decode nothing waits for; the final text, the guess at the pause and the check
  of voice over the agent always run. In one session a partial is skipped only beside its own guess.
- `mode` (`transcription_mode`) changes the `final` decode only; partials and checks stay quick:
  - `balanced`: the configured decoding (`stt_decoding`, greedy by default) on the final model, then
    the packs' second decode if a pack term may be misheard. Today's behaviour.
  - `min_latency`: the quick search (greedy, encoder window of at least 10 s instead of 20 s) on the
    final model, and no second decode. On 2 cores one final decode of a 3 s turn by base went from
    ~0.50 s to ~0.25 s with the same words on the LibriVox and Piper clips tried. The partial model
    (tiny.en) is no faster in the same window (~0.27 s) and heard "ill-disposed" as "old-sposed", so
    the final model stays. The price, known from whisper.py: a 10 s window once read a paused turn's
    trailing "and..." as "cent.".
  - `max_accuracy`: beam search ("accurate": beam 5 with timestamps, faster-whisper's default) on
    the final model, ~0.07 s more per decode; the second decode as in `balanced`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from voxgate.backends.base import Audio, SpeechToText, STTDecoding
from voxgate.backends.decode_gate import decodes_that_fit
from voxgate.config import input_language

if TYPE_CHECKING:
    from voxgate.backends.registry import Models
    from voxgate.text.keyterms import KeytermCorrector

log = logging.getLogger("voxgate.recognition")

TranscribePurpose = Literal["partial", "check", "final"]
TranscriptionMode = Literal["balanced", "min_latency", "max_accuracy"]


@dataclass(frozen=True)
class Decode:
    """How one decode reads: `quick` (the backend's fastest, rougher read; no second decode), else
    `decoding` (None: the configured one)."""

    quick: bool
    decoding: STTDecoding | None = None


# The decode gate's order: a turn's transcript (the end-of-turn check and the reply wait on it) first.
DECODE_PRIORITY: dict[TranscribePurpose, int] = {"final": 0, "check": 1, "partial": 2}
QUICK_READ = Decode(quick=True)  # partials and checks, whatever the mode
FINAL_DECODES: dict[str, Decode] = {
    "balanced": Decode(quick=False),
    "min_latency": Decode(quick=True),
    "max_accuracy": Decode(quick=False, decoding="accurate"),
}


def decode_for(purpose: TranscribePurpose, mode: str) -> Decode:
    """The decode of `purpose` in transcription `mode` (an unknown mode reads as `balanced`)."""
    if purpose != "final":
        return QUICK_READ
    return FINAL_DECODES.get(mode, FINAL_DECODES["balanced"])


def language_codes(codes: Sequence[str]) -> tuple[str, ...]:
    """ISO 639-1 codes as the backends compare them: lower case, primary subtag ("pt-BR" → "pt"),
    each once, in order; blanks dropped."""
    out = (code.strip().lower().replace("_", "-").split("-")[0] for code in codes)
    return tuple(dict.fromkeys(code for code in out if code))


def stt_options(
    language: str | None, languages: Sequence[str], prompt: str | None, decoding: STTDecoding | None
) -> dict[str, Any]:
    """`SpeechToText.transcribe`'s language, prompt and decoding arguments, the newer ones only when
    set (so a backend written before them still serves a session that does not use them)."""
    codes = language_codes(languages)
    options: dict[str, Any] = {"language": None, "languages": codes} if codes else {"language": language}
    if prompt and prompt.strip():
        options["prompt"] = prompt
    if decoding is not None:
        options["decoding"] = decoding
    return options


class Recognizer:
    def __init__(self, models: Models) -> None:
        self._models = models
        self._settings = models.settings

    async def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        keyterms: Sequence[str],
        purpose: TranscribePurpose,
        languages: Sequence[str] = (),
        prompt: str | None = None,
        mode: str = "balanced",
    ) -> str:
        """`partial`: the live line, by the partial model; `check`: a quick read of voice over the agent
        by the final model; `final`: the turn's transcript, decoded as `mode` asks (module docstring).

        `languages`: the session's codes (one: recognise in it; several: detect among them); empty:
        `language` (None: detect). `prompt`: context for the recogniser (not for `check`).

        A partial on a local model is skipped (""; the next one is due 0.6 s of voice later) while the
        server's local decodes already fill the cores (`stt_threads` each): on 2 cores, four callers'
        live lines kept every turn's final decode and end-of-turn check waiting behind them."""
        models = self._models
        if purpose == "partial":
            model = models.partial_stt_for(language, language_codes(languages))
        else:
            model = models.stt(self._settings.stt_model)
        local = getattr(model, "local", False)
        if purpose == "partial" and local and models.local_decodes >= self._decodes_that_fit():
            return ""  # the live line waits for the next interval: every session's turn waits for these cores
        how = decode_for(purpose, mode)
        options = stt_options(language, languages, None if purpose == "check" else prompt, how.decoding)
        text = await self._decode(model, audio, purpose, keyterms=list(keyterms), quick=how.quick, **options)
        hints = [] if how.quick else self.pack_terms_maybe_in(text, keyterms)
        if hints and model.capabilities.keyterms:  # a pack term misheard, maybe: decode again, listing it
            log.debug("pack terms %s may be in %r: decoding again", hints, text)
            hinted = [*keyterms, *(h for h in hints if h not in keyterms)]
            text = await self._decode(model, audio, purpose, keyterms=hinted, **options)
        return text

    async def _decode(self, model: SpeechToText, audio: Audio, purpose: TranscribePurpose, **kwargs: Any) -> str:
        """One blocking decode in a worker thread, counted in the server's local decodes while it runs.

        A local final or check waits for a free slot of the server's decode gate (finals first); a
        partial does not (it is skipped when the cores are full, and is short on its small model)."""
        local = getattr(model, "local", False)
        gate = self._models.decode_gate if local and purpose != "partial" else None
        async with gate.slot(DECODE_PRIORITY[purpose]) if gate is not None else contextlib.nullcontext():
            self._models.local_decodes += local
            try:
                return await asyncio.to_thread(functools.partial(model.transcribe, audio, **kwargs))
            finally:
                self._models.local_decodes -= local

    def _decodes_that_fit(self) -> int:
        return decodes_that_fit(self._settings.stt_threads)

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
