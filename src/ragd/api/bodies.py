"""Request bodies: one JSON parser for every route, and the document upload's body.

Every route reads JSON through :func:`parse_json`: FastAPI's own body parsing goes
through it because every router uses :class:`JsonBodyRoute`, and the upload route calls
it directly. Python's JSON reader recurses, so a body nested a thousand levels deep
either exhausts the interpreter's recursion limit (a ``RecursionError``, a 500 before
this module) or yields an object the rest of the code would walk just as deeply; both
are refused here as a 400 problem, the same on every route.

The upload route takes a file (multipart) or a text/URL (JSON) on one path. Its body is
read by the :data:`DocumentBody` dependency instead of by FastAPI, which can parse only
one content type per route; the OpenAPI document states both variants explicitly
(:data:`UPLOAD_OPENAPI`), built from the same models the dependency validates against.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic import Discriminator, Tag, TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ragd.api.schemas.core import TextDocumentCreate, UrlDocumentCreate
from ragd.errors import InvalidInput, UnsupportedMediaType
from ragd.limits import CEILINGS

MAX_DEPTH = CEILINGS.json_depth
TOO_DEEP = f"request body is JSON nested deeper than {MAX_DEPTH} levels"


def parse_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``raw`` as JSON, refusing nesting deeper than ``max_depth`` (HTTP 400).

    Syntax errors stay :class:`json.JSONDecodeError`, which each caller reports as
    it always has."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise HTTPException(400, TOO_DEEP) from None
    if _deeper_than(value, max_depth):
        raise HTTPException(400, TOO_DEEP)
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers in ``value`` nest deeper than ``limit``; iterative, so the
    check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _JsonRequest(Request):
    """A request whose ``json()`` is :func:`parse_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JsonBodyRoute(APIRoute):
    """The route class of every ragd router: FastAPI reads JSON bodies with
    :func:`parse_json` (the customisation FastAPI documents for request classes)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_JsonRequest(request.scope, request.receive))

        return route_handler


# -- the document upload -------------------------------------------------------------


@dataclass(frozen=True)
class FileBody:
    """A multipart upload: the file's bytes and the form fields beside it."""

    data: bytes
    filename: str | None
    content_type: str | None
    title: str | None
    metadata: str | None


def _variant(payload: Any) -> Literal["text", "url"] | None:
    if not isinstance(payload, dict) or ("text" in payload) == ("url" in payload):
        return None
    return "text" if "text" in payload else "url"


# Which model applies is decided by the key present, so a bad URL is reported as a bad
# URL and not as a text document missing its "text".
_JSON_DOCUMENT: TypeAdapter[TextDocumentCreate | UrlDocumentCreate] = TypeAdapter(
    Annotated[
        Annotated[TextDocumentCreate, Tag("text")] | Annotated[UrlDocumentCreate, Tag("url")],
        Discriminator(_variant),
    ]
)

_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "title": {"type": "string", "maxLength": CEILINGS.document_title_chars},
        "metadata": {"type": "string", "description": "A flat JSON object, encoded as a string."},
    },
}

UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _FORM_SCHEMA},
            "application/json": {
                "schema": {
                    "oneOf": [
                        TextDocumentCreate.model_json_schema(),
                        UrlDocumentCreate.model_json_schema(),
                    ]
                }
            },
        },
    }
}
"""The upload route's ``openapi_extra``: both request-body variants, stated in full."""


async def document_body(request: Request) -> FileBody | TextDocumentCreate | UrlDocumentCreate:
    """The upload's body by its content type: a file, a text or a URL."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _form_body(request)
    if content_type == "application/json" or content_type.endswith("+json"):
        return _json_document(await request.body())
    raise UnsupportedMediaType(
        "send multipart/form-data with a 'file' field, or application/json with 'text' or 'url'"
    )


async def _form_body(request: Request) -> FileBody:
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart body needs a 'file' field holding the document")
        title, metadata = form.get("title"), form.get("metadata")
        if not isinstance(title, str | None) or not isinstance(metadata, str | None):
            raise InvalidInput("'title' and 'metadata' must be plain form fields")
        data = await upload.read()
        return FileBody(data, upload.filename, upload.content_type, title, metadata)
    finally:
        await form.close()


def _json_document(raw: bytes) -> TextDocumentCreate | UrlDocumentCreate:
    try:
        payload = parse_json(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("request body is not valid JSON") from None
    return json_document(payload)


def json_document(payload: Any, what: str = "JSON body") -> TextDocumentCreate | UrlDocumentCreate:
    """A parsed JSON document (``what``: a body, a line) as a text or a URL document."""
    if _variant(payload) is None:
        raise InvalidInput(f"{what} needs exactly one of 'text' or 'url'")
    try:
        return _JSON_DOCUMENT.validate_python(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}") from None


DocumentBody = Annotated[FileBody | TextDocumentCreate | UrlDocumentCreate, Depends(document_body)]
