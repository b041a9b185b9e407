"""Fuzz: several hundred malformed and mistyped client messages against a real server, each answered
with the protocol's code (shared/protocol.md §7.1), and the session still usable after all of them.

The cases are generated deterministically, not randomly: wrong types for every field of every client
event, missing fields, nesting past the limit, huge strings, bad base64, unknown types, JSON that is
not an object, invalid JSON and binary frames. tests/e2e/conformance/test_validation.py checks the
contract's ranges one by one on the embedded models; this is the volume test, on a light server.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import websockets

from tests.e2e.hostile.socket_fixtures import TEXT_SESSION, health, light_server, recv_json, until
from voxgate.protocol import events

ERRORS_PER_SECOND = 9  # a little under the server's budget per socket (server/connection.py)
Case = tuple[str, str | bytes, str]  # (what, the frame, the code expected)


def nest(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return dict(out)


# Values no field of that kind accepts (pydantic coerces "1" to 1 and 1 to 1.0, so those are not wrong).
NOT_STR: list[Any] = [5, 1.5, True, [[]], {"x": {}}]
NOT_NUMBER: list[Any] = ["abc", [[]], {"x": {}}, "1e999999x"]
NOT_BOOL: list[Any] = ["maybe", 2, [[]], {"x": {}}]
NOT_OBJECT: list[Any] = ["text", 5, [[]], True]
NOT_LIST: list[Any] = ["text", 5, {"x": {}}, True]
NOT_LITERAL: list[Any] = ["zzz-unknown", 5, [[]], {"x": {}}]

# Every field of session.update's session, with what is wrong for its kind; values out of range too.
SESSION_FIELDS: dict[str, list[Any]] = {
    "agent_id": NOT_STR,
    "system_prompt": NOT_STR,
    "greeting": NOT_STR,
    "tools": [*NOT_LIST, [5], [["x"]], [{"description": "no name"}]],
    "input": NOT_OBJECT,
    "input.type": NOT_LITERAL,
    "input.format": NOT_OBJECT,
    "input.format.encoding": NOT_LITERAL,
    "input.format.sample_rate": [*NOT_NUMBER, 16000, 48000],
    "input.turn_detection": NOT_OBJECT,
    "input.turn_detection.vad_threshold": [*NOT_NUMBER, -0.1, 1.1],
    "input.turn_detection.min_silence": [*NOT_NUMBER, -1, 10_001],
    "input.turn_detection.max_silence": [*NOT_NUMBER, -1, 30_001],
    "input.turn_detection.interrupt_response": NOT_BOOL,
    "input.turn_detection.interruption_delay": [*NOT_NUMBER, -1, 1001],
    "input.turn_detection.type": NOT_LITERAL,
    "input.turn_detection.uninterruptible_turns": [*NOT_LIST, [5]],
    "input.keyterms": [*NOT_LIST, [5], ["k" * 101], ["k"] * 101, [""]],
    "input.language_codes": [*NOT_LIST, [5], ["e"], ["x" * 9]],
    "input.transcription_mode": NOT_LITERAL,
    "input.transcription_prompt": [*NOT_STR, "p" * 1751],
    "input.voice_focus": NOT_LITERAL,
    "input.voice_focus_threshold": [*NOT_NUMBER, -0.5, 1.5],
    "input.continuous_partials": NOT_BOOL,
    "input.language": NOT_STR,
    "output": NOT_OBJECT,
    "output.type": NOT_LITERAL,
    "output.voice": NOT_STR,
    "output.format": NOT_OBJECT,
    "output.format.encoding": NOT_LITERAL,
    "output.volume": [*NOT_NUMBER, -1, 101],
    "llm": [*NOT_LIST, [5], [{"model": "m"}], [{"base_url": "http://x", "model": "m"}] * 2],
    "pre_connect_requests": [*NOT_LIST, [5], [{}, {}, {}]],
    "webhook": NOT_OBJECT,
    "webhook.url": NOT_STR,
    "webhook.events": [*NOT_LIST, [5]],
    "webhook.secret": NOT_STR,
    "llm_model": NOT_STR,
}
# Every field of a tool (inside session.tools).
TOOL_FIELDS: dict[str, list[Any]] = {
    "name": [*NOT_STR, "", "has space", "n" * 65],
    "description": NOT_STR,
    "parameters": NOT_OBJECT,
    "execution_mode": NOT_LITERAL,
    "timeout_seconds": [*NOT_NUMBER, 0, 301],
    "response_instructions": NOT_OBJECT,
    "response_instructions.success": [*NOT_STR, "s" * 501],
    "response_instructions.error": [*NOT_STR, "e" * 501],
    "http": NOT_OBJECT,
    "dtmf_collected_arguments": NOT_LIST,
}
# Refused by the session's rules, not the types: each with its code.
SESSION_RULES: list[tuple[str, dict[str, Any], str]] = [
    ("disallowed llm_model", {"llm_model": "no-such-model"}, "invalid_value"),
    ("unknown input.language", {"input": {"language": "xx"}}, "invalid_value"),
    (
        "max_silence < min_silence",
        nest("input.turn_detection", {"min_silence": 900, "max_silence": 1}),
        "invalid_config",
    ),
]
# The other client events: each field wrong, and each required field missing.
EVENT_FIELDS: dict[str, tuple[dict[str, Any], dict[str, list[Any]], str]] = {
    "tool.result": (
        {"call_id": "call_x", "result": "r"},
        {"call_id": [*NOT_STR, ""], "result": [5, 1.5, True], "is_error": NOT_BOOL},  # (a list: JSON text)
        "invalid_format",
    ),
    "conversation.message": (
        {"role": "user", "content": "hello"},
        {"role": [*NOT_LITERAL, "assistant"], "content": NOT_STR},
        "invalid_format",
    ),
    "reply.create": ({}, {"instructions": NOT_STR}, "invalid_format"),
    "reply.cancel": ({}, {"reply_id": NOT_STR}, "invalid_format"),
    "session.resume": ({"session_id": "sess_x"}, {"session_id": NOT_STR}, "invalid_format"),
    "input.audio": ({"audio": "AAAA"}, {"audio": NOT_STR}, "invalid_audio"),
}
REQUIRED = {"tool.result": ["call_id"], "conversation.message": ["role", "content"], "input.audio": ["audio"]}


def deep(depth: int) -> str:
    """JSON text nested `depth` levels (objects and lists by turns); text, as json.dumps would recurse."""
    opening = "".join("[" if i % 2 else '{"d": ' for i in range(depth))
    closing = "".join("]" if i % 2 else "}" for i in reversed(range(depth)))
    return opening + "1" + closing


def frame(message: Any) -> str:
    return json.dumps(message)


def after_ready_cases() -> list[Case]:
    """Sent on a ready session; every one is refused and leaves the session as it was."""
    cases: list[Case] = []
    for path, values in SESSION_FIELDS.items():
        for value in values:
            cases.append((f"session.{path}={value!r:.40}", frame(_update(nest(path, value))), "invalid_value"))
    for path, values in TOOL_FIELDS.items():
        for value in values:
            tool = {"type": "function", "name": "lookup", **nest(path, value)}
            cases.append((f"tools.0.{path}={value!r:.40}", frame(_update({"tools": [tool]})), "invalid_value"))
    for what, session, code in SESSION_RULES:
        cases.append((what, frame(_update(session)), code))
    cases.append(("session: null", frame({"type": "session.update", "session": None}), "invalid_value"))
    cases.append(("session: a list", frame({"type": "session.update", "session": [TEXT_SESSION]}), "invalid_value"))
    for kind, (valid, fields, code) in EVENT_FIELDS.items():
        for field, values in fields.items():
            for value in values:
                cases.append((f"{kind}.{field}={value!r:.40}", frame({"type": kind, **valid, field: value}), code))
        for field in REQUIRED.get(kind, []):
            missing = {k: v for k, v in valid.items() if k != field}
            cases.append((f"{kind} without {field}", frame({"type": kind, **missing}), code))
    cases += _caps()
    cases += _bad_audio()
    cases += _not_events()
    unknown_call = frame({"type": "tool.result", "call_id": "call_nope"})
    cases.append(("tool.result for an unknown call_id", unknown_call, "invalid_value"))
    long_call = frame({"type": "tool.result", "call_id": "c" * 129})  # past its 128-character limit
    cases.append(("tool.result call_id over 128", long_call, "invalid_value"))
    resume = frame({"type": "session.resume", "session_id": "sess_x"})
    cases.append(("session.resume after ready", resume, "invalid_format"))
    return cases


def _update(session: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session.update", "session": session}


def _caps() -> list[Case]:
    """Huge strings past the size limits (voxgate/protocol/events.py): `invalid_value`, whatever the event."""
    cases: list[Case] = []
    limits = {
        "system_prompt": ("MAX_SYSTEM_PROMPT_CHARS", lambda n: _update({"system_prompt": "p" * n}), "invalid_value"),
        "greeting": ("MAX_GREETING_CHARS", lambda n: _update({"greeting": "g" * n}), "invalid_value"),
        "tool description": (
            "MAX_TOOL_DESCRIPTION_CHARS",
            lambda n: _update({"tools": [{"type": "function", "name": "t", "description": "d" * n}]}),
            "invalid_value",
        ),
        "tools": (
            "MAX_TOOLS",
            lambda n: _update({"tools": [{"type": "function", "name": f"t{i}"} for i in range(n)]}),
            "invalid_value",
        ),
        "tool.result": (
            "MAX_TOOL_RESULT_CHARS",
            lambda n: {"type": "tool.result", "call_id": "c", "result": "r" * n},
            "invalid_value",
        ),
        "conversation.message": (
            "MAX_MESSAGE_CHARS",
            lambda n: {"type": "conversation.message", "role": "user", "content": "m" * n},
            "invalid_value",
        ),
        "reply.create": (
            "MAX_INSTRUCTIONS_CHARS",
            lambda n: {"type": "reply.create", "instructions": "i" * n},
            "invalid_value",
        ),
    }
    for what, (name, build, code) in limits.items():
        limit = getattr(events, name)
        cases.append((f"{what} over {limit}", frame(build(limit + 1)), code))
    return cases


def _bad_audio() -> list[Case]:
    cases: list[Case] = []
    for bad in ["!!!!", "abc", "====", "ab$d", "A" * 5, "éééé", "AAAA\n====", "data:audio/pcm;base64,AAAA"]:
        cases.append((f"input.audio {bad!r:.20}", frame({"type": "input.audio", "audio": bad}), "invalid_audio"))
    huge = base64.b64encode(b"\x00" * ((1 << 20) + 2)).decode()
    cases.append(("input.audio over 1 MiB", frame({"type": "input.audio", "audio": huge}), "invalid_audio"))
    return cases


def _not_events() -> list[Case]:
    """Frames that are not events at all: each is invalid_format."""
    cases: list[Case] = []
    for text in ["{", "", "not json", "{'type': 'session.update'}", '{"type": "session.update"', "\x00", "[", "}{"]:
        cases.append((f"invalid JSON {text!r:.20}", text, "invalid_format"))
    for value in [5, "session.update", [], [{"type": "session.update"}], None, True, 1.5, {}]:
        cases.append((f"not an object {value!r:.20}", frame(value), "invalid_format"))
    not_strings: list[Any] = [5, None, [], {}, True, ["session.update"]]
    for wrong in not_strings:
        cases.append((f"type={wrong!r}", frame({"type": wrong}), "invalid_format"))
    unknown = ["session.updat", "SESSION.UPDATE", "", " session.update", "reply.created", "x" * 10_000]
    for kind in [*unknown, "tool.call", "session.ready", "input.audio.commit"]:
        cases.append((f"unknown type {kind!r:.30}", frame({"type": kind}), "invalid_format"))
    for depth in (65, 200, 1500, 5000):
        nested = '{"type": "session.update", "session": {"tools": [' + deep(depth) + "]}}"
        cases.append((f"nesting {depth}", nested, "invalid_format"))
        cases.append((f"bare nesting {depth}", "[" * depth + "]" * depth, "invalid_format"))
    for data in [b"\x00", b'{"type": "session.update", "session": {}}', b"\xff" * 1000]:
        cases.append((f"binary {data[:10]!r}", data, "invalid_format"))
    return cases


def before_session_cases() -> list[Case]:
    """Sent before any session.update: events that need a session, and a refused first update."""
    cases: list[Case] = []
    for kind, (valid, _, _) in EVENT_FIELDS.items():
        if kind not in ("input.audio", "session.resume"):
            cases.append((f"{kind} before session.update", frame({"type": kind, **valid}), "invalid_format"))
    cases.append(("session.end before session.update", frame({"type": "session.end"}), "invalid_format"))
    for path in ("system_prompt", "input.type", "output.volume", "input.turn_detection.vad_threshold"):
        cases.append((f"first update {path}", frame(_update(nest(path, [[]]))), "invalid_value"))
    voice = _update({"output": {"voice": "no-such-voice"}})  # (immutable once the session started)
    cases.append(("first update with an unknown voice", frame(voice), "invalid_value"))
    return cases


async def run_cases(url: str, cases: list[Case], *, ready: bool) -> list[str]:
    """Each case on one socket, one at a time; what went wrong, one line each (empty: all answered right)."""
    wrong: list[str] = []
    async with websockets.connect(url, max_size=None) as ws:
        if ready:
            await ws.send(frame(_update(TEXT_SESSION)))
            await until(ws, "session.ready")
        for what, message, code in cases:
            await asyncio.sleep(1 / ERRORS_PER_SECOND)  # within the error budget: past it, errors are dropped
            await ws.send(message)
            try:
                event = await recv_json(ws, timeout=10)
            except TimeoutError:
                wrong.append(f"{what}: no answer")
                continue
            if event.get("type") != "session.error" or event.get("code") != code:
                wrong.append(f"{what}: {event.get('type')} {event.get('code')} {str(event.get('message'))[:80]!r}")
            elif len(json.dumps(event)) > 2000:
                wrong.append(f"{what}: a {len(json.dumps(event))}-byte error")
        # Still usable: an update is answered with session.updated (and nothing else came in between).
        await ws.send(frame(_update({"system_prompt": "Still here."} if ready else TEXT_SESSION)))
        event = await recv_json(ws, timeout=10)
        if event.get("type") != "session.updated":
            wrong.append(f"after the fuzz: {event.get('type')} {event.get('code')}, not session.updated")
    return wrong


async def test_fuzz_hundreds_of_malformed_messages_get_the_protocols_code_and_the_session_survives() -> None:
    after = after_ready_cases()
    before = before_session_cases()
    assert len(after) + len(before) >= 300, len(after) + len(before)
    with light_server("fuzz") as server:
        shards = [after[i::6] for i in range(6)]  # six sockets: each has its own error budget (10/s)
        results = await asyncio.gather(
            *(run_cases(server.url, shard, ready=True) for shard in shards),
            run_cases(server.url, before, ready=False),
        )
        wrong = [line for result in results for line in result]
        assert not wrong, f"{len(wrong)} of {len(after) + len(before)} cases:\n" + "\n".join(wrong)
        assert health(server)["status"] == "ok"
        log = server.log.read_text()
        assert "Traceback" not in log, log[-3000:]
