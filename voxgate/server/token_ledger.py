"""Where minted tokens are kept: this process's memory, or Redis for a fleet (server/redis_tokens.py).

The Authenticator (server/auth.py) checks keys itself and keeps its tokens in a ledger, so a token
minted on one replica can be spent on another when the ledger is shared. The interface is async:
the shared ledger is a network round trip, and every caller runs on the event loop.

Two kinds are kept. A temporary token is spent on redemption (`spend`: exactly one caller gets its
principal, ever) and its count is capped, past which minting is refused (`LedgerFull`): evicting
would silently break tokens already handed to a browser or to Twilio, while the minting client can
back off. A resume token is looked up, not spent (the SDK may retry a resume inside the window), is
revoked with its session, and past the cap the one closest to expiry goes, because the server mints
it itself at `session.ready` and cannot refuse.

The memory ledger purges with a heap by expiry (O(log n) per token); entries of tokens spent or
revoked early are dropped when they outnumber the live ones, so the heap stays within twice the live
tokens.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from voxgate.server.principal import Principal

COMPACT_SLACK = 64  # stale heap entries tolerated before a rebuild is worth it


class LedgerFull(Exception):
    """Too many live temporary tokens; `wait_s`: when the soonest one expires."""

    def __init__(self, limit: int, wait_s: int) -> None:
        super().__init__(f"too many live temporary tokens ({limit}): retry in {wait_s} s")
        self.limit = limit
        self.wait_s = wait_s


class TokenLedger(Protocol):
    async def issue(self, token: str, principal: Principal, ttl_s: float) -> None:
        """Keep a temporary token for `ttl_s`; LedgerFull past the cap."""
        ...

    async def spend(self, token: str) -> Principal | None:
        """The temporary token's principal, once: a second call (on any replica) gets None."""
        ...

    async def issue_resume(self, token: str, principal: Principal, ttl_s: float) -> None:
        """Keep a resume token of `principal.resume_of` for `ttl_s` (past the cap, the soonest to expire goes)."""
        ...

    async def resume_principal(self, token: str) -> Principal | None:
        """The live resume token's principal (not spent)."""
        ...

    async def revoke_session(self, session_id: str) -> None:
        """Every resume token of the session stops working."""
        ...

    async def is_live(self, token: str) -> bool:
        """A live token of either kind."""
        ...

    async def held(self) -> dict[str, int]:
        """What is held right now, after purging: operators and tests see it stays bounded."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class _Issued:
    expires_at: float  # on the ledger's clock
    principal: Principal


class MemoryTokenLedger:
    """One process's tokens, in memory: a restart invalidates them (they live minutes anyway).

    `clock` is monotonic seconds; tests pass their own to expire tokens without sleeping."""

    def __init__(self, max_live_tokens: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_live_tokens = max_live_tokens
        self._clock = clock
        self._tokens: dict[str, _Issued] = {}  # temporary: spent on redemption
        self._resume: dict[str, _Issued] = {}  # resume: valid until expiry or revocation
        self._resume_by_session: dict[str, set[str]] = {}
        self._expiries: list[tuple[float, str]] = []  # a heap over both kinds, so purging is cheap
        self._lock = threading.Lock()

    async def issue(self, token: str, principal: Principal, ttl_s: float) -> None:
        with self._lock:
            self._purge()
            if len(self._tokens) >= self.max_live_tokens:
                soonest = self._expiries[0][0] if self._expiries else self._clock()  # no later than the real one
                raise LedgerFull(self.max_live_tokens, max(1, math.ceil(soonest - self._clock())))
            self._tokens[token] = self._issue(token, ttl_s, principal)

    async def spend(self, token: str) -> Principal | None:
        with self._lock:
            self._purge()
            issued = self._tokens.pop(token, None)
            self._compact()
        return issued.principal if issued is not None else None

    async def issue_resume(self, token: str, principal: Principal, ttl_s: float) -> None:
        with self._lock:
            self._purge()
            while len(self._resume) >= self.max_live_tokens:
                self._forget_resume(min(self._resume, key=lambda t: self._resume[t].expires_at))
            self._resume[token] = self._issue(token, ttl_s, principal)
            if principal.resume_of is not None:
                self._resume_by_session.setdefault(principal.resume_of, set()).add(token)

    async def resume_principal(self, token: str) -> Principal | None:
        with self._lock:
            self._purge()
            issued = self._resume.get(token)
        return issued.principal if issued is not None else None

    async def revoke_session(self, session_id: str) -> None:
        with self._lock:
            for token in self._resume_by_session.pop(session_id, set()):
                self._resume.pop(token, None)
            self._compact()

    async def is_live(self, token: str) -> bool:
        with self._lock:
            self._purge()
            return token in self._tokens or token in self._resume

    async def held(self) -> dict[str, int]:
        with self._lock:
            self._purge()
            return {"tokens": len(self._tokens), "resume_tokens": len(self._resume), "expiries": len(self._expiries)}

    async def close(self) -> None:
        return None

    # ---------------------------------------------------------------- internals

    def _issue(self, token: str, ttl_s: float, principal: Principal) -> _Issued:
        issued = _Issued(self._clock() + ttl_s, principal)
        heapq.heappush(self._expiries, (issued.expires_at, token))
        return issued

    def _purge(self) -> None:
        """Drop what has expired. Spent and revoked tokens leave their heap entry until it expires or
        `_compact` drops it."""
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
