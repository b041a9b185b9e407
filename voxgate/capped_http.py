"""Reading the answer of a tool's HTTP endpoint without trusting its size.

`response.text` reads the whole body into memory first: an endpoint (broken, or hostile) that answers
a gigabyte would take the server's memory with it, and every live call. Only the first `limit` bytes
are ever read here, and the connection is closed on the rest; the LLM would be given no more anyway.
"""

from __future__ import annotations

from typing import Any

import httpx


async def request_capped(
    client: httpx.AsyncClient, method: str, url: str, *, limit: int, **kwargs: Any
) -> tuple[httpx.Response, str]:
    """The response (headers and status) and at most `limit` bytes of its body, decoded."""
    async with client.stream(method, url, **kwargs) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk[: limit - len(body)]
            if len(body) >= limit:
                break
    return response, bytes(body).decode(response.encoding or "utf-8", errors="replace")
