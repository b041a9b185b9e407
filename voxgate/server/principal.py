"""Who a credential says is calling: the owner, the scopes and what a token carries (server/auth.py
checks credentials; the token ledgers keep these for the tokens they hold)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: The longest session the hosted API allows, and what a session opened with an API key gets (§6.9).
MAX_SESSION_S = 10_800


class Scope(StrEnum):
    SESSIONS = "sessions"
    TOKENS = "tokens"


ALL_SCOPES = frozenset(Scope)
SESSIONS_ONLY = frozenset({Scope.SESSIONS})


@dataclass(frozen=True)
class Principal:
    """Who is calling.

    `owner` is stable across a key and the tokens it minted, so a session opened with a token can be
    resumed with the key (or another token of it). `max_session_s` is the cap the session code
    enforces: a temporary token carries the one it was minted with. `resume_of` is set only for a
    resume token: the one session this credential may resume, and nothing else.
    """

    owner: str
    scopes: frozenset[Scope]
    via_token: bool = False
    max_session_s: int = MAX_SESSION_S
    resume_of: str | None = None
