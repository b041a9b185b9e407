"""API keys (with optional scopes) and single-use temporary tokens.

Tokens exist so a browser never sees an API key: a backend mints one, the page opens one socket with
it, and it is spent. Keys are compared in constant time; tokens are random 256-bit strings held
only in memory, so a restart invalidates them (they live at most ten minutes anyway).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    SESSIONS = "sessions"
    TOKENS = "tokens"


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class Principal:
    """Who is calling. `owner` is stable across a key and the tokens it minted (used for resume)."""

    owner: str
    scopes: frozenset[Scope]
    via_token: bool = False


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _owner_of(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


class Authenticator:
    def __init__(self, keys: list[str], *, max_token_ttl_s: int = 600) -> None:
        self._keys: list[tuple[bytes, frozenset[Scope]]] = []
        for entry in keys:
            key, _, scope = entry.partition(":")
            scopes = ALL_SCOPES if not scope else frozenset({Scope(scope)})
            self._keys.append((key.encode(), scopes))
        self.max_token_ttl_s = max_token_ttl_s
        self._tokens: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """No keys configured: anyone on the (loopback) interface may connect."""
        return not self._keys

    def check_key(self, presented: str | None) -> Principal:
        if self.open:
            # Clients written for the hosted API always send some key; an open server accepts any.
            return Principal(owner="anonymous", scopes=ALL_SCOPES)
        if not presented:
            raise AuthError("UNAUTHORIZED", "missing API key: send 'Authorization: Bearer <key>'")
        candidate = presented.encode()
        for key, scopes in self._keys:
            if hmac.compare_digest(key, candidate):
                return Principal(owner=_owner_of(presented), scopes=scopes)
        raise AuthError("UNAUTHORIZED", "invalid API key")

    def mint_token(self, principal: Principal, ttl_s: int) -> str:
        if Scope.TOKENS not in principal.scopes or principal.via_token:
            raise AuthError("FORBIDDEN", "this credential may not mint tokens")
        token = "tok_" + secrets.token_urlsafe(32)
        session_principal = Principal(owner=principal.owner, scopes=frozenset({Scope.SESSIONS}), via_token=True)
        with self._lock:
            self._purge()
            self._tokens[token] = (time.monotonic() + ttl_s, session_principal)
        return token

    def redeem_token(self, token: str) -> Principal:
        """Spend a token: it opens one socket, once, before it expires."""
        with self._lock:
            self._purge()
            entry = self._tokens.pop(token, None)
        if entry is None:
            raise AuthError("UNAUTHORIZED", "invalid, expired or already used token")
        return entry[1]

    def _purge(self) -> None:
        now = time.monotonic()
        for token in [t for t, (exp, _) in self._tokens.items() if exp <= now]:
            del self._tokens[token]


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
