"""Spoken entities in final transcripts come out written; ordinary speech comes out untouched."""

import pytest

from voxgate.text.entities import format_entities

CASES: list[tuple[str, str, str]] = [
    # emails
    ("my email is john dot smith at example dot com", "my email is john.smith@example.com", "en"),
    ("john dot smith at example dot com.", "john.smith@example.com.", "en"),
    ("You can call me at 503-5550156", "You can call me at 503-555-0156", "en"),
    ("My account is 5035550156.", "My account is 5035550156.", "en"),
    ("My card number is 4111111111111111", "My card number is 4111 1111 1111 1111", "en"),
    ("My card number is 6011-0009-9013-9424.", "My card number is 6011 0009 9013 9424.", "en"),
    ("My card number is 52008282 8282 8210", "My card number is 5200 8282 8282 8210", "en"),
    ("Call me at 503.555.0156.", "Call me at 503-555-0156.", "en"),
    ("Can I come at 3.30 pm?", "Can I come at 3:30 PM?", "en"),
    ("on October 5 at 1015 Am?", "on October 5 at 10:15 AM?", "en"),
    ("In 1990 am I right?", "In 1990 am I right?", "en"),
    ("at 11.30am on Friday", "at 11:30 AM on Friday", "en"),
    ("See you at 10.15.", "See you at 10:15.", "en"),
    ("It costs 3.50 at most.", "It costs 3.50 at most.", "en"),
    ("My email is ryandotclark@outlook.com", "My email is ryan.clark@outlook.com", "en"),
    ("Is dottie@example.com right?", "Is dottie@example.com right?", "en"),
    ("In 2024, 12 of us came.", "In 2024, 12 of us came.", "en"),
    ("My email is john.smithatexample.com", "My email is john.smith@example.com", "en"),  # Whisper glues "at"
    ("My email address is maria.lopez23atoutlook.com.", "My email address is maria.lopez23@outlook.com.", "en"),
    ("The cat sat on the mat at home.", "The cat sat on the mat at home.", "en"),
    ("j o h n at gmail dot com", "john@gmail.com", "en"),
    ("john twenty three at gmail dot com", "john23@gmail.com", "en"),
    ("first underscore last at my dash company dot co dot uk", "first_last@my-company.co.uk", "en"),
    ("John Dot Smith At Example Dot Com", "john.smith@example.com", "en"),
    ("john.smith at example.com", "john.smith@example.com", "en"),
    ("email me at sales at acme dot io, thanks", "email me at sales@acme.io, thanks", "en"),
    ("it's mary hyphen jones at school dot edu", "it's mary-jones@school.edu", "en"),
    ("a b c one two three at example dot org", "abc123@example.org", "en"),
    # phone numbers
    ("my number is five five five, one two three, four five six seven", "my number is 555-123-4567", "en"),
    ("call me at five five five one two three four five six seven.", "call me at 555-123-4567.", "en"),
    ("plus one five five five one two three four five six seven", "+1 555-123-4567", "en"),
    ("one five five five one two three four five six seven", "+1 555-123-4567", "en"),
    ("plus four four two zero seven nine four six zero nine five eight", "+44 20 7946 0958", "en"),
    ("it's two one two, five five five, oh one nine nine", "it's 212-555-0199", "en"),
    ("five five five one two three forty five sixty seven", "555-123-4567", "en"),
    ("double five five, one two three, four five six seven", "555-123-4567", "en"),
    # digit strings and spelled IDs
    ("R X dash seven seven zero four one three two", "RX-7704132", "en"),
    ("my zip is nine oh two one oh", "my zip is 90210", "en"),
    ("order number A B one two three", "order number AB123", "en"),
    ("flight B A two three four", "flight BA234", "en"),
    ("the code is double oh seven", "the code is 007", "en"),
    ("my pin is four three two one.", "my pin is 4321.", "en"),
    ("booking reference x y z dash four four two", "booking reference XYZ-442", "en"),
    # card numbers
    (
        "the card is four one one one one one one one one one one one one one one one",
        "the card is 4111 1111 1111 1111",
        "en",
    ),
    ("three seven eight two eight two two four six three one zero zero zero five", "3782 822463 10005", "en"),
    # amounts
    ("twenty five dollars", "$25", "en"),
    ("three dollars and fifty cents", "$3.50", "en"),
    ("ten percent", "10%", "en"),
    ("it costs a hundred dollars", "it costs $100", "en"),
    ("fifteen hundred dollars", "$1,500", "en"),
    ("five million dollars", "$5 million", "en"),
    ("twelve point five percent", "12.5%", "en"),
    ("twenty euros", "€20", "en"),
    ("that's 25 dollars.", "that's $25.", "en"),
    ("I have a five dollar bill", "I have a $5 bill", "en"),
    # times
    ("three thirty pm", "3:30 PM", "en"),
    ("nine a m", "9 AM", "en"),
    ("see you at nine am tomorrow", "see you at 9 AM tomorrow", "en"),
    ("let's meet at seven oh five", "let's meet at 7:05", "en"),
    ("it's twelve thirty", "it's 12:30", "en"),
    ("at five o'clock", "at 5 o'clock", "en"),
    ("see you at nine a.m. tomorrow", "see you at 9 AM tomorrow", "en"),
    ("the meeting is at ten p m.", "the meeting is at 10 PM.", "en"),
    # dates
    ("March third", "March 3", "en"),
    ("the twenty first of June", "June 21", "en"),
    ("March third at three thirty pm", "March 3 at 3:30 PM", "en"),
    ("June the twenty first", "June 21", "en"),
    ("on July fourth, twenty twenty four, we fly", "on July 4, 2024, we fly", "en"),
    ("May fifth two thousand and five", "May 5, 2005", "en"),
    # ordinals and numbers
    ("the twenty first", "the 21st", "en"),
    ("it's on the thirty second floor", "it's on the 32nd floor", "en"),
    ("she is twenty one years old", "she is 21 years old", "en"),
    ("we need twelve chairs", "we need 12 chairs", "en"),
    ("it was a hundred and twenty degrees", "it was 120 degrees", "en"),
    ("I was born in nineteen eighty four", "I was born in 1984", "en"),
    ("about one point five million people", "about 1.5 million people", "en"),
    ("music from the nineteen nineties", "music from the 1990s", "en"),
    ("three hundred forty two", "342", "en"),
    # other languages: numbers through text2num, emails with the language's words
    ("Tengo dos gatos y veinticinco perros", "Tengo dos gatos y 25 perros", "es"),
    ("mi correo es juan punto perez arroba gmail punto com", "mi correo es juan.perez@gmail.com", "es"),
    ("Il a vingt-cinq ans", "Il a 25 ans", "fr"),
    ("my number is five five five one two three four five six seven", "my number is 555-123-4567", "en-US"),
]

UNCHANGED: list[tuple[str, str]] = [
    ("I'd like two of them", "en"),
    ("one of my friends", "en"),
    ("I want to go", "en"),
    ("for the first time", "en"),
    ("I'll meet you at the station", "en"),
    ("I have a question", "en"),
    ("Do you have one or two bedrooms?", "en"),
    ("I need a second", "en"),
    ("Give me five minutes.", "en"),
    ("The first and second floors are closed.", "en"),
    ("Hundreds of people came.", "en"),
    ("Oh, I see.", "en"),
    ("May I ask a question?", "en"),
    ("They march three miles every day.", "en"),
    ("Which one am I?", "en"),
    ("I'll call you at home tonight.", "en"),
    ("Look at this dot com bubble.", "en"),
    ("One, two, three, go!", "en"),
    ("Can you spell it, A B C?", "en"),
    ("A hundred people were there.", "en"),
    ("Pick one and then the other.", "en"),
    ("Whisper wrote 555-123-4567 and $25 already.", "en"),
    ("Call me at 3:30 PM on March 3 about RX-7704132.", "en"),
    ("Write to john.smith@example.com or call +44 20 7946 0958.", "en"),
    ("J'ai deux chats.", "fr"),
    ("Quiero uno de esos.", "es"),
    ("", "en"),
]

TABLE = CASES + [(text, text, lang) for text, lang in UNCHANGED]


@pytest.mark.parametrize(("spoken", "written", "lang"), CASES)
def test_spoken_forms_are_written(spoken: str, written: str, lang: str) -> None:
    assert format_entities(spoken, lang) == written


@pytest.mark.parametrize(("text", "lang"), UNCHANGED)
def test_ordinary_sentences_are_left_alone(text: str, lang: str) -> None:
    assert format_entities(text, lang) == text


@pytest.mark.parametrize(("spoken", "written", "lang"), TABLE)
def test_formatting_is_idempotent(spoken: str, written: str, lang: str) -> None:
    once = format_entities(spoken, lang)
    assert format_entities(once, lang) == once


def test_table_is_big_enough_and_has_many_unchanged_sentences() -> None:
    assert len(TABLE) >= 60
    assert len(UNCHANGED) >= 15


def test_unsupported_language_is_left_alone() -> None:
    text = "my number is five five five one two three four five six seven"
    assert format_entities(text, "ja") == text
