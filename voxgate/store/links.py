"""Signed artifact links (§10.1): a URL that works without `Authorization` until it expires.

The link carries its expiry (Unix seconds) and an HMAC-SHA256 over the session id, the artifact type
and that expiry, keyed with the store's per-server secret (`Store.artifact_secret`), so it cannot be
stretched or pointed at another session; servers sharing a store accept each other's links.
"""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: bytes, session_id: str, type: str, expires: int) -> str:
    message = f"{session_id}\n{type}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def check(secret: bytes, session_id: str, type: str, expires: str | None, signature: str | None, now: float) -> str:
    """ "" for a good, live link; else why it is refused ("invalid" or "expired")."""
    if not expires or not signature or not (expires.isascii() and expires.isdigit()):
        return "invalid"
    if not hmac.compare_digest(sign(secret, session_id, type, int(expires)), signature):
        return "invalid"
    if int(expires) < now:
        return "expired"
    return ""
