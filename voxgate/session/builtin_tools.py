"""The hosted platform's built-in tools (§4.5): their definitions, and the one Voxgate runs itself.

Pure data and functions, with no session imports, so the REST catalog and the session's tool runner
share one definition. `aai_pre_connect_context` is listed because the hosted catalog lists it, but it
carries data a phone call gathers before it connects, which a WebSocket session never has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LUHN_CHECK = "aai_credit_card_luhn_check"
PRE_CONNECT_CONTEXT = "aai_pre_connect_context"

#: ISO/IEC 7812 card numbers: no issuer uses fewer than 12 digits, none more than 19.
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 12, 19
_SEPARATORS = str.maketrans("", "", " -.")


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    execution_mode: str = "interactive"
    phone_only: bool = False

    def to_json(self) -> dict[str, Any]:
        """The catalog entry of GET /v1/builtin_tools, and a session tool definition."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
            "execution_mode": self.execution_mode,
        }


BUILTIN_TOOLS: tuple[BuiltinTool, ...] = (
    BuiltinTool(
        name=LUHN_CHECK,
        description=(
            "Check whether a credit or debit card number is well formed (the Luhn checksum) before "
            "using it. Call it after the caller has read out the whole card number; it does not "
            "charge or look up the card."
        ),
        parameters={
            "type": "object",
            "properties": {
                "card_number": {
                    "type": "string",
                    "description": "The card number as the caller said it; spaces and dashes are ignored.",
                }
            },
            "required": ["card_number"],
        },
    ),
    BuiltinTool(
        name=PRE_CONNECT_CONTEXT,
        description=(
            "Get the context gathered before the call was connected (caller details passed by the "
            "telephony integration). Phone calls only."
        ),
        phone_only=True,
    ),
)


def builtin_tool(name: str) -> BuiltinTool | None:
    """The definition of a built-in tool, for a session tool that names one without a description."""
    return next((tool for tool in BUILTIN_TOOLS if tool.name == name), None)


def luhn_check(number: str) -> dict[str, Any]:
    """Is `number` a well-formed card number? The result is for the LLM, so it never repeats the number.

    Only the last four digits come back (what a person would read back to confirm), and a reason when
    the number is not valid, so the agent can ask for the right correction.
    """
    digits = number.translate(_SEPARATORS)
    if not digits.isascii() or not digits.isdigit():
        return {"valid": False, "reason": "the card number may contain only digits, spaces and dashes"}
    if not MIN_CARD_DIGITS <= len(digits) <= MAX_CARD_DIGITS:
        return {
            "valid": False,
            "digits": len(digits),
            "reason": f"a card number has {MIN_CARD_DIGITS} to {MAX_CARD_DIGITS} digits, this one {len(digits)}",
        }
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    result: dict[str, Any] = {"valid": total % 10 == 0, "digits": len(digits), "last4": digits[-4:]}
    if not result["valid"]:
        result["reason"] = "the checksum does not match: a digit was probably misheard"
    return result


def run_builtin_tool(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Run a built-in tool the server runs itself; the result is the tool result's JSON.

    Unknown tools and tools that need a phone call come back as an error result rather than raising,
    because the session hands whatever comes back to the LLM.
    """
    if name == LUHN_CHECK:
        number = arguments.get("card_number", arguments.get("number"))
        if not isinstance(number, str | int) or isinstance(number, bool):
            return {"error": "card_number is required (a string of digits)"}
        return luhn_check(str(number))
    tool = builtin_tool(name)
    if tool is not None and tool.phone_only:
        return {"error": f"{name} is available on phone calls only"}
    return {"error": f"{name} is not a built-in tool"}
