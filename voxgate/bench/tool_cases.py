"""The cases of `voxgate bench tools`: a tool set, what the user says, and the call that should follow.

Each case is one fresh session: `context` is said to it first as text (`conversation.message`), so
the spoken turn is decided by what came before; `say` is spoken with the project's Piper voice.
`expect` is the tool the first reply must call (None: it must speak, calling nothing), `args` what
its arguments must be: a string is the value (compared ignoring case, spaces and dots), a tuple any
of several values, and a string starting with "~" words that must all appear in the value.
`result` is sent back as the call's `tool.result` (`error` marks it `is_error`); the reply that
follows must speak (a tool result leading to another call names it in `then`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _tool(name: str, description: str, required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": props, "required": list(required)},
    }


WEATHER = _tool("get_weather", "Get the current weather for a city", ("location",), location=_s("The city"))
REMEMBER = _tool(
    "remember", "Store something the user asks you to remember", ("memory",), memory=_s("What to remember")
)
RECALL = _tool(
    "recall_memory", "Look up something the user asked you to remember", ("query",), query=_s("What to look up")
)
ORDER = _tool(
    "get_order_status",
    "Look up the status of an order by its order number",
    ("order_number",),
    order_number=_s("The order number, digits only", pattern="^[0-9]+$"),
)
CANCEL = _tool(
    "cancel_order", "Cancel an order", ("order_number",), order_number=_s("The order number", pattern="^[0-9]+$")
)
BOOK = _tool(
    "book_appointment",
    "Book an appointment at the clinic",
    ("day", "time"),
    day=_s("The day of the appointment, as the user said it"),
    time=_s("The time of the appointment, like 3 PM"),
)
AVAILABILITY = _tool("check_availability", "List the free appointment times on a day", ("day",), day=_s("The day"))
REMINDER = _tool(
    "schedule_reminder_call",
    "Schedule an outbound phone call that reminds someone of something",
    ("phone_number", "message"),
    phone_number=_s("The phone number to call, digits only", pattern="^[0-9]+$"),
    message=_s("What the reminder says"),
)
TRANSFER = _tool(
    "transfer_to_human",
    "Transfer the caller to a human support agent",
    (),
    reason=_s("Why the caller wants a person"),
)
UNITS = _tool(
    "set_temperature_unit",
    "Set whether temperatures are given in celsius or fahrenheit",
    ("unit",),
    unit={"type": "string", "enum": ["celsius", "fahrenheit"]},
)
SPOTIFY = _tool("play_music", "Play a song or an artist", ("query",), query=_s("The song or artist"))
TIMER = _tool("set_timer", "Set a kitchen timer", ("minutes",), minutes={"type": "integer", "description": "Minutes"})

TOOL_SETS: dict[str, list[dict[str, Any]]] = {
    "tutorial": [WEATHER, REMEMBER, RECALL],
    "orders": [ORDER, CANCEL, TRANSFER],
    "clinic": [BOOK, AVAILABILITY, TRANSFER],
    "reminders": [REMINDER, TRANSFER],
    "everything": [
        WEATHER,
        REMEMBER,
        RECALL,
        ORDER,
        CANCEL,
        BOOK,
        AVAILABILITY,
        REMINDER,
        TRANSFER,
        UNITS,
        SPOTIFY,
        TIMER,
    ],
}


@dataclass(frozen=True)
class ToolCase:
    tools: str
    say: str
    expect: str | None
    args: dict[str, Any] = field(default_factory=dict)
    context: tuple[str, ...] = ()
    result: str | None = None
    error: bool = False
    then: str | None = None


C = ToolCase
CASES: tuple[ToolCase, ...] = (
    # --- the tutorial agent: weather and memory
    C("tutorial", "What's the weather like in Berlin today?", "get_weather", {"location": "~berlin"}),
    C("tutorial", "Is it going to rain in Tokyo?", "get_weather", {"location": "~tokyo"}),
    C("tutorial", "Do I need an umbrella in London right now?", "get_weather", {"location": "~london"}),
    C("tutorial", "How hot is it in Madrid?", "get_weather", {"location": "~madrid"}),
    C("tutorial", "Tell me the weather in Chicago.", "get_weather", {"location": "~chicago"}),
    C(
        "tutorial",
        "Please remember that my sister's birthday is May third.",
        "remember",
        {"memory": "~sister birthday"},
    ),
    C("tutorial", "Remember that I parked on level four.", "remember", {"memory": "~parked level"}),
    C("tutorial", "Can you remember that my favourite colour is green?", "remember", {"memory": "~green"}),
    C("tutorial", "What did I tell you about my sister's birthday?", "recall_memory", {"query": "~sister"}),
    C("tutorial", "Where did I say I parked?", "recall_memory", {"query": "~park"}),
    C("tutorial", "Hi, how are you?", None),
    C("tutorial", "Tell me a joke about cats.", None),
    C("tutorial", "What is the capital of France?", None),
    C("tutorial", "Thanks, that's all for now.", None),
    C("tutorial", "I love sunny days.", None),
    C("tutorial", "Who wrote Romeo and Juliet?", None),
    C("tutorial", "What is two plus two?", None),
    C("tutorial", "Goodbye!", None),
    C("tutorial", "What can you help me with?", None),
    C("tutorial", "How do I boil an egg?", None),
    C(
        "tutorial",
        "And what about Paris?",
        "get_weather",
        {"location": "~paris"},
        context=("What's the weather in Rome?",),
    ),
    C(
        "tutorial",
        "Yes, please do that.",
        "remember",
        {"memory": "~dentist"},
        context=("My dentist is Doctor Lee.", "Should I remember that for you?"),
    ),
    C(
        "tutorial",
        "What's it like in Oslo?",
        "get_weather",
        {"location": "~oslo"},
        result='{"temp_c": 3, "sky": "snow"}',
    ),
    C(
        "tutorial",
        "Weather in Lisbon, please.",
        "get_weather",
        {"location": "~lisbon"},
        result="weather service unavailable",
        error=True,
    ),
    # --- orders: the mobile client's lookup
    C("orders", "Where is my order? The order number is four five six.", "get_order_status", {"order_number": "456"}),
    C("orders", "Can you check order one two three four five?", "get_order_status", {"order_number": "12345"}),
    C("orders", "What's the status of order seven seven eight nine?", "get_order_status", {"order_number": "7789"}),
    C("orders", "Has order number nine zero one shipped yet?", "get_order_status", {"order_number": "901"}),
    C("orders", "I'd like to cancel order five five two.", "cancel_order", {"order_number": "552"}),
    C("orders", "Please cancel my order, it's number three one four.", "cancel_order", {"order_number": "314"}),
    C("orders", "I want to talk to a real person.", "transfer_to_human"),
    C("orders", "Can I speak to a human agent please?", "transfer_to_human"),
    C("orders", "What are your opening hours?", None),
    C("orders", "Thank you very much.", None),
    C("orders", "Do you sell gift cards?", None),
    C("orders", "Hello there.", None),
    C(
        "orders",
        "Where is it now?",
        "get_order_status",
        {"order_number": "808"},
        context=("My order number is eight zero eight.",),
    ),
    C(
        "orders",
        "Actually, cancel it.",
        "cancel_order",
        {"order_number": "4321"},
        context=("I have a question about order four three two one.",),
    ),
    C(
        "orders",
        "Check order six one two please.",
        "get_order_status",
        {"order_number": "612"},
        result='{"status": "shipped", "eta": "Friday"}',
    ),
    C(
        "orders",
        "Look up order two two seven.",
        "get_order_status",
        {"order_number": "227"},
        result="order not found",
        error=True,
    ),
    # --- the clinic: appointment booking
    C(
        "clinic",
        "Can you book me an appointment next Tuesday at three pm?",
        "book_appointment",
        {"day": "~tuesday", "time": ("3 pm", "3:00 pm", "15:00", "3pm")},
    ),
    C(
        "clinic",
        "I need an appointment on Friday at ten in the morning.",
        "book_appointment",
        {"day": "~friday", "time": ("10 am", "10:00 am", "10:00", "10am")},
    ),
    C(
        "clinic",
        "Book me in for Monday at nine am.",
        "book_appointment",
        {"day": "~monday", "time": ("9 am", "9:00 am", "09:00", "9:00", "9am")},
    ),
    C("clinic", "What times are free on Wednesday?", "check_availability", {"day": "~wednesday"}),
    C("clinic", "Is there anything available on Thursday?", "check_availability", {"day": "~thursday"}),
    C("clinic", "Please put me through to the receptionist.", "transfer_to_human"),
    C("clinic", "Where is the clinic?", None),
    C("clinic", "Do I need to bring anything to my appointment?", None),
    C("clinic", "Good morning!", None),
    C("clinic", "How long does a check-up usually take?", None),
    C(
        "clinic",
        "Book it for four pm then.",
        "book_appointment",
        {"day": "~saturday", "time": ("4 pm", "4:00 pm", "16:00", "4pm")},
        context=("I'd like to come in on Saturday.",),
    ),
    C(
        "clinic",
        "What's free on Monday?",
        "check_availability",
        {"day": "~monday"},
        result='{"free": ["9 AM", "2 PM"]}',
    ),
    # --- outbound reminders
    C(
        "reminders",
        "Call five five five one two three four five six seven and remind them about the meeting.",
        "schedule_reminder_call",
        {"phone_number": "5551234567", "message": "~meeting"},
    ),
    C(
        "reminders",
        "Set up a reminder call to four one five five five five zero one three four saying take your pills.",
        "schedule_reminder_call",
        {"phone_number": "4155550134", "message": "~pills"},
    ),
    C(
        "reminders",
        "Remind my mom at two one two five five five zero one nine nine to water the plants.",
        "schedule_reminder_call",
        {"phone_number": "2125550199", "message": "~plants"},
    ),
    C("reminders", "Transfer me to someone who can help.", "transfer_to_human"),
    C("reminders", "How do reminder calls work?", None),
    C("reminders", "That's great, thanks.", None),
    C("reminders", "What's your name?", None),
    C(
        "reminders",
        "Remind them about the dentist.",
        "schedule_reminder_call",
        {"phone_number": "3105550142", "message": "~dentist"},
        context=("The number is three one zero five five five zero one four two.",),
    ),
    # --- everything at once: distractor tools
    C("everything", "What's the weather in Seattle?", "get_weather", {"location": "~seattle"}),
    C("everything", "Where's order eight eight one?", "get_order_status", {"order_number": "881"}),
    C("everything", "Switch to fahrenheit please.", "set_temperature_unit", {"unit": "fahrenheit"}),
    C("everything", "Use celsius from now on.", "set_temperature_unit", {"unit": "celsius"}),
    C("everything", "Play some Beatles.", "play_music", {"query": "~beatles"}),
    C("everything", "Set a timer for ten minutes.", "set_timer", {"minutes": 10}),
    C("everything", "Remember that the wifi password is on the fridge.", "remember", {"memory": "~wifi"}),
    C(
        "everything",
        "Book an appointment on Thursday at two pm.",
        "book_appointment",
        {"day": "~thursday", "time": ("2 pm", "2:00 pm", "14:00", "2pm")},
    ),
    C("everything", "Get me a human.", "transfer_to_human"),
    C("everything", "Cancel order six six six.", "cancel_order", {"order_number": "666"}),
    C("everything", "What's a good name for a dog?", None),
    C("everything", "How many legs does a spider have?", None),
    C("everything", "Nice talking to you.", None),
    C("everything", "Can you speak a bit slower?", None),
    C("everything", "What's the difference between a virus and bacteria?", None),
    C("everything", "I had a long day at work.", None),
    C("everything", "Why is the sky blue?", None),
    C("everything", "Okay.", None),
    C("everything", "Sorry, I didn't catch that.", None),
    C("everything", "What's your favourite movie?", None),
    C("everything", "How do you spell necessary?", None),
    C("everything", "Give me a tip for sleeping better.", None),
    C("everything", "Which is bigger, the sun or the moon?", None),
    C("everything", "Tell me something interesting.", None),
)
