"""How `voxgate bench voices` scores what Whisper heard: the form of a number is not an error, a wrong word is."""

from __future__ import annotations

import json
from argparse import Namespace
from dataclasses import asdict
from pathlib import Path

import pytest

from voxgate.bench import voices as bench

EN = bench.SENTENCES["en"]


@pytest.mark.parametrize(
    "heard",
    [
        # what Whisper base writes for the five English sentences, in its various forms
        "Your appointment is on Tuesday at 3.30pm. The total comes to $42.50, including tax. Please email the "
        "form to maria.lopez at example.com today. Your booking reference is AB1234 for two adults. You can "
        "call us back at 415-555-0134.",
        "Your appointment is on Tuesday at 3:30 p.m. The total comes to 42 dollars and 50 cents, including tax. "
        "Please email the form to Maria.Lopez@example.com today. Your booking reference is A-B-1-2-3-4, for 2 "
        "adults. You can call us back at 415-5550134.",
        "your appointment is on tuesday at three thirty pm the total comes to forty-two dollars and fifty cents "
        "including tax please email the form to maria dot lopez at example dot com today your booking reference "
        "is a b one two three four for two adults you can call us back at four one five five five five zero one "
        "three four",
    ],
)
def test_english_written_forms_are_not_errors(heard: str) -> None:
    assert bench.error_rate(EN, heard, "en") == ("WER", 0.0)


def test_a_wrong_word_counts() -> None:
    heard = (
        "Your appointment is on Thursday at 3:30 PM. The total comes to $42.50, including tax. Please email the "
        "form to maria.lopez@example.com today. Your booking reference is AB1234 for two adults. You can call us "
        "back at 415-555-0134."
    )
    metric, rate = bench.error_rate(EN, heard, "en")
    assert metric == "WER" and 0.01 < rate < 0.05  # one word of ~42


def test_a_missing_sentence_counts() -> None:
    metric, rate = bench.error_rate(EN, " ".join(EN[:-1]), "en")
    assert metric == "WER" and rate > 0.2


def test_romance_languages_are_scored_by_characters() -> None:
    heard = (
        "Su cita es el martes a las 10.30. El total es de 25 euros con 40 céntimos. Envíe el formulario a "
        "ana@example.com hoy. Tenemos 3 habitaciones libres para el 15 de mayo."
    )
    assert bench.error_rate(bench.SENTENCES["es"], heard, "es") == ("CER", 0.0)
    metric, rate = bench.error_rate(bench.SENTENCES["es"], heard.replace("martes", "jueves"), "es")
    assert metric == "CER" and 0.02 < rate < 0.1


@pytest.mark.parametrize(
    ("language", "heard"),
    [
        (
            "es",
            "Su cita es el martes a las 10.30. El total es de 25 euros con 40 centimos. Envie el formulario a "
            "ana@example.com hoy. Tenemos tres habitaciones libres para el 15 de mayo.",
        ),
        (
            "fr",
            "Votre rendez-vous est mardi à dix-trente. Le total est de 25 euros. Envoyez le formulaire à "
            "paul@example.com aujourd'hui. Nous avons trois chambres libres pour le 15 mai.",
        ),
        (
            "pt",
            "Sua consulta é na Terça-feira às 10-30. O total é de R$ 25. Envie o formulario para ana@example.com "
            "hoje. Temos três quartos livres para o dia 15 de maio.",
        ),
    ],
)
def test_romance_number_words_and_accents_are_spelling(language: str, heard: str) -> None:
    assert bench.error_rate(bench.SENTENCES[language], heard, language) == ("CER", 0.0)


def test_hindi_nukta_is_not_an_error_but_another_script_is() -> None:
    assert bench.error_rate(bench.SENTENCES["hi"], "आपकी बैठक मंगलवार को है। कृपया फॉर्म आज भेजें।", "hi")[1] == 0.0
    urdu = "آپ کی بیٹھک منگل کو ہے۔ براہ کرم فارم آج بھیجیں۔"
    assert bench.error_rate(bench.SENTENCES["hi"], urdu, "hi")[1] > 0.9


def test_rescore_recomputes_from_what_was_heard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = bench.Row("af_heart", "kokoro", "en-US", "female", 0.3, 0.4, 0.6, 0.8, 0.2, "WER", 0.5, heard=" ".join(EN))
    saved = tmp_path / "rows.json"
    saved.write_text(json.dumps([asdict(row)]))
    assert bench.main(Namespace(rescore=saved, json=None)) == 0
    out = capsys.readouterr().out
    assert "| `af_heart` | kokoro | en-US | female | 0.30 / 0.40 | 0.60 / 0.80 | 0.20 | WER 0.00 |" in out
