from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

Drain = Callable[[], int]

DOCS = {
    "bridge": (
        "# Tower Bridge\n\nTower Bridge in London was completed in 1894. It is a bascule "
        "bridge whose roadway lifts to let ships pass on the River Thames.",
        {"topic": "engineering", "year": 1894},
    ),
    "coffee": (
        "# Brewing coffee\n\nEspresso is brewed by forcing hot water through finely ground "
        "coffee beans at high pressure.",
        {"topic": "food", "year": 2020},
    ),
    "volcano": (
        "# Volcanoes\n\nA volcano is a rupture in the crust of a planet that lets hot lava, "
        "volcanic ash and gases escape from a magma chamber below the surface.",
        {"topic": "geology", "year": 2020},
    ),
}


@pytest.fixture
def corpus(client: TestClient, drain: Drain) -> dict[str, str]:
    """Collection id plus one document id per key of DOCS, all ready."""
    cid = client.post("/v1/collections", json={"name": "corpus"}).json()["id"]
    ids = {"collection": cid}
    for key, (text, metadata) in DOCS.items():
        response = client.post(
            f"/v1/collections/{cid}/documents", json={"text": text, "metadata": metadata}
        )
        ids[key] = response.json()["id"]
    drain()
    return ids


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "vector"])
def test_each_mode_finds_the_right_document(
    client: TestClient, corpus: dict[str, str], mode: str
) -> None:
    response = client.post(
        "/v1/search", json={"query": "when was the bridge over the Thames built", "mode": mode}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["document_id"] == corpus["bridge"]
    first = results[0]
    assert set(first) >= {
        "chunk_id",
        "document_id",
        "collection_id",
        "title",
        "text",
        "score",
        "metadata",
    }
    assert first["collection_id"] == corpus["collection"]
    assert first["title"] == "Tower Bridge"
    assert first["metadata"] == {"topic": "engineering", "year": 1894}


def test_vector_mode_finds_paraphrase_without_shared_words(
    client: TestClient, corpus: dict[str, str]
) -> None:
    results = client.post(
        "/v1/search", json={"query": "eruption of molten rock", "mode": "vector", "top_k": 1}
    ).json()["results"]
    assert [r["document_id"] for r in results] == [corpus["volcano"]]


def test_filters_apply_inside_the_legs(client: TestClient, corpus: dict[str, str]) -> None:
    for mode in ["hybrid", "keyword", "vector"]:
        results = client.post(
            "/v1/search",
            json={
                "query": "bridge over the Thames",
                "mode": mode,
                "top_k": 1,
                "filters": {"topic": "food"},
            },
        ).json()["results"]
        # Only the coffee document passes the filter; keyword may find nothing at all.
        assert all(r["document_id"] == corpus["coffee"] for r in results), mode
        assert mode == "keyword" or len(results) == 1
    by_number = client.post(
        "/v1/search", json={"query": "anything about lava", "filters": {"year": 2020}}
    ).json()["results"]
    assert {r["document_id"] for r in by_number} <= {corpus["coffee"], corpus["volcano"]}


def test_top_k_and_collection_scope(client: TestClient, corpus: dict[str, str]) -> None:
    results = client.post("/v1/search", json={"query": "hot", "top_k": 2}).json()["results"]
    assert len(results) == 2
    other = client.post("/v1/collections", json={"name": "empty"}).json()["id"]
    scoped = client.post("/v1/search", json={"query": "bridge", "collections": [other]}).json()[
        "results"
    ]
    assert scoped == []
    missing = client.post("/v1/search", json={"query": "bridge", "collections": ["col_nope"]})
    assert missing.status_code == 404


def test_query_syntax_is_just_text(client: TestClient, corpus: dict[str, str]) -> None:
    for query in [
        'bridge" OR 1=1 --',
        "NEAR(bridge lava)",
        "bridge*",
        "'; DROP TABLE chunks; --",
        "title:bridge",
        "(((",
        "-",
    ]:
        response = client.post("/v1/search", json={"query": query, "mode": "keyword"})
        assert response.status_code == 200, query
    count = client.get(f"/v1/collections/{corpus['collection']}").json()["chunk_count"]
    assert count >= 3


def test_ask_cites_the_source(client: TestClient, corpus: dict[str, str]) -> None:
    response = client.post("/v1/ask", json={"question": "When was Tower Bridge completed?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "1894" in body["answer"]
    assert body["citations"], body
    cited = body["citations"][0]
    assert cited["document_id"] == corpus["bridge"]
    assert f"[{cited['n']}]" in body["answer"]
    assert set(cited) >= {"n", "document_id", "chunk_id", "title", "text", "score"}


def test_ask_with_nothing_relevant_cites_nothing(
    client: TestClient, corpus: dict[str, str]
) -> None:
    body = client.post(
        "/v1/ask", json={"question": "What is the capital of Mongolia's football league?"}
    ).json()
    assert body["citations"] == []
    assert "could not find" in body["answer"].lower()


def test_search_with_no_collections_is_empty(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "anything"})
    assert response.status_code == 200
    assert response.json() == {"results": []}
