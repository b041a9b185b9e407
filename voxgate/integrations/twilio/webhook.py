"""The voice webhook: `POST /v1/twilio/voice` answers with TwiML that connects the call to the stream.

A number's voice webhook points here. The request is checked against Twilio's `X-Twilio-Signature`
(with `VOXGATE_TWILIO_AUTH_TOKEN`), and the answer is a bidirectional `<Connect><Stream>` to
`WS /v1/twilio/stream` (stream.py) carrying the chosen agent and, when the server has API keys, a
single-use token: Twilio cannot send an `Authorization` header on the stream.

The body is at most 64 KB, refused while it is read (server/body_limits.py), before the signature
is checked. Twilio's signature has no nonce or timestamp, so one captured signed request could be
replayed to mint stream tokens forever: a verified request's CallSid is remembered (CALL_SIDS_KEPT
of them, for CALL_SID_TTL_S, longer than any call lasts) and a second request for it is refused 409.
Each call's token carries an owner of its own (`call_owner`), so no other call or client shares
its session. The caller's number is logged at DEBUG only.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm
from twilio.twiml.voice_response import Connect, VoiceResponse

from voxgate.agents import AgentError, load_agent
from voxgate.server.auth import ALL_SCOPES, Authenticator, AuthError, Principal
from voxgate.server.responses import http_error

if TYPE_CHECKING:
    from voxgate.config import Settings

log = logging.getLogger("voxgate.twilio")

router = APIRouter()

STREAM_PATH = "/v1/twilio/stream"
STREAM_TOKEN_TTL_S = 60
CALL_SID_TTL_S = 6 * 3600  # Twilio ends a call after 4 hours at most
CALL_SIDS_KEPT = 50_000  # only verified requests are remembered: real calls, not an attacker's posts


def call_owner(call_sid: str | None) -> str:
    """The owner of one call's session: its own, so no other client or call may resume it."""
    return "twilio_" + (call_sid if call_sid and call_sid.isalnum() else uuid.uuid4().hex)[:64]


class SeenCalls:
    """CallSids of verified webhook requests, for CALL_SID_TTL_S and at most CALL_SIDS_KEPT of them.

    An OrderedDict by arrival: the oldest expire first, so purging pops from the front (O(1) each).
    """

    def __init__(self, *, ttl_s: float = CALL_SID_TTL_S, max_kept: int = CALL_SIDS_KEPT) -> None:
        self.ttl_s, self.max_kept = ttl_s, max_kept
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, call_sid: str, now: float | None = None) -> bool:
        """Remember `call_sid`; False if it was seen within the TTL (a replay)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._seen and (len(self._seen) >= self.max_kept or next(iter(self._seen.values())) <= now):
                self._seen.popitem(last=False)
            if call_sid in self._seen:
                return False
            self._seen[call_sid] = now + self.ttl_s
            return True

    def __len__(self) -> int:
        return len(self._seen)


def seen_calls(app: object) -> SeenCalls:
    state = app.state  # type: ignore[attr-defined]
    seen: SeenCalls | None = getattr(state, "twilio_seen_calls", None)
    if seen is None:
        seen = state.twilio_seen_calls = SeenCalls()
    return seen


@router.api_route("/v1/twilio/voice", methods=["POST", "GET"])
async def twilio_voice(request: Request, agent: Annotated[str | None, Query()] = None) -> Response:
    """TwiML for a number's voice webhook: connect the call to the stream, with the chosen agent."""
    auth: Authenticator = request.app.state.auth
    settings: Settings = request.app.state.models.settings
    form: dict[str, str] = {}
    if request.method == "POST":
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    secret = settings.twilio_auth_token
    if secret is not None:
        url = _public_url(request, settings.public_url)
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        signature = request.headers.get("x-twilio-signature", "")
        if not RequestValidator(secret.get_secret_value()).validate(url, form, signature, algorithm):
            log.warning("twilio voice webhook: bad signature for %s (call %s)", url[:300], form.get("CallSid", "")[:64])
            return http_error(403, "FORBIDDEN", "invalid X-Twilio-Signature")
        call_sid = form.get("CallSid", "")
        if not call_sid:
            return http_error(400, "INVALID_REQUEST", "a voice webhook request names its CallSid", param="CallSid")
        if not seen_calls(request.app).first_time(call_sid):
            log.warning("twilio voice webhook: call %s was already answered: a replayed request refused", call_sid[:64])
            return http_error(409, "CONFLICT", "this call was already connected", param="CallSid")
    if agent:
        try:
            load_agent(agent, settings.agents_dir)
        except AgentError as exc:
            return http_error(404, "NOT_FOUND", str(exc))
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=_stream_url(request, settings.public_url))
    if agent:
        stream.parameter(name="agent", value=agent)
    if not auth.open:
        if secret is not None:  # Twilio's request was verified: the stream gets a single-use token
            principal = Principal(owner=call_owner(form.get("CallSid")), scopes=ALL_SCOPES)
            try:
                token = await auth.mint_token(principal, STREAM_TOKEN_TTL_S)
            except AuthError as exc:  # the token store is full (RATE_LIMITED): Twilio plays its error
                log.warning("twilio voice webhook: no stream token for call %s: %s", form.get("CallSid"), exc.message)
                return http_error(exc.status, exc.code, exc.message)
            stream.parameter(name="token", value=token)
        else:
            log.warning(
                "twilio voice webhook: API keys are set but VOXGATE_TWILIO_AUTH_TOKEN is not, so this request "
                "cannot be verified and the stream gets no token: it will be refused"
            )
    response.append(connect)
    log.info("twilio voice webhook: call %s, agent %s", form.get("CallSid", "")[:64], agent)
    log.debug("twilio voice webhook: call %s from %s", form.get("CallSid", "")[:64], form.get("From", "")[:32])
    return Response(str(response), media_type="application/xml")


def _public_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio requested (and signed): behind a proxy, the configured public URL and this path."""
    if not public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return public_url.rstrip("/") + request.url.path + query


def stream_url(public_url: str) -> str:
    """wss://HOST[/prefix]/v1/twilio/stream for the server's public base URL."""
    parts = urlsplit(public_url)
    scheme = "ws" if parts.scheme in ("http", "ws") else "wss"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + STREAM_PATH, "", ""))


def _stream_url(request: Request, public_url: str | None) -> str:
    if public_url:
        return stream_url(public_url)
    return f"wss://{request.url.netloc}{STREAM_PATH}"  # Twilio connects to wss:// only
