"""`voxgate config` (the effective settings) and `voxgate doctor` (does every configured backend answer).

`config` prints every setting with its value, where the value came from (the default or the
environment) and what it does; secrets (keys, tokens, passwords in URLs, auth headers) are `***`.
`doctor` loads each embedded model and runs one tiny call on it, or makes one real call to each
remote API, and prints the model, the voice count and that call's latency; it exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from voxgate.config import Settings, input_language
from voxgate.redaction import MASK, mask_url, redact

_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "password")


def masked(name: str, value: Any) -> Any:
    """A setting's value as it may be shown: secrets replaced by `***`."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, list):
        return [masked(name, v) for v in value]
    if isinstance(value, dict):
        return {
            k: MASK if any(w in k.lower() for w in _SECRET_HEADER_WORDS) else masked(name, v) for k, v in value.items()
        }
    if isinstance(value, str) and name.endswith("_url"):
        return mask_url(value)
    return value


def effective_config(settings: Settings) -> list[dict[str, Any]]:
    """One entry per setting: name, environment variable, shown value, source and description."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    rows = []
    for name, field in type(settings).model_fields.items():
        rows.append(
            {
                "name": name,
                "env": (prefix + name).upper(),
                "value": masked(name, getattr(settings, name)),
                "source": "set" if name in settings.model_fields_set else "default",
                "description": field.description or "",
            }
        )
    return rows


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(empty)"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def reference_markdown() -> str:
    """docs/configuration.md: every setting with its variable, default and meaning, from the model itself."""
    lines = [
        "# Configuration reference",
        "",
        "Every setting, generated from `voxgate.config.Settings` by `voxgate config --markdown`.",
        "Set them as environment variables, or as lower-case keys in a TOML file named by `VOXGATE_CONFIG`",
        "(or `voxgate --config FILE`); variables override the file. Lists are comma-separated in variables.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for row in effective_config(Settings.model_construct()):
        cell = _show(row["value"]).replace("|", "\\|")
        lines.append(f"| `{row['env']}` | `{cell}` | {row['description'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def config_main(args: argparse.Namespace) -> int:
    if getattr(args, "markdown", False):
        print(reference_markdown(), end="")
        return 0
    rows = effective_config(Settings())
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']} = {_show(row['value'])}    [{row['env']}, {row['source']}]")
        if row["description"]:
            print(f"    {row['description']}")
    return 0


# ---------------------------------------------------------------- doctor


def _silence(seconds: float) -> Any:
    import numpy as np

    return np.zeros(int(seconds * 16_000), dtype=np.float32)


class _Stopwatch:
    """Splits a check's time into loading (up to `loaded()`) and its one call (the rest)."""

    def __init__(self) -> None:
        self.start = self.mark = time.monotonic()

    def loaded(self) -> None:
        self.mark = time.monotonic()


class _Checks:
    def __init__(self, *, verbose: bool = False) -> None:
        self.failed = 0
        self.verbose = verbose

    def run(self, label: str, check: Callable[[_Stopwatch], str]) -> None:
        watch = _Stopwatch()
        try:
            detail = check(watch)
        except Exception as exc:
            self.failed += 1
            message = redact(str(exc))  # error texts may quote a base URL
            print(f"FAIL  {label}: {type(exc).__name__}: {message}", flush=True)
            if self.verbose:
                traceback.print_exc()
            return
        end = time.monotonic()
        load = f"load {watch.mark - watch.start:.2f} s, " if watch.mark - watch.start >= 0.01 else ""
        print(f"ok    {label}: {detail} ({load}one call {end - watch.mark:.2f} s)", flush=True)


def doctor_main(args: argparse.Namespace) -> int:
    import asyncio

    from voxgate.backends.base import ChatMessage, TextDelta
    from voxgate.backends.registry import Models

    settings = Settings()
    models = Models(settings)
    checks = _Checks(verbose=bool(getattr(args, "verbose", False)))
    language = input_language(settings.stt_language)

    def where(backend: str, base_url: str | None) -> str:
        return "embedded" if backend == "embedded" else f"remote at {mask_url(base_url or 'https://api.openai.com/v1')}"

    def vad(watch: _Stopwatch) -> str:
        stream = models.vad.new_stream()
        watch.loaded()
        stream.probability(_silence(1.0)[: stream.frame_samples])
        return "Silero v6"

    checks.run("VAD (embedded)", vad)

    def stt(name: str) -> Callable[[_Stopwatch], str]:
        def check(watch: _Stopwatch) -> str:
            model = models.stt(name)
            watch.loaded()
            model.transcribe(_silence(0.5), language=language)
            return model.name

        return check

    stt_where = where(settings.stt_backend, settings.stt_base_url)
    checks.run(f"STT final ({stt_where})", stt(settings.stt_model))
    if settings.stt_backend == "embedded" and settings.stt_partial_model != settings.stt_model:
        checks.run(f"STT partials ({stt_where})", stt(settings.stt_partial_model))

    def turn(watch: _Stopwatch) -> str:
        model = models.turn_model
        watch.loaded()
        return f"Smart Turn v3.2, P(complete) of silence {model.probability_complete(_silence(1.0)):.2f}"

    if settings.smart_turn:
        checks.run("end of turn (embedded)", turn)

    def llm(watch: _Stopwatch) -> str:
        model = models.llm
        watch.loaded()

        async def ask() -> str:
            parts = []
            async for event in model.stream([ChatMessage("user", "Say OK.")], ()):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
            return "".join(parts).strip()

        reply = asyncio.run(ask())
        if not reply:
            raise RuntimeError("the language model answered with no text")
        return f"{model.name} said {reply[:40]!r}"

    fallback = f", fallback {settings.llm_fallback}" if settings.llm_backend == "openai" else ""
    checks.run(f"LLM ({where(settings.llm_backend, settings.llm_base_url)}{fallback})", llm)

    try:
        catalog = models.voices
    except Exception as exc:
        checks.failed += 1
        print(f"FAIL  TTS voices: {type(exc).__name__}: {redact(str(exc))}", flush=True)
    else:
        by_backend: dict[int, tuple[Any, list[str]]] = {}
        for info in catalog.local_voices():
            backend = catalog.resolve(info.id).backend
            by_backend.setdefault(id(backend), (backend, []))[1].append(info.id)
        print(f"      TTS: {len(catalog.local_voices())} voices, {len(catalog.alias_ids())} aliases", flush=True)
        for backend, voice_ids in by_backend.values():

            def tts(watch: _Stopwatch, backend: Any = backend, voice_ids: list[str] = voice_ids) -> str:
                load = getattr(backend, "load", None)
                if load is not None:
                    load()
                watch.loaded()
                resolved = catalog.resolve(voice_ids[0])
                audio = backend.synthesize("Hello.", voice=resolved.voice, language=resolved.language)
                if len(audio) == 0:
                    raise RuntimeError(f"voice {voice_ids[0]} returned no audio")
                return (
                    f"{len(voice_ids)} voices; {voice_ids[0]} said 'Hello.' "
                    f"({len(audio) / backend.sample_rate:.2f} s of audio)"
                )

            remote = f"remote at {mask_url(backend.base_url)}" if hasattr(backend, "base_url") else "embedded"
            checks.run(f"TTS {type(backend).__name__} ({remote})", tts)
    print("all backends answer" if not checks.failed else f"{checks.failed} check(s) failed", flush=True)
    return 1 if checks.failed else 0
