"""Where sessions wait to be resumed after their socket drops.

A detached session is kept for the resume window, then forgotten. A late resume gets
`session_not_found`, as on the hosted API (`session_expired` is the duration cap's code, never a
resume's), so nothing of a forgotten session needs remembering.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from voxgate.protocol.events import ErrorCode

S = TypeVar("S")


class ResumeError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Entry(Generic[S]):
    session: S
    owner: str
    attached: bool = True
    detached_at: float = 0.0


class SessionStore(Generic[S]):
    def __init__(self, resume_window_s: float) -> None:
        self.resume_window_s = resume_window_s
        self._live: dict[str, _Entry[S]] = {}

    def add(self, session_id: str, session: S, owner: str) -> None:
        self._live[session_id] = _Entry(session, owner)

    def detach(self, session_id: str) -> None:
        entry = self._live.get(session_id)
        if entry is not None:
            entry.attached = False
            entry.detached_at = time.monotonic()

    def claim(self, session_id: str, owner: str, *, max_attached: int = 0, max_per_owner: int = 0) -> S:
        """Re-attach a detached session to a new socket.

        A resumed session is attached again, so it counts against the session cap (`max_attached`) and
        the per-key limit (`max_per_owner`; 0: no limit) like a new one: before, resumes of dropped
        sessions went past a full server (M1). A takeover of a session still attached (its old socket
        has not noticed the drop yet) changes no count, so it is never refused for capacity."""
        self.expire_old()
        entry = self._live.get(session_id)
        if entry is None:  # unknown, ended, or past its window: the hosted API says the same for all three
            raise ResumeError(ErrorCode.SESSION_NOT_FOUND, "Session not found or grace window has expired")
        if entry.owner != owner:
            raise ResumeError(ErrorCode.SESSION_FORBIDDEN, "this session belongs to another credential")
        if not entry.attached:
            if max_per_owner > 0 and self.attached_of(owner) >= max_per_owner:
                raise ResumeError(ErrorCode.CONCURRENCY_EXCEEDED, "too many concurrent sessions for this key")
            if max_attached > 0 and self.attached_count >= max_attached:
                raise ResumeError(ErrorCode.SERVER_ERROR, "server at capacity: retry with exponential backoff")
        # Still attached means the old socket has not noticed its drop yet: the new one takes over.
        entry.attached = True
        return entry.session

    def sessions(self) -> list[S]:
        """Every session kept, attached or waiting in the resume window."""
        return [e.session for e in self._live.values()]

    def expire_old(self) -> list[S]:
        """Drop sessions detached for longer than the window; return them so their owner can close them."""
        now = time.monotonic()
        gone = [sid for sid, e in self._live.items() if not e.attached and now - e.detached_at > self.resume_window_s]
        dropped = []
        for sid in gone:
            dropped.append(self._live.pop(sid).session)
        return dropped

    def peek(self, session_id: str) -> S | None:
        entry = self._live.get(session_id)
        return entry.session if entry is not None else None

    def remove(self, session_id: str) -> None:
        self._live.pop(session_id, None)

    def attached_of(self, owner: str) -> int:
        return sum(1 for e in self._live.values() if e.attached and e.owner == owner)

    @property
    def attached_count(self) -> int:
        return sum(1 for e in self._live.values() if e.attached)

    def __len__(self) -> int:
        return len(self._live)
