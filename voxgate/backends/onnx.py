"""One way to open an ONNX model: CPU, a fixed small thread count, quiet logs."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def open_session(path: Path | str, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
