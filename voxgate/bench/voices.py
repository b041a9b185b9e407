"""`voxgate bench voices`: every local voice's first-audio latency, RTF and intelligibility, offline.

- first audio: wall time from a short clause to its audio (every local engine synthesizes a clause
  at once, so this is the time to the first sample), p50 and p90 over `--reps` runs, once idle and once
  while the embedded LLM generates in another process (the contention a reply's first clause meets);
- RTF: synthesis time over audio duration for the intelligibility sentences;
- intelligibility: a few sentences per language, each with what a reply reads back (times, amounts,
  emails, IDs, phone numbers), go through the same text normalisation as a live reply and are spoken;
  the takes are joined with short pauses into one clip (under Whisper's 30 s window) and read back by
  Whisper base in one decode with the language forced, since a decode costs the same for 3 s or 25 s.
  WER for English, CER for es/fr/it/pt (and hi, ja, de: shown, no target). Reference and transcript
  both go through the speech normaliser (digits to words) and lose case and punctuation, so "7:30" and
  "seven thirty" count as the same; in es/fr/it/pt accents are dropped and small number words made
  digits ("tres", "3"), since Whisper writes them either way; Hindi is prompted in Devanagari
  (unprompted, Whisper base often writes Hindi in Urdu script, which scored as ~100% wrong) and nukta
  dots are ignored.

What Whisper heard is kept in the JSON rows, so `--rescore rows.json` recomputes the figures from it
without speaking anything again. Nothing here downloads: the models are the installed ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voxgate.backends.base import TextToSpeech, VoiceInfo

SHORT = {
    "en": "Sure, I can help with that.",
    "es": "Claro, puedo ayudarte con eso.",
    "fr": "Bien sûr, je peux vous aider.",
    "it": "Certo, posso aiutarti con questo.",
    "pt": "Claro, posso ajudar com isso.",
    "hi": "ज़रूर, मैं इसमें मदद कर सकता हूँ।",
    "ja": "はい、お手伝いします。",
    "de": "Gerne, ich kann Ihnen dabei helfen.",
}

SENTENCES = {
    "en": [
        "Your appointment is on Tuesday at 3:30 PM.",
        "The total comes to $42.50, including tax.",
        "Please email the form to maria.lopez@example.com today.",
        "Your booking reference is AB 1234, for 2 adults.",
        "You can call us back at 415-555-0134.",
    ],
    "es": [
        "Su cita es el martes a las 10:30.",
        "El total es de 25 euros con 40 céntimos.",
        "Envíe el formulario a ana@example.com hoy.",
        "Tenemos 3 habitaciones libres para el 15 de mayo.",
    ],
    "fr": [
        "Votre rendez-vous est mardi à 10:30.",
        "Le total est de 25 euros.",
        "Envoyez le formulaire à paul@example.com aujourd'hui.",
        "Nous avons 3 chambres libres pour le 15 mai.",
    ],
    "it": [
        "Il suo appuntamento è martedì alle 10:30.",
        "Il totale è di 25 euro.",
        "Invii il modulo a luca@example.com oggi.",
        "Abbiamo 3 camere libere per il 15 maggio.",
    ],
    "pt": [
        "Sua consulta é na terça-feira às 10:30.",
        "O total é de 25 reais.",
        "Envie o formulário para ana@example.com hoje.",
        "Temos 3 quartos livres para o dia 15 de maio.",
    ],
    "hi": ["आपकी बैठक मंगलवार को है।", "कृपया फ़ॉर्म आज भेजें।"],
    "ja": ["ご予約は火曜日です。", "ありがとうございます。"],
    "de": ["Ihr Termin ist am Dienstag um 10:30 Uhr.", "Die Summe beträgt 25 Euro."],
}

#: What counts: English by words, Romance languages by characters (the targets of issue 17).
CER_LANGUAGES = {"es", "fr", "it", "pt", "hi", "ja", "de"}


@dataclass
class Row:
    voice: str
    engine: str
    language: str
    gender: str
    first_audio_p50_s: float
    first_audio_p90_s: float
    contended_p50_s: float | None
    contended_p90_s: float | None
    rtf: float | None
    metric: str
    error_rate: float | None
    heard: str = ""  # what Whisper read back, all sentences in one decode


def _primary(tag: str) -> str:
    return tag.lower().replace("_", "-").split("-")[0]


def _backends(threads: int) -> list[TextToSpeech]:
    from voxgate.backends.tts.espeak_voice import EspeakTTS
    from voxgate.backends.tts.hibari_voice import HibariTTS
    from voxgate.backends.tts.kokoro_voice import KokoroTTS
    from voxgate.backends.tts.piper_voice import PiperTTS

    return [
        PiperTTS(threads=threads),
        HibariTTS(threads=1),
        KokoroTTS(threads=threads),
        EspeakTTS(),
    ]


def _speaks(info: VoiceInfo) -> str:
    lang = _primary(info.language)
    return lang if lang in SHORT else info.languages[0]


def _tag(info: VoiceInfo) -> str:
    """The language argument the catalog would pass for this voice speaking its own language."""
    lang = _speaks(info)
    return info.language if _primary(info.language) == lang else lang


def _time(backend: TextToSpeech, text: str, voice: str, language: str) -> tuple[float, np.ndarray]:
    from voxgate.backends.tts.text import speakable

    start = time.perf_counter()
    audio = backend.synthesize(speakable(text, language=language), voice=voice, language=language)
    return time.perf_counter() - start, audio


def _latencies(backend: TextToSpeech, info: VoiceInfo, reps: int) -> list[float]:
    text, tag = SHORT[_speaks(info)], _tag(info)
    _time(backend, text, info.id, tag)  # warm: the first call loads the model
    return [_time(backend, text, info.id, tag)[0] for _ in range(reps)]


def _p(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------- contention

_LLM_SCRIPT = """
import sys
from llama_cpp import Llama
from voxgate.backends.llm.embedded_models import resolve_gguf
llm = Llama(model_path=str(resolve_gguf(sys.argv[1])), n_ctx=1024, n_threads=int(sys.argv[2]), verbose=False)
print("generating", flush=True)
while True:
    for _ in llm.create_completion("Write a long story about a lighthouse keeper.", max_tokens=400, stream=True):
        pass
"""


class Contention:
    """The embedded LLM generating without pause in another process, as while a reply is written."""

    def __init__(self, model: str, threads: int) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _LLM_SCRIPT, model, str(threads)], stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if "generating" not in line:
            self.close()
            raise RuntimeError("the LLM process did not start")
        time.sleep(2.0)  # into steady generation

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


# ---------------------------------------------------------------- intelligibility


#: Said to Whisper before a Hindi clip so that it writes Devanagari (it is not scored).
_PROMPT = {"hi": "नमस्ते, आपका स्वागत है।"}
_GAP_S = 0.6  # silence between the takes of one clip
_NUKTA = "\u093c"
#: Number words Whisper writes for small numbers ("tres", "trois") and the digits it writes for others:
#: both forms become digits, so neither counts against the voice.
_NUMBER_WORDS = {
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince",
    "fr": "zero un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze",
    "it": "zero uno due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici quindici",
    "pt": "zero um dois tres quatro cinco seis sete oito nove dez onze doze treze catorze quinze",
}
_TENS = {"es": "veinte treinta", "fr": "vingt trente", "it": "venti trenta", "pt": "vinte trinta"}
_ROMANCE = set(_NUMBER_WORDS)


def _digits(words: str, language: str) -> str:
    table = {w: str(i) for i, w in enumerate(_NUMBER_WORDS[language].split())}
    table |= {w: str(20 + 10 * i) for i, w in enumerate(_TENS[language].split())}
    table |= {"una": "1", "uma": "1", "duas": "2", "une": "1"}
    return " ".join(table.get(w, w) for w in words.split())


def _plain(text: str, language: str) -> str:
    """Words as a voice says them: digits, times, amounts and addresses written out, no case or punctuation."""
    from voxgate.backends.tts.text import speakable

    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"(\d)([a-zA-Z])", r"\1 \2", text)  # Whisper's "30pm"
    text = re.sub(r"\b(\d{3})[-. ]?(\d{3})[-. ]?(\d{4})\b", r"\1-\2-\3", text)  # "415-5550134" is a phone too
    text = re.sub(r"\b([AaPp])\.\s?[Mm]\.", r"\1M", text)  # "p.m." as "PM"
    if language == "en":
        text = re.sub(r"\b(\d{1,2})\.(\d{2})(?=\s?[AaPp]\.?[Mm]\b)", r"\1:\2", text)  # Whisper's "3.30 PM"
        text = re.sub(r"(?<=\w) at (?=[\w-]+\.(?:com|org|net)\b)", "@", text)  # "maria.lopez at example.com"
    if language == "pt":
        text = re.sub(r"R\$\s?(\d+)", r"\1 reais", text)  # Whisper's "R$ 25"
    spoken = speakable(text, language=language).lower()
    if language == "en":
        spoken = re.sub(r"(?<=[a-z])\.(?=[a-z])", " dot ", spoken)  # a domain left as written
    spoken = re.sub(r"\b([ap])\s?m\b", r"\1m", spoken)
    spoken = spoken.replace("-", " ")
    if language == "hi":
        spoken = unicodedata.normalize("NFC", unicodedata.normalize("NFD", spoken).replace(_NUKTA, ""))
    spoken = "".join(
        c if (c.isalnum() or c.isspace() or c == "'" or unicodedata.category(c).startswith("M")) else " "
        for c in spoken
    )
    spoken = re.sub(r"\s+", " ", spoken).strip()
    if language in _ROMANCE:  # accents are spelling (Whisper drops some), not what was heard
        bare = "".join(c for c in unicodedata.normalize("NFD", spoken) if not unicodedata.combining(c))
        spoken = _digits(bare, language)
    return spoken


class Listener:
    """Whisper base, loaded once for every voice of the run."""

    def __init__(self) -> None:
        from faster_whisper import WhisperModel

        from voxgate.backends.stt.whisper import whisper_base_dir

        self._model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=2)

    def hear(self, audio: np.ndarray, rate: int, language: str) -> str:
        import soxr

        pcm = soxr.resample(audio.astype(np.float32), rate, 16_000) if rate != 16_000 else audio
        segments, _ = self._model.transcribe(
            pcm,
            language=language,
            beam_size=1,
            initial_prompt=_PROMPT.get(language),
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments)


def error_rate(references: Sequence[str], heard: str | Sequence[str], language: str) -> tuple[str, float]:
    """WER (English) or CER (the others) of what was heard against the sentences, all taken as one text."""
    import jiwer

    lang = _primary(language)
    ref = _plain(" ".join(references), lang)
    hyp = _plain(heard if isinstance(heard, str) else " ".join(heard), lang)
    if lang in CER_LANGUAGES:
        return "CER", float(jiwer.cer(ref, hyp))
    return "WER", float(jiwer.wer(ref, hyp))


def _intelligibility(
    backend: TextToSpeech, info: VoiceInfo, listener: Listener | None
) -> tuple[float | None, str, float | None, str]:
    """(RTF, metric, error rate, what was heard): every sentence spoken, then one decode of them all."""
    lang = _speaks(info)
    sentences = SENTENCES[lang]
    tag = _tag(info)
    spent, takes = 0.0, []
    gap = np.zeros(int(_GAP_S * backend.sample_rate), dtype=np.float32)
    for sentence in sentences:
        took, audio = _time(backend, sentence, info.id, tag)
        spent += took
        takes += [np.asarray(audio, dtype=np.float32), gap]
    clip = np.concatenate(takes)
    seconds = sum(t.size for t in takes[::2]) / backend.sample_rate
    rtf = spent / seconds if seconds else None
    if listener is None:
        return rtf, "", None, ""
    heard = listener.hear(clip, backend.sample_rate, lang)
    metric, rate = error_rate(sentences, heard, lang)
    return rtf, metric, rate, heard


def rescore(rows: Sequence[Row]) -> list[Row]:
    """The figures again from what was heard (after a change to the scoring), nothing spoken again."""
    for row in rows:
        if row.heard or row.metric:
            lang = _primary(row.language)
            row.metric, rate = error_rate(SENTENCES[lang], row.heard, lang)
            row.error_rate = round(rate, 3)
    return list(rows)


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> list[Row]:
    backends = _backends(args.threads)
    wanted = {v.strip() for v in args.voices.split(",")} if args.voices else None
    voices = [(b, v) for b in backends for v in b.voices() if wanted is None or v.id in wanted]
    voices = [(b, v) for b, v in voices if _speaks(v) in SHORT]
    rows: dict[str, Row] = {}
    for backend, info in voices:
        lat = _latencies(backend, info, args.reps)
        rows[info.id] = Row(
            info.id,
            info.engine,
            _tag(info),
            info.gender,
            round(_p(lat, 0.5), 3),
            round(_p(lat, 0.9), 3),
            None,
            None,
            None,
            "",
            None,
        )
        print(f"  {info.id}: idle p50 {rows[info.id].first_audio_p50_s:.3f} s", file=sys.stderr, flush=True)
    if not args.no_contention:
        llm = Contention(args.llm_model, args.llm_threads)
        try:
            for backend, info in voices:
                lat = _latencies(backend, info, args.reps)
                rows[info.id].contended_p50_s = round(_p(lat, 0.5), 3)
                rows[info.id].contended_p90_s = round(_p(lat, 0.9), 3)
                print(f"  {info.id}: contended p50 {_p(lat, 0.5):.3f} s", file=sys.stderr, flush=True)
        finally:
            llm.close()
    listener = None if args.no_intelligibility else Listener()
    for backend, info in voices:
        rtf, metric, rate, heard = _intelligibility(backend, info, listener)
        row = rows[info.id]
        row.rtf = round(rtf, 3) if rtf is not None else None
        row.metric, row.error_rate = metric, (round(rate, 3) if rate is not None else None)
        row.heard = heard
        _save(rows.values(), args.json)  # a long run killed half-way keeps what it measured
        print(f"  {info.id}: RTF {row.rtf} {metric} {row.error_rate}", file=sys.stderr, flush=True)
    return list(rows.values())


def _save(rows: Iterable[Row], path: Path | None) -> None:
    if path is not None:
        path.write_text(json.dumps([asdict(r) for r in rows], indent=1, ensure_ascii=False) + "\n")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| voice | engine | language | gender | first audio p50 / p90 (s) | while the LLM generates p50 / p90 (s) "
        "| RTF | WER / CER |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        heard = f"{r.metric} {_fmt(r.error_rate)}" if r.metric else "-"
        lines.append(
            f"| `{r.voice}` | {r.engine} | {r.language} | {r.gender} | {_fmt(r.first_audio_p50_s)} / "
            f"{_fmt(r.first_audio_p90_s)} | {_fmt(r.contended_p50_s)} / {_fmt(r.contended_p90_s)} | "
            f"{_fmt(r.rtf)} | {heard} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voices", default="", help="comma-separated voice IDs (default: every local voice)")
    parser.add_argument("--reps", type=int, default=5, help="timed runs of the short clause per voice and state")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("VOXGATE_TTS_THREADS", "2")))
    parser.add_argument("--llm-model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--llm-threads", type=int, default=2)
    parser.add_argument("--no-contention", action="store_true", help="skip the runs while the LLM generates")
    parser.add_argument("--no-intelligibility", action="store_true", help="skip Whisper (RTF is still measured)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument(
        "--rescore", type=Path, default=None, help="recompute WER/CER from a previous run's JSON (nothing is spoken)"
    )


def main(args: argparse.Namespace) -> int:
    if args.rescore:
        rows = rescore([Row(**r) for r in json.loads(args.rescore.read_text())])
    else:
        rows = run(args)
    print(table(rows))
    _save(rows, args.json)
    return 0
