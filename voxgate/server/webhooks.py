"""Session webhooks (`session.webhook`): `session.started` and `session.completed`, signed, retried.

The body is `{"event", "session_id", "agent_id", "timestamp", "data"}` with the session's record as
`data`; the header `X-AAI-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>` lets the
receiver check it came from this server (shared/protocol.md §10.2). Deliveries run in their own
tasks, outside any socket, so a slow receiver never holds a conversation up; each is retried on
a non-2xx answer or a network error a few times with backoff, then given up and logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx

from voxgate.aio import TaskScope
from voxgate.store.base import FINAL_STATUSES, final_status
from voxgate.store.records import session_json

if TYPE_CHECKING:
    from voxgate.protocol.events import Webhook
    from voxgate.session.conversation import Conversation

log = logging.getLogger("voxgate.webhooks")

ATTEMPTS = 4
FIRST_BACKOFF_S = 1.0
TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 1000  # deliveries beyond this are dropped (logged): a dead receiver must not grow memory


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def session_record(conversation: Conversation, status: str, close_reason: str | None) -> dict[str, Any]:
    """The session as `/v1/sessions` lists it (the webhook's `data`), from the live session."""
    record = {
        "id": conversation.session_id,
        "agent_id": conversation.agent_id or None,
        "status": status,
        "close_reason": close_reason,
        "created_at": conversation.started_at,
        "ended_at": time.time() if status in FINAL_STATUSES else None,
    }
    return session_json(record)


class WebhookSender:
    def __init__(self) -> None:
        self._tasks = TaskScope("webhooks")
        self._in_flight = 0

    def session_started(self, conversation: Conversation) -> None:
        self._send(conversation, "session.started", session_record(conversation, "active", None))

    def session_completed(self, conversation: Conversation, close_reason: str) -> None:
        record = session_record(conversation, final_status(close_reason), close_reason)
        self._send(conversation, "session.completed", record)

    def _send(self, conversation: Conversation, event: str, record: dict[str, Any]) -> None:
        hook = conversation.config.webhook
        if hook is None or event not in hook.events:
            return
        if self._in_flight >= MAX_IN_FLIGHT:
            log.warning("webhook %s for %s dropped: too many deliveries in flight", event, conversation.session_id)
            return
        body = {
            "event": event,
            "session_id": conversation.session_id,
            "agent_id": conversation.agent_id or None,
            "timestamp": time.time(),
            "data": record,
        }
        self._in_flight += 1
        self._tasks.spawn(self._deliver(hook, body), f"webhook:{event}:{conversation.session_id}")

    async def _deliver(self, hook: Webhook, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                for attempt in range(ATTEMPTS):
                    headers = {"Content-Type": "application/json"}
                    if hook.secret:
                        headers["X-AAI-Signature"] = signature(hook.secret, int(time.time()), raw)
                    try:
                        answer = await client.post(hook.url, content=raw, headers=headers)
                        if answer.is_success:
                            return
                        why = f"HTTP {answer.status_code}"
                    except httpx.HTTPError as exc:
                        why = f"{type(exc).__name__}: {exc}"
                    log.info("webhook %s to %s failed (%s), attempt %d", body["event"], hook.url, why, attempt + 1)
                    if attempt + 1 < ATTEMPTS:
                        await asyncio.sleep(FIRST_BACKOFF_S * 2**attempt)
                log.warning("webhook %s to %s given up after %d attempts", body["event"], hook.url, ATTEMPTS)
        finally:
            self._in_flight -= 1

    async def close(self) -> None:
        await self._tasks.close()
