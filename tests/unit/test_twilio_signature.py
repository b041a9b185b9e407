"""POST /v1/twilio/voice: Twilio's signature is checked, and the TwiML connects the call to the stream.

The app is built with settings and no preload: nothing here loads a model.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from voxgate.app import create_app
from voxgate.config import Settings

AUTH_TOKEN = "twilio-auth-token-for-tests"
API_KEY = "unit-key"
FORM = {
    "CallSid": "CA0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+15551230000",
    "To": "+15559870000",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


def make_client(**overrides: object) -> TestClient:
    settings = Settings(
        preload=False, api_keys=[SecretStr(API_KEY)], twilio_auth_token=SecretStr(AUTH_TOKEN), **overrides
    )  # type: ignore[arg-type]
    return TestClient(create_app(settings))


def post_signed(client: TestClient, url: str, form: dict[str, str], signature: str | None = None):
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return client.post(
        url,
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


async def test_valid_signature_gets_twiml_with_stream_url_agent_and_token() -> None:
    client = make_client()
    response = post_signed(client, "http://testserver/v1/twilio/voice?agent=support", FORM)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    xml = response.text
    assert "<Response><Connect><Stream" in xml and "</Stream></Connect></Response>" in xml, xml
    assert 'url="wss://testserver/v1/twilio/stream"' in xml
    assert '<Parameter name="agent" value="support" />' in xml
    # The verified request gets a single-use token for the stream, redeemable once.
    token = re.search(r'<Parameter name="token" value="(tok_[^"]+)" />', xml)
    assert token is not None, xml
    auth = client.app.state.auth  # type: ignore[attr-defined]
    assert (await auth.redeem_token(token.group(1))).owner == "twilio_" + FORM["CallSid"]  # M4: each call its own owner


@pytest.mark.parametrize(
    "signature",
    ["", "bm90IGEgc2lnbmF0dXJl", RequestValidator("some-other-token").compute_signature("x", {})],
)
def test_bad_signature_is_forbidden(signature: str) -> None:
    client = make_client()
    response = post_signed(client, "http://testserver/v1/twilio/voice?agent=support", FORM, signature)
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    assert "<Response>" not in response.text


def test_signature_over_other_parameters_or_url_is_forbidden() -> None:
    client = make_client()
    url = "http://testserver/v1/twilio/voice?agent=support"
    signed_for_other_caller = RequestValidator(AUTH_TOKEN).compute_signature(url, {**FORM, "From": "+15550000000"})
    assert post_signed(client, url, FORM, signed_for_other_caller).status_code == 403
    signed_for_other_agent = RequestValidator(AUTH_TOKEN).compute_signature(
        "http://testserver/v1/twilio/voice?agent=dental", FORM
    )
    assert post_signed(client, url, FORM, signed_for_other_agent).status_code == 403


def test_public_url_is_what_twilio_signed_and_where_the_stream_is() -> None:
    client = make_client(public_url="https://voice.example.com")
    # Twilio signed the public URL it called; the request reaches us through a proxy as http://testserver.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        "https://voice.example.com/v1/twilio/voice?agent=dental", FORM
    )
    response = post_signed(client, "http://testserver/v1/twilio/voice?agent=dental", FORM, signature)
    assert response.status_code == 200, response.text
    assert 'url="wss://voice.example.com/v1/twilio/stream"' in response.text
    assert '<Parameter name="agent" value="dental" />' in response.text


def test_unknown_agent_is_refused_before_the_call_connects() -> None:
    client = make_client()
    response = post_signed(client, "http://testserver/v1/twilio/voice?agent=nobody", FORM)
    assert response.status_code == 404
    assert "nobody" in response.json()["message"]


def test_open_loopback_server_needs_no_signature_and_no_token() -> None:
    client = TestClient(create_app(Settings(preload=False)))
    response = client.post("/v1/twilio/voice", content=urlencode(FORM))
    assert response.status_code == 200
    assert 'url="wss://testserver/v1/twilio/stream"' in response.text
    assert "Parameter" not in response.text  # no agent asked for, no token needed


def test_calls_listing_needs_an_api_key() -> None:
    client = make_client()
    assert client.get("/v1/twilio/calls").status_code == 401
    listing = client.get("/v1/twilio/calls", headers={"Authorization": f"Bearer {API_KEY}"})
    assert listing.status_code == 200 and listing.json() == {"calls": []}
