"""Spoken entities in a final user transcript to their written form ("inverse text normalization").

The LLM acts on what the user said, and it acts better on "john.smith@example.com", "555-123-4567"
or "$3.50" than on Whisper's "john dot smith at example dot com", "five five five ...", "three
dollars and fifty cents". Numbers are read by text2num and international phone numbers formatted by
phonenumbers; the modules this calls hold only what those libraries do not cover, each saying why.

Ordinary sentences stay as they are: small numbers stay words ("I'd like two of them"), and every
rule needs an unambiguous shape. The result is stable: formatting it again changes nothing.
"""

from __future__ import annotations

from voxgate.text.amounts import format_amounts
from voxgate.text.dates import format_dates, format_times
from voxgate.text.emails import format_emails
from voxgate.text.identifiers import format_identifiers
from voxgate.text.numbers import convert_numbers


def format_entities(text: str, language: str = "en") -> str:
    """Spoken forms in `text` to written ones; `language` is an ISO 639-1 code ("en", "es", "en-US").

    The English rules (digit runs, amounts, times, dates) run only for English; emails run for the
    languages whose spoken "at"/"dot" words are known, numbers for those text2num supports.
    """
    lang = (language or "en").lower().replace("_", "-").split("-")[0]
    text = format_emails(text, lang)
    if lang == "en":
        # order matters: a time or a date claims its numbers before a digit run could, and digit
        # runs go before amounts so that "one two three" is never read as one number
        text = format_times(text)
        text = format_dates(text)
        text = format_identifiers(text)
        text = format_amounts(text)
    return convert_numbers(text, lang)
