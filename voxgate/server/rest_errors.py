"""Every error the HTTP surface raises instead of returning, answered in the §7.3 body.

FastAPI's own answers (`{"detail": "Not Found"}`, its 422 list) are not what a client of the hosted
API parses, so unknown routes, wrong methods, invalid requests, refused credentials and crashes all
go through here. The hosted telephony REST API gets a 404 that says why: Voxgate's telephony is the
Twilio integration. The OpenAI-compatible routes answer in OpenAI's shape, as their clients expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxgate.server.auth import AuthError
from voxgate.server.responses import code_for, http_error

#: The hosted telephony REST API (§1), which Voxgate does not implement.
TELEPHONY_PATHS = (
    "/v1/phone_numbers",
    "/v1/calls",
    "/v1/transfer_targets",
    "/v1/webhooks",
    "/v1/webhook_subscriptions",
    "/v1/webhook_deliveries",
)
#: OpenAI's API, served by openai_routes.py.
OPENAI_PATHS = ("/v1/models", "/v1/audio", "/v1/chat")
_OPENAI_TYPES = {401: "invalid_request_error", 403: "permission_error", 404: "invalid_request_error"}


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def error_response(path: str, status: int, code: str, message: str, *, close: bool = False) -> JSONResponse:
    """The error body a client of `path` parses, for layers that answer before any route runs (body limits,
    origin checks). `close`: the connection is not reused (the rest of a refused body is never read)."""
    return _error_for(path, status, message, code=code, headers={"Connection": "close"} if close else None)


def _error(
    request: Request,
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    detail: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return _error_for(
        request.url.path, status, message, code=code, param=param, detail=detail, errors=errors, headers=headers
    )


def _error_for(
    path: str,
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    detail: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    if _under(path, OPENAI_PATHS):
        kind = "server_error" if status >= 500 else _OPENAI_TYPES.get(status, "invalid_request_error")
        body = {"error": {"message": message, "type": kind, "param": param, "code": (code or code_for(status)).lower()}}
        return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)
    return http_error(
        status, code or code_for(status), message, param=param, detail=detail, errors=errors, headers=headers
    )


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return _error(request, exc.status, exc.message, code=exc.code)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    # loc is ("query" | "body" | ..., name, ...): the param is the field without where it came from
    errors = [{"message": d["msg"], "param": ".".join(str(p) for p in d["loc"][1:]) or None} for d in detail]
    first = errors[0] if errors else {"message": "invalid request", "param": None}
    message = f"{first['param']}: {first['message']}" if first["param"] else str(first["message"])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return _error(request, 422, message, param=first["param"], detail=detail, errors=errors)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if exc.status_code == 404 and _under(path, TELEPHONY_PATHS):
        message = "the hosted telephony REST API is not implemented; Voxgate's telephony is /v1/twilio/…"
    elif exc.status_code == 404:
        message = f"no route {path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {path}"
    else:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return _error(request, exc.status_code, message, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this answer, so the server logs it with its traceback.
    return _error(request, 500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _internal_error)
