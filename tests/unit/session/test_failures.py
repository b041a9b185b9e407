"""Every backend failing, scripted on virtual time (H4 in reliability-findings.md): the client always gets
`reply.error` and a closed reply (`transcript.agent {interrupted}`, `reply.done {interrupted}`), then an
apology as a reply of its own (shared/protocol.md §7.2), never dead air, and the session answers the next
turn."""

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
from voxgate.protocol.events import ReplyDone, ReplyError, ReplyStarted
from voxgate.session.listener import SPECULATE_AFTER_S
from voxgate.session.reply import APOLOGY

ASKED = [
    "input.speech.started",
    "transcript.user.delta: What time is it?",
    "input.speech.stopped",
    "transcript.user: What time is it?",
]
APOLOGIZED = ["reply.started", "reply.audio", f"transcript.agent: {APOLOGY}", "reply.done completed"]


def failed(code: str, heard: str = "") -> list[str]:
    """A reply that failed: its error, then the ending of an interrupted reply (what was heard of it)."""
    return [f"reply.error {code}", f"transcript.agent interrupted: {heard}", "reply.done interrupted"]


def reply_error(s: Session) -> ReplyError:
    """The one reply.error, checked against the reply it failed: the ids match, and the apology is a new reply."""
    errors = [e for e in s.events if isinstance(e, ReplyError)]
    assert len(errors) == 1
    error = errors[0]
    started = [e.reply_id for e in s.events if isinstance(e, ReplyStarted)]
    done = [e.reply_id for e in s.events if isinstance(e, ReplyDone)]
    assert error.reply_id == started[0] == done[0]
    assert started[1] != started[0] and done[1] == started[1]  # the apology: reply.started ... reply.done of its own
    assert (error.provider_code, error.provider_param, error.status_code) == (None, None, None)  # no remote backend
    return error


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
    assert s.wire() == [
        "input.speech.started",
        "input.speech.stopped",
        "reply.started",
        *failed("stt_timeout"),  # the contract's only recognizer code (§7.2)
        *APOLOGIZED,
    ]
    error = reply_error(s)
    assert "whisper crashed" in error.message
    assert not error.retryable  # a crash, not a timeout or a 5xx
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
        "reply.started",
        *failed("stt_timeout"),
        *APOLOGIZED,
    ]
    assert reply_error(s).retryable
    paused_at = START_S + 1.0 + SPECULATE_AFTER_S
    assert abs(s.transport.first("reply.error") - (paused_at + 2.0)) < 0.04
    assert s.llm.calls == []
    recognizer.fail.clear()
    await next_turn_answered(s)


@virtual
async def test_a_language_model_that_fails_gets_an_error_and_an_apology() -> None:
    s = await open_session(llm=ScriptedLLM([RuntimeError("model server went away")], ["Yes, I am here."]))
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == [*ASKED, "reply.started", *failed("llm_error"), *APOLOGIZED]
    error = reply_error(s)
    assert "model server went away" in error.message and not error.retryable
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
    assert s.wire() == [*ASKED, "reply.started", *failed("llm_timeout"), *APOLOGIZED]
    assert reply_error(s).retryable
    turn_end = s.transport.first("input.speech.stopped")
    assert abs(s.transport.first("reply.error") - (turn_end + 2.0)) < 1e-6  # from the reply's start
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
        *failed("tts_error", "First clause is here."),  # what was heard before the voice failed
        *APOLOGIZED,
    ]
    assert not reply_error(s).retryable
    assert s.state() == "Listening"
    voices.fail = None
    await next_turn_answered(s)


class ProviderError(RuntimeError):
    """An OpenAI-compatible backend's error, as the openai client raises it: a status, a code, a param."""

    def __init__(self) -> None:
        super().__init__("the model is overloaded")
        self.status_code = 503
        self.code = "server_overloaded"
        self.param = "model"


@virtual
async def test_a_remote_models_error_reaches_the_client_with_its_provider_fields() -> None:
    s = await open_session(llm=ScriptedLLM([ProviderError()], ["Yes, I am here."]))
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == [*ASKED, "reply.started", *failed("llm_error"), *APOLOGIZED]
    error = next(e for e in s.events if isinstance(e, ReplyError))
    assert (error.status_code, error.provider_code, error.provider_param) == (503, "server_overloaded", "model")
    assert error.retryable  # a 5xx is worth retrying (§7.2)
