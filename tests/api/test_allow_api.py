"""OPTIONS and 405 name every method of a path, on every path of the app.

Starlette answered with the methods of the first route that matched the path, so
``/v1/collections/{id}`` said ``Allow: GET`` although it also has PATCH and DELETE.
The expected methods come from the OpenAPI document (and, for the routes it leaves
out, from the list below), not from the table the middleware builds.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from fastapi.testclient import TestClient

from ragd.api import routes as routes_package

HIDDEN = {
    "/mcp": {"POST"},
    "/": {"GET"},
    "/ui": {"GET"},
    "/ui/{name}": {"GET"},
    "/openapi.json": {"GET", "HEAD"},
    "/docs": {"GET", "HEAD"},
    "/docs/oauth2-redirect": {"GET", "HEAD"},
    "/redoc": {"GET", "HEAD"},
}
PROBE = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _expected(client: TestClient) -> dict[str, set[str]]:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {path: {m.upper() for m in ops} for path, ops in paths.items()}
    assert not set(expected) & set(HIDDEN)
    return {**expected, **HIDDEN}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _allow(header: str) -> set[str]:
    return {method.strip() for method in header.split(",")}


def test_every_route_path_is_checked(client: TestClient) -> None:
    expected = _expected(client)
    for info in pkgutil.iter_modules(routes_package.__path__):
        router = importlib.import_module(f"{routes_package.__name__}.{info.name}").router
        for route in router.routes:
            assert route.path in expected, route.path


def test_options_lists_every_method_of_each_path(client: TestClient) -> None:
    for path, methods in _expected(client).items():
        response = client.options(_concrete(path))
        assert response.status_code == 204, (path, response.text)
        assert _allow(response.headers["allow"]) == methods, path
        assert response.content == b""


def test_405_lists_every_method_of_each_path(client: TestClient) -> None:
    for path, methods in _expected(client).items():
        for method in PROBE:
            if method in methods:
                continue
            response = client.request(method, _concrete(path))
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert _allow(response.headers["allow"]) == methods, (method, path)


def test_unknown_path_stays_404(client: TestClient) -> None:
    assert client.options("/v1/nothing-here").status_code == 404
    assert client.put("/v1/nothing-here").status_code == 404
