"""The JSON body of an HTTP error, as every route of the server answers one."""

from __future__ import annotations

from fastapi.responses import JSONResponse


def http_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
