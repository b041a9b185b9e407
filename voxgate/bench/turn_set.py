"""The turn-taking evaluation set: its definition, and the script that renders it to WAV files.

`voxgate bench make-turn-set` writes `bench/turn_set/` (16 kHz WAVs + manifest.json), which is kept
in the repository so every run measures the same audio (Piper's synthesis is not bit-identical from
run to run). Sources are named per case: real LibriVox recordings from Debian's
pocketsphinx-testdata, the project's voices (Piper joe, Kokoro jf_alpha/jm_kumo) and espeak-ng, and
numerically generated noises. Reports keep real and synthetic cases apart.
"""

from __future__ import annotations

import json
import subprocess
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

RATE = 16_000
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
DEFAULT_DIR = Path("bench/turn_set")


@dataclass
class Case:
    id: str
    kind: str  # complete | pause | thinking | phone | email | id | backchannel | noise | echo | echo_user | interrupt
    source: str  # real | piper | kokoro (jf_alpha) | kokoro-m (jm_kumo) | espeak | generated
    parts: list[str] = field(default_factory=list)  # spoken parts; a pause separates consecutive parts
    pauses: list[float] = field(default_factory=list)  # seconds between parts
    last_words: str = ""  # words the final transcript must contain (the end of the value)
    file: str = ""
    speech_end_s: float = 0.0  # where the last voiced part ends in the file
    speech_start_s: float = 0.0  # where the first voiced part starts
    echo_gain: float = 0.0
    echo_delay_s: float = 0.0


USER_TURNS: list[Case] = [
    *(
        Case(f"real-librivox-{n}", "complete", "real", [f"librivox:{n}"])
        for n in ("0870", "0880", "0890", "0920", "0930")
    ),
    Case("complete-capital", "complete", "piper", ["What is the capital city of France?"], last_words="france"),
    Case(
        "complete-table", "complete", "kokoro", ["Can you book a table for two at seven tonight?"], last_words="tonight"
    ),
    Case("complete-hours", "complete", "espeak", ["What time does the pharmacy close today?"], last_words="today"),
    Case("complete-thanks", "complete", "piper", ["Thanks, that is all I needed."], last_words="needed"),
    Case("complete-order", "complete", "kokoro", ["I would like to check the status of my order."], last_words="order"),
    Case(
        "pause-table",
        "pause",
        "piper",
        ["I'd like to book a table", "for two people tomorrow at seven."],
        [0.9],
        "seven",
    ),
    Case(
        "pause-flight", "pause", "kokoro", ["Can you tell me", "when the next train to Boston leaves?"], [0.8], "boston"
    ),
    Case(
        "pause-because",
        "pause",
        "piper",
        ["I need to cancel my appointment because", "I am travelling next week."],
        [1.0],
        "week",
    ),
    Case("pause-and", "pause", "espeak", ["I want a large pizza and", "a bottle of water."], [0.9], "water"),
    Case("thinking-table", "thinking", "piper", ["I'd like to book", "um", "a table for four."], [0.8, 0.8], "four"),
    Case(
        "thinking-gift",
        "thinking",
        "kokoro",
        ["I am looking for a gift for my", "uh", "my sister."],
        [0.8, 0.7],
        "sister",
    ),
    Case(
        "thinking-so",
        "thinking",
        "piper",
        ["So", "what I really want to know is whether you deliver."],
        [0.9],
        "deliver",
    ),
    Case(
        "thinking-hmm", "thinking", "espeak", ["Hmm", "let me think, can you call me back tomorrow?"], [1.0], "tomorrow"
    ),
    Case(
        "phone-us",
        "phone",
        "piper",
        ["My phone number is four one five,", "five five five,", "zero one three four."],
        [0.8, 0.8],
        "four",
    ),
    Case("phone-digits", "phone", "kokoro", ["You can call me at 212", "867", "5309."], [0.9, 0.9], "5309"),
    Case(
        "phone-uk",
        "phone",
        "piper",
        ["My number is oh seven seven", "double oh nine", "one two three four five six."],
        [0.8, 0.8],
        "six",
    ),
    Case("phone-espeak", "phone", "espeak", ["My cell number is 617", "555 0199."], [1.0], "0199"),
    Case("email-smith", "email", "piper", ["My email is john dot smith at", "example dot com."], [1.0], "com"),
    Case("email-maria", "email", "kokoro", ["The email address is maria at", "clinic dot org."], [0.9], "org"),
    Case(
        "email-espeak",
        "email",
        "espeak",
        ["Send it to my e-mail, alex underscore lee at", "gmail dot com."],
        [1.0],
        "com",
    ),
    Case("id-rx", "id", "piper", ["My order ID is R X dash seven seven", "zero four one three two."], [0.9], "two"),
    Case("id-policy", "id", "kokoro", ["The policy number is B", "four four nine", "seven one."], [0.8, 0.8], "one"),
    Case("id-zip", "id", "piper", ["My zip code is nine four", "one zero three."], [0.9], "three"),
]

AGENT_SPEAKING: list[Case] = [
    *(
        Case(f"backchannel-{w.split()[0].lower().strip(',.-')}-{v}", "backchannel", v, [w])
        for w in ("Uh-huh.", "Mm-hmm.", "Yeah.", "Right.", "Okay.")
        for v in ("piper", "kokoro", "kokoro-m", "espeak")
    ),
    Case("noise-cough", "noise", "generated", ["cough"]),
    Case("noise-click", "noise", "generated", ["click"]),
    Case("noise-door", "noise", "generated", ["door"]),
    Case("noise-keyboard", "noise", "generated", ["keyboard"]),
    Case("noise-breath", "noise", "generated", ["breath"]),
    Case("echo-near", "echo", "generated", [], echo_gain=0.3, echo_delay_s=0.15),
    Case("echo-loud", "echo", "generated", [], echo_gain=0.6, echo_delay_s=0.25),
    Case("echo-far", "echo", "generated", [], echo_gain=0.2, echo_delay_s=0.4),
    Case("echo-user-wait", "echo_user", "piper", ["Wait, stop. I have a question."], echo_gain=0.4, echo_delay_s=0.2),
    Case(
        "echo-user-kokoro",
        "echo_user",
        "kokoro",
        ["Hold on, that is not what I asked."],
        echo_gain=0.4,
        echo_delay_s=0.3,
    ),
    Case("interrupt-wait", "interrupt", "piper", ["Wait."]),
    Case("interrupt-stop", "interrupt", "kokoro", ["No, stop."]),
    Case("interrupt-question", "interrupt", "piper", ["Hold on, I have a question."]),
    Case("interrupt-repeat", "interrupt", "espeak", ["Actually, can you repeat that?"]),
    Case("interrupt-real", "interrupt", "real", ["librivox:0880"]),
]


def _librivox(name: str) -> np.ndarray:
    with wave.open(str(LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{name}.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def _recorded_silence(audio: np.ndarray) -> tuple[float, float]:
    """Seconds of room noise before and after the speech in a real recording.

    The LibriVox clips carry ~0.25-0.35 s of it at each end, above any amplitude threshold, so they
    are not trimmed (the WAVs stay the recordings); the case's speech bounds skip it instead. Speech
    is where the 10 ms RMS exceeds four times the clip's noise floor (its 10th percentile).
    """
    frame = RATE // 100
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    speech = np.flatnonzero(rms > 4 * np.percentile(rms, 10))
    if not len(speech):
        return 0.0, 0.0
    return speech[0] * frame / RATE, (n - 1 - speech[-1]) * frame / RATE


def _trim(audio: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def _noise(name: str, rng: np.random.Generator) -> np.ndarray:
    def burst(seconds: float, low_pass: int) -> np.ndarray:
        n = int(seconds * RATE)
        x = rng.standard_normal(n).astype(np.float32)
        x = np.convolve(x, np.ones(low_pass) / low_pass, mode="same").astype(np.float32)
        return x * np.hanning(n).astype(np.float32)

    if name == "cough":
        return 0.5 * burst(0.18, 4) / 0.3
    if name == "click":
        x = np.zeros(int(0.05 * RATE), np.float32)
        x[:40] = np.linspace(0.8, 0, 40)
        return x
    if name == "door":
        t = np.arange(int(0.3 * RATE)) / RATE
        return (0.7 * np.sin(2 * np.pi * 60 * t) * np.exp(-t * 18)).astype(np.float32)
    if name == "keyboard":
        out = np.zeros(int(1.0 * RATE), np.float32)
        for k in range(8):
            start = int((0.05 + k * 0.12) * RATE)
            out[start : start + 30] = rng.uniform(0.2, 0.5) * np.linspace(1, 0, 30)
        return out
    if name == "breath":
        return 0.08 * burst(0.5, 12) / 0.2
    raise ValueError(name)


def _speak(text: str, source: str, tts: dict[str, object]) -> np.ndarray:
    from voxgate.audio.resample import resample

    if source == "espeak":
        raw = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
        import io

        with wave.open(io.BytesIO(raw)) as w:
            rate = w.getframerate()
            audio = (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768).astype(np.float32)
        return resample(audio, rate, RATE)
    backend, voice = cast("tuple[Any, str]", tts[source])
    audio = backend.synthesize(text, voice=voice)
    return resample(audio, backend.sample_rate, RATE)


def _part_audio(part: str, case: Case, tts: dict[str, object], rng: np.random.Generator) -> np.ndarray:
    if part.startswith("librivox:"):
        return _librivox(part.split(":", 1)[1])
    if case.source == "generated":
        return _noise(part, rng)
    return _trim(_speak(part, case.source, tts))


def render(directory: Path = DEFAULT_DIR, *, missing_only: bool = False) -> list[Case]:
    """Synthesize every case into `directory` and write manifest.json.

    `missing_only`: keep the cases already rendered (their audio and timings) and render only those
    the definition added since, so a larger set still measures the old cases on the same audio.
    """
    from voxgate.backends.tts.kokoro_voice import KokoroTTS
    from voxgate.backends.tts.piper_voice import PiperTTS

    kokoro = KokoroTTS()
    tts: dict[str, object] = {
        "piper": (PiperTTS(), "joe"),
        "kokoro": (kokoro, "jf_alpha"),
        "kokoro-m": (kokoro, "jm_kumo"),
    }
    rng = np.random.default_rng(2026)
    directory.mkdir(parents=True, exist_ok=True)
    rendered = {c.id: c for c in load(directory)} if missing_only and (directory / "manifest.json").exists() else {}
    cases = [rendered.get(c.id, c) for c in (*USER_TURNS, *AGENT_SPEAKING)]
    for case in cases:
        # real cases are rendered again: their audio is the same (no synthesis), their bounds may not be
        if case.id in rendered and (directory / case.file).exists() and case.source != "real":
            continue
        lead = np.zeros(int(0.3 * RATE), np.float32)
        pieces = [lead]
        for i, part in enumerate(case.parts):
            if i:
                pieces.append(np.zeros(int(case.pauses[i - 1] * RATE), np.float32))
            pieces.append(_part_audio(part, case, tts, rng))
        case.speech_start_s = len(lead) / RATE
        case.speech_end_s = sum(len(p) for p in pieces) / RATE
        if case.parts and case.parts[0].startswith("librivox:"):
            case.speech_start_s += _recorded_silence(pieces[1])[0]
        if case.parts and case.parts[-1].startswith("librivox:"):
            case.speech_end_s -= _recorded_silence(pieces[-1])[1]
            case.speech_start_s, case.speech_end_s = round(case.speech_start_s, 3), round(case.speech_end_s, 3)
        audio = np.concatenate(pieces)
        case.file = f"{case.id}.wav"
        with wave.open(str(directory / case.file), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
        print(f"  {case.file}: {len(audio) / RATE:.2f} s ({case.kind}, {case.source})", flush=True)
    (directory / "manifest.json").write_text(json.dumps([asdict(c) for c in cases], indent=1) + "\n")
    return cases


def load(directory: Path = DEFAULT_DIR) -> list[Case]:
    return [Case(**c) for c in json.loads((directory / "manifest.json").read_text())]
