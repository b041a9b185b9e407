"""`voxgate talk` options become the session.update a client would send; agent files underneath, flags on top."""

import argparse

from voxgate.talk import add_arguments, session_from


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_make_the_session() -> None:
    session = session_from(options("--voice", "ivy", "--min-silence", "400", "--no-interrupt", "--keyterm", "Zorbix"))
    assert session["output"] == {"voice": "ivy"}
    assert session["input"]["turn_detection"] == {"min_silence": 400, "interrupt_response": False}
    assert session["input"]["keyterms"] == ["Zorbix"]


def test_an_agent_file_is_the_base_and_flags_override_it() -> None:
    session = session_from(options("--agent", "dental", "--voice", "joe", "--keyterm", "Invisalign"))
    assert "dental" in session["system_prompt"].lower()
    assert [t["name"] for t in session["tools"]] == ["check_slots"]
    assert session["output"]["voice"] == "joe" and session["input"]["format"]["encoding"] == "audio/pcm"
    assert session["input"]["keyterms"][-1] == "Invisalign"


def test_talk_asks_for_the_turn_latency_extension_unless_told_not_to() -> None:
    assert session_from(options())["voxgate"] == {"turn_latency": True}
    assert "voxgate" not in session_from(options("--no-latency"))


def test_a_turn_latency_event_prints_as_one_waterfall_line() -> None:
    from voxgate.protocol.events import LatencyStage, TurnLatency
    from voxgate.talk import latency_line

    spans = [
        ("end_of_turn", 0, 500),
        ("transcript", 500, 500),
        ("llm_first_token", 500, 700),
        ("first_audio", 700, 800),
    ]
    event = TurnLatency(
        item_id="msg_1",
        reply_id="resp_1",
        first_audio_ms=800,
        stages=[LatencyStage(name=n, start_ms=a, end_ms=b) for n, a, b in spans],
    )
    line = latency_line(event, width=8)
    assert line == "latency 0.80 s |eeeeella| end of turn 500  transcript 0  LLM 200  send 100 (ms)"
    failed = TurnLatency(
        item_id="msg_2", outcome="failed", stages=[LatencyStage(name="end_of_turn", start_ms=0, end_ms=600)]
    )
    assert latency_line(failed, width=4) == "latency failed |eeee| end of turn 600 (ms)"
