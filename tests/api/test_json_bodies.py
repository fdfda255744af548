"""One JSON body parser for every route: deep nesting and misleading errors are 4xx."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi.testclient import TestClient

from ragd.api import routes as routes_package
from ragd.api.bodies import JsonBodyRoute
from tests.api.test_bad_input_api import assert_problem

JSON = {"content-type": "application/json"}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_json_is_the_same_400_on_every_route(client: TestClient) -> None:
    cid = client.post("/v1/collections", json={"name": "deep"}).json()["id"]
    document = b'{"text": "a", "metadata": {"k": ' + _nested(1000) + b"}}"
    routes = [
        (f"/v1/collections/{cid}/documents", document),
        (f"/v1/collections/{cid}/documents", _nested(1000)),
        ("/v1/search", b'{"query": "a", "filters": ' + _nested(1000) + b"}"),
        ("/v1/collections", _nested(1000)),
        ("/v1/chat/completions", _nested(100)),
        (
            "/mcp",
            b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": ' + _nested(1000) + b"}",
        ),
    ]
    for path, body in routes:
        problem = assert_problem(client.post(path, content=body, headers=JSON), 400)
        assert problem["title"] == "Bad Request", path
        assert "nested deeper than" in str(problem["detail"]), path
    assert client.get(f"/v1/collections/{cid}/documents").json()["documents"] == []


def test_shallow_nesting_is_still_read(client: TestClient) -> None:
    body = {"query": "a", "filters": {"team": "x"}}
    assert client.post("/v1/search", json=body).status_code == 200


def test_every_route_reads_json_through_the_one_parser() -> None:
    checked = 0
    for info in pkgutil.iter_modules(routes_package.__path__):
        router = importlib.import_module(f"{routes_package.__name__}.{info.name}").router
        for route in router.routes:
            assert isinstance(route, JsonBodyRoute), (info.name, route)
            checked += 1
    assert checked > 20


def test_too_long_url_names_the_url(client: TestClient) -> None:
    cid = client.post("/v1/collections", json={"name": "urls"}).json()["id"]
    url = "https://example.com/" + "a" * 2100
    problem = assert_problem(
        client.post(f"/v1/collections/{cid}/documents", json={"url": url}), 422
    )
    detail = str(problem["detail"])
    assert detail.startswith("url:"), detail
    assert "2000" in detail
    assert "text" not in detail


def test_text_body_errors_name_the_text(client: TestClient) -> None:
    cid = client.post("/v1/collections", json={"name": "texts"}).json()["id"]
    problem = assert_problem(client.post(f"/v1/collections/{cid}/documents", json={"text": 5}), 422)
    assert str(problem["detail"]).startswith("text:")


def test_upload_body_is_read_only_after_authentication(remote_client: TestClient) -> None:
    # A caller without a key is refused before its body is parsed: a body that would be a
    # 422 (multipart without a file) is a 401 here.
    response = remote_client.post(
        "/v1/collections/col_x/documents", files={"title": (None, "no file")}
    )
    assert_problem(response, 401)
