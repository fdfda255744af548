"""Domain errors → ``application/problem+json``, at the edge and nowhere else.

Unexpected exceptions become a generic 500 whose detail says nothing about the code;
the traceback goes to the log with the request id.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragd import errors

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[errors.RagdError], int, str]] = [
    (errors.Unauthorized, 401, "Unauthorized"),
    (errors.Forbidden, 403, "Forbidden"),
    (errors.NotFound, 404, "Not Found"),
    (errors.Conflict, 409, "Conflict"),
    (errors.UnsupportedMediaType, 415, "Unsupported Media Type"),
    (errors.PayloadTooLarge, 413, "Payload Too Large"),
    (errors.InvalidInput, 422, "Unprocessable Content"),
    (errors.ParseError, 422, "Unprocessable Content"),
    (errors.FetchError, 422, "Unprocessable Content"),
    (errors.Unavailable, 503, "Service Unavailable"),
    (errors.TransientError, 503, "Service Unavailable"),
]

# RFC 9110: a 401 names the scheme to authenticate with; a 503 says when to come back.
_STATUS_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": 'Bearer realm="ragd"'},
    503: {"Retry-After": "5"},
}


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://ragd.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": getattr(request.state, "request_id", None),
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.RagdError)
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            return problem(request, status, title, exc.detail, headers=_STATUS_HEADERS.get(status))
    return _unexpected(request, exc)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    if any(d["type"] == "json_invalid" for d in details):
        return problem(request, 400, "Bad Request", "request body is not valid JSON")
    summary = "; ".join(f"{'.'.join(d['loc'][1:]) or 'body'}: {d['msg']}" for d in details[:5])
    return problem(
        request,
        422,
        "Unprocessable Content",
        summary or "invalid request",
        extra={"errors": details},
    )


_HTTP_TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = _HTTP_TITLES.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers) if exc.headers else None
    return problem(request, exc.status_code, title, detail, headers=headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc, path=request.url.path)
    return problem(request, 500, "Internal Server Error", "an unexpected error occurred")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.RagdError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def problem_fields(exc: Exception) -> dict[str, Any]:
    """``type``, ``title``, ``status`` and ``detail`` of the problem ``exc`` maps to, for
    errors that can no longer become a response (mid-stream, as an event)."""
    if isinstance(exc, errors.RagdError):
        for kind, status, title in _STATUS:
            if isinstance(exc, kind):
                return _fields(status, title, exc.detail)
    log.error("unhandled error", exc_info=exc)
    return _fields(500, "Internal Server Error", "an unexpected error occurred")


def _fields(status: int, title: str, detail: str) -> dict[str, Any]:
    slug = title.lower().replace(" ", "-")
    return {
        "type": f"https://ragd.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
