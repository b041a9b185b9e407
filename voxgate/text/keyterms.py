"""Keyterm correction after recognition: a keyterm heard as a close variant comes out spelled as given.

Whisper gets keyterms as a prompt hint, but still writes "Zorbic" for "Zorbix" or "Met Forman" for
"Metformin". Each word, and each run of two to four words, is compared with every keyterm on its
letters (rapidfuzz's ratio) and on a small phonetic key, and replaced only above a strict
threshold. The guards are what keep ordinary speech safe: a common English word is never replaced
on its own, nor a word shorter than four letters, nor a run made only of common words; keyterms of
four letters or fewer must match exactly (letters, ignoring case and spacing); a word that already is
another keyterm stays; a multi-word keyterm must match at both ends, so "Amelia Nguyen" is not
turned into "Dr. Amelia Nguyen". No maintained phonetic package is in our dependencies, hence the
few-line key below (close to Metaphone's simplest rules).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from voxgate.text.common_words import COMMON_WORDS
from voxgate.text.tokens import Edit, Token, splice, tokenize

THRESHOLD = 84.0  # mean of the letter and phonetic similarities, 0-100
# Pack terms (hundreds of names the session did not ask for) must be closer: the medical pack turned a
# misheard "Alice" ("Salis", letters 73, sound 100) into "Cialis" at the keyterm threshold.
STRICT_THRESHOLD = 90.0
STRICT_MIN_LETTERS = 80.0
_MIN_LETTERS = 70.0  # letter similarity below which a candidate is not even scored
_MAX_WINDOW = 4

_ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr"})
_TITLES = {"doctor": "dr", "mister": "mr", "missus": "mrs", "misses": "mrs", "professor": "prof", "saint": "st"}


# spelling -> sound, in order; "X" is the sound of "sh"/"ch" (kept apart from the letter x = "ks")
_SOUNDS = (
    ("ph", "f"), ("ck", "k"), ("sch", "sk"), ("tch", "X"), ("ch", "X"), ("sh", "X"), ("th", "0"), ("qu", "kw"),
    ("dg", "j"), ("gh", "g"), ("wh", "w"), ("x", "ks"), ("q", "k"), ("z", "s"), ("v", "f"),
)  # fmt: skip


@dataclass(frozen=True)
class _Term:
    text: str
    letters: str
    sound: str
    words: tuple[str, ...]  # letters of each word
    strict: bool = False  # a pack term: corrected towards only when very close


def letters_of(text: str) -> str:
    """Lowercase ASCII letters and digits only, accents dropped, titles shortened ("Doctor" -> "dr")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "".join(_TITLES.get(w, w) for w in re.findall(r"[a-z0-9]+", plain))


def phonetic_key(letters: str) -> str:
    """A rough sound key: "Zorbic" and "Zorbix" -> "srbk", "srbks"; "Metformin" and "metforman" -> "mtfrmn"."""
    s = re.sub(r"^(kn|gn|pn|wr|ps)", lambda m: m.group()[1], letters)
    for a, b in _SOUNDS:
        s = s.replace(a, b)
    s = re.sub(r"c(?=[eiy])", "s", s).replace("c", "k")
    if not s:
        return s
    head, rest = s[0], re.sub(r"[aeiouyhw]", "", s[1:])
    key = ("a" if head in "aeiouy" else head) + rest
    return re.sub(r"(.)\1+", r"\1", key)


class KeytermCorrector:
    """Built once per keyterm list; `correct(text)` respells near misses of those keyterms."""

    def __init__(
        self, keyterms: Sequence[str], *, threshold: float = THRESHOLD, strict_terms: Sequence[str] = ()
    ) -> None:
        """`keyterms` are the session's own; `strict_terms` (domain packs) need a closer match."""
        self.threshold = threshold
        terms: dict[str, _Term] = {}
        for strict, group in ((False, keyterms), (True, strict_terms)):
            for text in group:
                text = " ".join(text.split())
                letters = letters_of(text)
                if letters and letters not in terms:
                    words = tuple(w for w in (letters_of(w) for w in text.split()) if w)
                    terms[letters] = _Term(text, letters, phonetic_key(letters), words, strict)
        self._exact = terms
        self._max_window = min(_MAX_WINDOW, max((len(t.words) for t in terms.values()), default=0) + 1)
        self._by_size = {
            size: [t for t in terms.values() if abs(len(t.words) - size) <= 1]
            for size in range(1, self._max_window + 1)
        }
        self._choices = {size: [t.letters for t in ts] for size, ts in self._by_size.items()}
        self._term_words = {w for t in terms.values() for w in t.words}

    def correct(self, text: str) -> str:
        if not self._exact:
            return text
        tokens = tokenize(text)
        cores = [_split_possessive(t.core) for t in tokens]
        found: list[tuple[float, int, int, int, str]] = []  # (score, size, first, last, replacement)
        for i in range(len(tokens)):
            for size in range(1, self._max_window + 1):
                j = i + size - 1
                if j >= len(tokens) or (size > 1 and (_stops(tokens[j - 1]) or tokens[j].lead or cores[j - 1][1])):
                    break
                got = self._match([cores[k][0] for k in range(i, j + 1)])
                if got is not None:
                    found.append((got[0], size, i, j, got[1].text + cores[j][1]))
        edits: list[Edit] = []
        used: set[int] = set()
        for _score, _size, i, j, replacement in sorted(found, reverse=True):
            if used.isdisjoint(range(i, j + 1)):
                used.update(range(i, j + 1))
                edits.append(Edit(i, j, replacement))
        return splice(text, tokens, edits)

    def _match(self, words: list[str]) -> tuple[float, _Term] | None:
        size = len(words)
        parts = [letters_of(w) for w in words]
        cand = "".join(parts)
        if not cand or not all(parts):
            return None
        exact = self._exact.get(cand)
        if exact is not None:
            fixes = " ".join(words) != exact.text and abs(len(exact.words) - size) <= 1
            single_common = size == 1 and words[0].lower() in COMMON_WORDS
            return (100.0, exact) if fixes and not single_common else None
        if size == 1 and (len(cand) < 4 or words[0].lower() in COMMON_WORDS):
            return None
        if size > 1 and all(w.lower() in COMMON_WORDS for w in words):
            return None
        best: tuple[float, _Term] | None = None
        sound = phonetic_key(cand)
        for _, letter_score, k in process.extract(
            cand, self._choices[size], scorer=fuzz.ratio, score_cutoff=_MIN_LETTERS, limit=None
        ):
            term = self._by_size[size][k]
            if len(term.letters) <= 4 or not 0.75 <= len(cand) / len(term.letters) <= 1.34:
                continue
            if size > 1 and any(p in self._exact and (p not in term.words or p == term.letters) for p in parts):
                continue  # a word that already is a keyterm stays, and does not take its neighbour with it
            if len(term.words) > 1 and not (_alike(parts[0], term.words[0]) and _alike(parts[-1], term.words[-1])):
                continue
            score = (letter_score + fuzz.ratio(sound, term.sound)) / 2
            if term.strict and (letter_score < STRICT_MIN_LETTERS or score < STRICT_THRESHOLD):
                continue
            if score >= self.threshold and (best is None or score > best[0]):
                best = (score, term)
        return best


def correct_keyterms(text: str, keyterms: Sequence[str]) -> str:
    """One-off form of `KeytermCorrector(keyterms).correct(text)`; build the corrector once per list when reused."""
    return KeytermCorrector(keyterms).correct(text)


def _alike(a: str, b: str) -> bool:
    return fuzz.ratio(a, b) >= 60 or phonetic_key(a) == phonetic_key(b)


def _stops(tok: Token) -> bool:
    """Punctuation after `tok` ends a window, except the period of a title or an initial ("Dr.", "J.")."""
    if tok.trail != ".":
        return bool(tok.trail)
    return not (len(tok.core) == 1 or tok.word in _ABBREVIATIONS)


def _split_possessive(core: str) -> tuple[str, str]:
    """ "Zorbic's" -> ("Zorbic", "'s"): the keyterm replaces the word, the possessive stays."""
    for suffix in ("'s", "’s"):
        if core.lower().endswith(suffix) and len(core) > len(suffix):
            return core[: -len(suffix)], core[-len(suffix) :]
    return core, ""
