"""A session's language picks the answer's language and, when the client chose none, the voice."""

import pytest

from voxgate.backends.registry import Models
from voxgate.config import Settings
from voxgate.session.languages import BEST_VOICE, language_instruction, voice_for_language


def test_english_and_auto_detection_add_no_instruction() -> None:
    assert language_instruction("en") == language_instruction("en-GB") == language_instruction(None) == ""


def test_other_languages_are_named_in_the_instruction() -> None:
    assert "Spanish" in language_instruction("es")
    assert "Portuguese" in language_instruction("pt-BR")


@pytest.mark.parametrize("language", sorted(BEST_VOICE))
def test_each_language_has_a_voice_that_speaks_it(language: str) -> None:
    voice = Models(Settings()).voices.resolve(voice_for_language(language), language=language)
    assert voice.language.split("-")[0] == language


def test_english_keeps_the_default_voice() -> None:
    assert voice_for_language("en") is None
