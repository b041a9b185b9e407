"""The live and resumable sessions of this process, and which socket holds each.

Opening, resuming and releasing a session are serialized per session id. Without that, a resume
could run while the old socket's release was still detaching (the resumed session went deaf and was
counted as detached), and two sockets resuming at once could both keep it. Here exactly one socket
owns a session at any moment: a resume closes the socket that held it before, and a release by a
socket that no longer owns the session changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from voxgate.backends.base import Audio
from voxgate.backends.recognition import Recognizer
from voxgate.backends.registry import Models, OffLoopTurnModel
from voxgate.backends.voices import ResolvedVoice
from voxgate.server.session_records import SessionRecorder
from voxgate.server.webhooks import WebhookSender
from voxgate.session.conversation import Conversation
from voxgate.session.policy import SessionPolicy
from voxgate.session.ports import SessionPorts
from voxgate.session.store import SessionStore

log = logging.getLogger("voxgate.sessions")

SESSION_ID_PREFIX = "sess_"
SERVICE_RESTART = 1012  # the close code of a server going away
SHUTDOWN_END_S = 2.0  # at shutdown, how long one session's work may take to stop


class Holder(Protocol):
    """A socket that can hold a session; it is closed when another socket resumes the session."""

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


def session_ports(models: Models) -> SessionPorts:
    """The real models, as the narrow ports a session uses."""
    s = models.settings
    return SessionPorts(
        new_vad=lambda: models.vad.new_stream(),
        recognizer=Recognizer(models),
        turn_model=OffLoopTurnModel(models) if s.smart_turn else None,
        llms=models,
        voices=_LazyVoices(models),
        prepare=models.prepare,
    )


class _LazyVoices:
    """The voice catalog, built on first use (building it loads the voice engines' metadata)."""

    def __init__(self, models: Models) -> None:
        self._models = models

    def resolve(self, requested: str | None, *, language: str | None = None) -> ResolvedVoice:
        return self._models.voices.resolve(requested, language=language)

    async def synthesize(self, text: str, voice: ResolvedVoice) -> tuple[Audio, int]:
        return await self._models.voices.synthesize(text, voice)


class SessionRegistry:
    def __init__(self, models: Models, ports: SessionPorts | None = None, policy: SessionPolicy | None = None) -> None:
        settings = models.settings
        self.models = models
        self.max_sessions = settings.max_sessions
        self.max_per_owner = settings.max_sessions_per_key
        self.store: SessionStore[Conversation] = SessionStore(settings.resume_window_s)
        self._ports = ports
        self.policy = policy or SessionPolicy.from_settings(settings)
        self.webhooks = WebhookSender()
        # The app gives it the store (voxgate.store). Its close at the app's shutdown first ends the
        # sessions still kept (`shutdown`), so their records are finished before the last writes drain.
        self.records = SessionRecorder(None, settings)
        self._owners: dict[str, Holder] = {}  # session_id -> the socket that holds it now
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def ports(self) -> SessionPorts:
        if self._ports is None:  # built on first use: turn_model is a model load
            self._ports = session_ports(self.models)
        return self._ports

    @contextlib.asynccontextmanager
    async def _exclusive(self, session_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            yield

    def owner_at_limit(self, owner: str) -> bool:
        """The operator's per-key limit (`max_sessions_per_key`) is reached for `owner`."""
        return self.max_per_owner > 0 and self.store.attached_of(owner) >= self.max_per_owner

    def open(self, owner: str, holder: Holder) -> Conversation | None:
        """A new session held by `holder`; None at capacity."""
        self._reap()
        if self.store.attached_count >= self.max_sessions:
            return None
        session_id = SESSION_ID_PREFIX + uuid.uuid4().hex
        conversation = Conversation(self.ports, self.policy, session_id, owner)
        conversation.agent_lookup = self.records.find_agent
        self.store.add(session_id, conversation, owner)
        self._owners[session_id] = holder
        return conversation

    async def resume(self, session_id: str, owner: str, holder: Holder) -> Conversation:
        """`holder` takes the session over; the socket that held it is closed. ResumeError if it cannot."""
        async with self._exclusive(session_id):
            self._reap()
            conversation = self.store.claim(
                session_id, owner, max_attached=self.max_sessions, max_per_owner=self.max_per_owner
            )
            previous = self._owners.get(session_id)
            self._owners[session_id] = holder
            if previous is not None and previous is not holder:
                await conversation.detach()
                with contextlib.suppress(Exception):
                    await previous.close(4000, "session resumed on another socket")
            conversation.resumed()
            self.records.status(conversation, "active")
            return conversation

    async def release(self, conversation: Conversation, holder: Holder) -> None:
        """The socket `holder` closed: keep its session resumable for the window (if it still held it)."""
        session_id = conversation.session_id
        async with self._exclusive(session_id):
            if self._owners.get(session_id) is not holder:
                return  # another socket took it over already
            del self._owners[session_id]
            await conversation.detach()
            self.store.detach(session_id)
            self.records.status(conversation, "disconnected")

    async def end(self, conversation: Conversation, close_reason: str = "client_end") -> None:
        """Ended for good (`session.end`, the duration cap): its id dies at once, so a resume of it fails."""
        session_id = conversation.session_id
        async with self._exclusive(session_id):
            await conversation.end()
            self.store.remove(session_id)
            self._owners.pop(session_id, None)
        self._locks.pop(session_id, None)
        self._finished(conversation, close_reason)

    def _finished(self, conversation: Conversation, close_reason: str) -> None:
        """Gone for good: its record is closed and `session.completed` goes to its webhook."""
        self.webhooks.session_completed(conversation, close_reason)
        self.records.finished(conversation, close_reason)

    def started(self, conversation: Conversation) -> None:
        """The session is ready: its record opens, and `session.started` goes to its webhook."""
        self.records.started(conversation)
        self.webhooks.session_started(conversation)

    async def end_by_id(self, session_id: str) -> None:
        """DELETE /v1/sessions/{id} of a live session: it ends first, and its socket closes."""
        conversation = self.store.peek(session_id)
        if conversation is None:
            return
        holder = self._owners.get(session_id)
        await self.end(conversation, "client_end")
        await conversation.emit(conversation.ended_event())
        if holder is not None:
            with contextlib.suppress(Exception):
                await holder.close(1000, "session deleted")

    async def shutdown(self, close_reason: str = "server_shutdown") -> None:
        """The server stops: every session left ends for good, and its record is finished.

        uvicorn has already closed the sockets (1012, service restart) by the time the app shuts down,
        so the sessions are waiting in the resume window, or still held by a socket that did not go in
        the graceful-shutdown time: those are closed with 1012 here. Without this their records stayed
        `disconnected` (or `active`) in the store forever, though nothing can resume them any more.
        Idempotent: a second call finds nothing."""
        for conversation in self.store.sessions():
            session_id = conversation.session_id
            holder = self._owners.pop(session_id, None)
            try:
                async with asyncio.timeout(SHUTDOWN_END_S):
                    await conversation.end()
            except Exception:
                log.exception("ending session %s at shutdown failed", session_id)
            self.store.remove(session_id)
            self._locks.pop(session_id, None)
            if holder is not None:
                with contextlib.suppress(Exception):
                    await holder.close(SERVICE_RESTART, "server shutting down")
            self._finished(conversation, close_reason)

    def holds(self, conversation: Conversation, holder: Holder) -> bool:
        return self._owners.get(conversation.session_id) is holder

    def _reap(self) -> None:
        for conversation in self.store.expire_old():
            self._finished(conversation, "grace_expired")
            self._owners.pop(conversation.session_id, None)
            lock = self._locks.get(conversation.session_id)
            if lock is not None and not lock.locked():
                del self._locks[conversation.session_id]

    async def reap_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._reap()

    @property
    def attached_count(self) -> int:
        return self.store.attached_count

    def __len__(self) -> int:
        return len(self.store)
