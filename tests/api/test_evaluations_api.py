"""POST /v1/collections/{id}/evaluations: a golden set scored against a live collection."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

Drain = Callable[[], int]

DOCS = {
    "bridge": "# Tower Bridge\n\nTower Bridge in London opened in 1894; its roadway lifts to "
    "let ships pass on the River Thames.",
    "coffee": "# Espresso\n\nEspresso is brewed by forcing hot water through finely ground "
    "coffee beans at high pressure.",
    "volcano": "# Volcanoes\n\nA volcano lets lava, ash and gases escape from a magma chamber "
    "below the surface of a planet.",
}


@pytest.fixture
def golden(client: TestClient, drain: Drain) -> dict[str, str]:
    """A collection id and one ready document id per key of DOCS."""
    cid = client.post("/v1/collections", json={"name": "golden"}).json()["id"]
    ids = {"collection": cid}
    for key, text in DOCS.items():
        ids[key] = client.post(f"/v1/collections/{cid}/documents", json={"text": text}).json()["id"]
    drain()
    return ids


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "vector"])
def test_scores_a_golden_set(client: TestClient, golden: dict[str, str], mode: str) -> None:
    body = {
        "queries": [
            {"query": "when did Tower Bridge open", "relevant": {golden["bridge"]: 2}},
            # A relevant id the collection does not hold: allowed, and never found.
            {
                "query": "how is espresso coffee brewed",
                "relevant": {golden["coffee"]: 1, "doc_deleted_long_ago": 1},
            },
        ],
        "mode": mode,
        "top_k": 3,
    }
    response = client.post(f"/v1/collections/{golden['collection']}/evaluations", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["mode"] == mode
    assert result["top_k"] == 3
    bridge, coffee = result["per_query"]
    assert bridge["query"] == "when did Tower Bridge open"
    assert bridge["ranked_document_ids"][0] == golden["bridge"]
    # Keyword search finds only documents sharing a word; the other modes rank them all.
    assert len(bridge["ranked_document_ids"]) == 3 or mode == "keyword"
    assert (bridge["ndcg"], bridge["recall"], bridge["mrr"]) == (1.0, 1.0, 1.0)
    assert coffee["ranked_document_ids"][0] == golden["coffee"]
    assert coffee["recall"] == 0.5
    assert coffee["mrr"] == 1.0
    assert result["metrics"] == {
        "ndcg@3": pytest.approx((1.0 + coffee["ndcg"]) / 2),
        "recall@3": 0.75,
        "mrr@3": 1.0,
        "queries": 2,
    }


def test_defaults_to_hybrid_at_ten(client: TestClient, golden: dict[str, str]) -> None:
    body = {"queries": [{"query": "volcano lava", "relevant": {golden["volcano"]: 1}}]}
    response = client.post(f"/v1/collections/{golden['collection']}/evaluations", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["mode"], result["top_k"]) == ("hybrid", 10)
    assert set(result["metrics"]) == {"ndcg@10", "recall@10", "mrr@10", "queries"}
    assert result["metrics"]["mrr@10"] == 1.0


def test_unknown_collection_is_a_404_problem(client: TestClient) -> None:
    body = {"queries": [{"query": "anything", "relevant": {"doc_x": 1}}]}
    response = client.post("/v1/collections/col_missing/evaluations", json=body)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_a_key_limited_elsewhere_sees_no_such_collection(
    client: TestClient,
    remote_client: TestClient,
    golden: dict[str, str],
    make_key: Callable[..., str],
) -> None:
    other = client.post("/v1/collections", json={"name": "other"}).json()["id"]
    key = make_key("read", collections=[other])
    body = {"queries": [{"query": "bridge", "relevant": {golden["bridge"]: 1}}]}
    url = f"/v1/collections/{golden['collection']}/evaluations"
    response = remote_client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404
    assert remote_client.post(url, json=body).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"queries": []},
        {"queries": [{"query": "q", "relevant": {"d": 1}}] * 501},
        {"queries": [{"query": "x" * 1001, "relevant": {"d": 1}}]},
        {"queries": [{"query": "q", "relevant": {}}]},
        {"queries": [{"query": "q", "relevant": {"d": -1}}]},
        {"queries": [{"query": "q", "relevant": {"d": 1}}], "mode": "fuzzy"},
        {"queries": [{"query": "q", "relevant": {"d": 1}}], "top_k": 0},
        {"queries": [{"query": "q", "relevant": {"d": 1}}], "extra": True},
    ],
)
def test_limits_are_422_problems(client: TestClient, body: dict[str, object]) -> None:
    """Checked from the schema, before any collection is looked up."""
    response = client.post("/v1/collections/col_any/evaluations", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
