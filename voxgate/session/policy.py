"""The settings a session acts on, read once from the server's configuration.

A session reads these and nothing else of `Settings`; tests build one directly (`SessionPolicy()` is
the server's defaults), so what a scripted conversation depends on is visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxgate.config import Settings, input_language

_DEFAULTS = Settings.model_fields


def _default(name: str) -> Any:
    return _DEFAULTS[name].default


@dataclass(frozen=True)
class SessionPolicy:
    system_prompt: str = _default("system_prompt")
    language: str | None = input_language(_default("stt_language"))  # when a session names none; None = detect
    echo_guard: bool = _default("echo_guard")
    partial_interval_s: float = _default("partial_interval_ms") / 1000
    smart_turn: bool = _default("smart_turn")
    smart_turn_threshold: float = _default("smart_turn_threshold")
    backchannel_words: bool = _default("backchannel_words")
    barge_in_pause: bool = _default("barge_in_pause")
    llm_prefetch: bool = _default("llm_prefetch")
    stt_timeout_s: float = _default("stt_timeout_s")
    llm_first_token_timeout_s: float = _default("llm_first_token_timeout_s")
    reply_lead_s: float = _default("reply_lead_s")
    session_llm: bool = _default("session_llm")
    recording: bool = _default("recording")
    tool_guards: bool = _default("tool_guards")

    @classmethod
    def from_settings(cls, s: Settings) -> SessionPolicy:
        return cls(
            system_prompt=s.system_prompt,
            language=input_language(s.stt_language),
            echo_guard=s.echo_guard,
            partial_interval_s=s.partial_interval_ms / 1000,
            smart_turn=s.smart_turn,
            smart_turn_threshold=s.smart_turn_threshold,
            backchannel_words=s.backchannel_words,
            barge_in_pause=s.barge_in_pause,
            llm_prefetch=s.llm_prefetch,
            stt_timeout_s=s.stt_timeout_s,
            llm_first_token_timeout_s=s.llm_first_token_timeout_s,
            reply_lead_s=s.reply_lead_s,
            session_llm=s.session_llm,
            recording=s.recording,
            tool_guards=s.tool_guards,
        )
