"""Tool-call arguments as the user said them (voxgate/text/tool_arguments.py)."""

from __future__ import annotations

from typing import Any

import pytest

from voxgate.text.tool_arguments import grounded, normalise_arguments, spoken_digits


def schema(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props}


DIGITS = {"type": "string", "pattern": "^[0-9]+$"}
ORDER = {"type": "string", "description": "The order number"}
PHONE = {"type": "string", "description": "The phone number to call"}
EMAIL = {"type": "string", "format": "email"}
CITY = {"type": "string"}


@pytest.mark.parametrize(
    ("value", "digits"), [("four five six", "456"), ("4.56", "456"), ("4 5 6", "456"), ("oh one", "01"), ("x", "")]
)
def test_spoken_digits(value: str, digits: str) -> None:
    assert spoken_digits(value) == digits


@pytest.mark.parametrize(
    ("name", "prop", "value", "said", "expected"),
    [
        ("order_id", DIGITS, "4.56", "Order number four five six.", "456"),  # the mobile client's case
        ("order_id", DIGITS, "four five six", "Where is order 456?", "456"),
        ("order_number", ORDER, "4.56", "My order number is 456.", "456"),  # named, and the user said 456
        ("order_number", ORDER, "4.56", "My order number is 4.56.", "456"),  # Whisper wrote a decimal
        ("order_number", ORDER, "AB-12", "My order is AB-12.", "AB-12"),  # not digits the user said: kept
        ("phone", PHONE, "555 123 4567", "Call 555-123-4567 please.", "5551234567"),
        ("zip", {"type": "string"}, "9 4 1 0 5", "My zip is 94105.", "94105"),
        ("email", EMAIL, "ana lopez at example dot com", "It's ana.lopez@example.com.", "ana.lopez@example.com"),
        ("email", EMAIL, "Ana.Lopez@Example.com ", "It's ana.lopez@example.com.", "ana.lopez@example.com"),
        ("email", EMAIL, "ana@example.org", "Send it to ana.lopez@example.com.", "ana.lopez@example.com"),
        ("city", CITY, "Paris", "The weather in Paris?", "Paris"),  # not an entity: untouched
        ("date", {"type": "string", "format": "date"}, "2025-5-3", "On 2025-05-03 please.", "2025-05-03"),
    ],
)
def test_an_entity_argument_is_taken_as_the_user_said_it(
    name: str, prop: dict[str, Any], value: str, said: str, expected: str
) -> None:
    assert normalise_arguments({name: value}, schema(**{name: prop}), [said]) == {name: expected}


def test_enums_and_other_types_are_left_alone() -> None:
    params = schema(unit={"type": "string", "enum": ["c", "f"]}, count={"type": "integer"})
    assert normalise_arguments({"unit": "c", "count": 4}, params, ["four"]) == {"unit": "c", "count": 4}


@pytest.mark.parametrize(
    ("arguments", "said", "ok"),
    [
        ({"city": "Paris"}, "What's the weather in Paris?", True),
        ({"city": "Paris"}, "What is the capital of France?", False),  # the 1.5B model's favourite
        ({"city": "London"}, "Hi, how are you?", False),
        ({"fact": "My sister's birthday is May third"}, "Remember my sister's birthday is May 3.", True),
        ({"order_number": "456"}, "Order four five six", True),  # digit words are the digits
        ({"order_number": "456"}, "Order 456 please", True),
        ({"date": "2025-05-03", "time": "15:00"}, "Tuesday at three", True),  # dates and times are exempt
        ({}, "Put me through to a person.", True),
        ({"order_number": "808"}, "My order number is eight zero eight.", True),  # added as text, unformatted
        # One shared word is not enough: the soak's "fun fact" question was remembered as the model's own fact.
        ({"fact": "The ocean is the largest body of water on Earth."}, "Tell me a fun fact about the ocean?", False),
        ({"message": "Reminder: you have a dentist appointment"}, "Remind them about the dentist.", True),  # forms
        ({"message": "Water the plants"}, "Remind my mom to water the plants.", True),
        # Split at its apostrophe, "don't" was two words nobody said ("don", "t"): the bench's reminder was refused.
        ({"message": "Don't forget the meeting!"}, "Call 555-123-4567 and remind them about the meeting.", True),
        ({"message": "Don\u2019t forget the meeting!"}, "Remind them about the meeting.", True),
        ({"contact": "John's phone"}, "Call John on his phone.", True),  # a possessive is the name
        ({"message": "Bring a cake to the party"}, "Remind them about the meeting.", False),
    ],
)
def test_a_call_is_grounded_in_what_was_said(arguments: dict[str, Any], said: str, ok: bool) -> None:
    params = schema(**{k: {"type": "string"} for k in arguments})
    assert grounded(arguments, params, [said]) is ok


def test_an_optional_argument_made_up_does_not_refuse_the_call() -> None:
    params = {"type": "object", "properties": {"reason": {"type": "string"}}, "required": []}
    assert grounded({"reason": "I need help with something"}, params, ["Can I speak to a human agent?"])
    params["required"] = ["reason"]
    assert not grounded({"reason": "billing dispute"}, params, ["Can I speak to a human agent?"])


def test_a_call_needs_one_argument_the_user_said_even_when_each_is_exempt() -> None:
    unit = {
        "type": "object",
        "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    }  # required: all
    assert grounded({"unit": "fahrenheit"}, unit, ["Switch to Fahrenheit please."])
    assert not grounded({"unit": "celsius"}, unit, ["How do you spell necessary?"])
    timer = {"type": "object", "properties": {"minutes": {"type": "integer"}}}
    assert grounded({"minutes": 10}, timer, ["Set a timer for 10 minutes."])
    assert not grounded({"minutes": 30}, timer, ["I had a long day at work."])
    book = {"type": "object", "properties": {"day": {"type": "string"}, "time": {"type": "string"}}}
    assert grounded({"day": "2025-05-13", "time": "15:00"}, book, ["Book me next Tuesday at 3 PM."])
    assert not grounded({"day": "Monday", "time": "10 AM"}, book, ["What's a good name for a dog?"])
