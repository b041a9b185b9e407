"""tts_fast_first_clause: a voice with a fast lead says each reply's first clause with the lead, the rest itself.

On virtual time with the scripted LLM and the tone voice, whose resolved voice carries a lead
("tone-fast") as the catalog gives af_heart one (hibari heart).
"""

from __future__ import annotations

from tests.fakes import ScriptedLLM, ToneVoices, open_session
from tests.virtual_time import virtual


@virtual
async def test_only_the_first_clause_of_each_reply_is_said_by_the_lead() -> None:
    s = await open_session(
        llm=ScriptedLLM(["Sure, I can help. ", "The store opens at nine. ", "It closes at five."], ["Yes."]),
        voices=ToneVoices(lead=True),
    )
    await s.user.say("When do you open?", 1.0, then=1.0)
    await s.idle()
    first, *rest = s.voices.said_by
    assert first[0] == "tone-fast"
    assert rest and all(voice == "tone" for voice, _ in rest), s.voices.said_by
    said = " ".join(text for _, text in s.voices.said_by).split()
    assert said == "Sure, I can help. The store opens at nine. It closes at five.".split()
    s.voices.said_by.clear()
    await s.user.say("Are you open on Sunday?", 1.0, then=1.0)
    await s.idle()
    assert s.voices.said_by == [("tone-fast", "Yes.")]  # the next reply starts with the lead again


@virtual
async def test_without_a_lead_every_clause_is_the_voice_itself() -> None:
    s = await open_session(llm=ScriptedLLM(["Sure, I can help. ", "The store opens at nine."]))
    await s.user.say("When do you open?", 1.0, then=1.0)
    await s.idle()
    assert s.voices.said_by and {voice for voice, _ in s.voices.said_by} == {"tone"}


@virtual
async def test_a_slow_voice_says_the_opening_words_on_their_own_and_a_fast_one_does_not() -> None:
    """A voice slow to start (Kokoro without a lead) cuts the first clause at the first comma: "Sure,"
    is synthesized alone and heard while the rest is made; the prefetched reply is cut the same way."""
    reply = ["Sure, I can help with that. ", "The store opens at nine."]
    slow = await open_session(llm=ScriptedLLM(list(reply)), voices=ToneVoices(slow=True))
    await slow.user.say("When do you open?", 1.0, then=1.0)
    await slow.idle()
    assert [text for _, text in slow.voices.said_by] == ["Sure,", "I can help with that.", "The store opens at nine."]
    fast = await open_session(llm=ScriptedLLM(list(reply)))
    await fast.user.say("When do you open?", 1.0, then=1.0)
    await fast.idle()
    assert [text for _, text in fast.voices.said_by] == ["Sure, I can help with that.", "The store opens at nine."]
