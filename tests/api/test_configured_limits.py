"""RAGD_MAX_* settings tighten the field limits, are enforced, and show in OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.errors import InvalidInput
from tests.api.upload_schema import upload_json_schema
from tests.helpers import LOOPBACK_CLIENT


@pytest.fixture
def tight(tmp_path: Path, embedder: LocalEmbedder) -> Iterator[TestClient]:
    settings = load_settings(
        data_dir=tmp_path,
        inprocess_worker=False,
        max_query_chars=50,
        max_top_k=20,
        max_page_size=5,
        max_metadata_bytes=100,
        max_url_chars=40,
        max_filter_keys=3,
        max_filter_key_chars=10,
    )
    container = Container(settings, embedder=embedder)
    with TestClient(create_app(settings, container=container), client=LOOPBACK_CLIENT) as client:
        yield client
    container.close()


def test_tightened_limits_are_enforced(tight: TestClient) -> None:
    cid = tight.post("/v1/collections", json={"name": "c"}).json()["id"]
    assert tight.post("/v1/search", json={"query": "q" * 51}).status_code == 422
    assert tight.post("/v1/search", json={"query": "q" * 50}).status_code == 200
    assert tight.post("/v1/search", json={"query": "q", "top_k": 21}).status_code == 422
    assert tight.post("/v1/ask", json={"question": "q" * 51}).status_code == 422
    listing = f"/v1/collections/{cid}/documents"
    assert tight.get(listing, params={"limit": 6}).status_code == 422
    assert tight.get(listing, params={"limit": 5}).status_code == 200
    big = {"text": "hello", "metadata": {"k": "v" * 200}}
    assert tight.post(listing, json=big).status_code == 422
    url = "https://example.com/" + "a" * 30
    assert tight.post(listing, json={"url": url}).status_code == 422
    assert tight.get(listing).json()["documents"] == []


def test_openapi_shows_configured_limits(tight: TestClient) -> None:
    schema = tight.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert components["SearchRequest"]["properties"]["query"]["maxLength"] == 50
    assert components["SearchRequest"]["properties"]["top_k"]["maximum"] == 20
    assert components["AskRequest"]["properties"]["question"]["maxLength"] == 50
    url_body = upload_json_schema(schema, "UrlDocumentCreate")
    assert url_body["properties"]["url"]["maxLength"] == 40
    params = schema["paths"]["/v1/collections/{collection_id}/documents"]["get"]["parameters"]
    assert next(p for p in params if p["name"] == "limit")["schema"]["maximum"] == 5


def test_filter_limits_are_enforced_and_shown(tight: TestClient) -> None:
    three = {"a": 1, "b": 2, "c": 3}
    assert tight.post("/v1/search", json={"query": "q", "filters": three}).status_code == 200
    four = {**three, "d": 4}
    assert tight.post("/v1/search", json={"query": "q", "filters": four}).status_code == 422
    assert tight.post("/v1/ask", json={"question": "q", "filters": four}).status_code == 422
    long_key = {"k" * 11: 1}
    assert tight.post("/v1/search", json={"query": "q", "filters": long_key}).status_code == 422
    assert (
        tight.post("/v1/search", json={"query": "q", "filters": {"k" * 10: 1}}).status_code == 200
    )
    components = tight.get("/openapi.json").json()["components"]["schemas"]
    for model in ("SearchRequest", "AskRequest"):
        filters = components[model]["properties"]["filters"]
        assert filters["maxProperties"] == 3
        assert filters["propertyNames"]["maxLength"] == 10


def test_filter_limits_cannot_exceed_the_hard_ceiling() -> None:
    with pytest.raises(InvalidInput, match="RAGD_MAX_FILTER_KEYS"):
        load_settings(max_filter_keys=33)
    with pytest.raises(InvalidInput, match="RAGD_MAX_FILTER_KEY_CHARS"):
        load_settings(max_filter_key_chars=129)


def test_limits_cannot_exceed_the_hard_ceiling() -> None:
    with pytest.raises(InvalidInput, match="RAGD_MAX_QUERY_CHARS"):
        load_settings(max_query_chars=5000)


def test_query_limit_holds_for_chat_messages(tight: TestClient) -> None:
    session = tight.post("/v1/chat/sessions", json={}).json()["id"]
    messages = f"/v1/chat/sessions/{session}/messages"
    refused = tight.post(messages, json={"content": "q" * 51})
    assert refused.status_code == 422
    assert "50" in refused.json()["detail"]
    assert tight.get(messages).json()["messages"] == []
    assert tight.get(messages, params={"limit": 6}).status_code == 422


def test_top_k_limit_holds_for_evaluations(tight: TestClient) -> None:
    cid = tight.post("/v1/collections", json={"name": "golden"}).json()["id"]
    queries = [{"query": "q", "relevant": {"doc_x": 1}}]
    url = f"/v1/collections/{cid}/evaluations"
    refused = tight.post(url, json={"queries": queries, "top_k": 21})
    assert refused.status_code == 422
    assert "20" in refused.json()["detail"]
    assert tight.post(url, json={"queries": queries, "top_k": 20}).status_code == 200
    long_query = [{"query": "q" * 51, "relevant": {"doc_x": 1}}]
    assert tight.post(url, json={"queries": long_query}).status_code == 422


def test_openapi_shows_configured_limits_of_chat_and_evaluations(tight: TestClient) -> None:
    schema = tight.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert components["ChatMessageCreate"]["properties"]["content"]["maxLength"] == 50
    assert components["EvaluationRequest"]["properties"]["top_k"]["maximum"] == 20
    assert components["GoldenQueryIn"]["properties"]["query"]["maxLength"] == 50
    assert "x-ragd-limit" not in str(schema)
