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
