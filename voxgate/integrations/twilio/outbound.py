"""`voxgate call +1555...`: place an outbound call whose audio Twilio streams to this server's agent.

The call is created with Twilio's REST API (the official `twilio` client) and inline TwiML: a
bidirectional `<Connect><Stream>` to `WS /v1/twilio/stream` on the server's public URL, carrying the
agent's name, per-call values for its `{placeholders}` and a credential. When the server has API
keys, the credential is a single-use token minted from the server's `GET /v1/token` with the key,
so the key itself never travels in the TwiML. Twilio's account SID and auth token come from the
usual TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN environment variables.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, VoiceResponse

from voxgate.agents import AgentError, load_agent
from voxgate.integrations.twilio.webhook import stream_url

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
TOKEN_TTL_S = 120  # ringing (60 s by default) and answering; the token is spent when the stream opens


class CallError(Exception):
    pass


def public_stream_url(public_url: str) -> str:
    if not urlsplit(public_url).netloc:
        raise CallError(f"not a URL: {public_url!r} (expected https://voice.example.com)")
    return stream_url(public_url)


def outbound_twiml(url: str, agent: str, *, token: str | None = None, parameters: Mapping[str, str] = {}) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    stream.parameter(name="agent", value=agent)
    if token:
        stream.parameter(name="token", value=token)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def mint_token(public_url: str, api_key: str, *, client: httpx.Client | None = None) -> str:
    """A single-use stream token from the server, paid for with an API key."""
    http = client or httpx.Client(timeout=10)
    try:
        response = http.get(
            public_url.rstrip("/") + "/v1/token",
            params={"expires_in_seconds": TOKEN_TTL_S},
            headers={"Authorization": f"Bearer {api_key}"},
        )
    except httpx.HTTPError as exc:
        raise CallError(f"could not reach the server to mint a stream token: {exc}") from exc
    finally:
        if client is None:
            http.close()
    if response.status_code != 200:
        raise CallError(f"the server refused a stream token: HTTP {response.status_code} {response.text[:200]}")
    return str(response.json()["token"])


def place_call(
    client: Client,
    *,
    to: str,
    from_: str,
    agent: str,
    public_url: str,
    token: str | None = None,
    parameters: Mapping[str, str] = {},
    agents_dir: str | None = None,
) -> str:
    """Create the call; returns its Call SID."""
    for number in (to, from_):
        if not E164.match(number):
            raise CallError(f"{number!r} is not an E.164 phone number (like +15551234567)")
    try:
        load_agent(agent, agents_dir)  # the server loads it again when the stream starts; fail before dialling
    except AgentError as exc:
        raise CallError(str(exc)) from exc
    twiml = outbound_twiml(public_stream_url(public_url), agent, token=token, parameters=parameters)
    try:
        call = client.calls.create(to=to, from_=from_, twiml=twiml)
    except TwilioException as exc:
        raise CallError(f"Twilio refused the call: {exc}") from exc
    return str(call.sid)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("to", help="the number to call, E.164 (+15551234567)")
    parser.add_argument("--agent", default="reminder", help="agent file name (default: reminder)")
    parser.add_argument(
        "--from",
        dest="from_",
        default=os.environ.get("TWILIO_FROM_NUMBER"),
        help="your Twilio number (TWILIO_FROM_NUMBER)",
    )
    parser.add_argument("--url", default=None, help="the server's public base URL (VOXGATE_PUBLIC_URL)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("VOXGATE_API_KEY"),
        help="server API key to mint the stream token (VOXGATE_API_KEY)",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a value for the agent's {NAME}; repeatable"
    )


def main(args: argparse.Namespace) -> int:
    from voxgate.config import Settings

    settings = Settings()
    public_url = args.url or settings.public_url
    try:
        if not public_url:
            raise CallError("the server's public URL is needed: --url or VOXGATE_PUBLIC_URL")
        if not args.from_:
            raise CallError("the caller ID is needed: --from or TWILIO_FROM_NUMBER")
        parameters = dict(_split_param(p) for p in args.param)
        token = mint_token(public_url, args.api_key) if args.api_key else None
        sid = place_call(
            Client(),  # TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN from the environment
            to=args.to,
            from_=args.from_,
            agent=args.agent,
            public_url=public_url,
            token=token,
            parameters=parameters,
            agents_dir=settings.agents_dir,
        )
    except (CallError, TwilioException) as exc:
        print(f"voxgate call: {exc}", file=sys.stderr)
        return 1
    print(f"calling {args.to} with agent {args.agent}: {sid}")
    return 0


def _split_param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name in ("agent", "token"):
        raise CallError(f"--param takes NAME=VALUE (NAME a placeholder of the agent), got {text!r}")
    return name, value
