"""Host and Origin checks for a server that runs without API keys (open mode).

An open server trusts whoever reaches it, and binds only to loopback for that reason. Loopback is
not enough against a browser on the same machine:

- **cross-site WebSocket hijacking**: any web page the user opens may connect to
  `ws://127.0.0.1:8000/v1/ws` (browsers apply no same-origin rule to WebSockets) and drive a
  session, or resume a phone call's; or POST to the REST routes;
- **DNS rebinding**: a page on `evil.example` whose name is re-pointed at 127.0.0.1 becomes
  same-origin with the server and can read its answers (`GET /v1/twilio/calls`, records).

So, in open mode, this pure-ASGI middleware refuses (403, or a refused WebSocket handshake):

- any request whose `Host` is not a loopback name or address, the listen host, `public_url`'s host,
  an allowed origin's host or one of `allowed_hosts`: a rebound name arrives with the attacker's
  host in it;
- WebSocket handshakes and state-changing requests (POST, PUT, PATCH, DELETE) whose `Origin` is
  neither the server's own (the Host it was reached by) nor in `allowed_origins` (default: loopback
  pages on any port). A request without `Origin` is not from a web page's script and passes, as do
  the server's own page and `curl`.

A server with API keys does not need this: every route but the public ones wants a credential,
which a foreign page does not have.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from voxgate.server.rest_errors import error_response

log = logging.getLogger("voxgate.server.origin")

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WILDCARD = "*"


@dataclass(frozen=True)
class AllowedOrigin:
    """`scheme://host[:port]`; without a port it allows every port of that host."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> AllowedOrigin | None:
        parts = urlsplit(text.strip().lower())
        if not parts.scheme or not parts.hostname:
            return None
        return cls(parts.scheme, parts.hostname, parts.port)

    def allows(self, origin: AllowedOrigin) -> bool:
        if (self.scheme, self.host) != (origin.scheme, origin.host):
            return False
        return self.port is None or self.port == (origin.port or _default_port(origin.scheme))


def is_loopback_host(host: str) -> bool:
    """localhost, *.localhost (RFC 6761 keeps them on this machine), 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OriginPolicy:
    """Which Host and Origin headers an open server serves (see the module's docstring)."""

    def __init__(self, *, origins: Iterable[str], hosts: Iterable[str]) -> None:
        origins = [o.strip() for o in origins if o.strip()]
        self.any_origin = WILDCARD in origins
        self.origins = [o for o in (AllowedOrigin.parse(text) for text in origins if text != WILDCARD) if o]
        hosts = [h.strip().lower().strip("[]") for h in hosts if h and h.strip()]
        self.any_host = WILDCARD in hosts
        self.hosts = frozenset(hosts) | {o.host.strip("[]") for o in self.origins}

    def host_allowed(self, host_header: str | None) -> bool:
        if host_header is None or self.any_host:
            return True  # no Host at all is HTTP/1.0 from a program: no browser sends that
        host = _hostname(host_header)
        return host is not None and (is_loopback_host(host) or host in self.hosts)

    def origin_allowed(self, origin_header: str, host_header: str | None) -> bool:
        if self.any_origin:
            return True
        origin = AllowedOrigin.parse(origin_header)
        if origin is None:
            return False  # "null" (a sandboxed frame, a file:// page) or junk
        if host_header is not None and _netloc(origin) == _normal_netloc(host_header, origin.scheme):
            return True  # the server's own page
        return any(allowed.allows(origin) for allowed in self.origins)


class OriginGuardMiddleware:
    """Refuses, on an open server, foreign Host headers and foreign pages' WebSockets and writes."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy, *, enabled: bool) -> None:
        self.app = app
        self.policy = policy
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host, origin = headers.get("host"), headers.get("origin")
        path = str(scope.get("path", ""))
        refusal = None
        if not self.policy.host_allowed(host):
            refusal = f"Host {host!r} is not served by this keyless server (set VOXGATE_ALLOWED_HOSTS to add it)"
        elif origin is not None and (scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS):
            if not self.policy.origin_allowed(origin, host):
                refusal = f"Origin {origin!r} is not allowed on this keyless server (see VOXGATE_ALLOWED_ORIGINS)"
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning("refused %s %s: %s", scope["type"], path, refusal[:300])
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})
            return
        await error_response(path, 403, "FORBIDDEN", refusal[:500])(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _hostname(host_header: str) -> str | None:
    parts = urlsplit("//" + host_header.strip())
    try:
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        return None
    return (parts.hostname or "").lower() or None


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


def _netloc(origin: AllowedOrigin) -> tuple[str, int]:
    return origin.host, origin.port or _default_port(origin.scheme)


def _normal_netloc(host_header: str, scheme: str) -> tuple[str, int] | None:
    parts = urlsplit("//" + host_header.strip().lower())
    try:
        port = parts.port
    except ValueError:
        return None
    return (parts.hostname or ""), port or _default_port(scheme)


def policy_for(
    *, origins: Iterable[str], hosts: Iterable[str], listen_host: str, public_url: str | None
) -> OriginPolicy:
    """The policy of a server's settings: the listen host and the public URL's host are its own names."""
    own = [listen_host]
    if public_url:
        own.append(urlsplit(public_url).hostname or "")
    return OriginPolicy(origins=origins, hosts=[*hosts, *own])
