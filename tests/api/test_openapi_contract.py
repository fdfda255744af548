"""The OpenAPI document declares every error an operation sends, as problem+json.

Walks ``app.openapi()``: the statuses each kind of route can answer are there, each with
``application/problem+json`` and the Problem schema only (FastAPI's default 422 is
``application/json`` HTTPValidationError, which is not what is sent), and a route added
after the app was built gets the same declarations without doing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter

from ragd.api.app import create_app
from ragd.api.bodies import JsonBodyRoute
from ragd.api.deps import ReadKey, WriteKey
from ragd.api.problems import PROBLEM_JSON
from ragd.api.schemas.core import CollectionCreate
from ragd.config import load_settings

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _schema(tmp_path: Path, router: APIRouter | None = None) -> dict[str, Any]:
    app = create_app(load_settings(data_dir=tmp_path, inprocess_worker=False))
    if router is not None:
        app.include_router(router)
    schema: dict[str, Any] = app.openapi()
    return schema


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_error_response_is_problem_json(tmp_path: Path) -> None:
    schema = _schema(tmp_path)
    checked = 0
    for method, path, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if int(code) < 400 or (path, code) == ("/readyz", "503"):
                continue  # /readyz's 503 is its ReadyResponse, as the probe sends it
            assert response.get("content") == PROBLEM, (method, path, code)
            assert response["description"], (method, path, code)
            checked += 1
    assert checked >= 150
    models = schema["components"]["schemas"]
    assert "HTTPValidationError" not in models
    assert {"type", "title", "status", "detail"} <= set(models["Problem"]["required"])


def test_each_kind_of_route_declares_what_it_can_answer(tmp_path: Path) -> None:
    for method, path, operation in _operations(_schema(tmp_path)):
        declared = set(operation["responses"])
        keyed = path.startswith("/v1/")
        assert ({"401", "429", "503"} <= declared) == keyed, (method, path)
        if "{" in path:
            assert {"404", "422"} <= declared, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= declared, (method, path)
        parameters = [p for p in operation.get("parameters", []) if p.get("in") != "header"]
        if not parameters and "requestBody" not in operation:
            assert "422" not in declared, (method, path)  # nothing to validate
    paths = _schema(tmp_path)["paths"]
    assert "409" in paths["/v1/collections"]["post"]["responses"]
    assert "409" in paths["/v1/collections/{collection_id}"]["patch"]["responses"]
    assert "415" in paths["/v1/collections/{collection_id}/documents"]["post"]["responses"]
    assert "403" in paths["/v1/collections/{collection_id}"]["delete"]["responses"]
    assert "403" not in paths["/v1/search"]["post"]["responses"]  # read scope: any key
    assert "404" in paths["/v1/search"]["post"]["responses"]  # a collection named in it


def test_a_route_added_later_gets_the_declarations(tmp_path: Path) -> None:
    router = APIRouter(route_class=JsonBodyRoute)

    @router.post("/v1/widgets/{widget_id}")
    def make_widget(widget_id: str, body: CollectionCreate, key: WriteKey) -> dict[str, str]:
        return {"id": widget_id}

    @router.get("/v1/widgets")
    def list_widgets(key: ReadKey) -> list[str]:
        return []

    paths = _schema(tmp_path, router)["paths"]
    post = paths["/v1/widgets/{widget_id}"]["post"]["responses"]
    assert set(post) == {"200", "400", "401", "403", "404", "413", "422", "429", "503"}
    assert all(post[code]["content"] == PROBLEM for code in post if code != "200")
    assert set(paths["/v1/widgets"]["get"]["responses"]) == {"200", "401", "429", "503"}


def test_streams_declare_their_events(tmp_path: Path) -> None:
    paths = _schema(tmp_path)["paths"]
    ask = paths["/v1/ask"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    event = ask["schema"]["properties"]
    assert event["event"]["enum"] == ["delta", "citations", "done", "error"]
    assert event["data"]["contentMediaType"] == "application/json"
    completions = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert "event" not in completions["text/event-stream"]["schema"]["properties"]
