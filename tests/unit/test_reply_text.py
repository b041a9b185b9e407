from voxgate.session.clauses import ClauseSplitter
from voxgate.session.playback import PlaybackClock


def split(chunks: list[str]) -> list[str]:
    s = ClauseSplitter()
    out = [c for chunk in chunks for c in s.feed(chunk)]
    return out + s.flush()


def test_first_clause_is_cut_early_at_a_comma() -> None:
    text = "Sure, the capital of France is Paris, which is also its largest city. It has many museums."
    assert split([text[i : i + 3] for i in range(0, len(text), 3)]) == [
        "Sure, the capital of France is Paris,",
        "which is also its largest city.",
        "It has many museums.",
    ]


def test_decimals_abbreviations_and_emails_do_not_end_sentences() -> None:
    assert split(["It costs 3.5 dollars. Ask Dr. Smith at john.smith@example.com today. Bye"]) == [
        "It costs 3.5 dollars.",
        "Ask Dr. Smith at john.smith@example.com today.",
        "Bye",
    ]


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
