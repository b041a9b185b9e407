"""`voxgate` command line: serve, say, talk, agents, bench."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from typing import Any


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


GRACEFUL_SHUTDOWN_S = 10  # SIGTERM: how long live connections get to close before their tasks are cancelled


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from voxgate import allocator
    from voxgate.app import create_app
    from voxgate.backends.registry import Models
    from voxgate.config import Settings

    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.api_keys:
        if not _is_loopback(settings.host):
            print(
                f"refusing to listen on {settings.host} without API keys: set VOXGATE_API_KEYS "
                "(comma-separated) or listen on 127.0.0.1",
                file=sys.stderr,
            )
            return 2
        print(
            "WARNING: no API keys configured (VOXGATE_API_KEYS): the server is OPEN to anyone on this machine",
            file=sys.stderr,
        )
    allocator.limit_arenas()  # before the model and worker threads exist (voxgate/allocator.py)
    models = Models(settings)
    if settings.preload:
        print("loading models (the first start assembles and checks weight files) ...", file=sys.stderr)
        for line in models.load():
            print(f"  loaded {line}", file=sys.stderr)
    app = create_app(settings, models)
    print(f"Voxgate listening on ws://{settings.host}:{settings.port}/v1/ws", file=sys.stderr, flush=True)
    # SIGTERM: uvicorn closes every socket with 1012; a socket whose peer takes nothing is aborted by the
    # transport within CLOSE_FLUSH_S (server/transport.py), and past GRACEFUL_SHUTDOWN_S whatever still
    # runs is cancelled, so a client that never reads cannot hold the process (H6). The app's shutdown
    # then finishes the sessions left (their records: completed, server_shutdown).
    # Before all that, the first SIGTERM drains (server/drain.py): new sessions refused with 503, every
    # socket closed with 1012 once its session is saved for a resume elsewhere, for drain_timeout_s at most.
    from voxgate.server.drain import DrainingServer

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ws_max_size=4 << 20,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    DrainingServer(config, app.state.sessions, settings.drain_timeout_s).run()
    return 0


def say(args: argparse.Namespace) -> int:
    """Speak text with a local voice into a WAV file (handy for making test audio)."""
    import wave

    import numpy as np

    from voxgate.audio.codecs import float_to_int16
    from voxgate.audio.resample import resample
    from voxgate.backends.registry import Models
    from voxgate.config import Settings

    if args.seed is not None:
        # Piper and Kokoro sample noise inside their ONNX graphs; a fixed seed gives the same take
        # every run, which makes test audio reproducible from machine to machine.
        import onnxruntime

        onnxruntime.set_seed(args.seed)
    models = Models(Settings())
    voice = models.voices.resolve(args.voice)
    from voxgate.backends.tts.text import speakable

    text = speakable(args.text, args.language or voice.language)
    audio = voice.backend.synthesize(text, voice=voice.voice, language=args.language or voice.language)
    rate = args.rate or voice.sample_rate
    audio = resample(audio, voice.sample_rate, rate)
    with wave.open(args.output, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(float_to_int16(np.asarray(audio, dtype=np.float32)).tobytes())
    print(f"{args.output}: {len(audio) / rate:.2f} s at {rate} Hz, voice {voice.voice}", file=sys.stderr)
    return 0


def agents_import(args: argparse.Namespace) -> int:
    """Store agent files (YAML) as stored agents; a name already stored for the owner is updated."""
    import time
    from pathlib import Path

    from pydantic import ValidationError

    from voxgate.agents import AgentError, load_agent_file
    from voxgate.backends.registry import Models
    from voxgate.config import Settings
    from voxgate.server.auth import Authenticator
    from voxgate.store import open_store, store_path
    from voxgate.store.agents import AgentCreate, AgentInvalid, body_from_agent_file, build_agent

    settings = Settings()
    owner = args.owner or "anonymous"
    if args.key:
        owner = Authenticator([args.key]).check_key(args.key.partition(":")[0]).owner
    check_voice = Models(settings).voices.resolve  # the catalog only: no model is loaded
    store = open_store(settings)
    failed = 0
    try:
        for name in args.paths:
            path = Path(name)
            try:
                config = load_agent_file(path)
                body = AgentCreate.model_validate(body_from_agent_file(config, default_voice=settings.default_voice))
                now = time.time()
                existing = store.get_agent(owner, config.name)
                if existing is not None and existing["name"] == config.name:

                    def replace(current: dict[str, Any], body: AgentCreate = body, now: float = now) -> dict[str, Any]:
                        return build_agent(owner, body, now=now, check_voice=check_voice, current=current, replace=True)

                    agent = store.update_agent(owner, existing["id"], replace)
                    action = "updated"
                else:
                    agent = build_agent(owner, body, now=now, check_voice=check_voice)
                    store.create_agent(agent)
                    action = "created"
            except (OSError, AgentError, AgentInvalid, ValidationError) as exc:
                print(f"{path}: {exc}", file=sys.stderr)
                failed += 1
                continue
            assert agent is not None
            print(f"{agent['id']}\t{agent['name']}\t{action}")
    finally:
        store.close()
    where = f"Redis, prefix {settings.redis_prefix!r}" if settings.redis_url is not None else store_path(settings)
    print(f"store: {where} (owner {owner})", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxgate", description=__doc__)
    parser.add_argument("--config", default=None, help="a TOML settings file (VOXGATE_CONFIG); variables override it")
    sub = parser.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser("serve", help="run the server on the embedded local models")
    p_serve.add_argument("--host", default=None, help="default 127.0.0.1 (VOXGATE_HOST)")
    p_serve.add_argument("--port", type=int, default=None, help="default 8000 (VOXGATE_PORT)")
    p_serve.set_defaults(func=serve)

    p_say = sub.add_parser("say", help="synthesize text to a WAV file")
    p_say.add_argument("text")
    p_say.add_argument("-o", "--output", required=True)
    p_say.add_argument("--voice", default=None)
    p_say.add_argument("--language", default=None)
    p_say.add_argument("--rate", type=int, default=None, help="resample to this rate")
    p_say.add_argument("--seed", type=int, default=None, help="the same take every run (voices sample noise)")
    p_say.set_defaults(func=say)

    p_agents = sub.add_parser("agents", help="stored agents (/v1/agents)")
    agents_sub = p_agents.add_subparsers(dest="agents", required=True)
    p_import = agents_sub.add_parser(
        "import", help="store agent files (YAML) as stored agents, printing their ids; a stored name is updated"
    )
    p_import.add_argument("paths", nargs="+", metavar="PATH", help="agent files (NAME.yaml)")
    owner = p_import.add_mutually_exclusive_group()
    owner.add_argument("--owner", default=None, help="the owner the agents belong to (default: anonymous)")
    owner.add_argument("--key", default=None, help="the API key whose agents they become (its owner)")
    p_import.set_defaults(func=agents_import)

    from voxgate import admin, talk
    from voxgate.integrations.twilio import outbound

    p_talk = sub.add_parser("talk", help="talk to an agent: microphone and speaker, or --input/--output WAV files")
    talk.add_arguments(p_talk)
    p_talk.set_defaults(func=talk.main)

    p_config = sub.add_parser("config", help="print the effective configuration (secrets masked)")
    p_config.add_argument("--json", action="store_true")
    p_config.add_argument("--markdown", action="store_true", help="the reference of every setting and its default")
    p_config.set_defaults(func=admin.config_main)
    p_doctor = sub.add_parser("doctor", help="check that every configured backend answers")
    p_doctor.add_argument("--verbose", action="store_true")
    p_doctor.set_defaults(func=admin.doctor_main)

    p_call = sub.add_parser("call", help="place an outbound Twilio call to an agent")
    outbound.add_arguments(p_call)
    p_call.set_defaults(func=outbound.main)
    p_bench = sub.add_parser("bench", help="benchmarks against a running server")
    bench_sub = p_bench.add_subparsers(dest="bench", required=True)
    p_lat = bench_sub.add_parser("latency", help="per-turn latency over WebSocket")
    p_lat.add_argument("--url", default="ws://127.0.0.1:8000/v1/ws")
    p_lat.add_argument("--api-key", default=None)
    p_lat.add_argument("--turns", type=int, default=5)
    p_lat.add_argument("--voice", default=None, help="the session's output.voice (a local or hosted ID)")
    p_lat.set_defaults(func=lambda a: __import__("voxgate.bench.latency", fromlist=["main"]).main(a))
    from voxgate.bench import turns

    p_turns = bench_sub.add_parser("turns", help="the turn-taking set: cut-offs, waits, barge-in, echo")
    turns.add_arguments(p_turns)
    p_turns.set_defaults(func=turns.main)
    from voxgate.bench import accuracy

    p_acc = bench_sub.add_parser("accuracy", help="WER and missed entities: real recordings and the entity set")
    accuracy.add_arguments(p_acc)
    p_acc.set_defaults(func=accuracy.main)
    from voxgate.bench import terms

    p_terms = bench_sub.add_parser("terms", help="medication names with the medical pack: hints vs correction only")
    terms.add_arguments(p_terms)
    p_terms.set_defaults(func=terms.main)
    from voxgate.bench import voices as voice_bench

    p_voices = bench_sub.add_parser(
        "voices", help="every local voice: first audio (idle, under the LLM), RTF, intelligibility via Whisper"
    )
    voice_bench.add_arguments(p_voices)
    p_voices.set_defaults(func=voice_bench.main)
    from voxgate.bench import soak

    p_soak = bench_sub.add_parser("soak", help="300 turns in one session, then sessions churning: RSS, drift, errors")
    soak.add_arguments(p_soak)
    p_soak.set_defaults(func=soak.main)
    from voxgate.bench import tools as tool_bench

    p_tools = bench_sub.add_parser(
        "tools", help="tool calls through the real server: call/no-call, arguments, markup spoken, latency added"
    )
    tool_bench.add_arguments(p_tools)
    p_tools.set_defaults(func=tool_bench.main)
    from voxgate.bench import load as load_bench

    p_load = bench_sub.add_parser(
        "load", help="N callers at once on one spawned replica, embedded / local STT / all remote: capacity"
    )
    load_bench.add_arguments(p_load)
    p_load.set_defaults(func=load_bench.main)
    p_make = bench_sub.add_parser("make-turn-set", help="re-render bench/turn_set/ from its definition")
    p_make.add_argument("--set", default=str(turns.DEFAULT_DIR))
    p_make.add_argument("--missing-only", action="store_true", help="render only cases not in the set yet")
    p_make.set_defaults(func=turns.make_set)

    args = parser.parse_args(argv)
    if args.config:
        os.environ["VOXGATE_CONFIG"] = args.config
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
