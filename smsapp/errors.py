"""The API's error shape (pack §17): `{"error": {"code": "...", "message": "..."}}`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, **self.extra)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return web.json_response({"error": body}, status=status, headers=headers)


def bad_request(message: str, code: str = "bad_request", **extra: Any) -> ApiError:
    return ApiError(400, code, message, **extra)


def not_found(what: str = "object") -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a clear 400."""
    try:
        raw = await request.read()
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "bad_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "request body must be a JSON object")
    return body


def path_int(request: web.Request, name: str, what: str) -> int:
    """An integer id from the path; anything else is simply not found."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise not_found(what)
    return int(raw)
