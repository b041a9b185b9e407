"""`voxgate talk`: a terminal agent on the SDK — microphone in, speaker out — or a whole turn from files.

With a sound card: the mic streams at 24 kHz, the reply plays as it arrives, the live partial
transcript stays on one line, final transcripts of both sides are printed, and a barge-in flushes
what the speaker had queued. Without one (`--input question.wav --output reply.wav`), the question
is streamed in real time followed by silence, the whole reply is collected into a WAV, and the
transcripts are printed: the same path, usable in scripts and CI.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.audio.resample import resample
from voxgate.client import VoxgateClient, VoxgateError
from voxgate.protocol.events import (
    AgentTranscript,
    ReplyAudio,
    ReplyDone,
    SessionError,
    SpeechStarted,
    TurnLatency,
    UserTranscript,
    UserTranscriptDelta,
)

RATE = 24_000
CHUNK_S = 0.05
NO_SOUND_CARD = 2
BAR_WIDTH = 40
# The stages of `voxgate.turn.latency` (docs/observability.md): the letter drawn in the bar, the word printed.
STAGE_MARKS = {
    "end_of_turn": ("e", "end of turn"),
    "transcript": ("s", "transcript"),
    "llm_first_token": ("l", "LLM"),
    "first_clause": ("c", "clause"),
    "tts_first_audio": ("t", "TTS"),
    "first_audio": ("a", "send"),
}


def latency_line(event: TurnLatency, width: int = BAR_WIDTH) -> str:
    """A turn's stages as one line of text waterfall: a bar over the time from the end of speech to the
    first audio, each stage drawn with its letter where it ran (a later stage over an earlier one), then
    how long each took."""
    total = max([s.end_ms for s in event.stages] or [0]) or 1
    bar = ["·"] * width
    for stage in event.stages:
        letter = STAGE_MARKS.get(stage.name, ("?", stage.name))[0]
        lo, hi = round(stage.start_ms / total * width), min(width, round(stage.end_ms / total * width))
        for i in range(lo, hi):
            bar[i] = letter
    figures = "  ".join(f"{STAGE_MARKS.get(s.name, ('?', s.name))[1]} {s.end_ms - s.start_ms}" for s in event.stages)
    head = f"{event.first_audio_ms / 1000:.2f} s" if event.first_audio_ms is not None else event.outcome
    extra = ", LLM started at a pause" if event.prefetched else ""
    return f"latency {head} |{''.join(bar)}| {figures} (ms{extra})"


def session_from(args: argparse.Namespace) -> dict[str, Any]:
    """The session.update for these options: an agent file's configuration, then the flags over it."""
    session: dict[str, Any] = {}
    if args.agent:
        from voxgate.agents import load_agent

        config, _ = load_agent(args.agent, args.agents_dir).session_config(encoding="audio/pcm")
        session = config.model_dump(exclude_none=True)
    if args.system_prompt:
        session["system_prompt"] = args.system_prompt
    if args.greeting:
        session["greeting"] = args.greeting
    if args.voice:
        session.setdefault("output", {})["voice"] = args.voice
    turn: dict[str, Any] = dict(session.get("input", {}).get("turn_detection") or {})
    if args.min_silence is not None:
        turn["min_silence"] = args.min_silence
    if args.max_silence is not None:
        turn["max_silence"] = args.max_silence
    if args.no_interrupt:
        turn["interrupt_response"] = False
    inp: dict[str, Any] = dict(session.get("input", {}))
    if turn:
        inp["turn_detection"] = turn
    if args.keyterm:
        inp["keyterms"] = [*inp.get("keyterms", []), *args.keyterm]
    if inp:
        session["input"] = inp
    if not args.no_latency:  # [Voxgate] a stage breakdown of each turn (a hosted server ignores the key)
        session["voxgate"] = {**session.get("voxgate", {}), "turn_latency": True}
    return session


def register_agent_tools(client: VoxgateClient, args: argparse.Namespace) -> None:
    """An agent file's tools run through their webhooks, as they do on a phone call."""
    if not args.agent:
        return
    from voxgate.agents import WebhookTools, load_agent

    agent = load_agent(args.agent, args.agents_dir)
    tools = WebhookTools(agent)
    for tool in agent.tools:

        async def run(arguments: dict[str, Any], name: str = tool.name) -> str:
            return await tools.run(name, arguments)

        client.tool(tool.name)(run)


def read_wav_24k(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: 16-bit PCM WAV expected")
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels()).mean(axis=1)
        rate = w.getframerate()
    return resample((audio / 32768).astype(np.float32), rate, RATE)


def write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)


async def _paced(audio: np.ndarray, trailing_s: float) -> AsyncIterator[bytes]:
    """The file as a microphone would send it: 50 ms chunks in real time, then silence."""
    audio = np.concatenate([audio, np.zeros(int(trailing_s * RATE), np.float32)])
    step = int(CHUNK_S * RATE)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n, i in enumerate(range(0, len(audio), step)):
        yield (np.clip(audio[i : i + step], -1, 1) * 32767).astype("<i2").tobytes()
        await asyncio.sleep(max(0.0, start + (n + 1) * CHUNK_S - loop.time()))


async def file_turn(args: argparse.Namespace) -> int:
    """One turn from a WAV file; the reply's audio goes to --output. Exit 0 when a reply completed."""
    question = read_wav_24k(Path(args.input))
    reply = bytearray()
    async with VoxgateClient(args.url, api_key=args.api_key) as client:
        register_agent_tools(client, args)
        await client.configure(**session_from(args))
        sender = asyncio.create_task(client.stream_audio(_paced(question, trailing_s=args.trailing)))
        heard_user = False
        try:
            async for event in client.events():
                if isinstance(event, UserTranscript):
                    heard_user = True
                    print(f"you:   {event.text}", flush=True)
                elif isinstance(event, ReplyAudio) and heard_user:
                    reply += base64.b64decode(event.data)
                elif isinstance(event, AgentTranscript):
                    print(f"agent: {event.text}", flush=True)
                elif isinstance(event, SessionError):
                    print(f"error: {event.code}: {event.message}", file=sys.stderr)
                elif isinstance(event, TurnLatency):
                    print(latency_line(event), flush=True)
                elif isinstance(event, ReplyDone) and heard_user:
                    break
        finally:
            sender.cancel()
    write_wav(Path(args.output), bytes(reply))
    print(f"reply audio: {len(reply) / 2 / RATE:.2f} s -> {args.output}", flush=True)
    return 0 if reply else 1


def open_sound_card() -> Any:
    """sounddevice with a working input and output, or a clear message and exit code 2."""
    try:
        import sounddevice

        sounddevice.check_input_settings(samplerate=RATE, channels=1, dtype="int16")
        sounddevice.check_output_settings(samplerate=RATE, channels=1, dtype="int16")
    except Exception as exc:  # PortAudio missing (OSError), no device (PortAudioError), bad settings
        print(
            f"voxgate talk: no usable sound card here ({exc}).\n"
            "Install PortAudio (Debian: apt install libportaudio2) and connect a microphone and speaker, "
            "or run a turn from files: voxgate talk --input question.wav --output reply.wav",
            file=sys.stderr,
        )
        raise SystemExit(NO_SOUND_CARD) from None
    return sounddevice


async def live(args: argparse.Namespace) -> int:
    sd = open_sound_card()
    loop = asyncio.get_running_loop()
    mic: asyncio.Queue[bytes] = asyncio.Queue()
    speaker = bytearray()  # what is queued for playback; a barge-in empties it

    def on_mic(data: Any, frames: int, time: Any, status: Any) -> None:
        loop.call_soon_threadsafe(mic.put_nowait, bytes(data))

    def on_speaker(out: Any, frames: int, time: Any, status: Any) -> None:
        need = frames * 2
        chunk = bytes(speaker[:need])
        del speaker[:need]
        out[:] = chunk + b"\0" * (need - len(chunk))

    async def microphone() -> AsyncIterator[bytes]:
        while True:
            yield await mic.get()

    with (
        sd.RawInputStream(samplerate=RATE, channels=1, dtype="int16", callback=on_mic, blocksize=1200),
        sd.RawOutputStream(samplerate=RATE, channels=1, dtype="int16", callback=on_speaker, blocksize=1200),
    ):
        async with VoxgateClient(args.url, api_key=args.api_key) as client:
            register_agent_tools(client, args)
            await client.configure(**session_from(args))
            print("listening; Ctrl-C to stop", flush=True)
            sender = asyncio.create_task(client.stream_audio(microphone()))
            try:
                async for event in client.events():
                    if isinstance(event, UserTranscriptDelta):
                        print(f"\r… {event.text[-100:]}\033[K", end="", flush=True)
                    elif isinstance(event, UserTranscript):
                        print(f"\ryou:   {event.text}\033[K", flush=True)
                    elif isinstance(event, SpeechStarted):
                        speaker.clear()  # barge-in: stop playing at once
                    elif isinstance(event, ReplyAudio):
                        speaker.extend(base64.b64decode(event.data))
                    elif isinstance(event, AgentTranscript):
                        print(f"agent: {event.text}" + (" [interrupted]" if event.interrupted else ""), flush=True)
                    elif isinstance(event, TurnLatency):
                        print(latency_line(event), flush=True)
                    elif isinstance(event, SessionError):
                        print(f"error: {event.code}: {event.message}", file=sys.stderr)
            finally:
                sender.cancel()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/ws")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--agent", default=None, help="an agent file by name (examples: support, dental, reminder)")
    parser.add_argument("--agents-dir", default=None, help="where agent files live (VOXGATE_AGENTS_DIR)")
    parser.add_argument("--voice", default=None)
    parser.add_argument("--system-prompt", default=None)
    parser.add_argument("--greeting", default=None)
    parser.add_argument("--min-silence", type=int, default=None, help="ms")
    parser.add_argument("--max-silence", type=int, default=None, help="ms")
    parser.add_argument("--no-interrupt", action="store_true", help="user speech does not cut the agent off")
    parser.add_argument("--keyterm", action="append", default=[], help="repeatable")
    parser.add_argument(
        "--no-latency", action="store_true", help="do not ask for (or print) each turn's stage timings [Voxgate]"
    )
    parser.add_argument("--input", default=None, help="a WAV question: file mode, no sound card needed")
    parser.add_argument("--output", default="reply.wav", help="file mode: where the reply audio goes")
    parser.add_argument("--trailing", type=float, default=3.0, help="file mode: seconds of silence after it")


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(file_turn(args) if args.input else live(args))
    except VoxgateError as exc:
        print(f"voxgate talk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="voxgate talk")
    add_arguments(_parser)
    raise SystemExit(main(_parser.parse_args()))
