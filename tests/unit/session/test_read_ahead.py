"""A local model reads the history ahead after each reply, so the next turn reads only the user's words.

With the embedded model's tool guards a reply is written as the `chat` call's argument, while the next
prompt renders it as plain text: the cache and the prompt parted at the reply, and each later turn read
the previous reply again before its first word (+0.5-0.9 s measured on the real model, 2 cores). The
scripted model here records what it was asked to read ahead and when.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakes import ScriptedLLM, open_session, tool_call
from tests.unit.session.test_turns import STORY, story_told
from tests.virtual_time import virtual
from voxgate.backends.base import ChatMessage, ToolSpec


class ReadsAheadLLM(ScriptedLLM):
    """A model with a cache to fill: `read_ahead` is recorded (its messages' roles and texts)."""

    def __init__(self, *scripts: object) -> None:
        super().__init__(*scripts)  # type: ignore[arg-type]
        self.read: list[list[tuple[str, str]]] = []

    async def read_ahead(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> None:
        self.read.append([(m.role, m.content) for m in messages])


@virtual
async def test_after_a_completed_reply_the_history_with_it_is_read_ahead() -> None:
    llm = ReadsAheadLLM(["The time ", "is three o'clock."], ["You are welcome."])
    s = await open_session(llm=llm)
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()
    assert s.wire()[-1] == "reply.done completed"
    last = llm.read[-1]
    assert last[1:] == [("user", "What time is it?"), ("assistant", "The time is three o'clock.")]
    before = len(llm.read)
    await s.user.say("Thanks.", 0.6, then=1.0)
    await s.idle()
    assert len(llm.read) == before + 1 and llm.read[-1][-1] == ("assistant", "You are welcome.")
    # The next turn's prompt starts with what was read ahead: the cache serves all of it.
    second = llm.calls[-1].messages
    assert [(m.role, m.content) for m in second[: len(last)]] == last


@virtual
async def test_after_a_cut_reply_what_was_heard_is_read_ahead() -> None:
    llm = ReadsAheadLLM(STORY, ["Sure, what is it?"])
    s = await open_session(llm=llm)
    await story_told(s, into_reply=1.0)
    await s.user.say("Wait, stop", 0.6, then=1.5)
    await s.idle()
    cut = [r for r in llm.read if r and r[-1][0] == "assistant" and "interrupted" not in r[-1][1]]
    assert any(r[-1] == ("assistant", "Once upon a time there") for r in cut), llm.read


@virtual
async def test_a_reply_that_hands_over_to_a_tool_is_not_read_ahead() -> None:
    """Its call waits for a result; the reply to the result renders differently anyway."""
    llm = ReadsAheadLLM([tool_call("get_weather", call_id="call_1", city="Paris")])
    s = await open_session(
        llm=llm,
        config={"tools": [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]},
    )
    await s.user.say("What is the weather in Paris?", 1.2, then=1.0)
    await s.idle()
    assert "tool.call" in " ".join(s.wire())
    assert llm.read and not [r for r in llm.read if len(r) > 1]  # the session's prompt only, at its start
