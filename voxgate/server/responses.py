"""The JSON body of an HTTP error, in the hosted API's form (§7.3), for every route of Voxgate's own REST.

The schema's body is `{code, message, param, request_id, errors, detail}`; the live service fills
`detail` FastAPI's way (a list of `{type, loc, msg}` for validation, a string otherwise), so a client
written against either finds what it reads. The OpenAI-compatible routes keep OpenAI's own shape.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse

#: The code each status gets when the caller names none (§7.3).
STATUS_CODES = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    422: "VALIDATION_ERROR",
    500: "INTERNAL_ERROR",
}


def code_for(status: int) -> str:
    return STATUS_CODES.get(status, "INVALID_REQUEST" if status < 500 else "INTERNAL_ERROR")


def http_error(
    status: int,
    code: str,
    message: str,
    *,
    param: str | None = None,
    detail: Sequence[Mapping[str, Any]] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error response. `detail`: FastAPI-style validation entries; `errors`: one per bad field.

    Without `errors`, the one error is the message itself; without `detail`, it is the message as
    FastAPI would send a plain HTTPException's.
    """
    body = {
        "code": code,
        "message": message,
        "param": param,
        "request_id": "req_" + secrets.token_hex(12),
        "errors": [dict(e) for e in errors] if errors is not None else [{"message": message, "param": param}],
        "detail": [dict(d) for d in detail] if detail is not None else message,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)
