"""What happens to a tool call after its reply is done: the clock on it, or the server running it.

A call the client runs gets its `timeout_seconds` (default 120): with no result by then it is
answered in history as timed out, a late result is ignored, and the agent says so (following the
tool's `response_instructions.error` when it has one, else a fixed apology). A call the server runs
itself (a stored agent's `http` tool, a built-in tool) is run here and its result answered as a client's would be.
Every timer and run belongs to the session's scope, which ends with the session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from voxgate.aio import TaskScope
from voxgate.protocol.events import Tool
from voxgate.session.reply import TOOL_TIMED_OUT, ActiveReply, clauses_of
from voxgate.session.server_tools import run_server_tool, runs_on_server
from voxgate.session.turn_state import AwaitingTools, Listening, TurnState

if TYPE_CHECKING:
    from voxgate.backends.base import ChatMessage, ToolCallRequest
    from voxgate.session.config import LiveConfig
    from voxgate.session.ports import Transport
    from voxgate.session.replying import Replies
    from voxgate.session.tools import ToolLedger

log = logging.getLogger("voxgate.session")


class ToolHost(Protocol):
    """What the tool runs need of their session (the Conversation)."""

    config: LiveConfig
    agent_id: str
    tools: ToolLedger
    history: list[ChatMessage]
    state: TurnState
    replies: Replies

    @property
    def transport(self) -> Transport | None: ...

    async def on_tool_result(
        self, call_id: str, result: str, is_error: bool = False, *, ours: bool = False
    ) -> None: ...

    async def rest(self) -> None: ...


class ToolRuns:
    def __init__(self, host: ToolHost, name: str) -> None:
        self._host = host
        self._scope = TaskScope(f"{name}:tools")

    def calls_sent(self, reply: ActiveReply) -> None:
        """A reply that called tools completed: each call's clock starts now, or the server runs it."""
        for call in reply.calls:
            settings = self._host.config.tool(call.name)
            # An http tool is the server's to run only for a stored agent (§4.5): an inline one from a client
            # must not make this server call any URL it names; the client runs it like any other tool.
            mine = settings is not None and runs_on_server(settings) and (settings.http is None or self._host.agent_id)
            if settings is not None and mine:
                self._host.tools.run_here(call.call_id)
                self._scope.spawn(self._run(call, settings), f"tool:{call.call_id}")
                continue
            # A tool the session does not list (a model's invention) gets the protocol's default clock.
            timeout = settings.timeout_seconds if settings is not None else Tool.model_fields["timeout_seconds"].default
            self._scope.spawn(self._time_out(call.call_id, timeout), f"timeout:{call.call_id}")

    def clocks_for(self, calls: list[ToolCallRequest]) -> None:
        """Calls restored from a snapshot (session/snapshot.py) get their clocks again, from now: the
        replica that started them is gone. One the server ran is not run twice; it times out instead."""
        for call in calls:
            settings = self._host.config.tool(call.name)
            timeout = settings.timeout_seconds if settings is not None else Tool.model_fields["timeout_seconds"].default
            self._scope.spawn(self._time_out(call.call_id, timeout), f"timeout:{call.call_id}")

    async def _run(self, call: ToolCallRequest, tool: Tool) -> None:
        result, is_error = await run_server_tool(tool, call.arguments)
        await self._host.on_tool_result(call.call_id, result, is_error, ours=True)

    def _timeout_guidance(self, call_id: str) -> str | None:
        name = self._host.tools.name_of(call_id)
        tool = self._host.config.tool(name) if name else None
        if tool is None or tool.response_instructions is None or not tool.response_instructions.error:
            return None
        return f"The tool {name} did not answer in time. {tool.response_instructions.error}"

    async def _time_out(self, call_id: str, after_s: float) -> None:
        host = self._host
        await asyncio.sleep(after_s)
        if not host.tools.time_out(call_id, host.history):
            return
        log.info("tool call %s timed out after %s s", call_id, after_s)
        if host.transport is None:
            return  # nobody to apologise to; the history says it timed out
        if not isinstance(host.state, Listening | AwaitingTools):
            return  # the user is talking or a reply plays: the next reply sees the timeout in history
        if host.tools.pending:
            await host.rest()  # other calls of the same reply may still answer
            return
        instructions = self._timeout_guidance(call_id)
        if instructions:  # the tool's `response_instructions.error` says how to handle it
            await host.replies.start(host.replies.from_llm(instructions=instructions), trigger="tool_result")
        else:
            await host.replies.start(clauses_of(TOOL_TIMED_OUT), trigger="tool_result")

    async def close(self) -> None:
        await self._scope.close()
