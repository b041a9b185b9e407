"""What a session's input language changes beyond recognition: the language of the answer and the voice.

The embedded LLM follows an explicit instruction far better than it infers the language from the
user's words, and the default voice (Piper joe) speaks only English, so a Spanish session without a
chosen voice gets a native Kokoro v1.0 voice of Spanish (likewise French, Italian, Portuguese, Hindi,
Japanese). Intelligibility through Whisper base is in the README's voice table (`voxgate bench
voices`); German has no neural voice in any registry, so it falls back to espeak-ng.
"""

from __future__ import annotations

LANGUAGE_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "ja": "Japanese",
    "nl": "Dutch",
    "hi": "Hindi",
}

#: The voice for a language when the client did not pick one (None: the server's default voice).
BEST_VOICE = {
    "es": "lucia",  # Kokoro ef_dora, a native Spanish voice (em_alex with "mateo")
    "fr": "estelle",  # Kokoro ff_siwis, the one French voice
    "de": "espeak-de",  # no neural German voice exists
    "it": "giulia",  # Kokoro if_sara
    "pt": "rafael",  # Kokoro pm_alex, Brazilian Portuguese
    "ja": "ren",  # Kokoro jm_kumo
    "hi": "arjun",  # Kokoro hm_omega (speaks Hindi in a Hindi session)
}


def _primary(language: str | None) -> str | None:
    return language.lower().replace("_", "-").split("-")[0] if language else None


def language_instruction(language: str | None, choices: tuple[str, ...] = ()) -> str:
    """A sentence appended to the system prompt; empty for English and for free auto-detection.
    `choices`: the session's several `language_codes`, detected among: answer in the user's."""
    if language is None and len(choices) > 1:
        names = [LANGUAGE_NAMES.get(_primary(c) or "", c) for c in choices]
        return f"\n\nAnswer in the language the user speaks ({', '.join(names)})."
    lang = _primary(language)
    if lang is None or lang == "en" or lang not in LANGUAGE_NAMES:
        return ""
    return f"\n\nAlways answer in {LANGUAGE_NAMES[lang]}, whatever language the instructions above are in."


def voice_for_language(language: str | None) -> str | None:
    lang = _primary(language)
    return BEST_VOICE.get(lang) if lang else None
