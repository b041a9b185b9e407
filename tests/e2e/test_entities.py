"""Dictated entities over a real socket: the final transcript carries them written, as the LLM needs them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import API_KEY, Server, synthesize
from tests.e2e.test_conversation import SYSTEM_PROMPT, say
from tests.e2e.wsclient import Client

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("My email is john dot smith at example dot com.", "john.smith@example.com"),
        ("You can call me at five five five, one two three, four five six seven.", "555-123-4567"),
    ],
)
async def test_a_dictated_entity_arrives_written(server: Server, speech_dir, spoken: str, written: str) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT, input={"turn_detection": {"max_silence": 2500}})
    await say(client, synthesize(speech_dir, spoken), trailing=3.0)
    final = await client.next("transcript.user", timeout=60)
    assert written in final.data["text"], final.data
    await client.close()
