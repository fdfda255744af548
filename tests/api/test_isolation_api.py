"""Tenant isolation, table-driven: two keys, each limited to its own collection, try every
endpoint on the other's ids and get the same 404 as for an id that does not exist; and
nothing of the other shows in search, ask, lists or chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

Drain = Callable[[], int]
MakeKey = Callable[..., str]

# Both documents share words ("harbour", "lighthouse"), so an unscoped search finds both:
# any leak across tenants would show.
DOCS = {
    "alpha": "# Alpha harbour\n\nThe alpha lighthouse stands at the harbour mouth since 1820.",
    "beta": "# Beta harbour\n\nThe beta lighthouse guards the harbour entrance since 1901.",
}


@dataclass
class Tenant:
    name: str
    cid: str
    did: str
    chunk_id: str
    headers: dict[str, str]


@pytest.fixture
def tenants(client: TestClient, drain: Drain, make_key: MakeKey) -> dict[str, Tenant]:
    """Two collections with one ready document each (made before any key exists, over
    loopback), then an admin key limited to each: the widest scope a limited key has."""
    made: dict[str, tuple[str, str]] = {}
    for name, text in DOCS.items():
        cid = client.post("/v1/collections", json={"name": name}).json()["id"]
        document = client.post(f"/v1/collections/{cid}/documents", json={"text": text})
        made[name] = (cid, document.json()["id"])
    drain()
    chunk_ids = {
        name: client.get(f"/v1/documents/{did}/chunks").json()["chunks"][0]["id"]
        for name, (_, did) in made.items()
    }
    return {
        name: Tenant(
            name,
            cid,
            did,
            chunk_ids[name],
            {"X-API-Key": make_key("admin", collections=[cid], name=name)},
        )
        for name, (cid, did) in made.items()
    }


# Every endpoint that takes a collection or document id, with the other tenant's ids.
Request = tuple[str, str, dict[str, Any] | None]
ATTEMPTS: list[Request] = [
    ("GET", "/v1/collections/{cid}", None),
    ("GET", "/v1/collections/{name}", None),  # by name, as the CLI allows
    ("PATCH", "/v1/collections/{cid}", {"description": "taken over"}),
    ("DELETE", "/v1/collections/{cid}", None),
    ("GET", "/v1/collections/{cid}/documents", None),
    ("POST", "/v1/collections/{cid}/documents", {"text": "# Planted\n\nPlanted text."}),
    ("POST", "/v1/collections/{cid}/documents", {"url": "https://example.com/x"}),
    ("GET", "/v1/documents/{did}", None),
    ("DELETE", "/v1/documents/{did}", None),
    ("GET", "/v1/documents/{did}/chunks", None),
    ("POST", "/v1/search", {"query": "lighthouse", "collections": ["{cid}"]}),
    ("POST", "/v1/search", {"query": "lighthouse", "collections": ["{own}", "{cid}"]}),
    ("POST", "/v1/search", {"query": "lighthouse", "collections": ["{cid}"], "mode": "keyword"}),
    ("POST", "/v1/ask", {"question": "Which lighthouse?", "collections": ["{cid}"]}),
]
MISSING = {"cid": "col_000000000000000000000000", "did": "doc_000000000000000000000000"}


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def call(client: TestClient, attempt: Request, ids: dict[str, str], headers: Any) -> Any:
    method, path, body = attempt
    return client.request(method, fill(path, ids), json=fill(body, ids), headers=headers)


@pytest.mark.parametrize(
    "attempt", ATTEMPTS, ids=[f"{i}-{m} {p}" for i, (m, p, _) in enumerate(ATTEMPTS)]
)
def test_other_tenants_ids_answer_404_like_missing_ones(
    client: TestClient, tenants: dict[str, Tenant], attempt: Request
) -> None:
    for me, other in (("alpha", "beta"), ("beta", "alpha")):
        mine, theirs = tenants[me], tenants[other]
        ids = {"cid": theirs.cid, "did": theirs.did, "name": theirs.name, "own": mine.cid}
        response = call(client, attempt, ids, mine.headers)
        assert response.status_code == 404, (me, response.text)
        # The same answer as for an id that exists nowhere: nothing tells them apart.
        missing_ids = {**ids, **MISSING, "name": "no-such-name"}
        missing = call(client, attempt, missing_ids, mine.headers).json()["detail"]
        for key in ("cid", "did", "name"):
            missing = missing.replace(missing_ids[key], ids[key])
        assert response.json()["detail"] == missing


def test_nothing_of_the_other_tenant_is_visible_or_changed(
    client: TestClient, tenants: dict[str, Tenant]
) -> None:
    for attempt in ATTEMPTS:  # every attempt, by both tenants, before looking
        for me, other in (("alpha", "beta"), ("beta", "alpha")):
            theirs = tenants[other]
            ids = {"cid": theirs.cid, "did": theirs.did, "name": other, "own": tenants[me].cid}
            call(client, attempt, ids, tenants[me].headers)

    for me, other in (("alpha", "beta"), ("beta", "alpha")):
        mine, theirs = tenants[me], tenants[other]
        listed = client.get("/v1/collections", headers=mine.headers).json()["collections"]
        assert [c["id"] for c in listed] == [mine.cid]
        assert listed[0]["description"] == ""
        documents = client.get(f"/v1/collections/{mine.cid}/documents", headers=mine.headers)
        assert [d["id"] for d in documents.json()["documents"]] == [mine.did]
        chunks = client.get(f"/v1/documents/{mine.did}/chunks", headers=mine.headers).json()
        assert [c["id"] for c in chunks["chunks"]] == [mine.chunk_id]

        for mode in ("hybrid", "keyword", "vector"):
            found = client.post(
                "/v1/search",
                json={"query": "harbour lighthouse", "mode": mode, "top_k": 50},
                headers=mine.headers,
            ).json()["results"]
            assert found and {r["collection_id"] for r in found} == {mine.cid}, mode
            assert theirs.did not in {r["document_id"] for r in found}
        answer = client.post(
            "/v1/ask", json={"question": "When was the lighthouse built?"}, headers=mine.headers
        ).json()
        assert answer["citations"]
        assert {c["document_id"] for c in answer["citations"]} == {mine.did}
        assert other not in answer["answer"].lower()

        # The other tenant's data is all still there, untouched.
        own = client.get(f"/v1/collections/{theirs.cid}", headers=theirs.headers).json()
        assert own["description"] == "" and own["document_count"] == 1


def test_an_unlimited_key_sees_both_which_is_what_makes_the_isolation_test_bite(
    client: TestClient, tenants: dict[str, Tenant], make_key: MakeKey
) -> None:
    root = {"X-API-Key": make_key("read")}
    found = client.post(
        "/v1/search", json={"query": "harbour lighthouse", "top_k": 50}, headers=root
    ).json()["results"]
    assert {r["collection_id"] for r in found} == {t.cid for t in tenants.values()}
