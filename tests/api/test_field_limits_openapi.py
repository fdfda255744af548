"""Limits are part of the contract: field limits and 429s declared in OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.upload_schema import upload_json_schema


def test_field_limits_are_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    models: dict[str, Any] = schema["components"]["schemas"]
    assert models["CollectionCreate"]["properties"]["name"]["maxLength"] == 200
    url_body = upload_json_schema(schema, "UrlDocumentCreate")
    assert url_body["properties"]["url"]["maxLength"] == 2000
    search = models["SearchRequest"]["properties"]
    assert search["query"]["maxLength"] == 1000
    assert (search["top_k"]["minimum"], search["top_k"]["maximum"]) == (1, 100)
    assert models["AskRequest"]["properties"]["question"]["maxLength"] == 1000
    listing = schema["paths"]["/v1/collections/{collection_id}/documents"]["get"]
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 100)
    text_body = upload_json_schema(schema, "TextDocumentCreate")
    assert "16 KB" in text_body["properties"]["metadata"]["description"]
    assert "/metrics" in schema["paths"]


def test_limited_routes_declare_429(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            limited = path.startswith("/v1/")
            assert ("429" in operation["responses"]) == limited, (method, path)
