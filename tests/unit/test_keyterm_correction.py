"""Keyterms heard as close variants come out spelled as given; everything else stays as heard."""

from pathlib import Path

import pytest

from voxgate.text.keyterms import KeytermCorrector, correct_keyterms
from voxgate.text.packs import bundled_packs, load_pack

NAMES = ["Zorbix", "Theo", "Dr. Amelia Nguyen", "Alison", "GPT"]


@pytest.fixture(scope="module")
def medical() -> KeytermCorrector:
    return KeytermCorrector([], strict_terms=load_pack("medical"))


@pytest.mark.parametrize(
    ("heard", "corrected"),
    [
        ("I use Zorbic every day.", "I use Zorbix every day."),
        ("i said zorbix", "i said Zorbix"),
        ("Zorbic's price went up?", "Zorbix's price went up?"),
        ("(zorbic)", "(Zorbix)"),
        ("Try zor bix, it works.", "Try Zorbix, it works."),
        ("doctor Amelia Nguyen will call you", "Dr. Amelia Nguyen will call you"),
        ("Dr. Amelia Nuyen, please.", "Dr. Amelia Nguyen, please."),
        ("dr amelia nguyen", "Dr. Amelia Nguyen"),
        ("the gpt model", "the GPT model"),
    ],
)
def test_near_misses_are_respelled(heard: str, corrected: str) -> None:
    assert correct_keyterms(heard, NAMES) == corrected


@pytest.mark.parametrize(
    "text",
    [
        "the theory is fine",
        "Then we went home to the other house.",
        "All is on the table.",
        "I saw Amelia Nguyen yesterday.",  # a multi-word keyterm is not grown by a title
        "the gpu model",  # short keyterms match exactly or not at all
        "Dr. Amelia Nguyen is in.",
        "",
    ],
)
def test_unrelated_words_are_untouched(text: str) -> None:
    assert correct_keyterms(text, NAMES) == text


def test_a_word_that_is_another_keyterm_stays() -> None:
    assert correct_keyterms("Zorbic and Zorbix", ["Zorbix", "Zorbic"]) == "Zorbic and Zorbix"
    assert correct_keyterms("Zorbic and Zorbix", ["Zorbix"]) == "Zorbix and Zorbix"


def test_short_common_words_never_become_keyterms() -> None:
    text = "the one who saw it and ran to the car"
    assert correct_keyterms(text, ["Theo", "Tho", "Wen", "Sawyer", "Carr"]) == text


def test_no_keyterms_changes_nothing() -> None:
    assert correct_keyterms("I use Zorbic", []) == "I use Zorbic"


@pytest.mark.parametrize(
    ("heard", "corrected"),
    [
        ("I take met forman twice a day", "I take metformin twice a day"),
        ("She needs a refill of her zoloft and her lexapro.", "She needs a refill of her Zoloft and her Lexapro."),
        ("the trazadone makes me sleepy", "the trazodone makes me sleepy"),
        ("I am on atorvastatine and omeprazol", "I am on atorvastatin and omeprazole"),
        ("He takes gaba pentin for nerve pain", "He takes gabapentin for nerve pain"),
        ("the albuteral inhaler", "the albuterol inhaler"),
    ],
)
def test_medical_pack_corrects_medication_names(medical: KeytermCorrector, heard: str, corrected: str) -> None:
    assert medical.correct(heard) == corrected


@pytest.mark.parametrize(
    "text",
    [
        "I would like to book an appointment for next Tuesday morning please.",
        "My mother takes her pills every evening with dinner.",
        "I have a reflex problem and my knee hurts.",
        "Please celebrate with us at the party.",
        "My son plays soccer on Saturdays.",
        "The metro train was late again.",
        "Can I get a refill of my morphine?",  # "my morphine" is not a near miss of "morphine": "my" stays
        "I'm allergic to pregabalin.",
    ],
)
def test_medical_pack_leaves_ordinary_speech_alone(medical: KeytermCorrector, text: str) -> None:
    assert medical.correct(text) == text


def test_a_pack_is_stricter_than_the_sessions_own_keyterms(medical: KeytermCorrector) -> None:
    # Whisper heard "Alice" as "Salis": close enough in sound to "Cialis" for a keyterm the session
    # listed, not for one of a pack's hundreds of names.
    assert medical.correct("Hi, my name is Salis.") == "Hi, my name is Salis."
    assert correct_keyterms("Hi, my name is Salis.", ["Cialis"]) == "Hi, my name is Cialis."
    session_and_pack = KeytermCorrector(["Cialis"], strict_terms=load_pack("medical"))
    assert session_and_pack.correct("Hi, my name is Salis.") == "Hi, my name is Cialis."


def test_medical_pack_loads() -> None:
    terms = load_pack("medical")
    assert "metformin" in terms and "Lipitor" in terms
    assert len(terms) >= 100
    assert len(terms) == len(set(terms))
    assert all(t and t == t.strip() and not t.startswith("#") for t in terms)
    assert "medical" in bundled_packs()


def test_unknown_pack_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown keyterm pack 'legal'.*medical"):
        load_pack("legal")


def test_pack_from_a_file_skips_comments_blanks_and_duplicates(tmp_path: Path) -> None:
    pack = tmp_path / "brands.txt"
    pack.write_text("# our products\nZorbix\n\n  Zorbix Pro  \nZorbix\n", encoding="utf-8")
    assert load_pack(str(pack)) == ["Zorbix", "Zorbix Pro"]
    with pytest.raises(ValueError, match="not found"):
        load_pack(str(tmp_path / "missing.txt"))
