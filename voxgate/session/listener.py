"""The user's side of the conversation: VAD frames in, turn events out.

States: idle → speaking (after a short run of voiced frames) → trailing silence → end of turn.
Between `min_silence` and `max_silence` the end-of-turn policy decides; before `min_silence` the
turn never ends, at `max_silence` it always does. A few hundred ms of audio before the onset is kept
so the first syllable is not clipped for the recognizer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voxgate.backends.base import ANALYSIS_RATE, Audio, VadStream
from voxgate.session.turn_timing import TurnTiming

FRAME_S_DEFAULT = 512 / ANALYSIS_RATE
ONSET_FRAMES = 3  # ~96 ms of voiced frames before speech counts as started
ONSET_WINDOW = 8  # ...within this many frames, weak ones (above threshold - HYSTERESIS) in between
PREROLL_S = 0.3
MIN_VOICED_S = 0.2  # shorter bursts (clicks, a cough) are noise, not a turn
TRAILING_KEEP_S = 0.3  # silence kept at the end of the audio handed to the recognizer
MAX_UTTERANCE_S = 28.0  # Whisper sees 30 s at most
HYSTERESIS = 0.15
SPECULATE_AFTER_S = 0.12  # silence after which the final transcript (and then the LLM) start speculatively
CHECK_AHEAD_S = 0.15  # the end-of-turn check starts this long before min_silence, so its answer is ready there
CONFIRM_VOICED_S = 0.22  # voiced audio that makes speech over the agent a real barge-in (7 Silero frames)
ECHO_CONFIRM_VOICED_S = 0.35  # the same over cancelled echo, where residual echo can look like voice


@dataclass(frozen=True)
class SpeechStart:
    pass


@dataclass(frozen=True)
class PartialDue:
    audio: Audio
    utterance: int


@dataclass(frozen=True)
class Pause:
    """The user paused: a good moment to transcribe what they said so far, in case it is the end."""

    audio: Audio
    utterance: int
    voiced_frames: int


@dataclass(frozen=True)
class VoiceResumed:
    """Voice again after a Pause in the same utterance: whatever was guessed at the pause is out of date."""


@dataclass(frozen=True)
class SpeechConfirmed:
    """Enough voiced audio that this is speech, not a click or a cough."""

    utterance: int


@dataclass(frozen=True)
class TurnEnd:
    audio: Audio
    utterance: int
    voiced_s: float
    voiced_frames: int
    silence_s: float = 0.0  # the silence read before the turn was closed
    # When the last voiced audio reached the listener, on its clock (None without one): the end of speech
    # as the user knows it. Not "close less silence_s": the listener stops reading while it awaits the
    # end-of-turn check, so under load the close comes well after that much silence.
    speech_end_at: float | None = None


@dataclass(frozen=True)
class NoiseEnd:
    """Speech started but was too short to be a turn."""


ListenerEvent = SpeechStart | SpeechConfirmed | PartialDue | Pause | VoiceResumed | TurnEnd | NoiseEnd
EndOfTurnCheck = Callable[[Audio, float, bool], Awaitable[bool]]  # (audio, silence_s, late) -> turn complete?


class Listener:
    def __init__(
        self,
        vad: VadStream,
        *,
        turn_detection: Callable[[], TurnTiming],
        end_of_turn: EndOfTurnCheck | None,
        partial_interval_s: float,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._vad = vad
        self._now = now
        self._turn = turn_detection
        self._end_of_turn = end_of_turn
        self._partial_every = int(partial_interval_s * ANALYSIS_RATE)
        self._frame = vad.frame_samples
        self._frame_s = self._frame / ANALYSIS_RATE
        self._pending = np.zeros(0, dtype=np.float32)
        self._preroll: deque[Audio] = deque(maxlen=max(1, int(PREROLL_S / self._frame_s)))
        self._onset: list[Audio] = []
        self._onset_voiced = 0
        self._utterance: list[Audio] = []
        self._speaking = False
        self._voiced = 0
        self._silence = 0
        self._checked = self._late_checked = False
        self._early_check: asyncio.Task[bool] | None = None
        self._paused = False
        self._confirmed = False
        self._since_partial = 0
        self._vad_reset = False
        self._frame_end_at: float | None = None  # when the frame being read ended, as it arrived
        self._voice_end_at: float | None = None
        self.utterance_id = 0
        self.confirm_voiced_s = CONFIRM_VOICED_S  # the session raises it while the mic carries echo

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def voiced_frames(self) -> int:
        return self._voiced

    def audio_so_far(self) -> Audio:
        """The current utterance's audio, preroll included."""
        return self._audio()

    @property
    def voiced_s(self) -> float:
        return self._voiced * self._frame_s

    def prepend(self, audio: Audio) -> None:
        """The user went on after a turn we had closed: that turn's audio becomes this one's start."""
        if self._speaking:
            self._utterance.insert(0, audio)

    def close(self) -> None:
        """The listener is being replaced (a new socket): an end-of-turn check it asked for is dropped."""
        self._drop_early_check()

    def rearm(self) -> None:
        """Count voiced audio afresh: what was counted so far turned out to be the agent's own echo."""
        self._voiced = 0
        self._confirmed = False

    async def feed(self, audio: Audio) -> list[ListenerEvent]:
        data = np.concatenate([self._pending, audio]) if len(self._pending) else audio
        n = len(data) // self._frame
        self._pending = data[n * self._frame :].copy()
        frames = [data[i * self._frame : (i + 1) * self._frame] for i in range(n)]
        self._vad_reset = False
        scores = self._scores(frames)
        events: list[ListenerEvent] = []
        arrived = self._now() if self._now is not None else None
        for i in range(n):
            if arrived is not None:  # the chunk arrived whole: its frames ended before its last sample
                self._frame_end_at = arrived - ((n - 1 - i) * self._frame + len(self._pending)) / ANALYSIS_RATE
            if self._vad_reset:  # an utterance ended at the frame before: the rest is scored afresh
                self._vad_reset = False
                scores[i:] = self._scores(frames[i:])
            paused = self._paused and self._speaking
            event = await self._on_frame(frames[i], scores[i])
            if paused and not self._paused and self._speaking:  # a voiced frame after the pause
                events.append(VoiceResumed())
            if event is not None:
                events.append(event)
        return events

    def _scores(self, frames: list[Audio]) -> list[float]:
        """The VAD's probabilities of consecutive frames, in one call when the stream takes several."""
        several = getattr(self._vad, "probabilities", None)
        if several is not None and len(frames) > 1:
            return list(several(frames))
        return [self._vad.probability(frame) for frame in frames]

    async def _on_frame(self, frame: Audio, p: float) -> ListenerEvent | None:
        cfg = self._turn()
        voiced = p >= cfg.vad_threshold
        if not self._speaking:
            weak = p >= max(cfg.vad_threshold - HYSTERESIS, 0.05)
            if voiced or (self._onset and weak and len(self._onset) < ONSET_WINDOW):
                # Band-limited speech (a phone line) hovers around the threshold: a weak frame between
                # voiced ones continues the onset instead of restarting it, or the first words are lost.
                self._onset.append(frame)
                self._onset_voiced += voiced
                if self._onset_voiced >= ONSET_FRAMES:
                    self._start_utterance()
                    return SpeechStart()
            else:
                self._preroll.extend(self._onset)
                self._onset.clear()
                self._onset_voiced = 0
                self._preroll.append(frame)
            return None

        self._utterance.append(frame)
        self._since_partial += len(frame)
        if voiced:
            self._voiced += 1
            self._voice_end_at = self._frame_end_at
            self._silence = 0
            self._checked = self._late_checked = False
            self._drop_early_check()
            self._paused = False
            if not self._confirmed and self._voiced * self._frame_s >= self.confirm_voiced_s:
                self._confirmed = True
                return SpeechConfirmed(self.utterance_id)
        elif p < max(cfg.vad_threshold - HYSTERESIS, 0.05):
            self._silence += 1
        silence_s = self._silence * self._frame_s
        total_s = len(self._utterance) * self._frame_s

        if silence_s * 1000 >= cfg.max_silence or total_s >= MAX_UTTERANCE_S:
            return self._end()
        if silence_s >= SPECULATE_AFTER_S and not self._paused:
            self._paused = True
            return Pause(self._audio(), self.utterance_id, self._voiced)
        ahead_ms = max(SPECULATE_AFTER_S, cfg.min_silence / 1000 - CHECK_AHEAD_S) * 1000
        ask_now = not self._checked and self._early_check is None and silence_s * 1000 >= ahead_ms
        if self._end_of_turn is not None and ask_now and not cfg.silence_only:
            # Smart Turn and the words take ~0.1-0.2 s on 2 cores (more while the LLM prefetch runs): asked
            # now, they answer by min_silence instead of after it. Voice before then drops the answer.
            self._early_check = asyncio.ensure_future(self._end_of_turn(self._audio(), silence_s, False))
        if silence_s * 1000 >= cfg.min_silence and not self._checked:
            self._checked = True
            check, self._early_check = self._early_check, None
            if self._end_of_turn is None or cfg.silence_only:
                return self._end()
            if await (check if check is not None else self._end_of_turn(self._audio(), silence_s, False)):
                return self._end()
        late_ms = cfg.late_check_ms
        if self._checked and not self._late_checked and silence_s * 1000 >= late_ms and self._end_of_turn is not None:
            self._late_checked = True
            if await self._end_of_turn(self._audio(), silence_s, True):
                return self._end()
        if self._silence == 0 and self._since_partial >= self._partial_every:
            self._since_partial = 0
            return PartialDue(self._audio(), self.utterance_id)
        return None

    def _start_utterance(self) -> None:
        self.utterance_id += 1
        self._speaking = True
        missing = self._preroll.maxlen - len(self._preroll) if self._preroll.maxlen else 0
        # Whisper drops first words that start at sample 0; give it the silence a preroll would have.
        lead = [np.zeros(missing * self._frame, dtype=np.float32)] if missing > 0 else []
        self._utterance = [*lead, *self._preroll, *self._onset]
        self._voiced = self._onset_voiced
        self._preroll.clear()
        self._onset.clear()
        self._onset_voiced = 0
        self._silence = 0
        self._checked = self._late_checked = False
        self._drop_early_check()
        self._paused = False
        self._confirmed = False
        self._since_partial = 0

    def _audio(self) -> Audio:
        return np.concatenate(self._utterance) if self._utterance else np.zeros(0, dtype=np.float32)

    def _drop_early_check(self) -> None:
        check, self._early_check = self._early_check, None
        if check is not None and not check.done():
            check.cancel()
        elif check is not None:
            with contextlib.suppress(BaseException):
                check.result()  # retrieved, so a failure is not reported as never retrieved

    def _end(self) -> ListenerEvent:
        self._drop_early_check()
        voiced_s = self._voiced * self._frame_s
        silence_s = self._silence * self._frame_s
        keep = max(0, self._silence - int(TRAILING_KEEP_S / self._frame_s))
        frames = self._utterance[: len(self._utterance) - keep] if keep else self._utterance
        audio = np.concatenate(frames) if frames else np.zeros(0, dtype=np.float32)
        self._speaking = False
        self._utterance = []
        self._vad.reset()
        self._vad_reset = True  # frames of this chunk after this one were scored before the reset
        if voiced_s < MIN_VOICED_S:
            return NoiseEnd()
        return TurnEnd(audio, self.utterance_id, voiced_s, self._voiced, silence_s, self._voice_end_at)
