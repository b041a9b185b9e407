"""API keys (with optional scopes), single-use temporary tokens and resume tokens.

Temporary tokens exist so a browser never sees an API key: a backend mints one, the page opens one
socket with it, and it is spent. Resume tokens exist so a client that lost its socket can get back
into its own session (and only that one) without holding a key: they are not spent on use, because
the SDK's auto-resume may try more than once inside the grace window. Keys are compared in constant
time; tokens are random 256-bit strings kept in a ledger (server/token_ledger.py): this process's
memory by default, so a restart invalidates them (they live minutes anyway), or Redis when several
replicas share the tokens (server/redis_tokens.py). Every expired one is dropped as time passes.

The ledger is bounded too (`max_live_tokens` of each kind): `/v1/web/token` mints without a
credential once the page is on, so without a cap it grows as fast as anyone can POST. Past the cap
a temporary token is refused (429 `RATE_LIMITED`, with the seconds until one expires); resume tokens
are minted by the server itself at `session.ready`, which cannot be refused, so past their cap the
one closest to expiry goes. The token methods are async: a shared ledger is a round trip.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from voxgate.server.principal import ALL_SCOPES, MAX_SESSION_S, SESSIONS_ONLY, Principal, Scope
from voxgate.server.token_ledger import LedgerFull, MemoryTokenLedger, TokenLedger

TOKEN_PREFIX = "tok_"
#: Live tokens of each kind held at once (`VOXGATE_MAX_LIVE_TOKENS`).
DEFAULT_MAX_LIVE_TOKENS = 10_000
RESUME_TOKEN_PREFIX = "rtok_"

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_MAX_LIVE_TOKENS",
    "MAX_SESSION_S",
    "RESUME_TOKEN_PREFIX",
    "SESSIONS_ONLY",
    "TOKEN_PREFIX",
    "AuthError",
    "Authenticator",
    "Principal",
    "Scope",
    "bearer",
    "credential",
]


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


class Authenticator:
    """Checks every credential the server takes, and keeps the tokens it minted in `ledger`.

    `clock` is monotonic seconds for the default (memory) ledger; tests pass their own to expire
    tokens without sleeping. `ledger`: a shared one (Redis) for a fleet of replicas.
    """

    def __init__(
        self,
        keys: list[str],
        *,
        max_token_ttl_s: int = 600,
        max_live_tokens: int = DEFAULT_MAX_LIVE_TOKENS,
        clock: Callable[[], float] = time.monotonic,
        ledger: TokenLedger | None = None,
    ) -> None:
        self._keys: list[tuple[bytes, frozenset[Scope]]] = []
        for entry in keys:
            key, _, scope = entry.partition(":")
            scopes = ALL_SCOPES if not scope else frozenset({Scope(scope)})
            self._keys.append((key.encode(), scopes))
        self.max_token_ttl_s = max_token_ttl_s
        self.max_live_tokens = max_live_tokens
        self.ledger: TokenLedger = ledger if ledger is not None else MemoryTokenLedger(max_live_tokens, clock=clock)

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

    async def mint_token(self, principal: Principal, ttl_s: float, *, max_session_s: int = MAX_SESSION_S) -> str:
        """A single-use token that opens one session of at most `max_session_s`, redeemable for `ttl_s`."""
        if Scope.TOKENS not in principal.scopes or principal.via_token:
            raise AuthError("FORBIDDEN", "this credential may not mint tokens")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        session_principal = Principal(
            owner=principal.owner, scopes=SESSIONS_ONLY, via_token=True, max_session_s=max_session_s
        )
        try:
            await self.ledger.issue(token, session_principal, ttl_s)
        except LedgerFull as exc:
            raise AuthError("RATE_LIMITED", str(exc)) from None
        return token

    async def redeem_token(self, token: str) -> Principal:
        """Spend a temporary token: it opens one socket, once, before it expires."""
        principal = await self.ledger.spend(token)
        if principal is None:
            raise AuthError("UNAUTHORIZED", "invalid, expired or already used token")
        return principal

    # ---------------------------------------------------------------- resume tokens

    async def mint_resume_token(self, session_id: str, owner: str, ttl_s: float) -> str:
        """A token that lets `owner` back into `session_id` (only) for `ttl_s`; it is not spent on use."""
        token = RESUME_TOKEN_PREFIX + secrets.token_urlsafe(32)
        principal = Principal(owner=owner, scopes=SESSIONS_ONLY, via_token=True, resume_of=session_id)
        await self.ledger.issue_resume(token, principal, ttl_s)
        return token

    async def check_resume_token(self, token: str) -> Principal:
        """The principal of a live resume token; the connection decides whether its use is allowed."""
        principal = await self.ledger.resume_principal(token)
        if principal is None:
            raise AuthError("UNAUTHORIZED", "invalid or expired resume token")
        return principal

    async def revoke_resume_tokens(self, session_id: str) -> None:
        """The session is gone for good (ended, or its window closed): its resume tokens stop working."""
        await self.ledger.revoke_session(session_id)

    # ---------------------------------------------------------------- per transport

    async def authenticate_rest(self, authorization: str | None) -> Principal:
        """The principal of a REST call: only an API key (or nothing, on an open server) will do."""
        presented = credential(authorization)
        if presented is None and not self.open:
            raise AuthError("MISSING_AUTHORIZATION", "missing Authorization header: send 'Authorization: <key>'")
        if presented and presented.startswith((TOKEN_PREFIX, RESUME_TOKEN_PREFIX)):
            if await self.ledger.is_live(presented):
                raise AuthError("FORBIDDEN", "a temporary or resume token cannot call REST endpoints; use an API key")
        return self.check_key(presented)

    async def authenticate_ws(self, authorization: str | None, query_token: str | None) -> Principal:
        """The principal of a WS connection: a key, a temporary token (spent here) or a resume token.

        `?token=` is only ever a token. In the header, a live token wins over the keys: the SDK sends
        a temporary or resume token as `Bearer <token>`, exactly as it sends a key.
        """
        if query_token is not None:
            principal = await self._redeem_any(query_token)
            if principal is None:
                raise AuthError("UNAUTHORIZED", "invalid, expired or already used token")
        else:
            presented = credential(authorization)
            principal = (await self._redeem_any(presented) if presented else None) or self.check_key(presented)
        if Scope.SESSIONS not in principal.scopes:
            raise AuthError("FORBIDDEN", "this credential may not open sessions")
        return principal

    async def held(self) -> dict[str, int]:
        """What the ledger holds right now, after purging."""
        return await self.ledger.held()

    async def _redeem_any(self, token: str) -> Principal | None:
        if token.startswith(TOKEN_PREFIX):
            return await self.ledger.spend(token)
        if token.startswith(RESUME_TOKEN_PREFIX):
            return await self.ledger.resume_principal(token)
        return None


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
