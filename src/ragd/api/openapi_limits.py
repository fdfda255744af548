"""Show the configured field limits in the OpenAPI document.

The pydantic models carry the hard ceilings (they are module-level, built before any
settings exist); operators may tighten them through ``RAGD_MAX_*``, the services enforce
the configured values, and this patch makes ``/openapi.json`` say what is enforced.
"""

from __future__ import annotations

from typing import Any

from ragd.config import Settings

# (component schema, property, JSON-schema keyword, settings attribute)
_COMPONENT_LIMITS = [
    ("SearchRequest", "query", "maxLength", "max_query_chars"),
    ("SearchRequest", "top_k", "maximum", "max_top_k"),
    ("AskRequest", "question", "maxLength", "max_query_chars"),
    ("UrlDocumentCreate", "url", "maxLength", "max_url_chars"),
]


def apply_configured_limits(schema: dict[str, Any], settings: Settings) -> None:
    components = schema.get("components", {}).get("schemas", {})
    for component, prop, keyword, attribute in _COMPONENT_LIMITS:
        target = components.get(component, {}).get("properties", {}).get(prop)
        if target is not None:
            target[keyword] = getattr(settings, attribute)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") == "query" and parameter.get("name") == "limit":
                    bounds = parameter.setdefault("schema", {})
                    bounds.update(minimum=1, maximum=settings.max_page_size)
