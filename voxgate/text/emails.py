"""Spoken email addresses to written ones: "john dot smith at example dot com" -> "john.smith@example.com".

No maintained library reads spoken emails, so this is hand-written, and kept strict: it needs the
shape "<local> at <domain> dot <tld>" with a known top-level domain, so "I'll meet you at the station"
and "look at this" stay as they are. The local part is what is tied to the "at" by connectors
("dot", "underscore", "dash"), spelled letters ("j o h n") and numbers ("john twenty three"); a plain
word with nothing tying it to the next one is not taken, so "my email is john at ..." keeps "my email is".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voxgate.text.numbers import is_number_word, words_to_digits
from voxgate.text.tokens import Edit, Token, splice, tokenize


@dataclass(frozen=True)
class _Words:
    at: frozenset[str]
    dot: frozenset[str]
    underscore: frozenset[str]
    dash: frozenset[str]


def _w(at: str, dot: str, underscore: str, dash: str) -> _Words:
    return _Words(*(frozenset(s.split()) for s in (at, dot, underscore, dash)))


_LANG_WORDS = {
    "en": _w("at", "dot", "underscore", "dash hyphen"),
    "es": _w("arroba", "punto", "underscore", "guion guión"),
    "fr": _w("arobase arrobase", "point", "underscore", "tiret"),
    "de": _w("at", "punkt", "unterstrich", "bindestrich"),
    "it": _w("chiocciola", "punto", "underscore", "trattino"),
    "pt": _w("arroba", "ponto", "underline underscore", "hífen traço"),
}

TLDS = frozenset(
    "com org net edu gov mil int io co uk us ca au nz de fr es it pt nl be ch se no dk fi ie pl cz ru jp cn"
    " in br mx ar eu info biz me tv ai app dev xyz".split()
)

# Words that are never part of an address: they precede it ("my email is ...", "contact John at ...").
_NOT_ADDRESS = frozenset(
    """a an the my your his her our their its it's me him us them you i i'm is was are be email e-mail mail
    address at to from and or but by for with send contact reach write text call message it this that these
    those please here there also just so use try name username account login id es mi correo el la de en
    y o su est mon ma le et ou c'est ist meine mein und oder é meu minha""".split()
)

# Element kinds: a spelled letter, a number word, written digits, a plain word, or a connector.
_LETTER, _NUM, _DIGITS, _WORD, _CONNECT = "letter", "num", "digits", "word", "connect"


@dataclass(frozen=True)
class _Part:
    kind: str
    text: str


_EMAIL_TALK = re.compile(r"\b(e-?mail|address)\b", re.IGNORECASE)


def _glued(text: str) -> str:
    """Whisper often writes a dictated address as one word with the "at" glued in:
    "john.smithatexample.com". Only where the sentence talks about an email, the last "at" that
    leaves a domain with a known top-level domain becomes "@"."""
    if not _EMAIL_TALK.search(text):
        return text
    tlds = "|".join(sorted(TLDS, key=len, reverse=True))
    glued = re.compile(rf"(?<![\w@.])([a-z0-9][a-z0-9._-]*)at((?:[a-z0-9-]+\.)+(?:{tlds}))\b", re.IGNORECASE)
    return glued.sub(lambda m: f"{_spoken_dots(m.group(1))}@{m.group(2)}".lower(), text)


def _spoken_dots(local: str) -> str:
    """Whisper sometimes writes the spoken "dot" into the name itself: "ryandotclark" → "ryan.clark"."""
    return re.sub(r"(?<=[a-z0-9]{2})dot(?=[a-z0-9]{2})", ".", local, flags=re.IGNORECASE)


_GLUED_DOT = re.compile(r"(?<![\w.@])([a-z0-9._-]+)@", re.IGNORECASE)


def _glued_dots(text: str) -> str:
    """The same inside addresses Whisper did write with an "@": "ryandotclark@outlook.com"."""
    return _GLUED_DOT.sub(lambda m: f"{_spoken_dots(m.group(1))}@", text)


def format_emails(text: str, lang: str) -> str:
    words = _LANG_WORDS.get(lang)
    if words is None:
        return text
    if lang == "en":
        text = _glued(text)
    tokens = tokenize(text)
    edits: list[Edit] = []
    taken = -1
    for a, tok in enumerate(tokens):
        if tok.word not in words.at or tok.lead or tok.trail or a <= taken:
            continue
        local = _local_part(tokens, a, words, lang, taken)
        domain = _domain(tokens, a, words, lang)
        if local is None or domain is None:
            continue
        (first, local_text), (last, domain_text) = local, domain
        edits.append(Edit(first, last, f"{local_text}@{domain_text}"))
        taken = last
    text = splice(text, tokens, edits)
    return _glued_dots(text) if lang == "en" else text


def _kind(tok: Token, words: _Words, lang: str) -> _Part | None:
    w = tok.word
    if w in words.dot:
        return _Part(_CONNECT, ".")
    if w in words.underscore:
        return _Part(_CONNECT, "_")
    if w in words.dash:
        return _Part(_CONNECT, "-")
    if len(tok.core) == 1 and tok.core.isalpha():
        return _Part(_LETTER, w)
    if tok.core.isdigit():
        return _Part(_DIGITS, w)
    if is_number_word(w, lang):
        return _Part(_NUM, w)
    if w and all(c.isalnum() or c in "._-" for c in w) and w[0].isalnum() and w[-1].isalnum():
        return _Part(_WORD, w)
    return None


def _joins(left: _Part, right: _Part, left_tok: Token, right_tok: Token) -> bool:
    """Whether two elements spoken one after the other, with no connector, belong to one address part."""
    spelled = {_LETTER, _NUM, _DIGITS}
    if left.kind in spelled and right.kind in spelled:
        return True
    if left.kind == _WORD and right.kind in (_NUM, _DIGITS):
        return True  # "john twenty three"
    if left.kind == _LETTER and right.kind == _WORD:
        return left.text not in ("a", "i")  # "j smith"
    # "John Smith at ...": two capitalised names; anything else is ordinary speech before the address
    return left.kind == right.kind == _WORD and left_tok.core.istitle() and right_tok.core.istitle()


def _local_part(tokens: Sequence[Token], a: int, words: _Words, lang: str, floor: int) -> tuple[int, str] | None:
    parts: list[_Part] = []  # right to left
    first = a
    need_element = True
    plain_words = 0
    for j in range(a - 1, floor, -1):
        tok = tokens[j]
        part = _kind(tok, words, lang)
        if tok.trail or part is None or (part.kind == _WORD and tok.word in _NOT_ADDRESS):
            break
        if part.kind == _CONNECT:
            if need_element:
                break
            need_element = True
        elif need_element:
            need_element = False
        elif not _joins(part, parts[-1], tok, tokens[first]) or (part.kind == _WORD and plain_words > 1):
            break
        plain_words += part.kind == _WORD
        parts.append(part)
        first = j
        if tok.lead:
            break
    while parts and parts[-1].kind == _CONNECT:
        parts.pop()
        first += 1
    if not parts:
        return None
    return first, _render(parts[::-1], lang)


def _domain(tokens: Sequence[Token], a: int, words: _Words, lang: str) -> tuple[int, str] | None:
    labels: list[list[_Part]] = [[]]
    label_end = [a]  # the last token of each label
    need_element = True
    for j in range(a + 1, len(tokens)):
        tok = tokens[j]
        part = _kind(tok, words, lang)
        if part is None or (j > a + 1 and tok.lead):
            break
        if part.kind == _CONNECT:
            if need_element or part.text == "_":
                break
            if part.text == ".":
                labels.append([])
                label_end.append(j)
            else:
                labels[-1].append(part)
            need_element = True
        elif need_element or (part.kind != _WORD and _joins(labels[-1][-1], part, tokens[j - 1], tok)):
            first_piece, *more = part.text.split(".") if part.kind == _WORD else [part.text]
            labels[-1].append(_Part(part.kind, first_piece))
            label_end[-1] = j
            for piece in more:  # a word written with dots already: "gmail.com"
                labels.append([_Part(_WORD, piece)])
                label_end.append(j)
            need_element = False
        else:
            break
        if tok.trail:
            break
    for k in range(len(labels), 1, -1):
        head = labels[:k]
        if any(not label or _CONNECT in (label[0].kind, label[-1].kind) for label in head):
            continue
        rendered = [_render(label, lang) for label in head]
        if rendered[-1] in TLDS and rendered[0] not in _NOT_ADDRESS:
            return label_end[k - 1], ".".join(rendered)
    return None


def _render(parts: Sequence[_Part], lang: str) -> str:
    """Join parts, turning each run of number words into digits ("twenty three" -> "23")."""
    out: list[str] = []
    run: list[str] = []
    for part in [*parts, _Part(_CONNECT, "")]:
        if part.kind == _NUM:
            run.append(part.text)
            continue
        if run:
            out.append(words_to_digits(run, lang) or "".join(run))
            run = []
        out.append(part.text)
    return "".join(out)
