"""Which domain-pack terms a transcript may have misheard: the hotwords for a second decode.

A pack holds hundreds of terms; as Whisper hotwords they would not fit its prompt (about 220
tokens), and listing them all made recognition worse on our medical set (20 of 42 names heard vs 28
this way). Correction after recognition alone fixes only close misses ("Valtrix" -> "Valtrex"); a
drug name heard as "dog's cycling" or "top ramen" is too far off to respell safely. So a final
transcript is scanned for words (and runs of two or three words) that look or sound somewhat like a
pack term, and when some do, the turn is decoded again with just those terms as hotwords: Whisper
then writes "doxycycline" and "topiramate" itself. The floor is loose on purpose, because the
second decode, not this scan, decides; on ordinary speech it still triggers on about one turn in
eight (`voxgate bench terms` prints the figures).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz, process

from voxgate.text.common_words import COMMON_WORDS
from voxgate.text.keyterms import letters_of, phonetic_key

HINT_FLOOR = 70.0  # mean letter and sound similarity (0-100) that makes a pack term worth a second decode
# A run of everyday words ("phone number" ~ "morphine", "call me back" ~ "baclofen") must be closer:
# on our sets this cut second decodes on ordinary turns from 18% to 12% and lost one of 19 names.
COMMON_RUN_FLOOR = 80.0
MAX_HINTS = 4
_MIN_LETTERS = 4
_MAX_RUN = 3


class PackHints:
    """Built once per server (the packs are fixed); `for_text` is a few milliseconds per transcript."""

    def __init__(self, terms: Sequence[str], *, floor: float = HINT_FLOOR, limit: int = MAX_HINTS) -> None:
        self._terms = list(dict.fromkeys(" ".join(t.split()) for t in terms if t.strip()))
        self._letters = [letters_of(t) for t in self._terms]
        self._sounds = [phonetic_key(x) for x in self._letters]
        self._known = {x for x in self._letters if x}
        self._floor = floor
        self._limit = limit

    def for_text(self, text: str) -> list[str]:
        """The pack terms most like some run of words in `text`, best first; none already written there.

        Give it the transcript after pack correction: a close miss ("levoquin") is then already spelled
        right ("Levaquin"), and listing its look-alikes ("levofloxacin") would only invite a wrong one."""
        words = re.findall(r"[^\W\d_]+", text)
        settled = {i for i, w in enumerate(words) if letters_of(w) in self._known}
        lowered = text.lower()
        best: dict[int, float] = {}
        for size in range(1, _MAX_RUN + 1):
            for i in range(len(words) - size + 1):
                run = words[i : i + size]
                letters = letters_of(" ".join(run))
                if len(letters) < _MIN_LETTERS or not settled.isdisjoint(range(i, i + size)):
                    continue  # a word already spelled as a pack term is right: its look-alikes are not asked for
                floor = COMMON_RUN_FLOOR if all(w.lower() in COMMON_WORDS for w in run) else self._floor
                by_letters = process.cdist([letters], self._letters, scorer=fuzz.ratio)[0]
                by_sound = process.cdist([phonetic_key(letters)], self._sounds, scorer=fuzz.ratio)[0]
                for k, score in enumerate((by_letters + by_sound) / 2):
                    if score >= floor and score > best.get(k, 0.0):
                        best[k] = float(score)
        ranked = sorted(best, key=lambda k: -best[k])
        return [self._terms[k] for k in ranked if self._terms[k].lower() not in lowered][: self._limit]
