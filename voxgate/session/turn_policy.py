"""When has the user finished? Acoustic evidence (Smart Turn) combined with what they said so far.

Smart Turn hears intonation but not meaning; the transcript knows that "my number is 555" or
"john dot smith at" cannot be the end, and that a question mark usually is. Between `min_silence`
and `max_silence` this policy decides; `max_silence` still caps every wait.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words a complete English sentence rarely ends on: conjunctions, articles, prepositions, fillers.
_DANGLING = frozenset(
    """and or but so because um uh er erm hmm like the a an to of with my your our their his her its is are was were
    be for in at on from that which who whose if then than as about into onto by i i'm i'd we it's
    let's dot dash underscore plus hyphen point minus""".split()
)
_FILLERS = frozenset({"um", "uh", "er", "erm", "hmm", "mm", "uhh", "umm"})
# "Can you tell me ..." is a request that has not been made yet, whatever punctuation Whisper adds.
_OPEN_REQUEST = re.compile(r"\b(tell|show|give|send|remind|ask) me[?.!]?$")
# Verbs that want an object: "I'd like to book ... a table". Only a sure model ends the turn on them.
_HANGING_VERBS = frozenset(
    "book get order make need want buy pay check send cancel change schedule reserve find bring add take".split()
)
SURE_COMPLETE = 0.9
_ENTITY_CONTEXT = re.compile(
    r"\b(number|phone|cell|mobile|call me|reach me|zip|postal|code|card|account|id|reference|order|"
    r"confirmation|policy|member|ssn|social security|pin|extension|tracking|serial|booking|ticket)\b"
)
# "Policy number", "member number": a number that is an ID, not a phone number (no 10 digits expected).
_ID_NOUNS = re.compile(
    r"\b(order|account|card|id|policy|member|reference|confirmation|tracking|serial|booking|ticket|pin|"
    r"extension|zip|postal|code|ssn|invoice|claim|case|patient|routing)\b"
)
_EMAIL_CONTEXT = re.compile(r"\b(e-?mail|address)\b")
_TLD = re.compile(r"(\.|\bdot\s+)(com|org|net|edu|gov|io|co|uk|de|fr|es|it|ai|us|ca|info|biz)\b")
_DIGIT_WORDS = frozenset(
    "zero oh one two three four five six seven eight nine ten eleven twelve hundred thousand double triple".split()
)
PHONE_DIGITS = 10


@dataclass(frozen=True)
class TurnEvidence:
    text: str  # the transcript so far (may be empty when no decode finished yet)
    p_complete: float | None  # Smart Turn's probability, None when disabled


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9@.'\-]+", text.lower())


# A token Whisper writes for part of a dictated value: "77", "rx-77", "4-1-5", "b449".
_VALUE_TOKEN = re.compile(r"^(?:[a-z]{1,3}-?)?\d[\d.\-]*$")


def _is_value(bare: str) -> bool:
    return (
        bare.isdigit()
        or bare in _DIGIT_WORDS
        or (len(bare) == 1 and bare.isalpha())
        or bare in ("dash", "-")
        or bool(_VALUE_TOKEN.match(bare))
    )


def _trailing_value(words: list[str]) -> list[str]:
    """The run of digit-like or single-letter tokens at the end ("r x 7 7 0" → 5 tokens, "rx-77" → 1)."""
    run: list[str] = []
    for w in reversed(words):
        bare = w.strip(".-")
        if not _is_value(bare):
            break
        run.append(bare)
    return run[::-1]


def _digit_count(tokens: list[str]) -> int:
    return sum(
        sum(c.isdigit() for c in t) if any(c.isdigit() for c in t) else 1
        for t in tokens
        if t not in ("dash", "-") and not (len(t) == 1 and t.isalpha())
    )


def _letter_count(tokens: list[str]) -> int:
    return sum(sum(c.isalpha() for c in t) for t in tokens if t not in _DIGIT_WORDS and t != "dash")


def unfinished_reason(text: str) -> str | None:
    """Why the transcript cannot be a whole turn yet, or None if it could be."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.endswith(("...", "…", ",", "-", "—", ":")):
        return "trails off"
    words = _words(stripped)
    if not words:
        return None
    last = words[-1].strip(".,!?")
    lowered = stripped.lower()
    if last in _FILLERS:
        return "ends on a filler"
    if _OPEN_REQUEST.search(lowered):
        return "a request not made yet"
    if last in _DANGLING and not stripped.endswith("?"):
        return f"ends on {last!r}"
    if last in _HANGING_VERBS and len(words) >= 2 and words[-2] == "to" and not stripped.endswith((".", "!", "?")):
        # "I'd like to book", and Whisper heard no full stop: an infinitive that has not reached its
        # object. Smart Turn gave one 0.93 (a pause before "um, a table for four"). With a full stop
        # ("No, I need to cancel.") it can be a whole answer: the sure-model rule below decides.
        return f"'to {last}' without its object"
    value = _trailing_value(words)
    if value and _ENTITY_CONTEXT.search(lowered):
        digits = _digit_count(value)
        if "phone" in lowered or "call me" in lowered or "reach me" in lowered or re.search(r"\bnumber\b", lowered):
            if 0 < digits < PHONE_DIGITS and not _ID_NOUNS.search(lowered):
                return "phone number shorter than 10 digits"
        shortest = 5 if re.search(r"\b(zip|postal|pin)\b", lowered) else 6  # IDs are rarely shorter than 6
        if digits + _letter_count(value) < shortest:
            return "a dictated value has only just begun"
    if _EMAIL_CONTEXT.search(lowered) and not _TLD.search(lowered) and not stripped.endswith("?"):
        # "my email is john.smithat" (Whisper glues the "at"): talk of an address with no domain yet
        return "e-mail address without a domain yet"
    return None


def decided_by_words(text: str, *, late: bool) -> bool | None:
    """The decision when the words alone make it (Smart Turn's answer would not change it), else None:
    words that read unfinished wait; late, words that read as a whole turn end it."""
    if unfinished_reason(text):
        return False
    if late and text.strip() and not _hanging(text):
        return True
    return None


def _hanging(text: str) -> bool:
    words = _words(text)
    return bool(words) and words[-1].strip(".,!?") in _HANGING_VERBS and not text.strip().endswith("?")


def turn_is_complete(evidence: TurnEvidence, threshold: float, *, late: bool = False) -> bool:
    """The decision at `min_silence`, and again (`late`) halfway to `max_silence`.

    Late, words that read as a whole turn end it whatever Smart Turn says: it scored complete
    sentences of real and synthetic speech 0.08-0.18 ("He was not an ill-disposed young man."), which
    kept those users waiting the full `max_silence`. Words that read unfinished still wait."""
    decided = decided_by_words(evidence.text, late=late)
    if decided is not None:
        return decided
    p = evidence.p_complete
    if p is None:
        return True
    if _hanging(evidence.text):
        return p >= SURE_COMPLETE  # "I'd like to book": only a sure model ends the turn here
    if evidence.text.strip().endswith("?"):
        return late or p >= threshold * 0.3  # a question is almost always the end; only a clear "not yet" waits
    if evidence.text.strip():
        return late or p >= threshold * 0.6  # the words are complete; a moderately sure model is enough
    return p >= threshold
