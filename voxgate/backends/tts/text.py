"""Text as the voice should say it: no markdown symbols, no emoji, no raw URLs read out letter by letter."""

from __future__ import annotations

import re

_URL = re.compile(r"https?://([^/\s]+)\S*")
_MARKUP = re.compile(r"[*_`#>|~]+")
_BULLET = re.compile(r"^\s*(?:[-•]|\d+[.)])\s+", re.MULTILINE)
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    text = _URL.sub(lambda m: m.group(1), text)
    text = _BULLET.sub("", text)
    text = _MARKUP.sub("", text)
    text = _EMOJI.sub("", text)
    return _SPACES.sub(" ", text).strip()
