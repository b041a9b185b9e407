"""`voxgate call`: the request the official Twilio client would send, captured at its HTTP layer."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from voxgate.integrations.twilio import outbound

ACCOUNT = "AC" + "1" * 32
CALL_SID = "CA" + "2" * 32


class RecordingHttpClient(HttpClient):
    """Twilio's HTTP layer, replaced: records each request and answers as the Calls API does."""

    def __init__(self, status: int = 201) -> None:
        super().__init__(logger=None, is_async=False)  # type: ignore[arg-type]
        self.requests: list[dict[str, Any]] = []
        self.status = status

    def request(
        self, method: str, uri: str, params=None, data=None, headers=None, auth=None, **kwargs: Any
    ) -> Response:  # type: ignore[override]
        self.requests.append({"method": method, "uri": uri, "data": dict(data or {}), "auth": auth})
        if self.status >= 400:
            return Response(
                self.status, json.dumps({"code": 21211, "message": "Invalid 'To' Phone Number", "status": self.status})
            )
        return Response(self.status, json.dumps({"sid": CALL_SID, "account_sid": ACCOUNT, "status": "queued"}))


def client(http: RecordingHttpClient) -> Client:
    return Client(ACCOUNT, "auth-token", http_client=http)


def test_place_call_sends_the_twiml_that_connects_the_stream() -> None:
    http = RecordingHttpClient()
    sid = outbound.place_call(
        client(http),
        to="+15551234567",
        from_="+15557654321",
        agent="reminder",
        public_url="https://voice.example.com",
        token="tok_abc",
        parameters={"patient": "Jane Doe", "appointment": "on Friday at 9 AM"},
    )
    assert sid == CALL_SID
    [request] = http.requests
    assert request["method"] == "POST"
    assert request["uri"] == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert request["auth"] == (ACCOUNT, "auth-token")
    data = request["data"]
    assert data["To"] == "+15551234567" and data["From"] == "+15557654321"
    twiml = unquote(data["Twiml"])
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>')
    assert '<Stream url="wss://voice.example.com/v1/twilio/stream">' in twiml
    for name, value in [
        ("agent", "reminder"),
        ("token", "tok_abc"),
        ("patient", "Jane Doe"),
        ("appointment", "on Friday at 9 AM"),
    ]:
        assert f'<Parameter name="{name}" value="{value}" />' in twiml, twiml


def test_bad_numbers_unknown_agents_and_twilio_errors_are_reported() -> None:
    http = RecordingHttpClient()
    kwargs: dict[str, Any] = {"from_": "+15557654321", "agent": "reminder", "public_url": "https://v.example.com"}
    with pytest.raises(outbound.CallError, match=r"E\.164"):
        outbound.place_call(client(http), to="555-1234", **kwargs)
    with pytest.raises(outbound.CallError, match="unknown agent"):
        outbound.place_call(client(http), to="+15551234567", **{**kwargs, "agent": "nobody"})
    assert not http.requests  # nothing was dialled
    with pytest.raises(outbound.CallError, match="Twilio refused"):
        outbound.place_call(client(RecordingHttpClient(status=400)), to="+15551234567", **kwargs)


def test_stream_token_is_minted_from_the_server_with_the_api_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # L5: short-lived (ringing and answering), since Twilio keeps the call's TwiML with the token in it
        assert request.url.path == "/v1/token" and request.url.params["expires_in_seconds"] == "120"
        assert request.headers["authorization"] == "Bearer key-1"
        return httpx.Response(200, json={"token": "tok_minted", "expires_in_seconds": 600})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        assert outbound.mint_token("https://voice.example.com/", "key-1", client=http) == "tok_minted"


def test_cli_needs_a_public_url_and_a_caller_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VOXGATE_PUBLIC_URL", raising=False)
    parser = argparse.ArgumentParser()
    outbound.add_arguments(parser)
    assert outbound.main(parser.parse_args(["+15551234567", "--from", "+15557654321"])) == 1
    assert "public URL" in capsys.readouterr().err
    args = parser.parse_args(["+15551234567", "--url", "https://v.example.com", "--param", "bad"])
    args.from_ = "+15557654321"
    assert outbound.main(args) == 1
    assert "NAME=VALUE" in capsys.readouterr().err


def test_the_real_twilio_client_reaches_a_local_stand_in_for_the_calls_api() -> None:
    """Twilio's own HTTP stack (requests), pointed at a local server that checks the request as Twilio would."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs

    from twilio.http.http_client import TwilioHttpClient

    seen: list[dict[str, Any]] = []

    class CallsApi(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "form": parse_qs(body)})
            payload = json.dumps({"sid": CALL_SID, "account_sid": ACCOUNT, "status": "queued"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), CallsApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_address[1]}"

    class LocalTwilio(TwilioHttpClient):
        def request(self, method, uri, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            return super().request(method, uri.replace("https://api.twilio.com", local), *args, **kwargs)

    try:
        sid = outbound.place_call(
            Client(ACCOUNT, "auth-token", http_client=LocalTwilio()),
            to="+15551234567",
            from_="+15557654321",
            agent="reminder",
            public_url="https://voice.example.com",
            token="tok_abc",
            parameters={},
        )
    finally:
        server.shutdown()
    assert sid == CALL_SID
    [request] = seen
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert request["auth"] == "Basic " + base64.b64encode(f"{ACCOUNT}:auth-token".encode()).decode()
    assert request["form"]["To"] == ["+15551234567"] and request["form"]["From"] == ["+15557654321"]
    assert '<Stream url="wss://voice.example.com/v1/twilio/stream">' in request["form"]["Twiml"][0]
