"""Request fields bound by a :class:`~ragd.limits.Limits` value, stated once.

The pydantic models are built at import, before any settings exist, so they validate
against the ceilings (``CEILINGS``). A field whose bound an operator may tighten also
names that bound (``x-ragd-limit``); :func:`ragd.api.openapi.show_limits` replaces the
ceiling with the configured value when the app renders its OpenAPI document, and the
services enforce that same value. The mapping from field to limit lives on the field.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query
from pydantic import Field

from ragd.limits import CEILINGS

LIMIT_MARKER = "x-ragd-limit"
Keyword = Literal["maxLength", "maximum", "maxProperties", "maxItems"]


def limited(keyword: Keyword, name: str) -> dict[str, Any]:
    """``json_schema_extra`` of a field whose ``keyword`` is the limit ``name``."""
    CEILINGS.value(name)  # a typo fails at import, not in the OpenAPI document
    return {LIMIT_MARKER: {keyword: name}}


def filters_field(description: str | None = None) -> Any:
    """The ``filters`` field of search and ask: bounded in keys and key length."""
    return Field(
        None,
        description=description,
        json_schema_extra={
            **limited("maxProperties", "filter_keys"),
            "propertyNames": limited("maxLength", "filter_key_chars"),
        },
    )


def page_size() -> Any:
    """The ``limit`` query parameter of every listing (a new one per route)."""
    return Query(
        ge=1,
        le=CEILINGS.page_size,
        description=f"Page size; default {CEILINGS.default_page_size}.",
        # The bounds at the top too: an optional parameter's schema is an anyOf.
        json_schema_extra={"minimum": 1, **limited("maximum", "page_size")},
    )
