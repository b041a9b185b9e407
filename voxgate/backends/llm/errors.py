"""Errors of the language model backends that the session and the fallback act on."""

from __future__ import annotations


class LLMUnavailable(Exception):
    """The language model could not give (the rest of) a reply: unreachable, refused, failed or cut off.

    Raised after the backend's own retries are spent. A reply that already spoke some text and then
    raised this was cut short; one that spoke nothing can be answered by another model instead.
    """
