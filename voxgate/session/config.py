"""A session's live configuration and the rules for changing it mid-conversation.

`greeting` and `output` may be set once; `system_prompt`, `tools` and `input` change live. The
whole update is validated before anything is applied, so a rejected update changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from voxgate.backends.base import ToolSpec
from voxgate.protocol.events import ErrorCode, SessionConfig, TurnDetection


class ConfigError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LiveConfig:
    system_prompt: str
    greeting: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    turn: TurnDetection = field(default_factory=TurnDetection)
    keyterms: tuple[str, ...] = ()
    language: str | None = "en"
    input_encoding: str = "audio/pcm"
    output_encoding: str = "audio/pcm"
    voice: str | None = None  # as requested by the client; None = server default
    llm_model: str | None = None  # as picked by the client; None = server default
    applied_once: bool = False


def apply_update(
    current: LiveConfig,
    update: SessionConfig,
    fields_set: set[str],
    known_voice: object,
    allowed_model: Callable[[str], None] | None = None,
) -> LiveConfig:
    """Return the configuration after `update`; raise ConfigError and change nothing if it is refused.

    `fields_set` is the set of keys the client actually sent in `session`, so that an omitted field
    keeps its value while an explicit one replaces it. `known_voice(voice_id)` raises ValueError for
    an unknown voice, `allowed_model(name)` for an LLM the operator does not let sessions pick (no
    checker: no model may be picked). The model is live: a later update switches it for the next reply.
    """
    if current.applied_once:
        if "greeting" in fields_set and update.greeting != current.greeting:
            raise ConfigError(ErrorCode.IMMUTABLE_FIELD, "greeting cannot change after the session started")
        if "output" in fields_set and update.output is not None:
            same_voice = update.output.voice in (None, current.voice)
            fmt = update.output.format
            same_format = fmt is None or fmt.encoding == current.output_encoding
            if not (same_voice and same_format):
                raise ConfigError(ErrorCode.IMMUTABLE_FIELD, "output cannot change after the session started")

    new = current
    if update.llm_model is not None:
        try:
            if allowed_model is None:
                raise ValueError("this server does not let sessions choose the LLM")
            allowed_model(update.llm_model)
        except ValueError as exc:
            raise ConfigError(ErrorCode.INVALID_VALUE, str(exc)) from None
        new = replace(new, llm_model=update.llm_model)
    if update.system_prompt is not None:
        new = replace(new, system_prompt=update.system_prompt)
    if update.tools is not None:
        new = replace(new, tools=tuple(ToolSpec(t.name, t.description, t.parameters) for t in update.tools))
    if update.input is not None:
        inp = update.input
        if inp.format is not None:
            new = replace(new, input_encoding=inp.format.encoding)
        if inp.turn_detection is not None:
            new = replace(new, turn=inp.turn_detection)
        if inp.keyterms is not None:
            new = replace(new, keyterms=tuple(dict.fromkeys(k.strip() for k in inp.keyterms if k.strip())))
        if inp.language is not None:
            new = replace(new, language=None if inp.language == "auto" else inp.language.lower())
    if not current.applied_once:
        if update.greeting is not None:
            new = replace(new, greeting=update.greeting)
        if update.output is not None:
            if update.output.voice is not None:
                try:
                    known_voice(update.output.voice)  # type: ignore[operator]
                except ValueError as exc:
                    raise ConfigError(ErrorCode.INVALID_VALUE, str(exc)) from None
                new = replace(new, voice=update.output.voice)
            if update.output.format is not None:
                new = replace(new, output_encoding=update.output.format.encoding)
    return replace(new, applied_once=True)
