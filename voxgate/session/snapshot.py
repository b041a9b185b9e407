"""What a session needs to go on elsewhere: a JSON snapshot of a conversation, and the conversation
rebuilt from one on another replica.

A replica writes the snapshot when the socket drops (after `detach`, so what the user heard is in
the history and a reply cut unheard is marked owed) and at every turn's end (`Conversation.rest`),
so a replica killed outright loses at most the turn in flight. Another replica that gets the
`session.resume` rebuilds the conversation from it and carries on: same history, same configuration,
the tool calls still waiting for results (a `tool.result` for one is accepted there), the duration
cap counted from the first start.

Kept: the configuration as the client (or its stored agent) set it, which is replayed through
`apply_update` so every derived value is rebuilt by the one function that builds it; the history,
tool calls and results included; pending calls with the results that came; what is owed to the
user; turns said during a hold; the timeline of the record. Not kept: audio state (a resumed socket
starts its audio afresh anyway), a reply in flight (it is answered again: a history that ends on the
user's words or a tool's result is owed its reply), the stereo recording (a resumed replica records
from the resume on), and a server-run tool still running (its call times out on the new replica).
Resume tokens are not in it: they live in the fleet's token ledger (server/redis_tokens.py), which
every replica reads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from voxgate.backends.base import ChatMessage, ToolCallRequest
from voxgate.protocol.events import SessionConfig
from voxgate.session.config import LiveConfig, apply_update
from voxgate.session.conversation import Conversation
from voxgate.session.reply import Trigger
from voxgate.session.timeline import Timeline

if TYPE_CHECKING:
    from voxgate.session.policy import SessionPolicy
    from voxgate.session.ports import SessionPorts

log = logging.getLogger("voxgate.snapshot")

VERSION = 1


class SnapshotError(ValueError):
    """A snapshot this Voxgate cannot rebuild (another version, or damaged)."""


def _call(call: ToolCallRequest) -> dict[str, Any]:
    return {"call_id": call.call_id, "name": call.name, "arguments": call.arguments}


def _call_from(data: dict[str, Any]) -> ToolCallRequest:
    return ToolCallRequest(call_id=data["call_id"], name=data["name"], arguments=dict(data["arguments"]))


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [_call(c) for c in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _message_from(data: dict[str, Any]) -> ChatMessage:
    return ChatMessage(
        role=data["role"],
        content=data.get("content", ""),
        tool_calls=[_call_from(c) for c in data.get("tool_calls", ())],
        tool_call_id=data.get("tool_call_id"),
    )


def snapshot(conversation: Conversation) -> dict[str, Any]:
    """The conversation as JSON-able data (secrets of its configuration included: the store holding it
    must be as private as the server's memory)."""
    tools = conversation.tools
    return {
        "version": VERSION,
        "session_id": conversation.session_id,
        "owner": conversation.owner,
        "agent_id": conversation.agent_id,
        "started_at": conversation.started_at,
        "max_session_s": conversation.max_session_s,
        "audio_s": conversation.audio_s,
        "config": conversation.config.sent,
        "default_voice": conversation.config.default_voice,
        "history": [_message(m) for m in conversation.history],
        "pending": [_call(c) for c in tools._pending.values()],
        "results": {cid: [result, is_error] for cid, (result, is_error) in tools._results.items()},
        "run_here": sorted(tools._run_here),
        "owed": conversation._owed,
        "withheld": [list(pair) for pair in conversation._withheld],
        "timeline": conversation.timeline.turns,
    }


def restore(data: dict[str, Any], ports: SessionPorts, policy: SessionPolicy) -> Conversation:
    """The conversation of `data`, detached (the caller attaches it to the resuming socket)."""
    if data.get("version") != VERSION:
        raise SnapshotError(f"snapshot version {data.get('version')!r}; this Voxgate reads {VERSION}")
    try:
        conversation = Conversation(ports, policy, data["session_id"], data["owner"])
        conversation.started_at = float(data["started_at"])
        conversation.max_session_s = float(data["max_session_s"])
        conversation.audio_s = float(data["audio_s"])
        conversation.agent_id = str(data["agent_id"] or "")
        base = LiveConfig(
            system_prompt=policy.system_prompt, language=policy.language, default_voice=data["default_voice"]
        )
        conversation.config = apply_update(
            base,
            SessionConfig.model_validate(data["config"]),
            None,
            ports.voices.resolve,
            ports.llms.check_llm_model,
            session_llm_allowed=policy.session_llm or bool(conversation.agent_id),
        )
        conversation.history = [_message_from(m) for m in data["history"]]
        pending = [_call_from(c) for c in data["pending"]]
        conversation.tools.expect(pending, conversation.config.tool)
        for call_id in data["run_here"]:
            conversation.tools.run_here(call_id)
        for call_id, (result, is_error) in data["results"].items():
            conversation.tools.result(call_id, result, is_error=bool(is_error))
        conversation._withheld = [(str(item), str(text)) for item, text in data["withheld"]]
        owed: Trigger | None = data["owed"]
        if conversation.tools.answered():  # saved as the last result came in: its reply is owed
            conversation.history.extend(conversation.tools.take_results())
            owed, pending = owed or "tool_result", []
        conversation._owed = owed or _owed_by(conversation.history, bool(pending))
        conversation.timeline = Timeline(conversation.started_at)
        conversation.timeline.turns = list(data["timeline"])
    except SnapshotError:
        raise
    except Exception as exc:
        raise SnapshotError(f"snapshot of {data.get('session_id')!r} cannot be rebuilt: {exc}") from exc
    # The clocks of the calls still waiting start again here (the replica that started them is gone).
    conversation.tool_runs.clocks_for([c for c in pending if c.call_id not in data["results"]])
    return conversation


def _owed_by(history: list[ChatMessage], waiting_on_tools: bool) -> Trigger | None:
    """A history that ends on the user's words or a tool's result was being answered when the replica
    stopped: the reply is owed to the resumed socket (the turn in flight is answered again)."""
    if not history or waiting_on_tools:
        return None
    last = history[-1].role
    return "user_turn" if last == "user" else "tool_result" if last == "tool" else None
