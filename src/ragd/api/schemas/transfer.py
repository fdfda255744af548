"""The OpenAPI description of ``POST /v1/imports``: the archive is the raw request body,
read by the route itself as a stream (FastAPI would otherwise want a model or a form)."""

from __future__ import annotations

from typing import Any

_ARCHIVE = {"schema": {"type": "string", "format": "binary"}}

IMPORT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The archive file as written by `ragd export` or an export job, "
        "plain or encrypted.",
        "content": {"application/octet-stream": _ARCHIVE, "application/x-tar": _ARCHIVE},
    }
}
