"""An interruption that turns out to be nothing: the agent picks up where it was cut off.

A barge-in stops the agent as soon as the user's voice is confirmed, before any words are known.
When the words then come back as nothing (a cough Whisper cannot read) or a mere backchannel
("uh-huh", "yeah"), going silent would be wrong; the agent instead says again the clause it was
cut off in and goes on. This only applies shortly after the interruption: later, a new reply is due.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

RESUME_WINDOW_S = 6.0  # from the interruption to the end of the user's "turn"
HOLD_MAX_VOICED_S = 0.75  # voice over the agent beyond this is never a backchannel (the longest seen: 0.7 s)

BACKCHANNELS = frozenset(
    """uh-huh uh huh mm-hmm mhm mm hmm hm yeah yes yep yup right okay ok sure i see go on uh um ah oh
    got it alright all right cool nice thanks wow uh-oh oh-oh""".split()
)
# Hotwords for reading voice over the agent. On the turn set's Piper and Kokoro backchannels, greedy
# Whisper base read 4 of 10 as words ("In my mom.", "Bye.", "Go ahead.", "Wait.") without them, 1 of
# 10 with them ("Wait." for a Kokoro "right"); every interruption there still read as itself.
BACKCHANNEL_HINTS = ("Mm-hmm.", "Uh-huh.", "Yeah.", "Right.", "Okay.")
_PHRASES = frozenset({"uh huh", "mm hmm", "i see", "go on", "got it", "all right", "oh okay", "okay yeah", "thank you"})


# Words that stop the agent even while the user is still mid-word: heard in a fraction of a second of
# audio, anything else is too often a hallucination ("I'll...", "Bye.") of a hum to act on.
INTERRUPTION_CUES = frozenset(
    "wait stop no nope hold hang sorry excuse hey actually but what pause enough listen hello".split()
)


def has_interruption_cue(text: str) -> bool:
    return any(w in INTERRUPTION_CUES for w in re.findall(r"[a-z']+", text.lower()))


def cue_holds(first: str, again: str) -> bool:
    """Mid-speech, a cue must survive a second read of the longer audio: Whisper reads a fraction of a
    second of "uh-huh" as "What?" now and then, but the next read of the same hum says something else."""
    return has_interruption_cue(first) and has_interruption_cue(again)


# How Whisper spells hums and grunts: "Mmm", "Uhuh", "Uhu", "Mhm", "Hmm-hmm", "Ahh", "Ohh".
_VOCALIZATION = re.compile(r"^(?:[mh]+(?:-?[mh]+)*|u+h*(?:-?h?u+h*)*|a+h+|o+h+)$")


def is_backchannel(text: str) -> bool:
    """A short acknowledgement with no request in it ("Uh-huh.", "Yeah, right.", "Mm-hmm")."""
    words = re.findall(r"[a-z'-]+", text.lower())
    if not words or len(words) > 3:
        return False
    joined = " ".join(words)
    return joined in _PHRASES or all(w in BACKCHANNELS or _VOCALIZATION.match(w) for w in words)


@dataclass
class CutOffReply:
    rest: str  # what was still to be said, from the clause being played
    at: float


class ResumePoint:
    """Remembers the last interrupted reply for a short while."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._cut: CutOffReply | None = None

    def interrupted(self, rest: str) -> None:
        self._cut = CutOffReply(rest, self._now()) if rest.strip() else None

    def forget(self) -> None:
        self._cut = None

    def take_if_nothing_said(self, transcript: str) -> str | None:
        """The text to resume with when `transcript` (the user's words since) amounts to nothing."""
        cut, self._cut = self._cut, None
        if cut is None or self._now() - cut.at > RESUME_WINDOW_S:
            return None
        if transcript.strip() and not is_backchannel(transcript):
            return None
        return cut.rest
