"""The audio every part of the server passes around: mono float32 in [-1, 1], and the analysis rate.

It lives here, below the backends and the session, so that audio helpers and backends both use it
without the audio package importing the backends.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]

#: The rate of the analysis path (VAD, STT, end of turn). Input audio is resampled to it once.
ANALYSIS_RATE = 16_000
