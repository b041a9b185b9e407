"""The entity set of `voxgate bench accuracy`: what agents act on, spoken the way callers say it.

Each item has the words a caller speaks ("john dot smith at example dot com"), the sentence an agent
should read (the reference for WER), the entities that must come out written ("john.smith@example.com")
and, for names and brands, the keyterms a client would list. Items are built from small tables so the
set is easy to read and extend; it is deterministic, so figures compare across runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIGIT_WORDS = "zero one two three four five six seven eight nine".split()


@dataclass(frozen=True)
class EntityItem:
    id: str
    category: str
    spoken: str  # what the voice says
    reference: str  # the sentence as it should be written
    entities: tuple[str, ...]  # each must appear in the final transcript
    keyterms: tuple[str, ...] = ()


def _digits(number: str, groups: tuple[int, ...] = ()) -> str:
    """'5552129876' → 'five five five, two one two, nine eight seven six' (commas between groups)."""
    words = [DIGIT_WORDS[int(d)] for d in number]
    if not groups:
        return " ".join(words)
    out, i = [], 0
    for g in groups:
        out.append(" ".join(words[i : i + g]))
        i += g
    return ", ".join(out)


def _emails() -> list[EntityItem]:
    rows = [
        ("john dot smith at example dot com", "john.smith@example.com"),
        ("maria dot lopez at gmail dot com", "maria.lopez@gmail.com"),
        ("david underscore chen at outlook dot com", "david_chen@outlook.com"),
        ("sarah twenty three at yahoo dot com", "sarah23@yahoo.com"),
        ("peter dot jones at acme dot org", "peter.jones@acme.org"),
        ("anna dot white at school dot edu", "anna.white@school.edu"),
        ("tom dot baker at company dot net", "tom.baker@company.net"),
        ("lisa dash brown at fastmail dot com", "lisa-brown@fastmail.com"),
        ("mike dot wilson at example dot org", "mike.wilson@example.org"),
        ("emma dot davis at gmail dot com", "emma.davis@gmail.com"),
        ("james dot taylor at hotmail dot com", "james.taylor@hotmail.com"),
        ("kate dot moore at example dot io", "kate.moore@example.io"),
        ("ryan dot clark at outlook dot com", "ryan.clark@outlook.com"),
        ("laura dot king at company dot com", "laura.king@company.com"),
        ("mark dot green at shop dot co dot uk", "mark.green@shop.co.uk"),
        ("nina dot scott at gmail dot com", "nina.scott@gmail.com"),
    ]
    leads = ["My email is", "You can email me at", "My email address is", "Send it to"]
    return [
        EntityItem(f"email-{i:02d}", "email", f"{leads[i % 4]} {spoken}.", f"{leads[i % 4]} {written}.", (written,))
        for i, (spoken, written) in enumerate(rows)
    ]


def _phones() -> list[EntityItem]:
    numbers = [
        "5552129876", "4155550134", "2128675309", "6175550199", "3125550147", "2065550112", "7185550165",
        "3055550178", "4045550123", "7135550188", "6025550131", "8005550100", "9175550142", "5035550156",
        "2025550173", "8185550194",
    ]  # fmt: skip
    leads = ["My phone number is", "You can call me at", "My cell is", "Call me back on"]
    items = []
    for i, n in enumerate(numbers):
        written = f"{n[:3]}-{n[3:6]}-{n[6:]}"
        spoken = _digits(n, (3, 3, 4))
        items.append(
            EntityItem(f"phone-{i:02d}", "phone", f"{leads[i % 4]} {spoken}.", f"{leads[i % 4]} {written}.", (written,))
        )
    return items


def _cards() -> list[EntityItem]:
    numbers = [
        "4111111111111111", "5500005555555559", "4012888888881881", "6011000990139424", "4242424242424242",
        "5105105105105100", "4000056655665556", "5200828282828210", "3782822463100050", "6011111111111117",
    ]  # fmt: skip
    items = []
    for i, n in enumerate(numbers):
        groups = (4, 6, 5) if len(n) == 15 else (4, 4, 4, 4)
        written = " ".join(n[a:b] for a, b in _spans(groups))
        items.append(
            EntityItem(
                f"card-{i:02d}", "card", f"My card number is {_digits(n, groups)}.", f"My card number is {written}.",
                (written,),
            )
        )  # fmt: skip
    return items


def _spans(groups: tuple[int, ...]) -> list[tuple[int, int]]:
    out, i = [], 0
    for g in groups:
        out.append((i, i + g))
        i += g
    return out


def _ids() -> list[EntityItem]:
    rows = [
        ("RX", "7704132"), ("AB", "12345"), ("KL", "4567"), ("MT", "90210"), ("PQ", "3141"), ("ZN", "88213"),
        ("BT", "5092"), ("CD", "60718"), ("FX", "2290"), ("HR", "47105"), ("JS", "3318"), ("VW", "77120"),
        ("GL", "1049"), ("NP", "56621"), ("DY", "8083"), ("SK", "20417"),
    ]  # fmt: skip
    leads = ["My reference is", "The order number is", "My member ID is", "The ticket is"]
    items = []
    for i, (letters, number) in enumerate(rows):
        dash = i % 2 == 0
        written = f"{letters}-{number}" if dash else f"{letters}{number}"
        spoken = " ".join(letters) + (" dash " if dash else " ") + _digits(number)
        items.append(
            EntityItem(f"id-{i:02d}", "id", f"{leads[i % 4]} {spoken}.", f"{leads[i % 4]} {written}.", (written,))
        )
    return items


def _dates_times() -> list[EntityItem]:
    rows = [
        ("on March third at three thirty pm", "on March 3 at 3:30 PM", ("March 3", "3:30 PM")),
        ("on June twenty first", "on June 21", ("June 21",)),
        ("at nine a m tomorrow", "at 9 AM tomorrow", ("9 AM",)),
        ("on October fifth at ten fifteen am", "on October 5 at 10:15 AM", ("October 5", "10:15 AM")),
        ("on the twelfth of December", "on December 12", ("December 12",)),
        ("at four forty five pm", "at 4:45 PM", ("4:45 PM",)),
        ("on January second", "on January 2", ("January 2",)),
        ("on August thirtieth at two pm", "on August 30 at 2 PM", ("August 30", "2 PM")),
        ("at eleven thirty am on Friday", "at 11:30 AM on Friday", ("11:30 AM",)),
        ("on April ninth", "on April 9", ("April 9",)),
        ("on September twenty second at noon", "on September 22 at noon", ("September 22",)),
        ("at seven pm tonight", "at 7 PM tonight", ("7 PM",)),
        ("on November fourteenth", "on November 14", ("November 14",)),
        ("on February twenty eighth at eight thirty am", "on February 28 at 8:30 AM", ("February 28", "8:30 AM")),
    ]
    lead = "Can I book an appointment"
    return [
        EntityItem(f"date-{i:02d}", "date", f"{lead} {spoken}?", f"{lead} {ref}?", ents)
        for i, (spoken, ref, ents) in enumerate(rows)
    ]


def _amounts() -> list[EntityItem]:
    rows = [
        ("twenty five dollars", "$25"), ("three dollars and fifty cents", "$3.50"), ("one hundred dollars", "$100"),
        ("forty nine dollars and ninety nine cents", "$49.99"), ("ten percent", "10%"), ("seventy five dollars", "$75"),
        ("twelve dollars", "$12"), ("fifteen percent", "15%"),
    ]  # fmt: skip
    return [
        EntityItem(f"amount-{i:02d}", "amount", f"The bill says {spoken}.", f"The bill says {written}.", (written,))
        for i, (spoken, written) in enumerate(rows)
    ]


def _names() -> list[EntityItem]:
    rows = [
        "Siobhan Okafor", "Amelia Nguyen", "Raj Patel", "Ingrid Johansson", "Mateo Alvarez", "Chiara Rossi",
        "Kwame Mensah", "Yusuf Demir", "Aoife Brennan", "Dmitri Volkov",
    ]  # fmt: skip
    return [
        EntityItem(f"name-{i:02d}", "name", f"My name is {n}.", f"My name is {n}.", (n,), (n,))
        for i, n in enumerate(rows)
    ]


def _terms() -> list[EntityItem]:
    rows = [
        ("I want to cancel my Zorbix subscription.", "Zorbix"),
        ("Is Quorvane covered by my plan?", "Quorvane"),
        ("I take metformin every morning.", "metformin"),
        ("My doctor prescribed atorvastatin.", "atorvastatin"),
        ("Do you have lisinopril in stock?", "lisinopril"),
        ("I need a refill of levothyroxine.", "levothyroxine"),
        ("Can I upgrade to Voxgate Pro?", "Voxgate"),
        ("My Kelvora router keeps dropping.", "Kelvora"),
        ("I was charged twice for Brightlyne.", "Brightlyne"),
        ("Is gabapentin safe with ibuprofen?", "gabapentin"),
    ]
    return [EntityItem(f"term-{i:02d}", "keyterm", text, text, (term,), (term,)) for i, (text, term) in enumerate(rows)]


def entity_set() -> list[EntityItem]:
    return [*_emails(), *_phones(), *_cards(), *_ids(), *_dates_times(), *_amounts(), *_names(), *_terms()]


def _canonical(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def entity_found(entity: str, transcript: str) -> bool:
    """Is the entity in the transcript as written? Case and spacing are forgiven, digits and symbols are not."""
    return _canonical(entity) in _canonical(transcript)
