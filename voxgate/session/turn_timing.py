"""How long the listener waits in silence, from the session's turn-detection settings.

The hosted API's rule (Sep 2026 docs): with `min_silence` and `max_silence` both unset, pacing is
adaptive and entity-aware; setting either turns that off for the session. Adaptive here means the
end-of-turn policy is asked from 600 ms of silence, asked again at 1 s (a complete-sounding turn ends
by then), and a turn whose words read unfinished (a phone number, an email, a trailing "and") may wait
up to 3 s. Fixed means the client's numbers, with the launch values (600 / 1500 ms) for the one not
given, and the second check halfway between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.protocol.events import TurnDetection

ADAPTIVE_MIN_MS = 600
ADAPTIVE_LATE_MS = 1000
ADAPTIVE_MAX_MS = 3000
FIXED_MIN_MS = 600
FIXED_MAX_MS = 1500
FAR_FIELD_MAX_DROP = 0.3  # far-field: the voice threshold is lowered by up to this much (distant voices are quiet)


@dataclass(frozen=True)
class TurnTiming:
    vad_threshold: float = 0.5
    min_silence: int = ADAPTIVE_MIN_MS
    max_silence: int = ADAPTIVE_MAX_MS
    late_check_ms: int = ADAPTIVE_LATE_MS
    silence_only: bool = False  # `server_vad`: the silence alone ends the turn (no Smart Turn, no words)

    @classmethod
    def of(cls, turn: TurnDetection, *, far_field: bool = False, focus_threshold: float = 0.7) -> TurnTiming:
        threshold = turn.vad_threshold
        if far_field:  # a stricter focus threshold lowers the voice threshold less
            threshold = max(0.1, threshold - FAR_FIELD_MAX_DROP * (1.0 - focus_threshold))
        silence_only = turn.type == "server_vad"
        if turn.min_silence is None and turn.max_silence is None:
            return cls(threshold, ADAPTIVE_MIN_MS, ADAPTIVE_MAX_MS, ADAPTIVE_LATE_MS, silence_only)
        low = turn.min_silence if turn.min_silence is not None else FIXED_MIN_MS
        high = max(low, turn.max_silence if turn.max_silence is not None else FIXED_MAX_MS)
        return cls(threshold, low, high, low + (high - low) // 2, silence_only)
