"""The path from the recognizer's words to the text the LLM reads: keyterms, term packs, entities."""

import pytest

from voxgate.backends.recognition import Recognizer
from voxgate.backends.registry import Models
from voxgate.config import Settings


@pytest.fixture(scope="module")
def engine() -> Recognizer:
    return Recognizer(Models(Settings(term_packs=["medical"])))


@pytest.mark.parametrize(
    ("heard", "keyterms", "expected"),
    [
        ("I take metforman and lisinoprill every day.", [], "I take metformin and lisinopril every day."),
        ("My email is john dot smith at example dot com.", [], "My email is john.smith@example.com."),
        ("Call me at five five five, one two three, four five six seven.", [], "Call me at 555-123-4567."),
        ("My ID is R X dash seven seven zero four one three two.", [], "My ID is RX-7704132."),
        ("I want to cancel my Zorbic subscription.", ["Zorbix"], "I want to cancel my Zorbix subscription."),
        ("I'd like two of them, please.", ["Zorbix"], "I'd like two of them, please."),
    ],
)
def test_the_llm_reads_written_entities_and_keyterms(
    engine: Recognizer, heard: str, keyterms: list[str], expected: str
) -> None:
    assert engine.finish_transcript(heard, language="en", keyterms=keyterms) == expected


def test_formatting_can_be_switched_off() -> None:
    engine = Recognizer(Models(Settings(format_entities=False)))
    text = "My email is john dot smith at example dot com."
    assert engine.finish_transcript(text, language="en", keyterms=[]) == text


def test_an_unknown_pack_fails_loudly() -> None:
    with pytest.raises(ValueError, match="medical"):
        _ = Models(Settings(term_packs=["no-such-pack"])).pack_terms
