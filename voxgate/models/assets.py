"""Locating model weights that ship inside Python packages, and joining the ones shipped in parts.

Several weight packages come from single unknown maintainers, so every assembled file is checked
against a pinned size and sha256 before it is used; a mismatch is an error, never a warning.
Assembly writes to a temporary file and renames it, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("voxgate.models")


class ModelAssetError(RuntimeError):
    """A model's weights are missing, incomplete or fail their checksum."""


def cache_dir() -> Path:
    """Where assembled weights live: $VOXGATE_CACHE_DIR, else ~/.cache/voxgate."""
    root = Path(os.environ.get("VOXGATE_CACHE_DIR") or Path.home() / ".cache" / "voxgate")
    root.mkdir(parents=True, exist_ok=True)
    return root


def package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it (some must not be imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelAssetError(f"package {package!r} is not installed (see requirements/models.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str) -> Path:
    path = package_dir(package) / relative
    if not path.is_file():
        raise ModelAssetError(f"{relative} is missing from package {package!r}")
    return path


class _Progress:
    """Progress lines on stderr for long first-run work (joining and hashing a 1 GB model)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 1.0 or self.done >= self.total:
            self._last = now
            pct = 100.0 * self.done / self.total
            print(f"  {self.label}: {pct:5.1f}% ({self.done >> 20} / {self.total >> 20} MiB)", file=sys.stderr)


def sha256_of(path: Path, label: str | None = None) -> str:
    digest = hashlib.sha256()
    progress = _Progress(label or f"checking {path.name}", path.stat().st_size)
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
            progress.advance(len(chunk))
    return digest.hexdigest()


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def assemble_parts(parts: Sequence[Path], destination: Path, *, expected_size: int, expected_sha256: str) -> Path:
    """Join `parts` in order into `destination`, verify it, and return it.

    A verified file is recorded with a marker holding its sha256, size and mtime, so later starts
    skip the hash; any change to the file invalidates the marker.
    """
    marker = _verified_marker(destination)
    if destination.is_file() and marker.is_file():
        stat = destination.stat()
        if marker.read_text().strip() == f"{expected_sha256} {stat.st_size} {stat.st_mtime_ns}":
            return destination
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelAssetError(f"missing weight parts: {', '.join(missing)}")
    if not destination.is_file() or destination.stat().st_size != expected_size:
        total = sum(p.stat().st_size for p in parts)
        if total != expected_size:
            raise ModelAssetError(f"{destination.name}: parts add up to {total} bytes, expected {expected_size}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(destination.name + f".tmp{os.getpid()}")
        progress = _Progress(f"assembling {destination.name}", total)
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(8 << 20):
                        out.write(chunk)
                        progress.advance(len(chunk))
        tmp.replace(destination)
    actual = sha256_of(destination, f"verifying {destination.name}")
    if actual != expected_sha256:
        destination.unlink(missing_ok=True)
        raise ModelAssetError(
            f"{destination.name}: sha256 {actual} does not match the pinned {expected_sha256}; "
            "the weight packages may have been tampered with"
        )
    stat = destination.stat()
    marker.write_text(f"{expected_sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    log.info("model file ready", extra={"path": str(destination)})
    return destination


def copy_beside(files: Sequence[Path], directory: Path) -> None:
    """Copy small companion files (configs, tokenizers) next to an assembled model."""
    directory.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = directory / f.name
        if not target.is_file() or target.stat().st_size != f.stat().st_size:
            shutil.copyfile(f, target)
