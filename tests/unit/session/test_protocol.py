"""Today's hosted protocol (shared/protocol.md §4-§7), scripted on virtual time: the ids and word captions
every reply carries, the barge-in ending, what the client asks for directly (reply.create, reply.cancel,
conversation.message), hold tools and tool timeouts, uninterruptible turns, the output settings, and the
resolved configuration the client is shown.

`wire()` leaves the captions out; the tests here read them from the events themselves.
"""

from __future__ import annotations

import base64
import re
from typing import Any, TypeVar

import numpy as np

from tests.fakes import SCRIPT_POLICY, LLMScript, ScriptedLLM, Session, open_session, tool_call
from tests.virtual_time import virtual
from voxgate.backends.base import ChatMessage
from voxgate.protocol.events import (
    AgentTranscript,
    AgentTranscriptDelta,
    ReplyAudio,
    ReplyDone,
    ReplyStarted,
    ServerEvent,
    SessionConfig,
    SpeechStarted,
    SpeechStopped,
    UserTranscript,
    UserTranscriptDelta,
)
from voxgate.session.listener import SPECULATE_AFTER_S
from voxgate.session.reply import TOOL_TIMED_OUT

E = TypeVar("E", bound=ServerEvent)

STORY = ["Once upon a time there was a knight. ", "He lived in a castle by the sea. ", "Every morning he rode along."]
STORY_TEXT = "Once upon a time there was a knight. He lived in a castle by the sea. Every morning he rode along."
ASKED = [
    "input.speech.started",
    "transcript.user.delta: Tell me a story.",
    "input.speech.stopped",
    "transcript.user: Tell me a story.",
    "reply.started",
    "reply.audio",
]
REPLY_ID = re.compile(r"resp_[0-9a-f]{32}")
ITEM_ID = re.compile(r"msg_[0-9a-f]{32}")


def of(events: list[ServerEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def audio_ms(event: ReplyAudio) -> float:
    return len(base64.b64decode(event.data)) / 2 / 24_000 * 1000


def samples(event: ReplyAudio) -> np.ndarray:
    return np.frombuffer(base64.b64decode(event.data), "<i2")


async def story_told(s: Session, *, into_reply: float) -> float:
    """The user asks for the story; returns once the reply has played `into_reply` seconds (its start time)."""
    await s.user.say("Tell me a story.", 1.0)
    await s.until(lambda: s.transport.audio_s() > 0)
    started = s.transport.first("reply.audio")
    await s.user.pause(started + into_reply - s.now())
    return started


async def update(s: Session, body: dict[str, Any]) -> None:
    await s.conversation.update(SessionConfig.model_validate(body), set(body))


def system_prompt(messages: list[ChatMessage]) -> str:
    assert messages[0].role == "system"
    return messages[0].content


# ---------------------------------------------------------------- ids and word captions


@virtual
async def test_word_captions_spell_the_reply_and_carry_its_ids() -> None:
    s = await open_session(llm=ScriptedLLM(["The time is three o'clock. ", "It is sunny outside."]))
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    (started,) = of(s.events, ReplyStarted)
    (transcript,) = of(s.events, AgentTranscript)
    (done,) = of(s.events, ReplyDone)
    deltas = of(s.events, AgentTranscriptDelta)
    assert REPLY_ID.fullmatch(started.reply_id) and ITEM_ID.fullmatch(started.item_id)
    assert (transcript.reply_id, transcript.item_id) == (started.reply_id, started.item_id)
    assert done.reply_id == started.reply_id and done.status == "completed"
    assert [d.delta for d in deltas] == "The time is three o'clock. It is sunny outside.".split()  # one word each
    assert " ".join(d.delta for d in deltas) == transcript.text
    assert all((d.reply_id, d.item_id) == (started.reply_id, started.item_id) for d in deltas)
    assert all(isinstance(d.start_ms, int) and isinstance(d.end_ms, int) for d in deltas)
    starts = [d.start_ms or 0 for d in deltas]
    assert starts == sorted(starts) and starts[0] == 0  # from the start of the reply's audio
    assert all((d.start_ms or 0) < (d.end_ms or 0) for d in deltas)
    # Each word goes out with the reply.audio chunk it begins in (§5): after that chunk, before the next one.
    sent_ms, chunk_from = 0.0, 0.0
    for event in s.events:
        if isinstance(event, ReplyAudio):
            assert event.reply_id == started.reply_id
            chunk_from, sent_ms = sent_ms, sent_ms + audio_ms(event)
        elif isinstance(event, AgentTranscriptDelta):
            assert event.start_ms is not None and chunk_from - 1 <= event.start_ms < sent_ms
    assert deltas[-1].end_ms is not None and abs(deltas[-1].end_ms - sent_ms) <= 1  # the last word ends the audio
    assert s.events.index(deltas[-1]) < s.events.index(transcript)  # every caption before the transcript


@virtual
async def test_every_server_event_carries_a_timestamp() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."]))
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.events and all(isinstance(e.timestamp, float) and e.timestamp > 1.7e9 for e in s.events)


@virtual
async def test_a_user_turns_deltas_and_transcript_share_one_item_id() -> None:
    s = await open_session(llm=ScriptedLLM(respond=lambda messages: ["Okay."]))
    await s.user.say("What time is it?", 1.0, then=0.35)  # a pause inside the turn: a delta at it
    await s.user.say("In Paris?", 0.6, then=1.0)
    await s.idle()
    await s.user.say("Thanks.", 0.6, then=1.0)
    await s.idle()
    first, second = of(s.events, UserTranscript)
    assert (first.text, second.text) == ("What time is it? In Paris?", "Thanks.")
    deltas = of(s.events, UserTranscriptDelta)
    first_deltas = [d for d in deltas if s.events.index(d) < s.events.index(first)]
    assert [d.text for d in first_deltas] == ["What time is it?", "What time is it? In Paris?"]
    assert ITEM_ID.fullmatch(first.item_id) and all(d.item_id == first.item_id for d in first_deltas)
    assert all(d.item_id == second.item_id for d in deltas if d not in first_deltas)
    replies = {e.item_id for e in of(s.events, ReplyStarted)}
    assert second.item_id != first.item_id and not replies & {first.item_id, second.item_id}
    assert len(replies) == 2 and len({e.reply_id for e in of(s.events, ReplyStarted)}) == 2


# ---------------------------------------------------------------- the barge-in ending


@virtual
async def test_a_barge_in_ends_the_reply_with_its_transcript_then_reply_done() -> None:
    s = await open_session(llm=ScriptedLLM(STORY, ["Sure."]))
    started = await story_told(s, into_reply=1.0)
    await s.user.say("Wait, stop", 0.6, then=1.5)
    await s.idle()
    cut_at = len(ASKED)
    assert s.wire()[cut_at : cut_at + 5] == [
        "input.speech.started",
        "transcript.agent interrupted: Once upon a time there",
        "reply.done interrupted",  # after the transcript, as a completed reply's (§6.6)
        "input.speech.stopped",
        "transcript.user: Wait, stop",
    ]
    cut_reply = of(s.events, ReplyStarted)[0]
    transcript = of(s.events, AgentTranscript)[0]
    done = of(s.events, ReplyDone)[0]
    assert (transcript.reply_id, transcript.item_id, done.reply_id) == (
        cut_reply.reply_id,
        cut_reply.item_id,
        cut_reply.reply_id,
    )
    # No caption of the cut reply after the user's voice; the captions ran ahead of playback (the audio is
    # sent ahead), and the transcript holds the words of which half had played by the pause.
    paused = next(e for e in of(s.events, SpeechStarted) if s.events.index(e) > s.events.index(cut_reply))
    captions = [d for d in of(s.events, AgentTranscriptDelta) if d.reply_id == cut_reply.reply_id]
    assert all(s.events.index(d) < s.events.index(paused) for d in captions)
    heard_ms = (s.transport.first("input.speech.started", after=started) - started) * 1000
    heard = [d.delta for d in captions if ((d.start_ms or 0) + (d.end_ms or 0)) / 2 <= heard_ms]
    assert transcript.text == " ".join(heard)
    assert len(captions) > len(heard)


# ---------------------------------------------------------------- reply.create and reply.cancel


@virtual
async def test_reply_create_interrupts_the_playing_reply_then_starts_its_own() -> None:
    s = await open_session(llm=ScriptedLLM(STORY, ["I will keep it short."]))
    started = await story_told(s, into_reply=1.0)
    await s.conversation.reply_now("Tell the user you will keep it short.")
    await s.idle()
    assert s.wire() == [
        *ASKED,
        "transcript.agent interrupted: Once upon a time",  # 1.0 s heard: "time" (midpoint 0.72 s), not "there"
        "reply.done interrupted",
        "reply.started",
        "reply.audio",
        "transcript.agent: I will keep it short.",
        "reply.done completed",
    ]  # no input.speech.*: no user turn
    cut, new = of(s.events, ReplyStarted)
    assert new.reply_id != cut.reply_id and new.item_id != cut.item_id
    assert [d.reply_id for d in of(s.events, ReplyDone)] == [cut.reply_id, new.reply_id]
    asked = s.llm.calls[-1].messages
    assert system_prompt(asked).endswith("For this reply: Tell the user you will keep it short.")
    assert [(m.role, m.content) for m in asked[1:]] == [
        ("user", "Tell me a story."),
        ("assistant", "Once upon a time"),
    ]
    cut_at = s.transport.first("reply.done", after=started)
    assert cut_at in s.transport.playback.flushes  # the client's playback and the echo reference are dropped


@virtual
async def test_reply_create_instructions_are_for_that_reply_only() -> None:
    s = await open_session(llm=ScriptedLLM(respond=lambda messages: ["Okay."]))
    await s.conversation.reply_now("Say okay.")
    await s.idle()
    assert s.wire() == ["reply.started", "reply.audio", "transcript.agent: Okay.", "reply.done completed"]
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    first, *_, last = s.llm.calls
    assert "For this reply: Say okay." in system_prompt(first.messages)
    assert "Say okay." not in system_prompt(last.messages)


async def _cancelled(reply_id: str | None) -> Session:
    s = await open_session(llm=ScriptedLLM(STORY))
    await story_told(s, into_reply=1.0)
    await s.conversation.cancel_reply(reply_id)
    await s.idle()
    return s


@virtual
async def test_reply_cancel_with_the_current_id_ends_the_reply_like_a_barge_in() -> None:
    s = await open_session(llm=ScriptedLLM(STORY))
    await story_told(s, into_reply=1.0)
    (playing,) = of(s.events, ReplyStarted)
    await s.conversation.cancel_reply(playing.reply_id)
    cancelled_at = s.now()
    await s.user.pause(2.0)
    assert s.wire() == [*ASKED, "transcript.agent interrupted: Once upon a time", "reply.done interrupted"]
    assert of(s.events, ReplyDone)[0].reply_id == playing.reply_id
    assert s.state() == "Listening" and s.transport.playback.flushes == [cancelled_at]
    assert len(s.llm.calls) == 1  # no reply of its own, and no user turn
    assert [(m.role, m.content) for m in s.conversation.history][-1] == ("assistant", "Once upon a time")


@virtual
async def test_reply_cancel_without_an_id_cancels_the_current_reply() -> None:
    s = await _cancelled(None)
    assert s.wire() == [*ASKED, "transcript.agent interrupted: Once upon a time", "reply.done interrupted"]
    assert s.state() == "Listening"


@virtual
async def test_reply_cancel_of_a_reply_that_is_not_current_is_ignored() -> None:
    s = await _cancelled("resp_" + "0" * 32)
    assert s.wire() == [*ASKED, f"transcript.agent: {STORY_TEXT}", "reply.done completed"]
    (finished,) = of(s.events, ReplyStarted)
    await s.conversation.cancel_reply(finished.reply_id)  # done already: not current either
    assert s.wire()[-1] == "reply.done completed" and s.transport.playback.flushes == []


@virtual
async def test_a_cancelled_reply_is_not_said_again_after_an_acknowledgement() -> None:
    # The agent says the cut clause again when a barge-in turns out to be a mere "okay" (false
    # interruptions); a reply the client cancelled was not cut by the user's voice, and stays cancelled.
    s = await open_session(llm=ScriptedLLM(STORY, ["Glad to help."]))
    await story_told(s, into_reply=1.0)
    await s.conversation.cancel_reply(None)
    await s.user.pause(0.5)
    await s.user.say("Okay.", 0.4, then=1.0)
    await s.idle()
    assert s.wire()[len(ASKED) + 2 :] == [
        "input.speech.started",
        "input.speech.stopped",
        "transcript.user: Okay.",
        "reply.started",
        "reply.audio",
        "transcript.agent: Glad to help.",
        "reply.done completed",
    ]


# ---------------------------------------------------------------- conversation.message


@virtual
async def test_a_system_message_is_context_for_the_next_reply_and_gets_none_itself() -> None:
    s = await open_session(llm=ScriptedLLM(["Hello Ada."]))
    await s.conversation.add_message("system", "The caller's name is Ada.")
    await s.user.pause(1.0)
    assert s.events == [] and s.llm.calls == []
    await s.user.say("Hello?", 0.6, then=1.0)
    await s.idle()
    (call,) = s.llm.calls
    assert system_prompt(call.messages) == SCRIPT_POLICY.system_prompt + "\n\nThe caller's name is Ada."
    assert [(m.role, m.content) for m in call.messages[1:]] == [("user", "Hello?")]


@virtual
async def test_a_user_message_with_audio_input_is_context_only() -> None:
    s = await open_session(llm=ScriptedLLM(["Let me look at your bill."]))
    await s.conversation.add_message("user", "I am calling about my bill.")
    await s.user.pause(1.0)
    assert s.events == [] and s.llm.calls == []
    await s.user.say("Can you help?", 0.8, then=1.0)
    await s.idle()
    assert [(m.role, m.content) for m in s.llm.calls[0].messages[1:]] == [
        ("user", "I am calling about my bill."),
        ("user", "Can you help?"),
    ]


@virtual
async def test_a_user_message_with_text_input_is_a_turn_and_is_answered() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."]), config={"input": {"type": "text"}})
    await s.user.say("Not heard: a text session expects no audio.", 1.0, then=1.0)
    assert s.events == []
    await s.conversation.add_message("user", "What time is it?")
    await s.idle()
    assert s.wire() == [
        "transcript.user: What time is it?",  # the typed turn gets its item, as a spoken one does
        "reply.started",
        "reply.audio",
        "transcript.agent: It is noon.",
        "reply.done completed",
    ]
    assert s.llm.calls[0].user_text == "What time is it?"
    assert [(m.role, m.content) for m in s.conversation.history] == [
        ("user", "What time is it?"),
        ("assistant", "It is noon."),
    ]


# ---------------------------------------------------------------- hold tools, timeouts, results

REPORT = {
    "name": "run_report",
    "description": "A long report",
    "execution_mode": "hold",
    "parameters": {"type": "object", "properties": {}},
}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
QUESTION = "What's the weather in Paris?"


def report_agent(messages: list[ChatMessage]) -> LLMScript:
    if any(m.role == "tool" for m in messages):
        return ["The report is ready."]
    if "For this reply:" in messages[0].content:  # reply.create's instructions
        return ["It is still running."]
    if messages[-1].content == "Run the report.":
        return [tool_call("run_report", call_id="call_report")]
    return ["It is still running."]


REPORT_CALLED = [
    "input.speech.started",
    "transcript.user.delta: Run the report.",
    "input.speech.stopped",
    "transcript.user: Run the report.",
    "reply.started",  # the empty reply that delivers the call: no audio, no transition (§6.5)
    "tool.call run_report {}",
    "reply.done completed",
]


@virtual
async def test_a_hold_tool_is_called_in_a_silent_reply_and_withholds_the_users_turns() -> None:
    s = await open_session(llm=ScriptedLLM(respond=report_agent), config={"tools": [REPORT]})
    await s.user.say("Run the report.", 1.0, then=1.0)
    await s.idle()
    assert s.wire() == REPORT_CALLED
    assert s.state() == "AwaitingTools" and s.voices.said == []
    calls = len(s.llm.calls)
    await s.user.say("Is it done yet?", 0.8, then=1.5)  # during the hold: heard, not transcribed to the client
    await s.idle()
    assert s.wire() == [*REPORT_CALLED, "input.speech.started", "input.speech.stopped"]
    assert len(s.llm.calls) == calls  # and no reply
    await s.conversation.on_tool_result("call_report", '{"rows": 3}')  # fires the next reply by itself
    await s.idle()
    assert s.wire() == [
        *REPORT_CALLED,
        "input.speech.started",
        "input.speech.stopped",
        "transcript.user: Is it done yet?",  # flushed before the reply
        "reply.started",
        "reply.audio",
        "transcript.agent: The report is ready.",
        "reply.done completed",
    ]
    withheld = of(s.events, UserTranscript)[-1]
    assert ITEM_ID.fullmatch(withheld.item_id) and withheld.item_id != of(s.events, UserTranscript)[0].item_id
    assert [(m.role, m.content) for m in s.llm.calls[-1].messages[1:]] == [
        ("user", "Run the report."),
        ("assistant", ""),  # the call, with no words
        ("tool", '{"rows": 3}'),
        ("user", "Is it done yet?"),  # the withheld turn joins the context, with no reply of its own
    ]


@virtual
async def test_reply_create_during_a_hold_gives_a_status_reply_and_the_result_still_fires_its_own() -> None:
    s = await open_session(llm=ScriptedLLM(respond=report_agent), config={"tools": [REPORT]})
    await s.user.say("Run the report.", 1.0, then=1.0)
    await s.idle()
    await s.conversation.reply_now("Say the report is still running.")
    await s.idle()
    assert s.wire() == [
        *REPORT_CALLED,
        "reply.started",
        "reply.audio",
        "transcript.agent: It is still running.",
        "reply.done completed",
    ]
    assert s.state() == "AwaitingTools"
    status = s.llm.calls[-1].messages
    assert system_prompt(status).endswith("For this reply: Say the report is still running.")
    assert all(not m.tool_calls for m in status)  # a call with no result yet is left out of the context
    assert s.llm.calls[-1].tools == ()  # a status update speaks; it cannot call the held tool again
    await s.conversation.on_tool_result("call_report", '{"rows": 3}')
    await s.idle()
    assert s.wire()[-2:] == ["transcript.agent: The report is ready.", "reply.done completed"]


def weather_agent(messages: list[ChatMessage]) -> LLMScript:
    if messages[-1].role == "tool":
        return ["Here is the weather."]
    if messages[-1].content == QUESTION:
        return [tool_call("get_weather", city="Paris")]
    return ["Okay."]


@virtual
async def test_a_tool_with_no_result_in_time_gets_an_apology_and_a_late_result_is_ignored() -> None:
    tool = {**WEATHER, "timeout_seconds": 1}
    s = await open_session(llm=ScriptedLLM(respond=weather_agent), config={"tools": [tool]})
    await s.user.say(QUESTION, 1.2, then=1.0)
    await s.idle()
    called = s.transport.first("reply.done")
    await s.user.pause(3.0)
    await s.idle()
    assert s.wire()[-7:] == [
        "transcript.agent: One moment, let me check.",
        'tool.call get_weather {"city": "Paris"}',
        "reply.done completed",
        "reply.started",  # a normal reply, timeout_seconds after the call
        "reply.audio",
        f"transcript.agent: {TOOL_TIMED_OUT}",
        "reply.done completed",
    ]
    assert abs(s.transport.first("reply.started", after=called) - (called + 1.0)) < 0.01  # timeout_seconds
    assert ("tool", '{"error": "the tool did not answer in time"}', "call_1") in [
        (m.role, m.content, m.tool_call_id) for m in s.conversation.history
    ]
    before, calls = len(s.events), len(s.llm.calls)
    await s.conversation.on_tool_result("call_1", '{"condition": "sunny"}')  # late
    await s.user.pause(1.0)
    assert len(s.events) == before and len(s.llm.calls) == calls  # no session.error, no reply


@virtual
async def test_a_tool_timeout_follows_the_tools_error_instructions_when_it_has_them() -> None:
    tool = {**WEATHER, "timeout_seconds": 1, "response_instructions": {"error": "Offer to try again later."}}
    s = await open_session(llm=ScriptedLLM(respond=weather_agent), config={"tools": [tool]})
    await s.user.say(QUESTION, 1.2, then=1.0)
    await s.idle()
    called = s.transport.first("reply.done")
    await s.user.pause(3.0)
    await s.idle()
    assert s.wire()[-4:] == [
        "reply.started",
        "reply.audio",
        "transcript.agent: Here is the weather.",
        "reply.done completed",
    ]
    timed_out = called + 1.0  # the reply starts with the LLM's first words
    assert abs(s.transport.first("reply.started", after=called) - (timed_out + s.llm.first_token_s)) < 0.01
    answering = s.llm.calls[-1].messages
    assert system_prompt(answering).endswith("Offer to try again later.")  # the LLM says it, as the tool asks
    assert answering[-1].role == "tool" and "did not answer in time" in answering[-1].content


async def _answered(is_error: bool) -> Session:
    instructions = {"success": "Read the forecast aloud.", "error": "Apologise and offer another city."}
    tool = {**WEATHER, "response_instructions": instructions}
    s = await open_session(llm=ScriptedLLM(respond=weather_agent), config={"tools": [tool]})
    await s.user.say(QUESTION, 1.2, then=1.0)
    await s.idle()
    result = "no such city" if is_error else '{"condition": "sunny"}'
    await s.conversation.on_tool_result("call_1", result, is_error=is_error)
    await s.idle()
    assert s.wire()[-2:] == ["transcript.agent: Here is the weather.", "reply.done completed"]
    return s


@virtual
async def test_a_failed_result_reaches_the_llm_as_an_error_with_the_tools_error_instructions() -> None:
    s = await _answered(is_error=True)
    answering = s.llm.calls[-1].messages
    assert (answering[-1].role, answering[-1].content) == ("tool", "Error: no such city")
    prompt = system_prompt(answering)
    assert prompt.endswith("For this reply: Apologise and offer another city.") and "forecast" not in prompt


@virtual
async def test_a_successful_result_brings_the_tools_success_instructions() -> None:
    s = await _answered(is_error=False)
    answering = s.llm.calls[-1].messages
    assert (answering[-1].role, answering[-1].content) == ("tool", '{"condition": "sunny"}')
    prompt = system_prompt(answering)
    assert prompt.endswith("For this reply: Read the forecast aloud.") and "Apologise" not in prompt
    await s.user.say("Thanks.", 0.6, then=1.0)  # the instructions were for that reply only
    await s.idle()
    assert "forecast" not in system_prompt(s.llm.calls[-1].messages)


# ---------------------------------------------------------------- turns the user cannot interrupt

GREETING = "Hello there, and welcome to the line, how can I help you today?"  # 14 words: 3.5 s


@virtual
async def test_speech_over_an_uninterruptible_greeting_is_discarded() -> None:
    config = {"greeting": GREETING, "input": {"turn_detection": {"uninterruptible_turns": ["greeting"]}}}
    s = await open_session(llm=ScriptedLLM(respond=lambda messages: ["It is noon."]), config=config)
    await s.conversation.greet()
    await s.until(lambda: s.transport.audio_s() > 0)
    await s.user.pause(1.0)
    await s.user.say("Wait, what time is it?", 1.2, then=2.0)
    await s.idle()
    assert s.wire() == ["reply.started", "reply.audio", f"transcript.agent: {GREETING}", "reply.done completed"]
    assert s.llm.calls == [] and s.transport.playback.flushes == []  # not answered, not queued
    await s.user.say("What time is it?", 1.0, then=1.0)  # after the greeting: a turn as any other
    await s.idle()
    assert s.wire()[4:] == [
        "input.speech.started",
        "transcript.user.delta: What time is it?",
        "input.speech.stopped",
        "transcript.user: What time is it?",
        "reply.started",
        "reply.audio",
        "transcript.agent: It is noon.",
        "reply.done completed",
    ]


@virtual
async def test_speech_that_began_over_an_uninterruptible_greeting_is_discarded_whole() -> None:
    config = {"greeting": "Hello there.", "input": {"turn_detection": {"uninterruptible_turns": ["greeting"]}}}
    s = await open_session(llm=ScriptedLLM(respond=lambda messages: ["It is noon."]), config=config)
    await s.conversation.greet()
    await s.until(lambda: s.transport.audio_s() > 0)
    await s.user.say("Wait, what time is it?", 1.5, then=2.0)  # goes on past the greeting's end (0.5 s)
    await s.idle()
    assert s.wire() == ["reply.started", "reply.audio", "transcript.agent: Hello there.", "reply.done completed"]
    assert s.llm.calls == []


@virtual
async def test_interrupt_response_off_the_reply_plays_on_with_no_speech_events_and_the_turn_is_answered() -> None:
    s = await open_session(
        llm=ScriptedLLM(STORY, ["Yes, it is warm."]),
        config={"input": {"turn_detection": {"interrupt_response": False}}},
    )
    await story_told(s, into_reply=1.0)
    await s.user.say("Is it warm?", 0.8, then=1.0)
    await s.idle()
    story, answer = of(s.events, ReplyStarted)
    story_done = of(s.events, ReplyDone)[0]
    during = s.events[s.events.index(story) : s.events.index(story_done)]
    assert of(during, SpeechStarted) == [] and of(during, SpeechStopped) == []
    assert of(s.events, AgentTranscript)[0].text == STORY_TEXT and story_done.status == "completed"
    assert s.wire()[-4:] == [
        "reply.started",
        "reply.audio",
        "transcript.agent: Yes, it is warm.",
        "reply.done completed",
    ]
    assert s.llm.calls[-1].user_text == "Is it warm?"
    assert s.events.index(answer) > s.events.index(story_done)  # answered after the reply


@virtual
async def test_interrupt_response_off_speech_going_on_past_the_reply_is_announced_in_pairs() -> None:
    # Over the reply no input.speech.* is sent (§6.6); a user still talking when it ends must not get an
    # input.speech.stopped with no input.speech.started before it.
    s = await open_session(
        llm=ScriptedLLM(["Once upon a time there was a knight. "], ["Yes, it is warm."]),
        config={"input": {"turn_detection": {"interrupt_response": False}}},
    )
    await story_told(s, into_reply=1.5)  # the reply is 2 s long
    await s.user.say("Is it warm today, do you think?", 1.5, then=1.5)
    await s.idle()
    assert s.wire() == [
        *ASKED,
        "transcript.agent: Once upon a time there was a knight.",
        "reply.done completed",
        "transcript.user.delta: Is it warm today, do you think?",
        "transcript.user: Is it warm today, do you think?",  # no lone input.speech.stopped before it
        "reply.started",
        "reply.audio",
        "transcript.agent: Yes, it is warm.",
        "reply.done completed",
    ]
    assert len(of(s.events, SpeechStarted)) == len(of(s.events, SpeechStopped)) == 1  # the first turn's


# ---------------------------------------------------------------- output and input settings


@virtual
async def test_output_volume_zero_makes_the_reply_audio_silent() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."]), config={"output": {"volume": 0}})
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    chunks = of(s.events, ReplyAudio)
    assert chunks and all(not samples(c).any() for c in chunks)
    assert abs(s.transport.audio_s() - s.voices.seconds("It is noon.")) < 1e-6  # silent, not missing
    assert " ".join(d.delta for d in of(s.events, AgentTranscriptDelta)) == "It is noon."


@virtual
async def test_output_volume_applies_to_the_chunks_that_follow_it() -> None:
    s = await open_session(llm=ScriptedLLM(STORY))
    await story_told(s, into_reply=1.0)
    changed = len(s.events)
    await update(s, {"output": {"volume": 0}})
    await s.idle()
    before = of(s.events[:changed], ReplyAudio)
    after = of(s.events[changed:], ReplyAudio)
    assert before and after and all(samples(c).any() for c in before)
    assert all(not samples(c).any() for c in after)
    assert s.wire()[-2:] == [f"transcript.agent: {STORY_TEXT}", "reply.done completed"]


@virtual
async def test_output_type_text_sends_captions_without_times_and_no_audio() -> None:
    s = await open_session(llm=ScriptedLLM(["The time ", "is three o'clock."]), config={"output": {"type": "text"}})
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert of(s.events, ReplyAudio) == [] and s.voices.said == []
    assert s.wire()[-3:] == ["reply.started", "transcript.agent: The time is three o'clock.", "reply.done completed"]
    (started,) = of(s.events, ReplyStarted)
    deltas = of(s.events, AgentTranscriptDelta)
    assert " ".join(d.delta for d in deltas) == "The time is three o'clock."
    assert all(d.start_ms is None and d.end_ms is None and d.reply_id == started.reply_id for d in deltas)


async def _partials(continuous: bool) -> tuple[Session, list[float]]:
    """A 2.5 s sentence, a 0.35 s pause, 0.6 s more: when the live line (transcript.user.delta) was sent,
    in seconds from the start of the sentence."""
    config = {"input": {"continuous_partials": continuous}}
    s = await open_session(llm=ScriptedLLM(respond=lambda messages: ["Okay."]), config=config)
    began = s.now()
    await s.user.say("I would like to book a table for two people tonight.", 2.5, then=0.35)
    await s.user.say("At eight.", 0.6, then=1.0)
    await s.idle()
    return s, [t - began for t, e in s.transport.log if isinstance(e, UserTranscriptDelta)]


@virtual
async def test_continuous_partials_off_sends_the_live_line_only_at_pauses() -> None:
    s, times = await _partials(continuous=False)
    first_pause = 2.5 + SPECULATE_AFTER_S
    second_pause = 2.5 + 0.35 + 0.6 + SPECULATE_AFTER_S
    assert len(times) == 2
    assert first_pause <= times[0] < first_pause + 0.15 and second_pause <= times[1] < second_pause + 0.15
    assert [e.text for e in of(s.events, UserTranscriptDelta)] == [
        "I would like to book a table for two people tonight.",
        "I would like to book a table for two people tonight. At eight.",
    ]
    _, continuous = await _partials(continuous=True)
    assert any(t < 2.5 for t in continuous)  # on by default: the line comes while the user talks


# ---------------------------------------------------------------- the resolved configuration

INPUT_KEYS = {
    "type",
    "format",
    "keyterms",
    "turn_detection",
    "language_codes",
    "transcription_mode",
    "transcription_prompt",
    "voice_focus",
    "voice_focus_threshold",
    "continuous_partials",
}
TURN_KEYS = {
    "vad_threshold",
    "min_silence",
    "max_silence",
    "interrupt_response",
    "interruption_delay",
    "type",
    "uninterruptible_turns",
}


@virtual
async def test_the_resolved_config_has_every_key_with_nulls_where_unset() -> None:
    s = await open_session()
    config = s.conversation.resolved_config()
    assert set(config) == {"id", "system_prompt", "greeting", "input", "output", "tools", "llm", "pre_connect_requests"}
    assert set(config["input"]) == INPUT_KEYS and set(config["input"]["turn_detection"]) == TURN_KEYS
    assert set(config["output"]) == {"type", "voice", "format", "volume"}
    assert config["id"] == "" and config["greeting"] is None
    assert config["system_prompt"] == SCRIPT_POLICY.system_prompt
    turn = config["input"]["turn_detection"]
    assert (turn["min_silence"], turn["max_silence"]) == (None, None)  # adaptive, as the live service shows it
    assert (turn["interruption_delay"], turn["type"], turn["uninterruptible_turns"]) == (None, None, [])
    assert config["input"]["transcription_prompt"] is None and config["input"]["keyterms"] == []
    assert config["output"]["type"] == "audio" and config["output"]["volume"] == 100
    assert config["output"]["voice"] == "tone"  # the server's voice, named
    assert (config["tools"], config["llm"], config["pre_connect_requests"]) == ([], [], [])


@virtual
async def test_the_resolved_config_merges_objects_key_by_key_and_replaces_lists() -> None:
    tool_b = {"name": "book", "description": "Book a table"}
    s = await open_session(
        config={
            "input": {"keyterms": ["Ozempic"], "turn_detection": {"min_silence": 800}},
            "tools": [WEATHER, tool_b],
        }
    )
    await update(s, {"input": {"turn_detection": {"interrupt_response": False}}})
    await update(s, {"input": {"keyterms": ["Salesforce"]}, "tools": [tool_b], "system_prompt": None})
    config = s.conversation.resolved_config()
    turn = config["input"]["turn_detection"]
    assert (turn["min_silence"], turn["interrupt_response"], turn["max_silence"]) == (800, False, None)
    assert config["input"]["keyterms"] == ["Salesforce"]  # a list replaces the one before
    assert config["system_prompt"] == SCRIPT_POLICY.system_prompt  # a null counts as not sent
    (tool,) = config["tools"]
    assert tool == {
        "type": "function",
        "name": "book",
        "description": "Book a table",
        "parameters": {"type": "object", "properties": {}},
        "execution_mode": "interactive",
        "timeout_seconds": 120,
        "response_instructions": None,
        "http": None,
    }  # with its defaults filled in
    assert "llm_model" not in config and "language" not in config["input"]  # Voxgate's own: only when set
    assert s.conversation.config.timing.max_silence == 1500  # min_silence set: fixed pacing, launch max


# ---------------------------------------------------------------- session.end


@virtual
async def test_ending_the_session_drops_the_reply_and_its_tool_timers_with_no_further_events() -> None:
    s = await open_session(llm=ScriptedLLM(STORY))
    await story_told(s, into_reply=1.0)
    sent = len(s.events)
    await s.conversation.end()
    await s.user.pause(8.0)  # longer than the story; the microphone still streams
    assert len(s.events) == sent and s.wire()[-1] == "reply.audio"  # dropped, with no ending sent
    assert s.conversation.ended and s.conversation.listener is None and s.state() == "Listening"
    assert s.conversation.transport is s.transport  # the caller still sends session.ended through it


@virtual
async def test_ending_the_session_stops_a_tools_timeout_apology() -> None:
    tool = {**WEATHER, "timeout_seconds": 1}
    s = await open_session(llm=ScriptedLLM(respond=weather_agent), config={"tools": [tool]})
    await s.user.say(QUESTION, 1.2, then=1.0)
    await s.idle()
    sent = len(s.events)
    await s.conversation.end()
    await s.user.pause(2.0)
    assert len(s.events) == sent


@virtual
async def test_an_inline_http_tool_is_the_clients_to_run_not_the_servers() -> None:
    """§4.5: the server runs http tools of stored agents only; a client's own must not make it call a URL."""
    tool = {**WEATHER, "http": {"url": "http://127.0.0.1:9/never-called", "http_method": "POST"}}
    s = await open_session(llm=ScriptedLLM(respond=weather_agent), config={"tools": [tool]})
    assert "tools.http" in s.conversation.resolved_config()["voxgate"]["not_honoured"]
    await s.user.say(QUESTION, 1.2, then=1.0)
    await s.idle()
    assert 'tool.call get_weather {"city": "Paris"}' in s.wire()
    assert not s.conversation.tools.runs_here("call_1")  # the client's tool.result is awaited, not ignored
    await s.conversation.on_tool_result("call_1", '{"condition": "sunny"}')
    await s.idle()
    assert s.wire()[-1] == "reply.done completed" and s.llm.calls[-1].messages[-1].role == "tool"
