"""API keys (with optional scopes), single-use temporary tokens and resume tokens.

Temporary tokens exist so a browser never sees an API key: a backend mints one, the page opens one
socket with it, and it is spent. Resume tokens exist so a client that lost its socket can get back
into its own session (and only that one) without holding a key: they are not spent on use, because
the SDK's auto-resume may try more than once inside the grace window. Keys are compared in constant
time; tokens are random 256-bit strings held only in memory, so a restart invalidates them (they live
minutes anyway), and every expired one is dropped as time passes so they cannot pile up.

The store is bounded too (`max_live_tokens` of each kind): `/v1/web/token` mints without a
credential once the page is on, so without a cap the store grows as fast as anyone can POST. Past
the cap a temporary token is refused (429 `RATE_LIMITED`, with the seconds until one expires):
evicting instead would silently break tokens already handed to a browser or to Twilio, and the
minting client can back off, which a later redeemer cannot. Resume tokens are minted by the server
itself at `session.ready`, which cannot be refused, so past their cap the one closest to expiry goes.
Purging is a heap by expiry (O(log n) per token); entries of tokens spent or revoked early are
dropped when they outnumber the live ones, so the heap stays within twice the live tokens.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

#: The longest session the hosted API allows, and what a session opened with an API key gets (§6.9).
MAX_SESSION_S = 10_800
TOKEN_PREFIX = "tok_"
#: Live tokens of each kind held at once (`VOXGATE_MAX_LIVE_TOKENS`).
DEFAULT_MAX_LIVE_TOKENS = 10_000
COMPACT_SLACK = 64  # stale heap entries tolerated before a rebuild is worth it
RESUME_TOKEN_PREFIX = "rtok_"


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


class AuthError(Exception):
    """A refused credential. `code` is the wire code, shared by REST (§7.3) and WS (§7.1)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP status a REST route answers with (a WS route closes 1008 instead)."""
        return {"FORBIDDEN": 403, "RATE_LIMITED": 429}.get(self.code, 401)


def _owner_of(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Issued:
    expires_at: float  # on the authenticator's clock
    principal: Principal


class Authenticator:
    """Checks every credential the server takes, and keeps the tokens it minted.

    `clock` is monotonic seconds; tests pass their own to expire tokens without sleeping.
    """

    def __init__(
        self,
        keys: list[str],
        *,
        max_token_ttl_s: int = 600,
        max_live_tokens: int = DEFAULT_MAX_LIVE_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys: list[tuple[bytes, frozenset[Scope]]] = []
        for entry in keys:
            key, _, scope = entry.partition(":")
            scopes = ALL_SCOPES if not scope else frozenset({Scope(scope)})
            self._keys.append((key.encode(), scopes))
        self.max_token_ttl_s = max_token_ttl_s
        self.max_live_tokens = max_live_tokens
        self._clock = clock
        self._tokens: dict[str, _Issued] = {}  # temporary: spent on redemption
        self._resume: dict[str, _Issued] = {}  # resume: valid until expiry or revocation
        self._resume_by_session: dict[str, set[str]] = {}
        self._expiries: list[tuple[float, str]] = []  # a heap over both kinds, so purging is cheap
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """No keys configured: anyone on the (loopback) interface may connect."""
        return not self._keys

    # ---------------------------------------------------------------- keys

    def check_key(self, presented: str | None) -> Principal:
        if self.open:
            # Clients written for the hosted API always send some key; an open server accepts any.
            return Principal(owner="anonymous", scopes=ALL_SCOPES)
        if not presented:
            raise AuthError("UNAUTHORIZED", "missing API key: send 'Authorization: <key>'")
        candidate = presented.encode()
        for key, scopes in self._keys:
            if hmac.compare_digest(key, candidate):
                return Principal(owner=_owner_of(presented), scopes=scopes)
        if presented.startswith((TOKEN_PREFIX, RESUME_TOKEN_PREFIX)):
            raise AuthError("UNAUTHORIZED", "invalid, expired or already used token")
        raise AuthError("UNAUTHORIZED", "invalid API key")

    # ---------------------------------------------------------------- temporary tokens

    def mint_token(self, principal: Principal, ttl_s: float, *, max_session_s: int = MAX_SESSION_S) -> str:
        """A single-use token that opens one session of at most `max_session_s`, redeemable for `ttl_s`."""
        if Scope.TOKENS not in principal.scopes or principal.via_token:
            raise AuthError("FORBIDDEN", "this credential may not mint tokens")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        session_principal = Principal(
            owner=principal.owner, scopes=SESSIONS_ONLY, via_token=True, max_session_s=max_session_s
        )
        with self._lock:
            self._purge()
            if len(self._tokens) >= self.max_live_tokens:
                soonest = self._expiries[0][0] if self._expiries else self._clock()  # no later than the real one
                wait_s = max(1, math.ceil(soonest - self._clock()))
                raise AuthError(
                    "RATE_LIMITED",
                    f"too many live temporary tokens ({self.max_live_tokens}): retry in {wait_s} s",
                )
            self._tokens[token] = self._issue(token, ttl_s, session_principal)
        return token

    def redeem_token(self, token: str) -> Principal:
        """Spend a temporary token: it opens one socket, once, before it expires."""
        with self._lock:
            self._purge()
            issued = self._tokens.pop(token, None)
            self._compact()
        if issued is None:
            raise AuthError("UNAUTHORIZED", "invalid, expired or already used token")
        return issued.principal

    # ---------------------------------------------------------------- resume tokens

    def mint_resume_token(self, session_id: str, owner: str, ttl_s: float) -> str:
        """A token that lets `owner` back into `session_id` (only) for `ttl_s`; it is not spent on use."""
        token = RESUME_TOKEN_PREFIX + secrets.token_urlsafe(32)
        principal = Principal(owner=owner, scopes=SESSIONS_ONLY, via_token=True, resume_of=session_id)
        with self._lock:
            self._purge()
            while len(self._resume) >= self.max_live_tokens:
                self._forget_resume(min(self._resume, key=lambda t: self._resume[t].expires_at))
            self._resume[token] = self._issue(token, ttl_s, principal)
            self._resume_by_session.setdefault(session_id, set()).add(token)
        return token

    def check_resume_token(self, token: str) -> Principal:
        """The principal of a live resume token; the connection decides whether its use is allowed."""
        with self._lock:
            self._purge()
            issued = self._resume.get(token)
        if issued is None:
            raise AuthError("UNAUTHORIZED", "invalid or expired resume token")
        return issued.principal

    def revoke_resume_tokens(self, session_id: str) -> None:
        """The session is gone for good (ended, or its window closed): its resume tokens stop working."""
        with self._lock:
            for token in self._resume_by_session.pop(session_id, set()):
                self._resume.pop(token, None)
            self._compact()

    # ---------------------------------------------------------------- per transport

    def authenticate_rest(self, authorization: str | None) -> Principal:
        """The principal of a REST call: only an API key (or nothing, on an open server) will do."""
        presented = credential(authorization)
        if presented is None and not self.open:
            raise AuthError("MISSING_AUTHORIZATION", "missing Authorization header: send 'Authorization: <key>'")
        if presented and self._is_live_token(presented):
            raise AuthError("FORBIDDEN", "a temporary or resume token cannot call REST endpoints; use an API key")
        return self.check_key(presented)

    def authenticate_ws(self, authorization: str | None, query_token: str | None) -> Principal:
        """The principal of a WS connection: a key, a temporary token (spent here) or a resume token.

        `?token=` is only ever a token. In the header, a live token wins over the keys: the SDK sends
        a temporary or resume token as `Bearer <token>`, exactly as it sends a key.
        """
        if query_token is not None:
            principal = self._redeem_any(query_token)
            if principal is None:
                raise AuthError("UNAUTHORIZED", "invalid, expired or already used token")
        else:
            presented = credential(authorization)
            principal = (self._redeem_any(presented) if presented else None) or self.check_key(presented)
        if Scope.SESSIONS not in principal.scopes:
            raise AuthError("FORBIDDEN", "this credential may not open sessions")
        return principal

    def held(self) -> dict[str, int]:
        """What is held in memory right now, after purging: lets operators and tests see it stays bounded."""
        with self._lock:
            self._purge()
            return {"tokens": len(self._tokens), "resume_tokens": len(self._resume), "expiries": len(self._expiries)}

    # ---------------------------------------------------------------- internals

    def _redeem_any(self, token: str) -> Principal | None:
        with self._lock:
            self._purge()
            issued = self._tokens.pop(token, None) or self._resume.get(token)
            self._compact()
        return issued.principal if issued is not None else None

    def _is_live_token(self, token: str) -> bool:
        with self._lock:
            self._purge()
            return token in self._tokens or token in self._resume

    def _issue(self, token: str, ttl_s: float, principal: Principal) -> _Issued:
        issued = _Issued(self._clock() + ttl_s, principal)
        heapq.heappush(self._expiries, (issued.expires_at, token))
        return issued

    def _purge(self) -> None:
        """Drop what has expired. Redeemed and revoked tokens leave their heap entry until it expires
        or `_compact` drops it."""
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            _, token = heapq.heappop(self._expiries)
            self._tokens.pop(token, None)
            self._forget_resume(token)

    def _forget_resume(self, token: str) -> None:
        issued = self._resume.pop(token, None)
        if issued is not None and issued.principal.resume_of is not None:
            tokens = self._resume_by_session.get(issued.principal.resume_of)
            if tokens is not None:
                tokens.discard(token)
                if not tokens:
                    del self._resume_by_session[issued.principal.resume_of]

    def _compact(self) -> None:
        """Rebuild the heap from the live tokens once stale entries outnumber them: amortised O(1) a token."""
        live = len(self._tokens) + len(self._resume)
        if len(self._expiries) <= 2 * live + COMPACT_SLACK:
            return
        self._expiries = [(i.expires_at, t) for kind in (self._tokens, self._resume) for t, i in kind.items()]
        heapq.heapify(self._expiries)


def credential(authorization: str | None) -> str | None:
    """The credential in an Authorization header: the raw key (the docs' form) or `Bearer <credential>`.

    None when there is no header (or only whitespace), so REST can tell MISSING_AUTHORIZATION from a
    wrong key; "" for a bare `Bearer`, which is a present but empty credential.
    """
    if authorization is None or not authorization.strip():
        return None
    parts = authorization.split(maxsplit=1)
    if parts[0].lower() == "bearer":
        return parts[1].strip() if len(parts) > 1 else ""
    return authorization.strip()


#: The old name, kept for callers written when only `Bearer <key>` was accepted.
bearer = credential
