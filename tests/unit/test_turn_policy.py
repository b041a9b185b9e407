"""Each end-of-turn rule, pinned by examples so it cannot silently regress."""

import pytest

from voxgate.session.turn_policy import TurnEvidence, turn_is_complete, unfinished_reason

UNFINISHED = [
    "I'd like to book a table for, um",
    "I'd like to book a table and",
    "So my number is 555",
    "My phone number is 415 555",
    "You can call me at 4 1 5, 5 5 5",
    "My email is john dot smith at",
    "My email is john dot smith at example",
    "My order ID is R X",
    "I was thinking...",
    "It's for the",
    "The code is 7 7",
    "My order ID is RX-77.",
    "My zip code is 94.",
    "My zip code is 9.4.",
    "My order ID is RX-777.",
    "Can you tell me?",
    "Could you show me",
    "My email is john.smithat.",
    "The email address is Maria at.",
]
COMPLETE = [
    "What is the capital city of France?",
    "Book a table for two at seven.",
    "My phone number is 415 555 0134.",
    "My email is john dot smith at example dot com.",
    "My email is john.smith@example.com",
    "My order ID is RX-7704132.",
    "I'd like two of them.",
    "Can you help me, please?",
    "Thank you.",
    "What is your email policy?",
    "My zip code is 94103.",
    "My order ID is RX-7704132.",
    "Can you help me?",
    "The policy number is B449-71",  # an ID, not a phone number: no 10 digits owed
    "My member number is 5512309.",
    "",
]


@pytest.mark.parametrize("text", UNFINISHED)
def test_unfinished_turns_are_recognised(text: str) -> None:
    assert unfinished_reason(text) is not None
    assert not turn_is_complete(TurnEvidence(text, p_complete=0.99), threshold=0.5)


@pytest.mark.parametrize("text", COMPLETE)
def test_complete_turns_are_not_held(text: str) -> None:
    assert unfinished_reason(text) is None


def test_the_model_decides_when_the_words_are_neutral() -> None:
    assert turn_is_complete(TurnEvidence("", 0.7), 0.5)
    assert not turn_is_complete(TurnEvidence("", 0.4), 0.5)
    assert turn_is_complete(TurnEvidence("Book a table for two.", 0.35), 0.5)  # words complete: 0.6 × threshold
    assert not turn_is_complete(TurnEvidence("Book a table for two.", 0.1), 0.5)
    assert turn_is_complete(TurnEvidence("Is it open today?", 0.2), 0.5)  # a question: 0.3 × threshold
    assert turn_is_complete(TurnEvidence("Book a table for two.", None), 0.5)  # Smart Turn off: words decide


def test_a_hanging_verb_needs_a_sure_model() -> None:
    assert not turn_is_complete(TurnEvidence("Let me check", p_complete=0.67), threshold=0.5)
    assert turn_is_complete(TurnEvidence("Let me check", p_complete=0.95), threshold=0.5)
    assert turn_is_complete(TurnEvidence("That's all I need.", p_complete=0.95), threshold=0.5)
    assert turn_is_complete(TurnEvidence("I'd like to book a table.", p_complete=0.67), threshold=0.5)


@pytest.mark.parametrize("text", ["I'd like to book", "I want to order", "so I need to cancel"])
def test_an_infinitive_without_its_object_or_a_full_stop_is_not_the_end(text: str) -> None:
    assert unfinished_reason(text)
    assert not turn_is_complete(TurnEvidence(text, p_complete=0.99), threshold=0.5, late=True)


def test_an_infinitive_heard_as_a_whole_sentence_can_be_the_end() -> None:
    assert not unfinished_reason("What would you like to order?")
    assert not unfinished_reason("No, I need to cancel.")
    assert turn_is_complete(TurnEvidence("No, I need to cancel.", p_complete=0.95), threshold=0.5)
    assert not turn_is_complete(TurnEvidence("No, I need to cancel.", p_complete=0.6), threshold=0.5)


def test_late_the_words_decide_but_unfinished_words_still_wait() -> None:
    """Halfway to max_silence, Smart Turn's doubt no longer holds a turn whose words are whole."""
    low = 0.08  # what Smart Turn gave "He was not an ill-disposed young man." (LibriVox)
    assert not turn_is_complete(TurnEvidence("He was not an ill-disposed young man.", low), 0.5)
    assert turn_is_complete(TurnEvidence("He was not an ill-disposed young man.", low), 0.5, late=True)
    assert turn_is_complete(TurnEvidence("Does the pharmacy deliver?", 0.01), 0.5, late=True)
    assert not turn_is_complete(TurnEvidence("I'd like to book", low), 0.5, late=True)
    assert not turn_is_complete(TurnEvidence("My phone number is 415 555", 0.99), 0.5, late=True)
    assert not turn_is_complete(TurnEvidence("", 0.3), 0.5, late=True)  # no words yet: the model alone
