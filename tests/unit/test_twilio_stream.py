"""The Twilio bridge's protocol logic against a scripted conversation (no models): media and marks out,
marks acknowledged into the playback model, `clear` on barge-in with flushed marks not counted, auth."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.websockets import WebSocketDisconnect

from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.integrations.twilio.stream import Playout
from voxgate.protocol.events import (
    AgentTranscript,
    ReplyAudio,
    ReplyDone,
    ReplyStarted,
    ServerEvent,
    SessionConfig,
    SpeechStarted,
)
from voxgate.session.playback import PlaybackClock
from voxgate.session.turn_stages import TurnStages

API_KEY = "unit-key"
SID = "MZ00000000000000000000000000000001"
CALL = "CA00000000000000000000000000000001"


class ScriptedConversation:
    """Greets with five 100 ms chunks; the third caller frame is a barge-in."""

    def __init__(self) -> None:
        self.session_id = "sess_scripted"
        self.stages = TurnStages(self.session_id, time.monotonic)  # the socket sets its observer (metrics)
        self.transport: Any = None
        self.updates: list[tuple[SessionConfig, set[str]]] = []
        self.acknowledged: list[tuple[str, float]] = []
        self.frames = 0
        self.task: asyncio.Task[None] | None = None

    def attach(self, transport: Any) -> None:
        self.transport = transport

    async def send(self, event: ServerEvent) -> None:
        await self.transport.send(event)

    async def update(self, session: SessionConfig, fields: set[str]) -> bool:
        self.updates.append((session, fields))
        return True

    async def greet(self) -> None:
        self.task = asyncio.ensure_future(self._greeting())

    async def _greeting(self) -> None:
        events: list[ServerEvent] = [ReplyStarted(reply_id="reply_1")]
        chunk = base64.b64encode(bytes([0x7F]) * 800).decode()
        events += [ReplyAudio(data=chunk) for _ in range(5)]
        for event in events:
            await self.send(event)

    async def on_audio(self, audio: np.ndarray) -> None:
        self.frames += 1
        if self.frames == 3:
            await self.send(SpeechStarted())
            await self.send(ReplyDone(status="interrupted"))
            await self.send(AgentTranscript(text="Hello", interrupted=True))
            await self.transport.playback.flush()

    def acknowledge_playback(self, reply_id: str, played_s: float) -> None:
        self.acknowledged.append((reply_id, round(played_s, 3)))

    async def on_tool_result(self, call_id: str, result: str) -> None:
        pass


class ScriptedSessions:
    def __init__(self) -> None:
        self.conversations: list[ScriptedConversation] = []
        self.released: list[str] = []
        self.attached_count = 0

    def __len__(self) -> int:
        return len(self.conversations)

    def open(self, owner: str, holder: object) -> ScriptedConversation:
        conversation = ScriptedConversation()
        self.conversations.append(conversation)
        return conversation

    async def release(self, conversation: ScriptedConversation, connection: object) -> None:
        self.released.append(conversation.session_id)

    async def reap_forever(self) -> None:
        await asyncio.Event().wait()

    def started(self, conversation: ScriptedConversation) -> None:
        """A call's session is ready (its record opens)."""

    async def end_by_id(self, session_id: str) -> None:
        """DELETE /v1/sessions/{id} of a live call; no test here deletes one."""

    class records:  # the registry's attribute the app hands the store to
        store: object = None


def app_with(settings: Settings) -> tuple[TestClient, ScriptedSessions]:
    sessions = ScriptedSessions()
    return TestClient(create_app(settings, sessions=sessions)), sessions  # type: ignore[arg-type]


def start_message(**params: str) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC00000000000000000000000000000001",
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound"],
            "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": SID,
    }


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_media_marks_acknowledgement_clear_and_stop() -> None:
    client, sessions = app_with(Settings(preload=False))
    with client.websocket_connect("/v1/twilio/stream") as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(json.dumps(start_message(agent="support")))
        sent = [json.loads(ws.receive_text()) for _ in range(10)]
        conversation = sessions.conversations[0]
        assert conversation.transport.playback.acknowledges_playback is True
        session, fields = conversation.updates[0]
        assert session.greeting and "Northwind" in session.greeting and "greeting" in fields
        assert session.input and session.input.format and session.input.format.encoding == "audio/pcmu"
        assert [m["event"] for m in sent] == ["media", "mark"] * 5
        assert all(m["streamSid"] == SID for m in sent)
        assert len(base64.b64decode(sent[0]["media"]["payload"])) == 800
        assert [m["mark"]["name"] for m in sent[1::2]] == ["1", "2", "3", "4", "5"]

        # Twilio played the first two chunks: the playback model learns 0.1 s, then 0.2 s.
        seq = 1
        for name in ("1", "2"):
            seq += 1
            ws.send_text(
                json.dumps({"event": "mark", "sequenceNumber": str(seq), "streamSid": SID, "mark": {"name": name}})
            )
        wait_for(lambda: len(conversation.acknowledged) == 2)
        assert conversation.acknowledged == [("reply_1", 0.1), ("reply_1", 0.2)]

        ws.send_text(
            json.dumps(
                {
                    "event": "dtmf",
                    "sequenceNumber": "4",
                    "streamSid": SID,
                    "dtmf": {"track": "inbound_track", "digit": "5"},
                }
            )
        )
        ws.send_text("not json")
        # The caller speaks: the third frame is a barge-in, and the bridge clears Twilio's buffer.
        for i in range(3):
            frame = {
                "track": "inbound",
                "chunk": str(i + 1),
                "timestamp": str(20 * i),
                "payload": base64.b64encode(b"\xff" * 160).decode(),
            }
            ws.send_text(json.dumps({"event": "media", "sequenceNumber": str(5 + i), "streamSid": SID, "media": frame}))
        assert json.loads(ws.receive_text()) == {"event": "clear", "streamSid": SID}
        # As Twilio does after a clear, the unplayed marks come back: they are not counted as heard.
        for i, name in enumerate(("3", "4", "5")):
            ws.send_text(
                json.dumps({"event": "mark", "sequenceNumber": str(8 + i), "streamSid": SID, "mark": {"name": name}})
            )
        wait_for(lambda: client.get("/v1/twilio/calls").json()["calls"][0]["marks_flushed"] == 3)
        status = client.get("/v1/twilio/calls").json()["calls"][0]
        assert status["agent"] == "support" and status["call_sid"] == CALL and status["stream_sid"] == SID
        assert status["agent_audio_sent_s"] == 0.5 and status["agent_audio_acknowledged_s"] == 0.2
        assert status["marks_acknowledged"] == 2 and status["clears"] == 1
        assert status["media_frames"] == 3 and status["sequence_gaps"] == 0
        assert conversation.acknowledged == [("reply_1", 0.1), ("reply_1", 0.2)]

        ws.send_text(
            json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": "11",
                    "streamSid": SID,
                    "stop": {"accountSid": "AC1", "callSid": CALL},
                }
            )
        )
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000
    wait_for(lambda: sessions.released == ["sess_scripted"])
    assert client.get("/v1/twilio/calls").json() == {"calls": []}


def _refused(client: TestClient, start: dict[str, Any], path: str = "/v1/twilio/stream") -> int:
    with client.websocket_connect(path) as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(json.dumps(start))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        return closed.value.code


def test_stream_authentication() -> None:
    client, sessions = app_with(Settings(preload=False, api_keys=[SecretStr(API_KEY)]))  # type: ignore[arg-type]
    assert _refused(client, start_message()) == 1008
    assert _refused(client, start_message(token="wrong-key")) == 1008
    # L5: an API key is no stream credential (it would sit in TwiML and URL logs), in either place.
    assert _refused(client, start_message(token=API_KEY)) == 1008
    assert _refused(client, start_message(), f"/v1/twilio/stream?token={API_KEY}") == 1008
    assert not sessions.conversations
    # A single-use token opens the call, as a custom parameter or from the query string, once.
    token = client.get("/v1/token", headers={"Authorization": f"Bearer {API_KEY}"}).json()["token"]
    with client.websocket_connect("/v1/twilio/stream") as ws:
        ws.send_text(json.dumps(start_message(token=token)))
        assert json.loads(ws.receive_text())["event"] == "media"  # the default agent has no greeting: scripted one
    token = client.get("/v1/token", headers={"Authorization": f"Bearer {API_KEY}"}).json()["token"]
    with client.websocket_connect(f"/v1/twilio/stream?token={token}") as ws:
        ws.send_text(json.dumps(start_message()))
        assert json.loads(ws.receive_text())["event"] == "media"
    assert _refused(client, start_message(), f"/v1/twilio/stream?token={token}") == 1008
    assert len(sessions.conversations) == 2


def test_unknown_agent_and_wrong_format_are_refused() -> None:
    client, sessions = app_with(Settings(preload=False))
    assert _refused(client, start_message(agent="nobody")) == 1008
    wrong = start_message()
    wrong["start"]["mediaFormat"] = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
    assert _refused(client, wrong) == 1008
    assert not sessions.conversations


def test_playout_counts_marks_in_order_and_ignores_flushed_ones() -> None:
    playout = Playout()
    marks = [playout.sent("r1", 0.1 * (i + 1), 0.1) for i in range(4)]
    assert playout.playing and abs(playout.unplayed_s - 0.4) < 1e-9
    assert playout.echoed(marks[1].name) == marks[1]  # the second implies the first was played
    assert playout.marks_acknowledged == 2 and abs(playout.acknowledged_s - 0.2) < 1e-9
    assert playout.echoed(marks[0].name) is None  # already counted
    assert playout.cleared() == 2 and not playout.playing
    assert playout.echoed(marks[2].name) is None and playout.echoed(marks[3].name) is None
    assert playout.marks_flushed == 2 and playout.marks_acknowledged == 2
    assert playout.echoed("unknown") is None


def test_playback_clock_keeps_only_acknowledged_audio_as_heard() -> None:
    now = [0.0]
    clock = PlaybackClock(now=lambda: now[0], acknowledged_s=0.0)
    plain = PlaybackClock(now=lambda: now[0])
    for c in (clock, plain):
        c.add_segment("one two three four", 2.0)
        c.on_sent(2.0)
    now[0] = 1.5
    assert plain.heard_text() == "one two three"  # by the pacing clock alone
    assert clock.heard_text() == ""  # Twilio has confirmed nothing yet
    clock.acknowledge(1.0)
    assert clock.heard_text() == "one two"
    clock.acknowledge(0.5)  # a late, older mark never takes back what was confirmed
    assert clock.heard_s() == 1.0
    clock.acknowledge(5.0)  # never more than could have been played by now
    assert clock.heard_s() == 1.5


class PausingConversation(ScriptedConversation):
    """The third caller frame pauses the greeting (a backchannel, it turns out): the greeting is sent
    again from 0.1 s, the start of the clause that was playing."""

    async def on_audio(self, audio: np.ndarray) -> None:
        self.frames += 1
        if self.frames == 3:
            await self.send(SpeechStarted())
            await self.transport.playback.flush()
            self.transport.playback.rewound("reply_1", 0.1)
            chunk = base64.b64encode(bytes([0x7F]) * 800).decode()
            for _ in range(2):
                await self.send(ReplyAudio(data=chunk))


def test_a_resumed_reply_counts_its_marks_from_where_it_went_back_to() -> None:
    settings = Settings(preload=False)
    sessions = ScriptedSessions()
    sessions.open = lambda owner, holder: _opened(sessions, PausingConversation())  # type: ignore[method-assign]
    client = TestClient(create_app(settings, sessions=sessions))  # type: ignore[arg-type]
    with client.websocket_connect("/v1/twilio/stream") as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(json.dumps(start_message(agent="support")))
        sent = [json.loads(ws.receive_text()) for _ in range(10)]  # the greeting: five chunks, five marks
        conversation = sessions.conversations[0]
        assert conversation.transport.playback.acknowledges_playback  # the bridge reports what was played
        for i in range(3):
            frame = {"track": "inbound", "chunk": str(i + 1), "timestamp": str(20 * i), "payload": "/w=="}
            ws.send_text(json.dumps({"event": "media", "sequenceNumber": str(2 + i), "streamSid": SID, "media": frame}))
        assert json.loads(ws.receive_text()) == {"event": "clear", "streamSid": SID}
        again = [json.loads(ws.receive_text()) for _ in range(4)]
        assert [m["event"] for m in again] == ["media", "mark"] * 2
        for i, message in enumerate(again[1::2]):  # Twilio plays the resumed audio
            name = message["mark"]["name"]
            ws.send_text(
                json.dumps({"event": "mark", "sequenceNumber": str(5 + i), "streamSid": SID, "mark": {"name": name}})
            )
        wait_for(lambda: len(conversation.acknowledged) == 2)
        # reply time 0.1 s + the two chunks, not the 0.5 s sent before the pause + them
        assert conversation.acknowledged == [("reply_1", 0.2), ("reply_1", 0.3)]
        assert len(sent) == 10


def _opened(sessions: ScriptedSessions, conversation: ScriptedConversation) -> ScriptedConversation:
    sessions.conversations.append(conversation)
    return conversation
