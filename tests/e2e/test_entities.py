"""Dictated entities over a real socket: the final transcript carries them written, as the LLM needs them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import API_KEY, Server, synthesize
from tests.e2e.test_conversation import SYSTEM_PROMPT, say
from tests.e2e.wsclient import Client

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(
    "turn_detection",
    [None, {"max_silence": 2500}],
    ids=["adaptive", "fixed"],  # unset silences: adaptive pacing waits for an unfinished value (§4.3)
)
@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("My email is john dot smith at example dot com.", "john.smith@example.com"),
        ("You can call me at five five five, one two three, four five six seven.", "555-123-4567"),
    ],
)
async def test_a_dictated_entity_arrives_written(
    server: Server, speech_dir, spoken: str, written: str, turn_detection: dict | None
) -> None:
    client = await Client.connect(server.url, API_KEY)
    ready = await client.configure(
        system_prompt=SYSTEM_PROMPT, input={"turn_detection": turn_detection} if turn_detection else None
    )
    td = ready["config"]["input"]["turn_detection"]
    if turn_detection is None:  # the config echo shows null for both (§4.3)
        assert td["min_silence"] is None and td["max_silence"] is None, td
    else:
        assert td["max_silence"] == 2500, td
    await say(client, synthesize(speech_dir, spoken), trailing=3.0)
    final = await client.next("transcript.user", timeout=60)
    assert written in final.data["text"], final.data  # one turn: the whole value
    await client.next("reply.done", timeout=120)
    assert [e.type for e in client.events].count("transcript.user") == 1, client.types_since()
    await client.close()
