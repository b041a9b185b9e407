"""The models shared by every session: built from the settings on first use, cached by name.

Models are loaded once per process and shared; each backend guards itself with a lock, and every
blocking call runs in a worker thread (`backends/recognition.py`, `VoiceCatalog.synthesize`) so the event
loop keeps serving sockets. With `preload` off, each model loads on first use (useful for tests that
need only part of the stack). Nothing here knows about sessions or sockets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from voxgate.backends.base import (
    Audio,
    LanguageModel,
    SpeechToText,
    TurnCompletionModel,
    VoiceActivityDetector,
)
from voxgate.backends.decode_gate import DecodeGate, decodes_that_fit
from voxgate.backends.voices import VoiceCatalog
from voxgate.config import Settings, input_language

if TYPE_CHECKING:
    from voxgate.text.pack_hints import PackHints

log = logging.getLogger("voxgate.models")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Models:
    """The lazy registry of every backend a server runs, by name."""

    def __init__(
        self,
        settings: Settings,
        *,
        stt: dict[str, SpeechToText] | None = None,
        llm: LanguageModel | None = None,
        voices: VoiceCatalog | None = None,
    ) -> None:
        """`stt`, `llm`, `voices`: backends built elsewhere (remote stand-ins, test fakes) used instead of
        building the configured ones."""
        self.settings = settings
        self._stt: dict[str, SpeechToText] = dict(stt or {})
        self._prepare_lock = threading.Lock()
        self._llms: dict[str, LanguageModel] = {}  # models sessions picked from llm_allowed_models
        self._llms_lock = threading.Lock()
        self.loaded = False  # `load` finished: what `/ready` waits for when `preload` is on
        self.local_decodes = 0  # decodes on local recognizers in flight, every session's (recognition.py)
        self.decode_gate = DecodeGate(lambda: decodes_that_fit(settings.stt_threads))
        if llm is not None:
            self.__dict__["llm"] = llm  # what the cached property would have built
        if voices is not None:
            self.__dict__["voices"] = voices

    # ------------------------------------------------------------ models

    @functools.cached_property
    def vad(self) -> VoiceActivityDetector:
        from voxgate.backends.vad.silero import SileroVAD

        return SileroVAD()

    def stt(self, name: str) -> SpeechToText:
        if name not in self._stt:
            s = self.settings
            if s.stt_backend == "openai":
                # Finals and partials both go to the one remote model.
                from voxgate.backends.stt.openai_stt import OpenAITranscriptionSTT

                remote = next(iter(self._stt.values()), None) or OpenAITranscriptionSTT(
                    model=s.stt_remote_model,
                    base_url=s.stt_base_url,
                    api_key=s.stt_api_key.get_secret_value() if s.stt_api_key is not None else None,
                    timeout_s=s.stt_timeout_s,
                )
                self._stt[name] = remote
                return remote
            from voxgate.backends.stt.whisper import WhisperSTT

            self._stt[name] = WhisperSTT(
                name,
                cpu_threads=s.stt_threads,
                workers=s.stt_workers,
                decoding=s.stt_decoding,
                short_window=s.stt_short_window,
            )
        return self._stt[name]

    @functools.cached_property
    def turn_model(self) -> TurnCompletionModel:
        from voxgate.backends.turn.smart_turn import SmartTurnModel

        return SmartTurnModel()

    @functools.cached_property
    def llm(self) -> LanguageModel:
        return self._build_llm(self.settings.llm_model)

    def llm_for(self, model: str | None) -> LanguageModel:
        """The session's LLM: the server's own, or one the operator allows a session to pick."""
        if model is None or model == self.settings.llm_model:
            return self.llm
        self.check_llm_model(model)
        with self._llms_lock:
            if model not in self._llms:
                self._llms[model] = self._build_llm(model)
            return self._llms[model]

    def llm_endpoint(self, base_url: str, model: str, api_key: str | None) -> LanguageModel:
        """An OpenAI-compatible LLM a session brings (`session.llm`), kept for the sessions that share it."""
        from voxgate.backends.llm.openai_backend import OpenAIChatLLM

        s = self.settings
        key = f"endpoint:{base_url}|{model}|{hash(api_key)}"
        with self._llms_lock:
            if key not in self._llms:
                self._llms[key] = OpenAIChatLLM(
                    model=model,
                    base_url=base_url,
                    api_key=api_key or "none",
                    timeout_s=s.llm_timeout_s,
                    max_retries=s.llm_max_retries,
                    temperature=s.llm_temperature,
                    max_tokens=s.llm_max_tokens,
                    context_tokens=s.llm_remote_context_tokens,
                )
            return self._llms[key]

    def loaded_llms(self) -> list[LanguageModel]:
        """The LLMs built so far (none is built by asking): what the metrics read their queues from."""
        built = self.__dict__.get("llm")
        with self._llms_lock:
            picked = list(self._llms.values())
        return [*([built] if built is not None else []), *picked]

    def check_llm_model(self, model: str) -> None:
        """ValueError unless a session may choose `model` (the default, or one of llm_allowed_models)."""
        allowed = [self.settings.llm_model, *self.settings.llm_allowed_models]
        if model not in allowed:
            raise ValueError(f"model {model!r} is not allowed here; allowed: {', '.join(allowed)}")

    def _build_llm(self, model: str) -> LanguageModel:
        s = self.settings

        def embedded(name: str) -> LanguageModel:
            from voxgate.backends.llm.embedded_models import resolve_gguf
            from voxgate.backends.llm.llama_cpp_backend import LlamaCppLLM

            return LlamaCppLLM(
                resolve_gguf(name),
                n_ctx=s.llm_context,
                n_threads=s.llm_threads,
                temperature=s.llm_temperature,
                max_tokens=s.llm_max_tokens,
                history_tokens=s.llm_history_tokens,
                seed=s.llm_seed,
                name=name,
                tool_guards=s.tool_guards,
            )

        if s.llm_backend == "embedded":
            return embedded(model)

        from voxgate.backends.llm.openai_backend import OpenAIChatLLM

        remote = OpenAIChatLLM(
            model=model,
            base_url=s.llm_base_url,
            api_key=s.llm_api_key.get_secret_value() if s.llm_api_key is not None else None,
            extra_headers=s.llm_extra_headers,
            timeout_s=s.llm_timeout_s,
            max_retries=s.llm_max_retries,
            temperature=s.llm_temperature,
            max_tokens=s.llm_max_tokens,
            context_tokens=s.llm_remote_context_tokens,
            seed=s.llm_seed if s.llm_seed >= 0 else None,
        )
        if s.llm_fallback == "none":
            return remote
        from voxgate.backends.llm.fallback import FallbackLLM

        # The model names the remote model here: the fallback is the default embedded one.
        return FallbackLLM(remote, embedded(Settings.model_fields["llm_model"].default))

    @functools.cached_property
    def voices(self) -> VoiceCatalog:
        from voxgate.backends.base import TextToSpeech
        from voxgate.backends.tts.espeak_voice import EspeakTTS
        from voxgate.backends.tts.hibari_voice import HibariTTS
        from voxgate.backends.tts.kokoro_voice import KokoroTTS
        from voxgate.backends.tts.piper_voice import PiperTTS

        s = self.settings
        threads = s.tts_threads
        backends: list[TextToSpeech] = [
            PiperTTS(threads=threads),
            KokoroTTS(threads=threads),
            HibariTTS(threads=1),  # 1 thread is plenty: ~50x real time
            EspeakTTS(),
        ]
        if s.tts_backend == "openai":
            from voxgate.backends.tts.openai_tts import OpenAISpeechTTS

            remote = OpenAISpeechTTS(
                model=s.tts_remote_model,
                voices=s.tts_remote_voices,
                base_url=s.tts_base_url,
                api_key=s.tts_api_key.get_secret_value() if s.tts_api_key is not None else None,
            )
            backends.insert(0, remote)  # first, so a configured remote name wins over a local one
        return VoiceCatalog(backends, default_voice=s.default_voice, fast_first_clause=s.tts_fast_first_clause)

    def partial_stt_for(self, language: str | None, languages: Sequence[str] = ()) -> SpeechToText:
        """The model of the live line: the partial model, unless it is English-only and the session
        asked for any language but English (`languages`, else `language`; an unknown code too): then
        the final model, which is multilingual and can detect. Plain "auto" (`language` None, no
        `languages`) keeps the partial model."""
        name = self.settings.stt_partial_model
        asked = tuple(languages) or (language,)
        if name.endswith(".en") and any(code not in ("en", None) for code in asked):
            name = self.settings.stt_model
        return self.stt(name)

    def prepare(self) -> None:
        """Make sure every model a session needs is loaded (a no-op after preload)."""
        with self._prepare_lock:
            s = self.settings
            _ = self.vad
            self.stt(s.stt_model)
            self.partial_stt_for(self._default_language())
            if s.smart_turn:
                _ = self.turn_model
            _ = self.llm
            _ = self.voices

    def load(self) -> list[str]:
        """Load every default model now, saying what and how long; returns one line per model."""
        s = self.settings
        loaded: list[str] = []

        def step(label: str, load: Any) -> None:
            _say(f"loading {label} ...")
            t0 = time.monotonic()
            load()
            loaded.append(f"{label} ({time.monotonic() - t0:.1f} s)")

        step("VAD: Silero v6", lambda: self.vad)
        step(
            f"STT final: Whisper {s.stt_model}",
            lambda: self.stt(s.stt_model).transcribe(_silence(0.5), language=self._default_language()),
        )
        if s.stt_partial_model != s.stt_model:
            step(
                f"STT partials: Whisper {s.stt_partial_model}",
                lambda: self.stt(s.stt_partial_model).transcribe(_silence(0.5), language=self._default_language()),
            )
        if s.smart_turn:
            step("end of turn: Smart Turn v3.2", lambda: self.turn_model.probability_complete(_silence(1.0)))
        if s.term_packs:
            step("term packs: " + ", ".join(s.term_packs), lambda: self.pack_hints)
        step(f"LLM: {s.llm_model}", self._warm_llm)
        step("TTS voices: " + ", ".join(v.id for v in self.voices.local_voices()), self._warm_voices)
        self.loaded = True
        return loaded

    def _default_language(self) -> str | None:
        return input_language(self.settings.stt_language)

    def _warm_llm(self) -> None:
        warmup = getattr(self.llm, "warmup", None)
        if warmup is not None:
            warmup(self.settings.system_prompt, ())

    def _warm_voices(self) -> None:
        """Load every voice engine now, so the first reply in any voice does not pay for it."""
        for info in self.voices.local_voices():
            resolved = self.voices.resolve(info.id)
            load = getattr(resolved.backend, "load", None)
            if load is not None:
                load()
        default = self.voices.resolve(None)
        default.backend.synthesize("Hello.", voice=default.voice)

    @functools.cached_property
    def pack_hints(self) -> PackHints | None:
        """Second-decode hints from the packs (see text/pack_hints.py); None without packs or when turned off."""
        if not (self.pack_terms and self.settings.term_pack_hints):
            return None
        from voxgate.text.pack_hints import PackHints

        return PackHints(self.pack_terms)

    @functools.cached_property
    def pack_terms(self) -> tuple[str, ...]:
        """Domain terms from the configured packs (loaded once; a bad pack name fails at start-up)."""
        from voxgate.text.packs import load_pack

        return tuple(term for pack in self.settings.term_packs for term in load_pack(pack))


class OffLoopTurnModel:
    """The end-of-turn model, asked (and on first use loaded) in a worker thread."""

    def __init__(self, models: Models) -> None:
        self._models = models

    async def probability_complete(self, audio: Audio) -> float:
        return await asyncio.to_thread(lambda: self._models.turn_model.probability_complete(audio))


def _silence(seconds: float) -> Audio:
    import numpy as np

    return np.zeros(int(seconds * 16_000), dtype=np.float32)
