"""Domain term packs: ready-made keyterm lists ("medical") shipped with Voxgate, or any term file.

A pack file has one term per line; blank lines and lines starting with "#" are skipped. Bundled packs
live in `voxgate/text/packs/<name>.txt` and are read through importlib.resources, so they work from
an installed wheel as well as from a checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_BUNDLED = resources.files("voxgate.text").joinpath("packs")


def bundled_packs() -> list[str]:
    """Names of the packs shipped with Voxgate, sorted."""
    return sorted(p.name.removesuffix(".txt") for p in _BUNDLED.iterdir() if p.name.endswith(".txt"))


def load_pack(name_or_path: str) -> list[str]:
    """The terms of a bundled pack ("medical") or of a pack file at a path, in file order, without duplicates."""
    path = Path(name_or_path)
    if path.suffix or path.parent != Path(".") or path.is_file():  # a path: "terms.txt", "./x", "/etc/x"
        if not path.is_file():
            raise ValueError(f"keyterm pack file not found: {name_or_path}")
        text = path.read_text(encoding="utf-8")
    else:
        resource = _BUNDLED.joinpath(f"{name_or_path}.txt")
        if not resource.is_file():
            names = ", ".join(bundled_packs())
            raise ValueError(f"unknown keyterm pack {name_or_path!r}; bundled packs: {names} (or give a file path)")
        text = resource.read_text(encoding="utf-8")
    terms = (line.strip() for line in text.splitlines())
    return list(dict.fromkeys(t for t in terms if t and not t.startswith("#")))
