"""What every backend that talks to an OpenAI-compatible server passes to the official client."""

from __future__ import annotations

from typing import Any

#: Sent as the bearer token when no key is configured: local servers ignore it, and the client
#: refuses to start without one (it is never read from OPENAI_API_KEY, so that key stays private).
NO_KEY = "no-key"


def client_options(*, base_url: str | None, api_key: str | None, timeout_s: float, max_retries: int) -> dict[str, Any]:
    return {"base_url": base_url, "api_key": api_key or NO_KEY, "timeout": timeout_s, "max_retries": max_retries}
