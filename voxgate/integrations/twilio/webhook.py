"""The voice webhook: `POST /v1/twilio/voice` answers with TwiML that connects the call to the stream.

A number's voice webhook points here. The request is checked against Twilio's `X-Twilio-Signature`
(with `VOXGATE_TWILIO_AUTH_TOKEN`), and the answer is a bidirectional `<Connect><Stream>` to
`WS /v1/twilio/stream` (stream.py) carrying the chosen agent and, when the server has API keys, a
single-use token: Twilio cannot send an `Authorization` header on the stream.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm
from twilio.twiml.voice_response import Connect, VoiceResponse

from voxgate.agents import AgentError, load_agent
from voxgate.server.auth import ALL_SCOPES, Authenticator, Principal
from voxgate.server.responses import http_error

if TYPE_CHECKING:
    from voxgate.config import Settings

log = logging.getLogger("voxgate.twilio")

router = APIRouter()

STREAM_PATH = "/v1/twilio/stream"
STREAM_TOKEN_TTL_S = 60


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
            log.warning("twilio voice webhook: bad signature for %s (call %s)", url, form.get("CallSid"))
            return http_error(403, "FORBIDDEN", "invalid X-Twilio-Signature")
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
            principal = Principal(owner="twilio", scopes=ALL_SCOPES)
            stream.parameter(name="token", value=auth.mint_token(principal, STREAM_TOKEN_TTL_S))
        else:
            log.warning(
                "twilio voice webhook: API keys are set but VOXGATE_TWILIO_AUTH_TOKEN is not, so this request "
                "cannot be verified and the stream gets no token: it will be refused"
            )
    response.append(connect)
    log.info("twilio voice webhook: call %s from %s, agent %s", form.get("CallSid"), form.get("From"), agent)
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
