"""A barge-in that turns out to be nothing: backchannels, silence, the window, the text to resume with."""

import pytest

from voxgate.session.false_interruptions import RESUME_WINDOW_S, ResumePoint, is_backchannel
from voxgate.session.playback import PlaybackClock


@pytest.mark.parametrize(
    "text",
    [
        "Uh-huh.",
        "Mm-hmm",
        "Yeah, right.",
        "okay",
        "I see.",
        "Got it.",
        "Thank you.",
        "Thanks!",
        "Uhuh.",
        "Uhu.",
        "Mmm.",
        "Mhm",
        "Hmm-hmm.",
        "Wow.",
    ],
)
def test_backchannels(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize(
    "text",
    [
        "Wait.",
        "No, stop.",
        "Yeah, but what time is it?",
        "Okay, book it for me.",
        "Thank you, but no.",
        "Hum, no.",
        "Mmm, wait.",
        "",
    ],
)
def test_not_backchannels(text: str) -> None:
    assert not is_backchannel(text)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_nothing_or_a_backchannel_soon_after_resumes_anything_else_does_not() -> None:
    clock = Clock()
    point = ResumePoint(now=clock)
    point.interrupted("and the dragon flew away.")
    assert point.take_if_nothing_said("") == "and the dragon flew away."
    assert point.take_if_nothing_said("") is None  # taken once
    point.interrupted("and the dragon flew away.")
    assert point.take_if_nothing_said("What time is it?") is None
    assert point.take_if_nothing_said("") is None  # a real turn used it up
    point.interrupted("and the dragon flew away.")
    assert point.take_if_nothing_said("Uh-huh.") == "and the dragon flew away."
    point.interrupted("and the dragon flew away.")
    clock.t += RESUME_WINDOW_S + 0.1
    assert point.take_if_nothing_said("") is None  # too late: a new reply is due, not an old one


def test_the_unheard_text_starts_at_the_clause_being_played() -> None:
    clock = Clock()
    playback = PlaybackClock(now=clock)
    for text, seconds in [("Once upon a time,", 1.0), ("there was a knight.", 2.0), ("He fought a dragon.", 2.0)]:
        playback.add_segment(text, seconds)
        playback.on_sent(seconds)
    clock.t = 1.5  # half-way through the second clause
    assert playback.unheard_text() == "there was a knight. He fought a dragon."
    assert playback.heard_text() == "Once upon a time, there"


@pytest.mark.parametrize(("text", "cue"), [("Wait", True), ("No, no", True), ("Hold on", True), ("I'll...", False)])
def test_interruption_cues_act_on_a_fraction_of_a_word(text: str, cue: bool) -> None:
    from voxgate.session.false_interruptions import has_interruption_cue

    assert has_interruption_cue(text) is cue


@pytest.mark.parametrize(
    ("first", "again", "holds"),
    [
        ("Wait", "Wait, wait.", True),
        ("Stop", "Stop it.", True),
        ("What?", "Uh-huh.", False),  # a Kokoro "uh-huh" read at 0.15 s of voice, then at 0.3 s
        ("Why?", "Wait.", False),  # the first read had no cue: no second read is made
        ("No.", "", False),
    ],
)
def test_a_cue_read_mid_speech_must_hold_in_a_second_read(first: str, again: str, holds: bool) -> None:
    from voxgate.session.false_interruptions import cue_holds

    assert cue_holds(first, again) is holds


@pytest.mark.parametrize("text", ["Uh-oh.", "Oh-oh"])
def test_an_uh_oh_over_the_agent_is_a_reaction_not_a_request(text: str) -> None:
    assert is_backchannel(text)
