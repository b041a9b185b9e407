"""Tools the server runs itself: a stored agent's `http` tools and the platform's built-in tools.

An `http` tool is called as the hosted API calls it (shared/protocol.md §4.5): POST, PUT and PATCH
send the arguments as the JSON body, GET and DELETE as the query string; the answer's body, as
text, is the result, and a non-2xx answer, a network error or the tool's `timeout_seconds` passing
makes it an error result (the agent then says so instead of going quiet). The client still gets the
`tool.call`, as a notification; a `tool.result` it sends for such a call is ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from voxgate.capped_http import request_capped
from voxgate.protocol.events import Tool
from voxgate.redaction import mask_url
from voxgate.session.builtin_tools import builtin_tool, run_builtin_tool

log = logging.getLogger("voxgate.tools")

MAX_RESULT_CHARS = 16_000  # a tool that answers megabytes must not flood the LLM's context
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def runs_on_server(tool: Tool | None) -> bool:
    return tool is not None and (tool.http is not None or builtin_tool(tool.name) is not None)


async def run_server_tool(tool: Tool, arguments: dict[str, Any]) -> tuple[str, bool]:
    """`(result, is_error)` of running `tool` here."""
    if tool.http is None:
        try:
            return json.dumps(run_builtin_tool(tool.name, arguments)), False
        except Exception as exc:
            return json.dumps({"error": str(exc)}), True
    return await _call_http(tool.http, arguments, tool.timeout_seconds)


async def _call_http(http: dict[str, Any], arguments: dict[str, Any], timeout_s: float) -> tuple[str, bool]:
    url = str(http.get("url", ""))
    method = str(http.get("http_method") or http.get("method") or "POST").upper()
    headers = {
        str(h["name"]): str(h["value"])
        for h in http.get("headers") or []
        if isinstance(h, dict) and h.get("name") and h.get("value") is not None
    }
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            if method in BODY_METHODS:
                answer, text = await request_capped(
                    client, method, url, limit=MAX_RESULT_CHARS, json=arguments, headers=headers
                )
            else:
                params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()}
                answer, text = await request_capped(
                    client, method, url, limit=MAX_RESULT_CHARS, params=params, headers=headers
                )
    except httpx.TimeoutException:
        log.info("http tool %s %s timed out after %s s", method, mask_url(url), timeout_s)
        return json.dumps({"error": f"the tool did not answer within {timeout_s:g} s"}), True
    except httpx.HTTPError as exc:
        log.info("http tool %s %s failed: %s", method, mask_url(url), type(exc).__name__)
        return json.dumps({"error": f"the tool could not be reached ({type(exc).__name__})"}), True
    text = text[:MAX_RESULT_CHARS]
    if not answer.is_success:
        return json.dumps({"error": f"the tool answered HTTP {answer.status_code}", "body": text[:2000]}), True
    return text, False
