import re

import pytest

from voxgate.session.clauses import FIRST_CLAUSE_MIN_WORDS, ClauseSplitter, first_clause_min_words
from voxgate.session.playback import PlaybackClock


def split(chunks: list[str], first_min_words: int = FIRST_CLAUSE_MIN_WORDS) -> list[str]:
    s = ClauseSplitter(first_min_words=first_min_words)
    out = [c for chunk in chunks for c in s.feed(chunk)]
    return out + s.flush()


def test_first_clause_is_cut_early_at_a_comma() -> None:
    text = "Sure, the capital of France is Paris, which is also its largest city. It has many museums."
    assert split([text[i : i + 3] for i in range(0, len(text), 3)]) == [
        "Sure, the capital of France is Paris,",
        "which is also its largest city.",
        "It has many museums.",
    ]


def test_a_slow_voice_cuts_the_first_clause_at_its_first_comma_only() -> None:
    text = "Sure, the capital of France is Paris, which is also its largest city. It has many museums."
    assert split([text[i : i + 3] for i in range(0, len(text), 3)], first_clause_min_words(True)) == [
        "Sure,",
        "the capital of France is Paris, which is also its largest city.",  # later clauses as before
        "It has many museums.",
    ]
    assert split(["The capital of France is Paris. Yes."], first_clause_min_words(True))[0] == (
        "The capital of France is Paris."  # no comma: the sentence, as for any voice
    )
    assert first_clause_min_words(False) == FIRST_CLAUSE_MIN_WORDS


def test_decimals_abbreviations_and_emails_do_not_end_sentences() -> None:
    assert split(["It costs 3.5 dollars. Ask Dr. Smith at john.smith@example.com today. Bye"]) == [
        "It costs 3.5 dollars.",
        "Ask Dr. Smith at john.smith@example.com today.",
        "Bye",
    ]


def tokens(text: str) -> list[str]:
    """The embedded LLM's way: words with their space, and every digit a token of its own."""
    return [t for t in re.findall(r" ?[A-Za-z@.'-]+| ?\d|[^\w\s]| ", text) if t]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Your phone number is 415-555-0134. I will call you back.", "Your phone number is"),
        ("Got it, your order ID is RX-7704132.", "Got it, your order ID is"),
        ("The total comes to $1,250.00 for both nights.", "The total comes to"),
        ("I booked a table for 4 people at 7 tonight.", "I booked a table for 4 people at 7 tonight."),
        ("The year was 1969 when it happened.", "The year was 1969 when it happened."),
        ("It is 415-555-0134.", "It is 415-555-0134."),  # too few words to say on their own
    ],
)
def test_the_words_before_a_long_value_are_spoken_first(text: str, first: str) -> None:
    clauses = split(tokens(text))
    assert clauses[0] == first and " ".join(clauses) == text


def test_long_run_without_punctuation_is_cut() -> None:
    clauses = split(["word " * 100])
    assert len(clauses) >= 2 and all(len(c) <= 220 for c in clauses)


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_clock_models_playback_including_underruns() -> None:
    time = FakeTime()
    clock = PlaybackClock(now=time)
    clock.add_segment("one two three four", 2.0)
    clock.on_sent(1.0)
    time.t += 0.5
    assert clock.heard_s() == 0.5 and clock.buffered_s() == 0.5
    time.t += 2.0  # buffer ran dry at +1.0: playback paused
    assert clock.heard_s() == 1.0
    clock.on_sent(1.0)
    time.t += 0.5
    assert clock.heard_s() == 1.5
    assert clock.heard_text() == "one two three"  # 75% of the segment's four words


def test_heard_text_spans_segments() -> None:
    time = FakeTime()
    clock = PlaybackClock(now=time)
    clock.add_segment("Hello there.", 1.0)
    clock.add_segment("How are you doing today?", 2.0)
    clock.on_sent(3.0)
    time.t += 2.0
    assert clock.heard_text() == "Hello there. How are"
    time.t += 5.0
    assert clock.heard_text() == clock.full_text() == "Hello there. How are you doing today?"
