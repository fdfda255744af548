"""Where the upload route's JSON body variants sit in the OpenAPI document."""

from __future__ import annotations

from typing import Any


def upload_json_schema(openapi: dict[str, Any], title: str) -> dict[str, Any]:
    """The JSON variant ``title`` (``TextDocumentCreate``, ``UrlDocumentCreate``) of the
    upload route's request body, which the route states in full (no component)."""
    upload = openapi["paths"]["/v1/collections/{collection_id}/documents"]["post"]
    variants = upload["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    found: dict[str, Any] = next(v for v in variants if v.get("title") == title)
    return found
