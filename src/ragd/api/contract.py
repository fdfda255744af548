"""The error responses in the OpenAPI document are the ones the server sends.

Every error ragd sends is ``application/problem+json`` with the :class:`Problem` shape
(see :mod:`ragd.api.problems` and :mod:`ragd.api.middleware.problem`). The statuses an
operation can answer are mostly decided by what the route *is*, so they are derived here
from each route, in one place, and new routes get them without declaring anything:

- a caller resolved through :func:`~ragd.api.deps.get_principal`: 401 (no or a bad key)
  and 429 (the caller's rate budget, spent while resolving the caller);
- a scope above read (``WriteKey``, ``AdminKey``, ``KeyAdmin``): 403;
- a path parameter: 404 (nothing by that id, or outside the key's collections);
- any parameter or a body: 422 (validation);
- a body: 400 (not JSON, or nested too deep) and 413 (over the body cap);
- anything but the probes and ``/metrics``: 503 (shed under load, database briefly away).

What only a route knows (409 for a taken name, 404 for a collection named in a body, 415
for the upload's media types) it declares with :func:`problem_responses`. Whatever
declares a 4xx or 5xx, its content becomes exactly problem+json with the Problem schema:
FastAPI's default 422 (``HTTPValidationError`` as ``application/json``) is replaced, since
that is not what the 422 handler sends. A route that declares an error with a model of its
own (``/readyz``'s 503 is a ReadyResponse) keeps it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from ragd.api import deps
from ragd.api.middleware.admission import EXEMPT_PATHS as UNSHED_PATHS
from ragd.api.problems import PROBLEM_JSON
from ragd.api.schemas.core import Problem

PROBLEM_REF = "#/components/schemas/Problem"

DESCRIPTIONS: dict[int, str] = {
    400: "The body is not valid JSON, or is nested too deeply (problem+json)",
    401: "Missing, invalid or revoked API key (see WWW-Authenticate)",
    403: "The API key's scope or collection limit does not allow this",
    404: "No such resource, or not one the API key may see",
    409: "The name is already taken",
    413: "The body is over the size cap",
    415: "Unsupported media type",
    422: "The request is invalid: the problem names the field and the bound",
    429: "Over the caller's rate limit; retry after Retry-After seconds",
    503: "Shed under load, or a dependency is briefly unavailable; retry after Retry-After",
}

_ABOVE_READ = frozenset(
    get_args(alias)[1].dependency for alias in (deps.WriteKey, deps.AdminKey, deps.KeyAdmin)
)


def problem_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the problem statuses a route adds to the derived ones:
    ``problem_responses(409)``, or with a description of its own,
    ``problem_responses(**{"404": "No such collection"})``."""
    found: dict[int | str, dict[str, Any]] = {
        status: {"description": DESCRIPTIONS[status]} for status in statuses
    }
    for status, description in described.items():
        found[int(status)] = {"description": description}
    return found


def derived_statuses(route: Any) -> set[int]:
    """The problem statuses ``route`` can answer by what it is (see the module doc)."""
    calls = set(_calls(route.dependant))
    found: set[int] = set()
    if deps.get_principal in calls:
        found |= {401, 429}
    if calls & _ABOVE_READ:
        found.add(403)
    if route.dependant.path_params:
        found.add(404)
    has_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
    if has_body:
        found |= {400, 413}
    if has_body or _has_params(route.dependant):
        found.add(422)
    if route.path not in UNSHED_PATHS:
        found.add(503)
    return found


def _calls(dependant: Dependant) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _has_params(dependant: Dependant) -> bool:
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    if dependant.cookie_params or dependant.body_params:
        return True
    return any(_has_params(sub) for sub in dependant.dependencies)


def _own_model(route: Any, status: int) -> bool:
    """Whether the route declared ``status`` with a model other than Problem."""
    declared = route.responses.get(status) or route.responses.get(str(status)) or {}
    model = declared.get("model")
    return model is not None and model is not Problem


def apply_error_responses(schema: dict[str, Any], routes: Iterable[Any]) -> None:
    """Make every error response of ``schema`` (an OpenAPI document) what ``routes``
    (API routes, or FastAPI's route contexts of them) send."""
    for route in routes:
        if not route.include_in_schema:
            continue
        operations = schema.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in derived_statuses(route):
                responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
            for code, response in responses.items():
                if not code.isdigit() or int(code) < 400 or _own_model(route, int(code)):
                    continue
                response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
            operation["responses"] = dict(sorted(responses.items()))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's, now unused
        _drop_unreferenced(schema, name)


def _drop_unreferenced(schema: dict[str, Any], name: str) -> None:
    components = schema["components"]["schemas"]
    if name not in components:
        return
    unused = components.pop(name)
    if f'"#/components/schemas/{name}"' in json.dumps(schema):
        components[name] = unused


def api_routes(app: FastAPI) -> list[Any]:
    """Every API route of ``app`` as the OpenAPI generator sees it: newer FastAPI keeps
    included routers whole and resolves their routes through route contexts."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies included routes into app.routes
        return [route for route in app.routes if isinstance(route, APIRoute)]
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def install_error_responses(app: FastAPI) -> None:
    """Render the schema with :func:`apply_error_responses` over the app's routes."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            apply_error_responses(schema, api_routes(app))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
