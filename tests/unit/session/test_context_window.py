"""Fitting long histories into the LLM's window (session/context_window.py), and the size limits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxgate.backends.base import ChatMessage, ToolCallRequest, ToolSpec
from voxgate.protocol.events import MAX_GREETING_CHARS, MAX_TOOL_RESULT_CHARS, client_event_adapter
from voxgate.session import clauses
from voxgate.session.clauses import ClauseSplitter
from voxgate.session.context_window import RECAP_HEADER, ContextWindow, estimate_tokens

CONTEXT = 4096
REPLY = 200


def _words(text: str) -> int:
    return len(text.split()) + 1


def _exchange(i: int, *, tool: bool = False) -> list[ChatMessage]:
    user = ChatMessage(role="user", content=f"question number {i} " + "about the weather and my plans " * 3)
    if not tool:
        return [user, ChatMessage(role="assistant", content=f"answer {i} " + "it will be fine and sunny " * 3)]
    call = ToolCallRequest(call_id=f"call_{i}", name="get_weather", arguments={"city": "Paris"})
    return [
        user,
        ChatMessage(role="assistant", content="", tool_calls=[call]),
        ChatMessage(role="tool", content='{"temp": 20}', tool_call_id=f"call_{i}"),
        ChatMessage(role="assistant", content=f"it is 20 degrees ({i})"),
    ]


def _fit(window: ContextWindow, history: list[ChatMessage], system: str = "Be brief.") -> tuple[str, list]:
    fitted, view = window.fit(system, (), history, context_tokens=CONTEXT, reply_tokens=REPLY, count=_words)
    return fitted, [view.recap, view.turns]


def _prompt_tokens(system: str, recap: str, turns: list[ChatMessage]) -> int:
    """(`turns` holds the recap)"""
    return _words(system) + sum(_words(m.content) + 4 for m in turns)


def test_a_short_conversation_is_sent_whole() -> None:
    history = [m for i in range(5) for m in _exchange(i)]
    _, (recap, turns) = _fit(ContextWindow(), history)
    assert recap == ""
    assert turns == history


def test_hundreds_of_turns_always_fit_and_keep_the_newest_verbatim() -> None:
    window = ContextWindow()
    history: list[ChatMessage] = []
    for i in range(600):
        newest = _exchange(i, tool=i % 7 == 0)
        history.extend(newest)
        system, (recap, turns) = _fit(window, history)
        assert _prompt_tokens(system, recap, turns) + REPLY <= CONTEXT
        assert turns[-len(newest) :] == newest
        first = next(m for m in turns if m.role != "system")
        assert first.role == "user", "a fold starts the verbatim turns at a user message"
    assert window.folds > 0
    assert recap.startswith(RECAP_HEADER)


def test_folding_happens_in_steps_and_the_view_only_grows_between_folds() -> None:
    """Between two folds each turn's view extends the previous one: the model's cache is reused whole.
    At a fold, what is kept is still in the order it was evaluated, with the recap after it."""
    window = ContextWindow()
    history: list[ChatMessage] = []
    previous: list[ChatMessage] = []
    folds = 0
    for i in range(300):
        history.extend(_exchange(i))
        _, (recap, turns) = _fit(window, history)
        if window.folds == folds:
            assert turns[: len(previous)] == previous
        else:
            folds = window.folds
            kept = [m for m in turns if m.role != "system"]
            assert [m for m in previous if m in kept] == kept[: len([m for m in previous if m in kept])]
            newest = max(j for j, m in enumerate(turns) if m.role == "user")
            assert turns[newest - 1].content == recap, "the recap sits right before the newest question"
        previous = turns
    assert 0 < window.folds <= 300 // 10, f"{window.folds} folds in 300 turns"


def test_a_tool_result_never_loses_its_call() -> None:
    window = ContextWindow()
    history: list[ChatMessage] = []
    for i in range(400):
        history.extend(_exchange(i, tool=True))
        _, (_, turns) = _fit(window, history)
        calls = {c.call_id for m in turns for c in m.tool_calls}
        results = {m.tool_call_id for m in turns if m.role == "tool"}
        assert results <= calls


def test_the_recap_keeps_the_words_of_early_turns() -> None:
    window = ContextWindow()
    history = [
        ChatMessage(role="user", content="my name is Ada Lovelace"),
        ChatMessage(role="assistant", content="Hi Ada"),
    ]
    for i in range(400):
        history.extend(_exchange(i))
        _, (recap, _) = _fit(window, history)
    assert window.folds > 3
    assert "Ada Lovelace" in recap, "the first turns stay in the recap however many folds followed"
    assert "answer 3" in recap.splitlines()[-1], "and so do the newest folded ones"


def test_a_system_prompt_too_long_for_the_window_is_shortened_and_said_so() -> None:
    system = "word " * 6000
    fitted, view = ContextWindow().fit(
        system, (), _exchange(1), context_tokens=CONTEXT, reply_tokens=REPLY, count=_words
    )
    assert view.system_cut
    assert _words(fitted) < CONTEXT
    assert view.turns == _exchange(1)


def test_tools_count_against_the_window() -> None:
    tools = [ToolSpec(name=f"t{i}", description="does a thing " * 30, parameters={}) for i in range(20)]
    history = [m for i in range(40) for m in _exchange(i)]
    _, without = ContextWindow().fit("Be brief.", (), history, context_tokens=CONTEXT, reply_tokens=REPLY, count=_words)
    _, with_tools = ContextWindow().fit(
        "Be brief.", tools, history, context_tokens=CONTEXT, reply_tokens=REPLY, count=_words
    )
    assert len(with_tools.turns) < len(without.turns)


def test_the_estimate_for_remote_models_errs_towards_fitting() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    assert estimate_tokens(text) >= len(text.split())


# ---------------------------------------------------------------- linear clause splitting (H7)


def test_splitting_scans_a_bounded_window_whatever_the_text_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """A greeting without punctuation was rescanned from its start for every clause: quadratic."""
    scanned: list[int] = []

    class Spy:
        def __init__(self, pattern: object) -> None:
            self.pattern = pattern

        def finditer(self, text: str):  # type: ignore[no-untyped-def]
            scanned.append(len(text))
            return self.pattern.finditer(text)  # type: ignore[attr-defined]

    monkeypatch.setattr(clauses, "_SENTENCE_END", Spy(clauses._SENTENCE_END))
    monkeypatch.setattr(clauses, "_SOFT_BREAK", Spy(clauses._SOFT_BREAK))
    text = "word " * 40_000  # 200 KB, no punctuation
    splitter = ClauseSplitter()
    out = splitter.feed(text) + splitter.flush()
    assert " ".join(out).split() == text.split()
    assert max(scanned) <= clauses.MAX_CLAUSE_CHARS + 64


def test_streamed_and_whole_text_split_the_same() -> None:
    text = "Hello there, my friend. " * 5 + "Your number is 415 555 0134. " + "And a long one " * 30 + "done."
    whole = ClauseSplitter()
    a = whole.feed(text) + whole.flush()
    streamed = ClauseSplitter()
    b: list[str] = []
    for i in range(0, len(text), 7):
        b += streamed.feed(text[i : i + 7])
    b += streamed.flush()
    assert " ".join(a).split() == " ".join(b).split() == text.split()


# ---------------------------------------------------------------- size limits (H5, H7)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "session.update", "session": {"greeting": "x" * (MAX_GREETING_CHARS + 1)}}, "greeting"),
        ({"type": "session.update", "session": {"system_prompt": "x" * 16_001}}, "system_prompt"),
        ({"type": "session.update", "session": {"tools": [{"name": f"t{i}"} for i in range(65)]}}, "tools"),
        (
            {"type": "session.update", "session": {"tools": [{"name": "t", "parameters": {"d": "x" * 9000}}]}},
            "parameters",
        ),
        ({"type": "tool.result", "call_id": "c", "result": "x" * (MAX_TOOL_RESULT_CHARS + 1)}, "result"),
        ({"type": "conversation.message", "role": "user", "content": "x" * 16_001}, "content"),
        ({"type": "reply.create", "instructions": "x" * 4_001}, "instructions"),
    ],
)
def test_oversized_fields_are_refused_naming_the_limit(event: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        client_event_adapter.validate_python(event)
    text = str(caught.value)
    assert field in text
    assert "at most" in text
