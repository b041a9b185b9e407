"""The end-of-turn check does not run Smart Turn when the words alone decide (turn_policy.decided_by_words).

Unfinished words wait whatever Smart Turn says, and late, whole words end the turn whatever it says; the
guess at the pause is usually decoded by then, so the model's run (~70 ms of a core on this machine, the
largest per-turn cost with remote models) and its wait were spent for nothing.
"""

from __future__ import annotations

from tests.fakes import ScriptedLLM, ScriptedTurnModel, open_session
from tests.virtual_time import virtual
from voxgate.session.turn_policy import TurnEvidence, decided_by_words, turn_is_complete


@virtual
async def test_late_whole_words_end_the_turn_without_the_model() -> None:
    model = ScriptedTurnModel(probability=0.05)  # "not yet", the way it scores some whole sentences
    s = await open_session(llm=ScriptedLLM(["Noted."]), turn_model=model)
    await s.user.say("He was not an ill-disposed young man.", 2.0, then=3.0)
    await s.idle()
    assert "transcript.user: He was not an ill-disposed young man." in s.wire()
    assert s.wire()[-1] == "reply.done completed"
    assert model.calls == 1  # at min_silence (it said no); late, the words decided alone


@virtual
async def test_unfinished_words_wait_without_the_model() -> None:
    model = ScriptedTurnModel(probability=0.99)
    s = await open_session(llm=ScriptedLLM(["Go on."]), turn_model=model)
    await s.user.say("I would like to book a table and...", 2.0, then=3.0)
    await s.idle()
    assert s.wire()[-1] == "reply.done completed"  # at max_silence, as before
    assert model.calls == 0


def test_the_words_decide_exactly_where_the_model_cannot_change_the_decision() -> None:
    texts = [
        "",
        "What time is it?",
        "He was not an ill-disposed young man.",
        "I'd like to book",
        "I need to cancel.",
        "my number is 555",
        "so um",
        "and...",
    ]
    for text in texts:
        for late in (False, True):
            decided = decided_by_words(text, late=late)
            answers = {turn_is_complete(TurnEvidence(text, p), 0.5, late=late) for p in (0.0, 0.3, 0.6, 0.99, None)}
            if decided is not None:
                assert answers == {decided}, (text, late)
            else:
                assert len(answers) == 2, (text, late)  # the model's answer matters there
