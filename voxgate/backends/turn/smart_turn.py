"""Smart Turn v3.2: P(the user finished their turn) from the last 8 s of audio.

The weights ship inside pipecat-ai (installed --no-deps, never imported). Its features are Whisper's
80-bin log-mel over an 8 s window of zero-mean, unit-variance audio, left-padded with silence;
faster-whisper's own FeatureExtractor computes exactly these (checked to 1e-6 against the reference),
so no mel code is written here.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

from voxgate.backends.base import ANALYSIS_RATE, Audio
from voxgate.backends.onnx import open_session
from voxgate.models.assets import package_file

WINDOW_S = 8
MODEL_FILE = "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"


class SmartTurnModel:
    def __init__(self, threads: int = 1) -> None:
        self._session = open_session(package_file("pipecat", MODEL_FILE), threads=threads)
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        # ONNX Runtime runs one session from several threads at once. A lock made every session's end-of-turn
        # check queue behind the others: with 50 callers the checks waited seconds while a core sat idle.
        # One run per core keeps them from crowding out the rest of the process.
        self._slots = threading.BoundedSemaphore(max(1, len(os.sched_getaffinity(0))))

    def probability_complete(self, audio: Audio) -> float:
        n = WINDOW_S * ANALYSIS_RATE
        audio = audio[-n:].astype(np.float32)
        audio = np.pad(audio, (n - len(audio), 0))
        normalized = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        features = self._features(normalized, padding=0)[None, :, : WINDOW_S * 100].astype(np.float32)
        with self._slots:
            out = self._session.run(None, {"input_features": features})
        return float(np.asarray(out[0]).reshape(-1)[0])
