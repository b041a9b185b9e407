"""Every backend failing, scripted on virtual time (H4 in reliability-findings.md): the client always gets
`session.error` and a closed reply (an apology when nothing else can be said), never dead air, and the
session answers the next turn."""

from __future__ import annotations

from dataclasses import replace

from tests.fakes import (
    HANG,
    SCRIPT_POLICY,
    Hang,
    Lexicon,
    ScriptedLLM,
    ScriptedRecognizer,
    Session,
    Think,
    ToneVoices,
    failing_on,
    open_session,
)
from tests.virtual_time import START_S, virtual
from voxgate.session.listener import SPECULATE_AFTER_S
from voxgate.session.reply import APOLOGY

ASKED = [
    "input.speech.started",
    "transcript.user.delta: What time is it?",
    "input.speech.stopped",
    "transcript.user: What time is it?",
]
APOLOGIZED = ["reply.started", "reply.audio", f"transcript.agent: {APOLOGY}", "reply.done completed"]
NEXT_TURN = [
    "input.speech.started",
    "transcript.user.delta: Are you there?",
    "input.speech.stopped",
    "transcript.user: Are you there?",
    "reply.started",
    "reply.audio",
    "transcript.agent: Yes, I am here.",
    "reply.done completed",
]


async def next_turn_answered(s: Session) -> None:
    before = len(s.wire())
    await s.user.say("Are you there?", 0.8, then=1.0)
    await s.idle()
    assert s.wire()[before:] == NEXT_TURN


@virtual
async def test_speech_recognition_that_fails_gets_an_error_and_an_apology() -> None:
    recognizer = ScriptedRecognizer(Lexicon(), fail={p: RuntimeError("whisper crashed") for p in ("partial", "final")})
    s = await open_session(recognizer=recognizer, llm=ScriptedLLM(["Yes, I am here."]))
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == ["input.speech.started", "input.speech.stopped", "session.error server_error", *APOLOGIZED]
    assert "whisper crashed" in s.events[2].message  # type: ignore[union-attr]
    assert s.llm.calls == []
    recognizer.fail.clear()
    await next_turn_answered(s)


@virtual
async def test_speech_recognition_that_hangs_times_out_with_an_apology() -> None:
    # The decode at the pause hangs too, and the end-of-turn check waits for it: bounded by stt_timeout_s
    # (voxgate/session/replying.py guess_final), the turn still ends and the timeout is reported.
    recognizer = ScriptedRecognizer(Lexicon(), fail={"final": HANG})
    policy = replace(SCRIPT_POLICY, stt_timeout_s=2.0)
    s = await open_session(recognizer=recognizer, policy=policy, llm=ScriptedLLM(["Yes, I am here."]))
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == [
        "input.speech.started",
        "transcript.user.delta: What time is it?",
        "input.speech.stopped",
        "session.error agent_timeout",
        *APOLOGIZED,
    ]
    paused_at = START_S + 1.0 + SPECULATE_AFTER_S
    assert abs(s.transport.first("session.error") - (paused_at + 2.0)) < 0.04
    assert s.llm.calls == []
    recognizer.fail.clear()
    await next_turn_answered(s)


@virtual
async def test_a_language_model_that_fails_gets_an_error_and_an_apology() -> None:
    s = await open_session(llm=ScriptedLLM([RuntimeError("model server went away")], ["Yes, I am here."]))
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == [*ASKED, "session.error server_error", *APOLOGIZED]
    assert [(m.role, m.content) for m in s.conversation.history] == [
        ("user", "What time is it?"),
        ("assistant", APOLOGY),
    ]
    await next_turn_answered(s)


@virtual
async def test_a_language_model_that_never_answers_times_out_with_an_apology() -> None:
    policy = replace(SCRIPT_POLICY, llm_first_token_timeout_s=2.0)
    s = await open_session(llm=ScriptedLLM([Hang()], ["Yes, I am here."]), policy=policy)
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == [*ASKED, "session.error agent_timeout", *APOLOGIZED]
    turn_end = s.transport.first("input.speech.stopped")
    assert abs(s.transport.first("session.error") - (turn_end + 2.0)) < 1e-6  # from the reply's start
    assert s.llm.calls[0].closed_at is not None  # the hung stream was closed, not left running
    await next_turn_answered(s)


@virtual
async def test_a_voice_that_fails_mid_reply_closes_the_reply() -> None:
    voices = ToneVoices(fail=failing_on("Second"))
    llm = ScriptedLLM(["First clause is here. ", Think(1.0), "Second clause is here."], ["Yes, I am here."])
    s = await open_session(llm=llm, voices=voices)
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == [
        *ASKED,
        "reply.started",
        "reply.audio",
        "session.error server_error",
        "transcript.agent interrupted: First clause is here.",  # what was heard before the voice failed
        "reply.done interrupted",
    ]
    assert s.state() == "Listening"
    voices.fail = None
    await next_turn_answered(s)
