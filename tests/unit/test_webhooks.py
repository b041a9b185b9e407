"""Session webhooks reach a real HTTP receiver, signed, and are retried after a failure."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import replace

from voxgate.protocol.events import Webhook
from voxgate.server.webhooks import WebhookSender, signature
from voxgate.session.conversation import Conversation
from voxgate.session.policy import SessionPolicy

SECRET = "s" * 32


class Receiver:
    """A plain HTTP/1.1 server on a loopback port that answers the first `fail` requests with 500."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.got = asyncio.Event()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        status = b"500 Internal Server Error" if len(self.requests) <= self.fail else b"204 No Content"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        if len(self.requests) > self.fail:
            self.got.set()


def _hooked(url: str, events: list[str]) -> Conversation:
    conversation = Conversation(None, SessionPolicy(), "sess_" + "0" * 32, "owner")  # type: ignore[arg-type]
    conversation.config = replace(conversation.config, webhook=Webhook(url=url, events=events, secret=SECRET))
    return conversation


async def test_session_started_is_delivered_signed_with_the_session_record() -> None:
    receiver = Receiver()
    async with receiver as url:
        sender = WebhookSender()
        conversation = _hooked(url, ["session.started", "session.completed"])
        sender.session_started(conversation)
        await asyncio.wait_for(receiver.got.wait(), 10)
        await sender.close()
    headers, body = receiver.requests[0]
    payload = json.loads(body)
    assert payload["event"] == "session.started" and payload["session_id"] == conversation.session_id
    assert payload["data"]["status"] == "active" and payload["data"]["ended_at"] is None
    t, _, mac = headers["x-aai-signature"].partition(",v1=")
    stamp = int(t.removeprefix("t="))
    expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert mac == expected and headers["x-aai-signature"] == signature(SECRET, stamp, body)


async def test_a_failed_delivery_is_retried_and_events_not_asked_for_are_not_sent() -> None:
    receiver = Receiver(fail=1)
    async with receiver as url:
        sender = WebhookSender()
        conversation = _hooked(url, ["session.completed"])
        sender.session_started(conversation)  # not subscribed: nothing goes out
        sender.session_completed(conversation, "client_end")
        await asyncio.wait_for(receiver.got.wait(), 15)
        await sender.close()
    events = [json.loads(body)["event"] for _, body in receiver.requests]
    assert events == ["session.completed", "session.completed"]  # the 500, then the retry
    record = json.loads(receiver.requests[-1][1])["data"]
    assert record["status"] == "completed" and record["public_close_reason"] == "client_end"
    assert record["duration_seconds"] is not None
