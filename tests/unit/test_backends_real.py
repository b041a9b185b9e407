"""Each embedded backend on real audio: pocketsphinx-testdata recordings and the project's own voices."""

from __future__ import annotations

import re
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from voxgate.audio.resample import resample

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
pytestmark = pytest.mark.slow


def recording(name: str) -> np.ndarray:
    with wave.open(str(LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{name}.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower().replace("-", " "))


def wer(ref: str, hyp: str) -> float:
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[len(h)] / len(r)


@pytest.fixture(scope="module")
def vad():
    from voxgate.backends.vad.silero import SileroVAD

    return SileroVAD()


def test_vad_separates_speech_from_silence_and_noise(vad) -> None:
    speech = recording("0880")
    stream = vad.new_stream()
    p_speech = [stream.probability(speech[i : i + 512]) for i in range(0, len(speech) - 512, 512)]
    assert np.mean(np.array(p_speech) > 0.5) > 0.5
    rng = np.random.default_rng(1)
    for noise in (np.zeros(16_000, np.float32), (rng.standard_normal(16_000) * 0.02).astype(np.float32)):
        stream.reset()
        assert max(stream.probability(noise[i : i + 512]) for i in range(0, 16_000 - 512, 512)) < 0.5


def test_vad_scores_several_frames_in_one_call_as_it_does_one_by_one(vad) -> None:
    """SileroVadStream.probabilities: one ONNX call for consecutive frames, the same numbers exactly."""
    speech = recording("0880")[: 512 * 60]
    frames = [speech[i : i + 512] for i in range(0, len(speech), 512)]
    one, several = vad.new_stream(), vad.new_stream()
    by_one = [one.probability(f) for f in frames]
    by_several: list[float] = []
    i = 0
    for n in (1, 2, 3, 1, 5, 2, 10, 36):
        by_several += several.probabilities(frames[i : i + n])
        i += n
    assert i == len(frames) and by_several == by_one
    assert max(by_one) > 0.5 > min(by_one)  # speech and pauses both in it: the state mattered


@pytest.mark.parametrize("short_window", [True, False])
@pytest.mark.parametrize(("model", "max_wer"), [("tiny.en", 0.25), ("base", 0.15)])
def test_whisper_transcribes_real_speech(model: str, max_wer: float, short_window: bool) -> None:
    from voxgate.backends.stt.whisper import WhisperSTT

    stt = WhisperSTT(model, short_window=short_window)
    ref = "unless to be rather cold hearted and rather selfish is to be ill disposed"
    assert wer(ref, stt.transcribe(recording("0890"), language="en")) <= max_wer
    assert stt.transcribe(np.zeros(16_000, np.float32), language="en") == ""


@pytest.mark.parametrize("short_window", [True, False])
def test_whisper_transcribes_from_several_threads_at_once(short_window: bool) -> None:
    """Without its lock, one model decodes for several sessions at a time (CTranslate2 workers): each gets
    its own words, as a decode alone gives them."""
    from concurrent.futures import ThreadPoolExecutor

    from voxgate.backends.stt.whisper import WhisperSTT

    stt = WhisperSTT("tiny.en", workers=2, short_window=short_window)
    clips = [recording(name) for name in ("0880", "0890", "0880", "0890")]
    alone = [stt.transcribe(clip, language="en") for clip in clips[:2]]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda clip: stt.transcribe(clip, language="en"), clips))
    assert together == alone * 2 and all(alone)


def test_whisper_short_window_reads_every_librivox_sentence_and_long_audio() -> None:
    """The window sized to the turn hears what the full 30 s window hears; past 27 s the full path takes over."""
    from voxgate.backends.stt.whisper import WhisperSTT

    short, full = WhisperSTT("base"), WhisperSTT("base", short_window=False)
    refs = {
        "0880": "he was not an ill disposed young man",
        "0920": "had he married a more amiable woman he might have been made still more respectable than he was",
        "0930": "he might even have been made amiable himself",
    }
    for name, ref in refs.items():
        audio = recording(name)
        assert wer(ref, short.transcribe(audio, language="en")) <= wer(ref, full.transcribe(audio, language="en")) + 0.1
    gap = np.zeros(16_000 * 2, np.float32)
    long = np.concatenate([recording(n) for n in ("0870", "0880", "0890", "0920", "0930")] * 2 + [gap] * 2)
    assert len(long) / 16_000 > 27
    heard = short.transcribe(long, language="en")
    assert "amiable himself" in heard.lower() and "dashwood" in heard.lower()


def test_whisper_accurate_decoding_reads_as_well_and_quick_reads_are_greedy() -> None:
    """Beam 5 with timestamp tokens (faster-whisper's default) on the short window and on long audio;
    a quick read is the same greedy read whatever the configured search."""
    from voxgate.backends.stt.whisper import WhisperSTT

    fast, accurate = WhisperSTT("base"), WhisperSTT("base", decoding="accurate")
    ref = "he was not an ill disposed young man"
    audio = recording("0880")
    assert wer(ref, accurate.transcribe(audio, language="en")) <= wer(ref, fast.transcribe(audio, language="en"))
    assert accurate.transcribe(audio, language="en", quick=True) == fast.transcribe(audio, language="en", quick=True)
    long = np.concatenate([recording(n) for n in ("0870", "0880", "0890", "0920", "0930")] * 2)
    assert len(long) / 16_000 > 27
    assert "amiable himself" in accurate.transcribe(long, language="en").lower()


def test_assembled_whisper_base_is_verified_once() -> None:
    from voxgate.backends.stt.whisper import whisper_base_dir

    whisper_base_dir()
    start = time.monotonic()
    path = whisper_base_dir()
    assert time.monotonic() - start < 0.5 and (path / "model.bin").is_file()


def test_smart_turn_prefers_a_finished_sentence() -> None:
    from voxgate.backends.turn.smart_turn import SmartTurnModel

    model = SmartTurnModel()
    full = np.concatenate([recording("0880"), np.zeros(9600, np.float32)])
    cut = recording("0880")[: int(16_000 * 1.2)]  # "he was not an..." stopped mid-sentence
    assert model.probability_complete(full) > model.probability_complete(cut)


@pytest.mark.parametrize("voice", ["joe", "ivy", "pierre"])
def test_voices_speak_intelligibly(voice: str) -> None:
    from voxgate.backends.stt.whisper import WhisperSTT
    from voxgate.backends.tts.espeak_voice import EspeakTTS
    from voxgate.backends.tts.kokoro_voice import KokoroTTS
    from voxgate.backends.tts.piper_voice import PiperTTS
    from voxgate.backends.voices import VoiceCatalog

    catalog = VoiceCatalog([PiperTTS(), KokoroTTS(), EspeakTTS()])
    resolved = catalog.resolve(voice)
    text = (
        "Please book a table for four people tomorrow evening."
        if resolved.language == "en"
        else "Bonjour, comment allez-vous?"
    )
    audio = resolved.backend.synthesize(text, voice=resolved.voice, language=resolved.language)
    assert audio.dtype == np.float32 and 0.8 < len(audio) / resolved.sample_rate < 6
    assert np.abs(audio).max() <= 1.0 and np.sqrt(np.mean(audio**2)) > 0.02
    if resolved.language == "en":
        heard = WhisperSTT("base").transcribe(resample(audio, resolved.sample_rate, 16_000), language="en")
        # Piper samples noise, so every take differs, and Whisper base now and then swaps a short function
        # word. Intelligible means every content word comes through and little else slips. (Joe's "weather
        # in London" was heard as "weather and London" in 4 takes of 15: a sentence without that trap.)
        content = {"book", "table", "people", "tomorrow", "evening"}
        assert content <= set(re.findall(r"[a-z]+", heard.lower())) and wer(text, heard) <= 0.3, heard


def test_unknown_voice_is_refused() -> None:
    from voxgate.backends.tts.espeak_voice import EspeakTTS
    from voxgate.backends.voices import UnknownVoiceError, VoiceCatalog

    with pytest.raises(UnknownVoiceError):
        VoiceCatalog([EspeakTTS()], default_voice="espeak-en").resolve("nobody")


@pytest.mark.parametrize(
    ("seconds", "window_s"), [(0.5, 20), (3.3, 20), (17.0, 20), (17.01, 21), (20.0, 23), (26.5, 30), (40.0, 30)]
)
def test_whisper_window_is_the_turn_plus_a_margin(seconds: float, window_s: int) -> None:
    from voxgate.backends.stt.whisper import QUICK, window_frames

    assert window_frames(round(seconds * 100)) == window_s * 100
    quick_s = min(30, max(10, int(np.ceil(seconds)) + 3))  # quick reads: the same margin, a 10 s floor
    assert window_frames(round(seconds * 100), QUICK.window_min_s) == quick_s * 100
