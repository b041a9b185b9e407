"""What the live sessions write to the record store, and how `agent_id` finds a stored agent.

A session is recorded when it is ready (`active`), marked `disconnected` while it waits in the resume
window, and finished (`completed`, with the close reason) when it ends for good: `session.end`, the
duration cap, the window running out, or the server stopping (`server_shutdown`). Finishing writes
its artifacts: the timeline of turns, the metadata, and the stereo recording when the operator turned
recording on. Store calls are blocking
(SQLite), so they run in worker threads; a store that fails costs the record, never the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxgate.aio import TaskScope
from voxgate.store.base import final_status
from voxgate.store.binding import agent_lookup

if TYPE_CHECKING:
    from voxgate.config import Settings
    from voxgate.protocol.events import SessionConfig
    from voxgate.session.conversation import Conversation
    from voxgate.store.base import Store

log = logging.getLogger("voxgate.records")

DRAIN_S = 10.0  # at shutdown, how long the records still being written may take


class SessionRecorder:
    def __init__(self, store: Store | None, settings: Settings) -> None:
        self.store = store
        self._settings = settings
        self._tasks = TaskScope("records")

    # ------------------------------------------------------------ agent_id

    async def find_agent(self, owner: str, agent_id: str) -> tuple[str, SessionConfig] | None:
        """A stored agent of `owner` by id or name, else an agent file of that name (the Voxgate extension)."""
        if self.store is not None:
            try:
                found = await agent_lookup(self.store)(owner, agent_id)
            except Exception:
                log.exception("agent lookup failed")
                found = None
            if found is not None:
                return found
        return await asyncio.to_thread(self._agent_file, agent_id)

    def _agent_file(self, name: str) -> tuple[str, SessionConfig] | None:
        from voxgate.agents import AgentError, load_agent

        if not name or "/" in name or "\\" in name or name.startswith("."):
            return None
        try:
            agent = load_agent(name, self._settings.agents_dir)
        except (AgentError, FileNotFoundError, OSError, ValueError):
            return None
        session, _ = agent.session_config(encoding="audio/pcm")
        return name, session

    # ------------------------------------------------------------ the lifecycle

    def started(self, conversation: Conversation) -> None:
        config = conversation.resolved_config()
        self._run(
            "start",
            lambda store: store.start_session(
                conversation.session_id,
                conversation.owner,
                conversation.agent_id or None,
                config,
                conversation.started_at,
            ),
        )

    def status(self, conversation: Conversation, status: str) -> None:
        self._run("status", lambda store: store.set_status(conversation.session_id, status))

    def finished(self, conversation: Conversation, close_reason: str) -> None:
        """Ended for good: the record is closed and its artifacts written (the WAV is made in a thread)."""
        ended = time.time()
        recorder, conversation.recorder = conversation.recorder, None
        timeline = list(conversation.timeline.turns)
        metadata = self._metadata(conversation, close_reason, ended)

        def write(store: Store) -> None:
            sid = conversation.session_id
            store.finish_session(sid, final_status(close_reason), close_reason, ended)
            store.add_artifact(
                sid, "timeline", "application/json", json.dumps({"session_id": sid, "turns": timeline}).encode()
            )
            store.add_artifact(sid, "metadata", "application/json", json.dumps(metadata).encode())
            if recorder is not None:
                try:
                    store.add_artifact(sid, "audio", "audio/wav", recorder.wav())
                finally:
                    recorder.close()

        if self.store is None and recorder is not None:
            recorder.close()
        self._run("finish", write)

    def _metadata(self, conversation: Conversation, close_reason: str, ended: float) -> dict[str, Any]:
        s = self._settings
        c = conversation.config
        session_s, audio_s = conversation.durations(ended)
        return {
            "session_id": conversation.session_id,
            "agent_id": conversation.agent_id or None,
            "created_at": conversation.started_at,
            "ended_at": ended,
            "session_duration_seconds": session_s,
            "audio_duration_seconds": audio_s,
            "close_reason": close_reason,
            "turns": len(conversation.timeline),
            "models": {
                "stt": Path(s.stt_model).name,
                "llm": c.llm[0].model if c.llm else (c.llm_model or Path(s.llm_model).name),
                "voice": c.voice or conversation.default_voice,
            },
        }

    def _run(self, what: str, call: Any) -> None:
        store = self.store
        if store is None:
            return

        async def run() -> None:
            try:
                await asyncio.to_thread(call, store)
            except Exception:
                log.exception("session record %s failed", what)

        self._tasks.spawn(run(), f"record:{what}")

    async def close(self) -> None:
        """Wait for the records still being written (a stopping server finishes what it ended)."""
        await self._tasks.drain(DRAIN_S)
