"""The pieces of a reply spoken through `chat` that need no model: when the function's name is decided,
how the first token is sampled from the logits kept from the batch, and how the reply's text may end."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.backends.llm.llama_cpp_backend import _REPLY_END, LlamaCppLLM, _only_chat, _ToolVocab

NAMES = ["get_weather", "check_availability", "chatbot_handoff"]


@pytest.mark.parametrize(
    ("written", "decided"),
    [
        ("chat", False),  # a tool's name also begins so: wait for the next token
        ('chat"', True),
        ('chat", "arguments', True),
        ("ch", False),
        ("get", False),
        ("", False),
    ],
)
def test_chat_is_decided_only_when_no_tool_name_begins_the_same_way(written: str, decided: bool) -> None:
    assert _only_chat(written, NAMES) is decided


def test_chat_is_decided_on_its_first_token_when_no_tool_shares_it() -> None:
    assert _only_chat("chat", ["get_weather", "remember"])
    assert _only_chat("ch", ["get_weather"])
    assert not _only_chat("c", ["cancel_order"])


def _llm(temperature: float, *, size: int = 100) -> LlamaCppLLM:
    """The backend without a model: only what sampling and the reply's token mask use."""
    llm = object.__new__(LlamaCppLLM)
    llm._temperature, llm._top_p = temperature, 0.9
    llm._rng = np.random.default_rng(7)
    ids = np.asarray
    vocab = _ToolVocab(ids([10, 11, 12]), ids([10]), ids([99]), ids([12]), size=size)
    vocab.ends_quote[[20]] = True
    llm._vocab = vocab
    return llm


def test_the_first_token_at_temperature_zero_is_the_best_one() -> None:
    scores = np.zeros(100)
    scores[42] = 5.0
    assert _llm(0.0)._sample(scores) == 42


def test_sampling_never_draws_what_min_p_or_top_p_leave_out() -> None:
    """Token 1 has 0.9 of the mass (top-p 0.9 keeps it alone); token 2 is under min-p of the best."""
    scores = np.full(100, -1e9)
    scores[1], scores[2] = 0.0, np.log(0.01)
    llm = _llm(1.0)
    assert {llm._sample(scores.copy()) for _ in range(200)} == {1}


def test_sampling_draws_among_close_tokens() -> None:
    scores = np.full(100, -1e9)
    scores[3] = scores[4] = 0.0
    llm = _llm(0.6)
    assert {llm._sample(scores.copy()) for _ in range(200)} <= {3, 4}


def test_a_reply_has_no_markup_and_no_call() -> None:
    mask = _llm(0.6)._reply_mask(1)
    scores = mask([30, 5], np.zeros(100))
    assert np.isneginf(scores[[10, 11, 12]]).all() and np.isfinite(scores[[5, 20, 30]]).all()


def test_the_closing_braces_come_only_right_after_a_quote_the_reply_wrote() -> None:
    mask = _llm(0.6)._reply_mask(2)  # token 20 (a quote) is the reply's opening quote at position 2
    assert np.isneginf(mask([7, 20], np.zeros(100))[12])  # not closed before a word: the reply says something
    assert np.isneginf(mask([7, 20, 5], np.zeros(100))[12])
    assert mask([7, 20, 5, 20], np.zeros(100))[12] == 0.0


def test_a_quote_alone_does_not_end_the_reply() -> None:
    """A title in quotes (`wrote "Hamlet" in`) goes on; the reply ends at the quote and its brace."""
    assert '"' not in _REPLY_END and '"}' in _REPLY_END
