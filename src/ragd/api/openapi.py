"""The OpenAPI document states the limits this server enforces.

Fields marked with :func:`ragd.api.schemas.bounds.limited` carry the name of their
bound; here each marker becomes the configured value of that bound (one
:class:`~ragd.limits.Limits`, the object the services check against), so
``/openapi.json`` and the 422s always agree.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ragd.api.schemas.bounds import LIMIT_MARKER
from ragd.limits import Limits


def show_limits(node: Any, limits: Limits) -> None:
    """Resolve every limit marker in ``node`` (a JSON-schema document), in place."""
    if isinstance(node, list):
        for item in node:
            show_limits(item, limits)
        return
    if not isinstance(node, dict):
        return
    marker = node.pop(LIMIT_MARKER, None)
    if isinstance(marker, dict):
        for keyword, name in marker.items():
            value = limits.value(name)
            node[keyword] = value
            # An optional field states its bound inside the non-null branch as well.
            for branch in node.get("anyOf", []):
                if keyword in branch:
                    branch[keyword] = value
    for child in node.values():
        show_limits(child, limits)


def install_openapi(app: FastAPI, limits: Limits) -> None:
    """Render the schema once, with ``limits`` in it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            show_limits(schema, limits)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
