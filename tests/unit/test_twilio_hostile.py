"""The Twilio routes against hostile input (no models: a scripted conversation).

M4: listing calls takes a full key, and every call's session has an owner of its own. L5: a replayed
signed webhook is refused, and the stream takes no API key. L6: timestamps cannot amplify the
caller's audio. L1: malformed `start` messages and deep JSON close or are skipped, never raise.
L4: numbers, transcripts and tool data stay out of INFO logs.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from tests.unit.test_twilio_stream import CALL, SID, ScriptedConversation, ScriptedSessions, start_message, wait_for
from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.integrations.twilio.webhook import SeenCalls
from voxgate.protocol.events import AgentTranscript, ToolCall, UserTranscript

KEY, TOKENS_KEY, SESSIONS_KEY, AUTH_TOKEN = "full-key", "tok-key", "sess-key", "twilio-secret"
NUMBER = "+15551230000"


class OwnedSessions(ScriptedSessions):
    """Records the owner each call's session was opened for."""

    def __init__(self) -> None:
        super().__init__()
        self.owners: list[str] = []

    def open(self, owner: str, holder: object) -> ScriptedConversation:
        self.owners.append(owner)
        return super().open(owner, holder)


def app(**overrides: Any) -> tuple[TestClient, OwnedSessions]:
    sessions = OwnedSessions()
    settings = Settings(preload=False, **overrides)
    return TestClient(create_app(settings, sessions=sessions)), sessions  # type: ignore[arg-type]


def keyed(**overrides: Any) -> tuple[TestClient, OwnedSessions]:
    keys = [SecretStr(KEY), SecretStr(f"{TOKENS_KEY}:tokens"), SecretStr(f"{SESSIONS_KEY}:sessions")]
    return app(api_keys=keys, twilio_auth_token=SecretStr(AUTH_TOKEN), **overrides)


def signed_post(client: TestClient, form: dict[str, str]) -> Any:
    url = "http://testserver/v1/twilio/voice?agent=support"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return client.post(
        url,
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def form(call_sid: str) -> dict[str, str]:
    return {"CallSid": call_sid, "AccountSid": "AC1", "From": NUMBER, "To": "+15559870000"}


def stream_token(xml: str) -> str:
    return xml.split('name="token" value="')[1].split('"')[0]


def test_m4_listing_calls_takes_a_key_with_every_scope() -> None:
    client, _ = keyed()
    assert client.get("/v1/twilio/calls").status_code == 401
    for key in (TOKENS_KEY, SESSIONS_KEY):
        refused = client.get("/v1/twilio/calls", headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN", key
    assert client.get("/v1/twilio/calls", headers={"Authorization": f"Bearer {KEY}"}).json() == {"calls": []}


def test_m4_every_call_has_an_owner_of_its_own() -> None:
    client, sessions = keyed()
    for call_sid in ("CA1", "CA2"):
        token = stream_token(signed_post(client, form(call_sid)).text)
        with client.websocket_connect("/v1/twilio/stream") as ws:
            start = start_message(token=token)
            start["start"]["callSid"] = call_sid
            ws.send_text(json.dumps(start))
            ws.receive_text()
    assert sessions.owners == ["twilio_CA1", "twilio_CA2"]
    # On an open server too: not "anonymous", which every local /v1/ws client is.
    client, sessions = app()
    with client.websocket_connect("/v1/twilio/stream") as ws:
        ws.send_text(json.dumps(start_message()))
        ws.receive_text()
    assert sessions.owners == [f"twilio_{CALL}"]


def test_l5_a_replayed_signed_webhook_is_refused() -> None:
    client, _ = keyed()
    first = signed_post(client, form("CA9"))
    assert first.status_code == 200 and "tok_" in first.text
    replay = signed_post(client, form("CA9"))
    assert replay.status_code == 409 and "tok_" not in replay.text
    assert signed_post(client, form("CA10")).status_code == 200  # another call is not a replay
    no_sid = signed_post(client, {"AccountSid": "AC1"})
    assert no_sid.status_code == 400


def test_l5_seen_calls_are_bounded_and_expire() -> None:
    seen = SeenCalls(ttl_s=10, max_kept=3)
    assert all(seen.first_time(f"CA{i}", now=0) for i in range(5))
    assert len(seen) == 3 and seen.first_time("CA0", now=1)  # the oldest went to make room
    assert not seen.first_time("CA4", now=2)
    assert seen.first_time("CA4", now=20)  # past the TTL


def test_l6_timestamp_jumps_cannot_amplify_the_callers_audio() -> None:
    client, _ = app()
    frames = 200
    with client.websocket_connect("/v1/twilio/stream") as ws:
        ws.send_text(json.dumps(start_message()))
        ws.receive_text()
        started = time.monotonic()
        payload = base64.b64encode(b"\xff" * 160).decode()  # 20 ms a frame
        for i in range(frames):  # each frame claims 10 s passed since the last one
            media = {"track": "inbound", "chunk": str(i), "timestamp": str(i * 10_000), "payload": payload}
            ws.send_text(json.dumps({"event": "media", "sequenceNumber": str(i + 2), "streamSid": SID, "media": media}))
        wait_for(lambda: client.get("/v1/twilio/calls").json()["calls"][0]["media_frames"] == frames)
        elapsed = time.monotonic() - started
        status = client.get("/v1/twilio/calls").json()["calls"][0]
    # Before the bound: 200 frames x 2 s = 400 s of audio for 4 s of frames. Now the clock bounds it.
    assert status["caller_audio_s"] <= elapsed + 2.0 + frames * 0.02 + 0.5, status
    assert status["gap_fill_s"] <= elapsed + 2.0 + 0.5


@pytest.mark.parametrize(
    "breakage",
    [
        lambda m: m.update(start=["not", "an", "object"]),
        lambda m: m.update(start="text"),
        lambda m: m["start"].update(mediaFormat="audio/x-mulaw"),
        lambda m: m["start"].update(mediaFormat=[1, 2]),
    ],
)
def test_l1_a_malformed_start_closes_the_stream_cleanly(breakage: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, sessions = app()
    message = start_message()
    breakage(message)
    with caplog.at_level(logging.WARNING), client.websocket_connect("/v1/twilio/stream") as ws:
        ws.send_text(json.dumps(message))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008 and not sessions.conversations
    assert "malformed start" in caplog.text or "not an object" in caplog.text
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)


def test_l1_deep_json_and_junk_are_skipped_with_a_rate_limited_warning(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = app()
    with caplog.at_level(logging.WARNING), client.websocket_connect("/v1/twilio/stream") as ws:
        for _ in range(150):
            ws.send_text("[" * 100_000)  # past the JSON parser's depth: RecursionError, not JSONDecodeError
        ws.send_text(json.dumps({"event": "media", "media": "not an object"}))
        ws.send_text(json.dumps({"event": "mark", "mark": 5, "sequenceNumber": 1e400}))
        ws.send_text(json.dumps(start_message()))
        assert json.loads(ws.receive_text())["event"] == "media"  # the call still starts
        ws.send_text(json.dumps({"event": "media", "media": [1], "sequenceNumber": "x"}))
        ws.send_text(json.dumps({"event": "dtmf", "dtmf": "9"}))
        ws.send_text(json.dumps({"event": "mark", "mark": None}))
        assert client.get("/v1/twilio/calls").json()["calls"][0]["call_sid"] == CALL
    junk_lines = [r for r in caplog.records if "not a Twilio event" in r.getMessage()]
    assert 1 <= len(junk_lines) <= 2, len(junk_lines)  # 150 junk messages, at most one line a hundred
    assert not any(r.exc_info for r in caplog.records)


async def test_l4_numbers_transcripts_and_tool_data_are_not_in_info_logs(caplog: pytest.LogCaptureFixture) -> None:
    client, sessions = keyed()
    with caplog.at_level(logging.INFO, "voxgate"):
        token = stream_token(signed_post(client, form("CA77")).text)
        with client.websocket_connect("/v1/twilio/stream") as ws:
            ws.send_text(json.dumps(start_message(token=token)))
            ws.receive_text()
            call = sessions.conversations[0].transport
            await call.send(UserTranscript(text="my card is 4111 1111 1111 1111", item_id="i1"))
            await call.send(AgentTranscript(text="your date of birth is May 5 1980"))
            ws.send_text(json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "7"}}))
            await call._run_tool(ToolCall(call_id="c1", name="no_such_tool", arguments={"ssn": "078-05-1120"}))
    info = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    for secret in (NUMBER, "4111", "1980", "078-05-1120", "'7'"):
        assert secret not in info, (secret, info)
    assert "call CA77" in info  # the calls themselves are still logged
