"""What the client has heard: a model of its playback buffer, fed by what the server sent.

The client plays `reply.audio` as it arrives; if the server falls behind the buffer runs dry and
playback pauses. Tracking the time at which the buffered audio runs out gives, at any moment, how
many seconds were actually played — the basis for pacing and for trimming the transcript on barge-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SpokenSegment:
    text: str
    start_s: float
    duration_s: float
    words: list[tuple[str, float, float]] = field(default_factory=list)  # (word, start, end), reply seconds


@dataclass
class PlaybackClock:
    now: Callable[[], float] = field(default=time.monotonic, repr=False)  # injectable for virtual-time tests
    sent_s: float = 0.0
    acknowledged_s: float | None = None  # the client reports playback (Twilio marks): heard is what it confirmed
    _buffer_end: float | None = None
    segments: list[SpokenSegment] = field(default_factory=list)

    def _t(self) -> float:
        return self.now()

    def on_sent(self, duration_s: float) -> float:
        """Record audio handed to the client; returns the wall time at which it starts playing."""
        t = self._t()
        start = t if self._buffer_end is None else max(self._buffer_end, t)
        self._buffer_end = start + duration_s
        self.sent_s += duration_s
        return start

    def buffered_s(self) -> float:
        """Audio sent but not yet played."""
        return 0.0 if self._buffer_end is None else max(0.0, self._buffer_end - self._t())

    def heard_s(self) -> float:
        played = self.sent_s - self.buffered_s()
        return played if self.acknowledged_s is None else min(played, self.acknowledged_s)

    def flush(self) -> None:
        """The client dropped the audio it had not played yet (it was told to stop playback)."""
        self.sent_s = self.heard_s()
        self._buffer_end = None

    def segment_at(self, t: float) -> int | None:
        """The index of the segment playing at reply time `t`; None past the last one."""
        for index, seg in enumerate(self.segments):
            if t < seg.start_s + seg.duration_s - 1e-6:
                return index
        return None

    def rewind(self, segment: int) -> None:
        """Sending starts again at segment `segment` (kept, as are the segments after it: they are sent again)."""
        self.sent_s = self.segments[segment].start_s if segment < len(self.segments) else self.sent_s
        self._buffer_end = None
        if self.acknowledged_s is not None:
            self.acknowledged_s = min(self.acknowledged_s, self.sent_s)

    def acknowledge(self, played_s: float) -> None:
        """The client confirmed that the first `played_s` seconds of this reply were played."""
        self.acknowledged_s = max(self.acknowledged_s or 0.0, played_s)

    def add_segment(self, text: str, duration_s: float) -> float:
        """A clause is about to be sent; returns where it starts (reply seconds)."""
        start = self.segments[-1].start_s + self.segments[-1].duration_s if self.segments else 0.0
        self.segments.append(SpokenSegment(text, start, duration_s))
        return start

    def full_text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    def heard_text(self) -> str:
        """The text of the audio played so far: whole segments, then the heard share of words."""
        heard = self.heard_s()
        words: list[str] = []
        for seg in self.segments:
            if seg.start_s + seg.duration_s <= heard + 1e-6:
                words.extend(seg.text.split())
                continue
            if seg.start_s < heard and seg.duration_s > 0:
                if seg.words:  # timed words: those half played or more were heard
                    words.extend(w for w, start, end in seg.words if (start + end) / 2 <= heard)
                else:
                    seg_words = seg.text.split()
                    share = (heard - seg.start_s) / seg.duration_s
                    words.extend(seg_words[: int(len(seg_words) * share)])
            break
        return " ".join(words)

    def unheard_text(self) -> str:
        """What is left to say, from the start of the clause being played: resuming there sounds natural."""
        playing = self.segment_at(self.heard_s())
        rest = [] if playing is None else [seg.text for seg in self.segments[playing:] if seg.text]
        return " ".join(rest)
