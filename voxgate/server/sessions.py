"""The live and resumable sessions of this process, and which socket holds each.

Opening, resuming and releasing a session are serialized per session id. Without that, a resume
could run while the old socket's release was still detaching (the resumed session went deaf and was
counted as detached), and two sockets resuming at once could both keep it. Here exactly one socket
owns a session at any moment: a resume closes the socket that held it before, and a release by a
socket that no longer owns the session changes nothing.

With a fleet (`fleet`, server/fleet.py: replicas sharing Redis) each session is also saved there at
every turn's end and when its socket drops, so `session.resume` on another replica rebuilds it
(session/snapshot.py) and carries on; the replica that held it lets its copy go at its next
heartbeat, without finishing the record. The per-key limit counts the fleet's leases then, and a
stopping replica hands its sessions over instead of ending them (`shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from voxgate.aio import TaskScope
from voxgate.backends.base import Audio
from voxgate.backends.recognition import Recognizer
from voxgate.backends.registry import Models, OffLoopTurnModel
from voxgate.backends.voices import ResolvedVoice
from voxgate.protocol.events import ErrorCode
from voxgate.server.session_records import SessionRecorder
from voxgate.server.webhooks import WebhookSender
from voxgate.session.conversation import Conversation
from voxgate.session.policy import SessionPolicy
from voxgate.session.ports import SessionPorts
from voxgate.session.snapshot import SnapshotError, restore, snapshot
from voxgate.session.store import ResumeError, SessionStore

if TYPE_CHECKING:
    from voxgate.server.fleet import Fleet

log = logging.getLogger("voxgate.sessions")

SESSION_ID_PREFIX = "sess_"
SERVICE_RESTART = 1012  # the close code of a server going away
SHUTDOWN_END_S = 2.0  # at shutdown, how long one session's work may take to stop
TAKEN_OVER = 4000  # the close code of a socket whose session another socket resumed
FLEET_WRITE_S = 5.0  # at shutdown, how long the last snapshots may take to reach Redis


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
        self.fleet: Fleet | None = None  # the app sets it when replicas share Redis
        self.draining = False  # SIGTERM: no new session is taken (server/drain.py)
        self._saves: dict[str, asyncio.Lock] = {}  # one snapshot write at a time per session, in order
        self._saved: set[str] = set()  # sessions in the fleet's store: the heartbeat renews only these
        self._fleet_tasks = TaskScope("fleet")

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
        """The operator's per-key limit (`max_sessions_per_key`) is reached for `owner` on this replica
        (with a fleet, `admit` then checks the whole fleet's)."""
        return self.max_per_owner > 0 and self.store.attached_of(owner) >= self.max_per_owner

    async def admit(self, conversation: Conversation) -> bool:
        """With a fleet and a per-key limit: a place among the owner's sessions fleet-wide, else False
        (the caller refuses with concurrency_exceeded and `discard`s the session)."""
        if self.fleet is None or self.max_per_owner <= 0:
            return True
        return await self.fleet.acquire_lease(conversation.owner, conversation.session_id, self.max_per_owner)

    def discard(self, conversation: Conversation) -> None:
        """A session opened and refused before it was ready: forgotten, with no record."""
        self.store.remove(conversation.session_id)
        self._owners.pop(conversation.session_id, None)
        self._locks.pop(conversation.session_id, None)

    def open(self, owner: str, holder: Holder) -> Conversation | None:
        """A new session held by `holder`; None at capacity, or while the server drains."""
        self._reap()
        if self.store.attached_count >= self.max_sessions or self.draining:
            return None
        session_id = SESSION_ID_PREFIX + uuid.uuid4().hex
        conversation = Conversation(self.ports, self.policy, session_id, owner)
        self._wire(conversation)
        self.store.add(session_id, conversation, owner)
        self._owners[session_id] = holder
        return conversation

    def _wire(self, conversation: Conversation) -> None:
        conversation.agent_lookup = self.records.find_agent
        if self.fleet is not None:
            conversation.on_rest = self._checkpoint

    async def resume(self, session_id: str, owner: str, holder: Holder) -> Conversation:
        """`holder` takes the session over; the socket that held it is closed. ResumeError if it cannot."""
        async with self._exclusive(session_id):
            self._reap()
            if self.fleet is not None:
                conversation = await self._resume_in_fleet(self.fleet, session_id, owner)
            else:
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
            if self.fleet is not None:
                await self._save(conversation, attached=True)
            return conversation

    async def _resume_in_fleet(self, fleet: Fleet, session_id: str, owner: str) -> Conversation:
        """The session from this replica's memory when it still holds it, else rebuilt from its snapshot
        (taking it over from the replica that held it); attached here, counted against the limits."""
        local = self.store.peek(session_id)
        if local is not None and await fleet.holder(session_id) != fleet.replica_id:
            # A stale copy: another replica took the session over since (or ended it). Its snapshot decides.
            await self._let_go(local, "resumed on another replica")
            local = None
        if local is not None:
            conversation = self.store.claim(session_id, owner, max_attached=self.max_sessions)
        else:
            if self.store.attached_count >= self.max_sessions:
                raise ResumeError(ErrorCode.SERVER_ERROR, "server at capacity: retry with exponential backoff")
            data = await fleet.claim(session_id, owner)
            try:
                conversation = restore(data, self.ports, self.policy)
            except SnapshotError as exc:
                log.error("session %s cannot be resumed here: %s", session_id, exc)
                raise ResumeError(ErrorCode.SESSION_NOT_FOUND, "Session not found or grace window has expired") from exc
            self._wire(conversation)
            self.store.add(session_id, conversation, owner)
            log.info("session %s resumed from its snapshot (taken over by %s)", session_id, fleet.replica_id)
        if self.max_per_owner > 0 and not await fleet.acquire_lease(owner, session_id, self.max_per_owner):
            self.store.detach(session_id)
            await self._save(conversation, attached=False)
            raise ResumeError(ErrorCode.CONCURRENCY_EXCEEDED, "too many concurrent sessions for this key")
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
            if self.fleet is not None:  # resumable on any replica from now, with what the user heard
                await self._save(conversation, attached=False)
                await self._quietly(self.fleet.release_lease(conversation.owner, session_id))

    async def end(self, conversation: Conversation, close_reason: str = "client_end") -> None:
        """Ended for good (`session.end`, the duration cap): its id dies at once, so a resume of it fails."""
        session_id = conversation.session_id
        async with self._exclusive(session_id):
            await conversation.end()
            self.store.remove(session_id)
            self._owners.pop(session_id, None)
            if self.fleet is not None:
                await self._quietly(self.fleet.retire(session_id))
                await self._quietly(self.fleet.release_lease(conversation.owner, session_id))
        self._locks.pop(session_id, None)
        self._saves.pop(session_id, None)
        self._saved.discard(session_id)
        self._finished(conversation, close_reason)

    def _finished(self, conversation: Conversation, close_reason: str) -> None:
        """Gone for good: its record is closed and `session.completed` goes to its webhook."""
        self.webhooks.session_completed(conversation, close_reason)
        self.records.finished(conversation, close_reason)

    def started(self, conversation: Conversation) -> None:
        """The session is ready: its record opens, and `session.started` goes to its webhook (and, in a
        fleet, it is saved: resumable anywhere from now)."""
        self.records.started(conversation)
        self.webhooks.session_started(conversation)
        self._checkpoint(conversation)

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
        """The server stops: alone, every session left ends; in a fleet, each is handed over instead."""
        if self.fleet is not None:
            await self._hand_over(self.fleet)
        else:
            await self._end_all(close_reason)
        await self._fleet_tasks.drain(FLEET_WRITE_S)

    async def _hand_over(self, fleet: Fleet) -> None:
        """A replica stopping (drained, or past its drain time): every session it still has is saved as
        detached, so it is resumable on another replica for a whole window, and let go here without
        finishing its record. A socket still open is closed with 1012 after the save."""
        for conversation in self.store.sessions():
            session_id = conversation.session_id
            holder = self._owners.pop(session_id, None)
            try:
                async with asyncio.timeout(SHUTDOWN_END_S):
                    await conversation.detach()
                    if holder is not None:
                        self.records.status(conversation, "disconnected")
                    await self._save(conversation, attached=False)
                    await fleet.release_lease(conversation.owner, session_id)
                    await conversation.end()  # its timers and tool runs stop here; the session goes on elsewhere
            except Exception:
                log.exception("handing session %s over at shutdown failed", session_id)
            self._forget(conversation)
            if holder is not None:
                with contextlib.suppress(Exception):
                    await holder.close(SERVICE_RESTART, "server restarting: resume the session")

    async def _end_all(self, close_reason: str) -> None:
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

    async def save_for_handover(self) -> None:
        """Draining in a fleet: each connected session is detached and saved now, before its socket is
        told to resume elsewhere, so the replica the client resumes on finds what the user heard (the
        socket's own release comes after the client may already have resumed)."""
        if self.fleet is None:
            return
        for session_id in list(self._owners):
            conversation = self.store.peek(session_id)
            if conversation is None:
                continue
            async with self._exclusive(session_id):
                if session_id not in self._owners:
                    continue
                await conversation.detach()
                await self._save(conversation, attached=False)

    def holders(self) -> list[Holder]:
        """The sockets holding a session right now."""
        return list(self._owners.values())

    async def settled(self) -> None:
        """Returns once no open, resume or release is under way and the snapshots queued are written."""
        for lock in list(self._locks.values()):
            async with lock:
                pass
        await self._fleet_tasks.drain(FLEET_WRITE_S)

    def holds(self, conversation: Conversation, holder: Holder) -> bool:
        return self._owners.get(conversation.session_id) is holder

    def _reap(self) -> None:
        for conversation in self.store.expire_old():
            if self.fleet is not None:  # finished here only if no other replica took it over meanwhile
                self._fleet_tasks.spawn(self._retire_expired(self.fleet, conversation), "retire")
            else:
                self._finished(conversation, "grace_expired")
            self._owners.pop(conversation.session_id, None)
            self._saves.pop(conversation.session_id, None)
            self._saved.discard(conversation.session_id)
            lock = self._locks.get(conversation.session_id)
            if lock is not None and not lock.locked():
                del self._locks[conversation.session_id]

    async def _retire_expired(self, fleet: Fleet, conversation: Conversation) -> None:
        try:
            mine = await fleet.retire(conversation.session_id)
        except Exception:
            log.exception("retiring session %s failed", conversation.session_id)
            mine = True  # Redis is down: this replica held it last, so its record is finished here
        if mine:
            self._finished(conversation, "grace_expired")
        else:
            await conversation.end()

    async def reap_forever(self) -> None:
        from voxgate.server.fleet import HEARTBEAT_S

        beat = 0.0
        while True:
            await asyncio.sleep(1.0)
            self._reap()
            fleet = self.fleet
            if fleet is not None and time.monotonic() - beat >= HEARTBEAT_S:
                beat = time.monotonic()
                try:
                    await self._heartbeat(fleet)
                except Exception:
                    log.exception("fleet heartbeat failed")

    # ------------------------------------------------------------ the fleet

    async def _heartbeat(self, fleet: Fleet) -> None:
        """Renew this replica's leases, let go of the sessions resumed elsewhere, and finish the records
        of sessions nobody holds any more (their replica died and nobody resumed them in the window)."""
        from voxgate.server.fleet import Held

        held = [
            Held(c.session_id, c.owner, c.session_id in self._owners)
            for c in self.store.sessions()
            if c.session_id in self._saved
        ]
        for session_id in await fleet.heartbeat(held):
            conversation = self.store.peek(session_id)
            if conversation is not None:
                await self._let_go(conversation, "resumed on another replica")
        for session_id in await fleet.sweep():
            if self.store.peek(session_id) is not None or self.records.store is None:
                continue
            log.info("session %s was abandoned (its replica stopped and nobody resumed it)", session_id)
            await asyncio.to_thread(
                self.records.store.finish_session, session_id, "completed", "grace_expired", time.time()
            )

    async def _let_go(self, conversation: Conversation, why: str) -> None:
        """Another replica holds this session now: this copy stops, unrecorded, and its socket closes."""
        session_id = conversation.session_id
        holder = self._owners.pop(session_id, None)
        log.info("session %s let go: %s", session_id, why)
        with contextlib.suppress(Exception):
            await conversation.end()
        self._forget(conversation)
        if holder is not None:
            with contextlib.suppress(Exception):
                await holder.close(TAKEN_OVER, "session resumed on another socket")

    def _forget(self, conversation: Conversation) -> None:
        self.store.remove(conversation.session_id)
        self._saves.pop(conversation.session_id, None)
        self._saved.discard(conversation.session_id)
        lock = self._locks.get(conversation.session_id)
        if lock is not None and not lock.locked():
            del self._locks[conversation.session_id]

    def _checkpoint(self, conversation: Conversation) -> None:
        """A turn ended (Conversation.rest): the session is saved, so a replica killed now loses nothing
        said so far. Written in the background, in order, by the socket that holds it."""
        if conversation.session_id in self._owners and not conversation.ended:
            self._fleet_tasks.spawn(self._save(conversation, attached=True), f"save:{conversation.session_id}")

    async def _save(self, conversation: Conversation, *, attached: bool) -> None:
        """The snapshot, as it is when the write's turn comes; a replica that lost the session lets it go."""
        fleet = self.fleet
        if fleet is None:
            return
        lock = self._saves.setdefault(conversation.session_id, asyncio.Lock())
        async with lock:
            if conversation.ended or self.store.peek(conversation.session_id) is not conversation:
                return
            try:
                kept = await fleet.save(snapshot(conversation), attached=attached)
            except Exception:
                log.exception("saving session %s to the fleet failed", conversation.session_id)
                return
            if kept:
                self._saved.add(conversation.session_id)
        if not kept:
            await self._let_go(conversation, "another replica holds it")

    @staticmethod
    async def _quietly(call: object) -> None:
        """A fleet write whose failure must not cost the call (Redis down: leases lapse by themselves)."""
        try:
            await call  # type: ignore[misc]
        except Exception:
            log.exception("fleet write failed")

    @property
    def attached_count(self) -> int:
        return self.store.attached_count

    def __len__(self) -> int:
        return len(self.store)
