"""The stereo recording puts each side where it was heard, and the timeline says what the client was told."""

from __future__ import annotations

import io
import wave

import numpy as np

from voxgate.protocol.events import AgentTranscript, ReplyStarted, UserTranscript
from voxgate.session.recording import RATE, Recorder
from voxgate.session.timeline import TIMELINE_MAX, Timeline


def _channels(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


def test_user_left_agent_right_at_their_times_and_a_later_write_overwrites_what_was_flushed() -> None:
    rec = Recorder(started_at=100.0)
    rec.user(np.full(RATE, 0.5, dtype=np.float32), at=100.0)  # 0–1 s
    rec.agent(np.full(24_000, 0.25, dtype=np.float32), 24_000, at=101.5)  # 1.5–2.5 s, sent at 24 kHz
    rec.agent(np.full(RATE // 2, -0.25, dtype=np.float32), RATE, at=102.0)  # replaces 2.0–2.5 s (after a flush)
    samples = _channels(rec.wav())
    rec.close()
    assert len(samples) == int(2.5 * RATE)
    left, right = samples[:, 0], samples[:, 1]
    assert abs(int(left[RATE // 2]) - 16383) <= 1 and left[int(1.2 * RATE)] == 0
    assert right[RATE] == 0 and abs(int(right[int(1.7 * RATE)]) - 8191) <= 300
    assert right[int(2.2 * RATE)] < -7000  # the newer audio won


def test_recording_stops_at_its_limit() -> None:
    rec = Recorder(started_at=0.0, max_s=1.0)
    rec.user(np.ones(3 * RATE, dtype=np.float32), at=0.0)
    assert rec.seconds == 1.0
    rec.close()


def test_timeline_pairs_each_reply_with_its_start_and_trigger_and_stays_bounded() -> None:
    clock = iter([1.0, 2.0, 3.5, *range(4, 4 + 2 * TIMELINE_MAX)])
    timeline = Timeline(0.0, now=lambda: float(next(clock)))
    timeline.note(UserTranscript(text="Hi", item_id="msg_u"), lambda _: "user_turn")
    timeline.note(ReplyStarted(reply_id="resp_1", item_id="msg_a"), lambda _: "greeting")
    timeline.note(AgentTranscript(text="Hello", reply_id="resp_1", item_id="msg_a", interrupted=True), str)
    assert timeline.turns == [
        {
            "role": "user",
            "item_id": "msg_u",
            "reply_id": None,
            "text": "Hi",
            "interrupted": False,
            "trigger": None,
            "start_s": 1.0,
            "end_s": 1.0,
        },
        {
            "role": "agent",
            "item_id": "msg_a",
            "reply_id": "resp_1",
            "text": "Hello",
            "interrupted": True,
            "trigger": "greeting",
            "start_s": 2.0,
            "end_s": 3.5,
        },
    ]
    for i in range(TIMELINE_MAX):
        timeline.note(UserTranscript(text=str(i), item_id=f"msg_{i}"), str)
    assert len(timeline) == TIMELINE_MAX and timeline.turns[-1]["text"] == str(TIMELINE_MAX - 1)
