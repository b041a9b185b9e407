"""Per-turn stage timing (session/turn_stages.py) on scripted conversations in virtual time.

Each script checks the stages against the moments the client saw (the recording transport's event
times) and the fakes' own delays: the recognizer's final decode takes 0.12 s, the LLM's first token
0.3 s, the voice ~0 s. The user's speech ends at START_S + the seconds said; stages count from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tests.fakes import SCRIPT_POLICY, ScriptedLLM, ScriptedTurnModel, Session, open_session
from tests.virtual_time import START_S, virtual
from voxgate.protocol.events import TurnLatency
from voxgate.session.turn_stages import STAGES, ResumeKind, TimedTurn

STORY = ["Once upon a time there was a knight. ", "He lived in a castle by the sea. "]
NO_PREFETCH = replace(SCRIPT_POLICY, llm_prefetch=False)
TOLERANCE_S = 0.04  # a VAD frame (32 ms) and the loop's turns between two events


@dataclass
class Watcher:
    """A TurnObserver that keeps what it is told."""

    turns: list[TimedTurn] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    replies: list[tuple[str, str]] = field(default_factory=list)
    barge_ins: int = 0
    resumes: list[ResumeKind] = field(default_factory=list)
    sessions: int = 0

    def session_started(self) -> None:
        self.sessions += 1

    def turn_timed(self, turn: TimedTurn) -> None:
        self.turns.append(turn)

    def reply_done(self, trigger: str, status: str) -> None:
        self.replies.append((trigger, status))

    def error(self, event: str, code: str) -> None:
        self.errors.append((event, code))

    def barge_in(self) -> None:
        self.barge_ins += 1

    def reply_resumed(self, kind: ResumeKind) -> None:
        self.resumes.append(kind)


def watched(s: Session) -> Watcher:
    watcher = Watcher()
    s.conversation.stages.observer = watcher
    return watcher


@virtual
async def test_a_turn_without_prefetch_is_timed_stage_by_stage_from_the_end_of_speech() -> None:
    s = await open_session(llm=ScriptedLLM(["The time ", "is three o'clock."]), policy=NO_PREFETCH)
    w = watched(s)
    await s.user.say("What time is it?", 1.0, then=1.5)
    await s.idle()
    (turn,) = w.turns
    assert turn.outcome == "answered" and not turn.prefetched
    assert [stage.name for stage in turn.stages] == list(STAGES)
    eot, stt, llm, clause, tts, audio = turn.stages
    # the end of speech, as the session places it: the turn's close less the silence it waited
    t0 = s.transport.first("input.speech.stopped") - eot.end_s
    assert abs(t0 - (START_S + 1.0)) < TOLERANCE_S and eot.start_s == 0.0
    assert 0.5 < eot.end_s < 1.1  # adaptive pacing: asked from 600 ms of silence
    # the final text was decoded at the pause (the end-of-turn check waits for it): no wait after the close
    assert stt.start_s == eot.end_s and abs(stt.end_s - (s.transport.first("transcript.user") - t0)) < 1e-6
    assert stt.duration_s < 1e-6
    assert llm.start_s >= stt.end_s and abs(llm.duration_s - 0.3) < 1e-6  # the LLM's first token, asked after
    assert clause.start_s == llm.end_s and abs(clause.end_s - (s.transport.first("reply.started") - t0)) < 1e-6
    assert tts.start_s >= clause.end_s - 1e-6 and abs(tts.duration_s - 0.05) < 1e-6  # the tone voice's delay
    assert abs(audio.end_s - (s.transport.first("reply.audio") - t0)) < 1e-6 and turn.first_audio_s == audio.end_s
    assert all(a.end_s <= b.end_s + 1e-9 for a, b in zip(turn.stages, turn.stages[1:], strict=False))
    assert turn.reply_id == next(e.reply_id for e in s.events if e.type == "reply.started")
    assert turn.item_id == next(e.item_id for e in s.events if e.type == "transcript.user")
    assert w.replies == [("user_turn", "completed")] and w.errors == [] and w.sessions == 0  # (opened before)
    assert not any(isinstance(e, TurnLatency) for e in s.events)  # not asked for: no extension event


@virtual
async def test_a_prefetched_turn_shows_the_llm_started_before_the_turn_closed() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."]))
    w = watched(s)
    await s.user.say("What time is it?", 1.0, then=1.5)
    await s.idle()
    (turn,) = w.turns
    eot = turn.stage("end_of_turn")
    llm = turn.stage("llm_first_token")
    assert turn.prefetched and eot is not None and llm is not None
    assert llm.start_s < eot.end_s and llm.end_s < eot.end_s  # asked at the pause, answered in the silence
    assert abs(llm.duration_s - 0.3) < 1e-6
    # the first audio goes out as the transcript does: all of the wait is the silence
    assert turn.first_audio_s is not None and abs(turn.first_audio_s - eot.end_s) < TOLERANCE_S


@virtual
async def test_the_extension_event_follows_the_first_audio_only_when_the_client_asked() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."]), config={"voxgate": {"turn_latency": True}})
    assert s.conversation.resolved_config()["voxgate"] == {"turn_latency": True}
    w = watched(s)
    await s.user.say("What time is it?", 1.0, then=1.5)
    await s.idle()
    wire = s.wire()
    assert wire[wire.index("reply.started") :] == [
        "reply.started",
        "reply.audio",
        "voxgate.turn.latency",
        "reply.audio",
        "transcript.agent: It is noon.",
        "reply.done completed",
    ]
    (event,) = [e for e in s.events if isinstance(e, TurnLatency)]
    (turn,) = w.turns
    assert event.reply_id == turn.reply_id and event.item_id == turn.item_id and event.outcome == "answered"
    assert event.first_audio_ms == round(turn.first_audio_s * 1000)  # type: ignore[operator]
    assert [(st.name, st.start_ms, st.end_ms) for st in event.stages] == [
        (st.name, round(st.start_s * 1000), round(st.end_s * 1000)) for st in turn.stages
    ]
    # turned off again mid-session: no more events
    from voxgate.protocol.events import SessionConfig

    await s.conversation.update(SessionConfig.model_validate({"voxgate": {"turn_latency": False}}))
    assert s.conversation.resolved_config()["voxgate"] == {"turn_latency": False}
    s.llm._scripts.append(["Still noon."])
    await s.user.say("And now?", 0.8, then=1.5)
    await s.idle()
    assert len(w.turns) == 2 and len([e for e in s.events if isinstance(e, TurnLatency)]) == 1


@virtual
async def test_a_client_that_never_asks_sees_no_voxgate_key_in_its_config() -> None:
    s = await open_session(llm=ScriptedLLM(["Hi."]), config={"system_prompt": "Be brief."})
    assert "voxgate" not in s.conversation.resolved_config()


@virtual
async def test_a_barge_in_is_counted_and_the_cut_reply_was_timed_before_it() -> None:
    s = await open_session(llm=ScriptedLLM(STORY, ["Sure, what is it?"]))
    w = watched(s)
    await s.user.say("Tell me a story.", 1.0)
    await s.until(lambda: s.transport.audio_s() > 0)
    await s.user.pause(1.0)
    await s.user.say("Wait, stop", 0.6, then=1.5)
    await s.idle()
    assert w.barge_ins == 1
    assert [t.outcome for t in w.turns] == ["answered", "answered"]  # both were answered before any cut
    assert w.replies == [("user_turn", "interrupted"), ("user_turn", "completed")]
    second = w.turns[1]
    assert second.item_id == next(e.item_id for e in s.events if getattr(e, "text", "") == "Wait, stop")


@virtual
async def test_a_false_interruption_counts_as_a_cut_reply_resumed() -> None:
    plans = ["The basic plan costs ten dollars a month. ", "The premium plan costs twenty."]
    s = await open_session(llm=ScriptedLLM(plans), policy=replace(SCRIPT_POLICY, backchannel_words=False))
    w = watched(s)
    await s.user.say("Tell me about the plans.", 1.0)
    await s.until(lambda: s.transport.audio_s() > 0)
    await s.user.pause(1.5)
    await s.user.say("Mm-hmm.", 0.4, then=1.0)
    await s.idle()
    assert w.resumes == ["cut"] and w.barge_ins == 1
    resumed = w.turns[-1]  # the cut clause said again answers the "mm-hmm": no LLM in it
    assert resumed.outcome == "answered" and resumed.stage("llm_first_token") is None
    assert resumed.stage("first_audio") is not None


@virtual
async def test_a_backchannel_counts_as_a_paused_reply_resumed() -> None:
    s = await open_session(llm=ScriptedLLM(STORY))
    w = watched(s)
    await s.user.say("Tell me a story.", 1.0)
    await s.until(lambda: s.transport.audio_s() > 0)
    await s.user.pause(1.0)
    await s.user.say("Mm-hmm.", 0.4)
    await s.idle()
    assert w.resumes == ["paused"] and w.barge_ins == 0 and len(w.turns) == 1


@virtual
async def test_a_failed_llm_times_the_turn_as_failed_and_counts_the_reply_error() -> None:
    s = await open_session(
        llm=ScriptedLLM([RuntimeError("model crashed")]), policy=NO_PREFETCH, config={"voxgate": {"turn_latency": True}}
    )
    w = watched(s)
    await s.user.say("What time is it?", 1.0, then=2.0)
    await s.idle()
    assert [t.outcome for t in w.turns] == ["failed"]
    assert ("reply.error", "llm_error") in w.errors
    assert ("user_turn", "interrupted") in w.replies and ("apology", "completed") in w.replies
    (event,) = [e for e in s.events if isinstance(e, TurnLatency)]
    assert event.outcome == "failed" and event.first_audio_ms is None
    wire = s.wire()
    assert wire.index("reply.error llm_error") < wire.index("voxgate.turn.latency")  # at its reply.done


@virtual
async def test_a_turn_answered_by_nothing_before_the_user_spoke_again_is_abandoned() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."], ["It is noon in Paris."]), policy=NO_PREFETCH)
    w = watched(s)
    await s.user.say("What time is it?", 1.0, then=0.7)  # closed and transcribed; the reply still thinking
    await s.user.say("In Paris?", 0.6, then=1.5)  # a new turn: the unheard reply is cancelled
    await s.idle()
    first, second = w.turns
    assert first.outcome == "abandoned" and first.stage("first_audio") is None
    assert second.outcome == "answered" and second.item_id != first.item_id
    assert [e.item_id for e in s.events if e.type == "transcript.user"] == [first.item_id, second.item_id]


@virtual
async def test_a_dropped_socket_leaves_no_turn_half_timed() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."], ["Hello again."]), policy=NO_PREFETCH)
    w = watched(s)
    await s.user.say("What time is it?", 1.0, then=0.7)  # closed; the reply still thinking
    await s.drop()
    assert w.turns == []
    s.resume()
    await s.conversation.answer_owed()
    await s.idle()
    assert w.turns == []  # the owed answer has no spoken turn of its own to be timed against


@virtual
async def test_a_slow_end_of_turn_check_counts_in_the_end_of_turn_stage_from_the_real_end_of_speech() -> None:
    """The listener waits for the check (Smart Turn, the words) before it reads on: under load that wait was
    hidden, the stages counting from the close less the silence *read*, not from the end of speech."""
    slow_check = ScriptedTurnModel(delay=0.9)
    s = await open_session(llm=ScriptedLLM(["It is noon."]), policy=NO_PREFETCH, turn_model=slow_check)
    w = watched(s)
    await s.user.say("What time is it?", 1.0, then=2.5)
    await s.idle()
    (turn,) = w.turns
    eot = turn.stages[0]
    t0 = s.transport.first("input.speech.stopped") - eot.end_s
    assert abs(t0 - (START_S + 1.0)) < TOLERANCE_S  # where the user stopped, not 0.9 s later
    assert eot.end_s > 0.9 + 0.3  # the check's own 0.9 s, asked a little before 600 ms of silence
    assert abs(turn.first_audio_s - (s.transport.first("reply.audio") - (START_S + 1.0))) < TOLERANCE_S
