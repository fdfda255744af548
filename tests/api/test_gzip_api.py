"""gzip for large JSON responses when the client accepts it; small ones and clients that
do not ask get plain bodies."""

from __future__ import annotations

import gzip
import json

from fastapi.testclient import TestClient

from tests.api.conftest import Drain

WORDS = ["tide", "moon", "gravity", "ocean", "shore", "wave", "current", "harbour"]


def seed(client: TestClient, drain: Drain) -> str:
    cid: str = client.post("/v1/collections", json={"name": "tides"}).json()["id"]
    for i in range(12):
        text = f"# Tides {i}\n\n" + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(80))
        assert (
            client.post(f"/v1/collections/{cid}/documents", json={"text": text}).status_code == 202
        )
    drain()
    return cid


def test_large_json_is_gzipped_when_accepted(client: TestClient, drain: Drain) -> None:
    cid = seed(client, drain)
    for method, path, body in (
        ("POST", "/v1/search", {"query": "tide moon", "top_k": 10}),
        ("GET", f"/v1/collections/{cid}/documents", None),
    ):
        response = client.request(method, path, json=body, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, response.text
        assert response.headers["content-encoding"] == "gzip", path
        assert "accept-encoding" in response.headers["vary"].lower()
        # httpx decoded it; the wire size is what the header says, and smaller.
        assert int(response.headers["content-length"]) < len(response.content)
        assert response.json()

        plain = client.request(method, path, json=body, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.json().keys() == response.json().keys()


def test_the_compressed_bytes_are_real_gzip(client: TestClient, drain: Drain) -> None:
    seed(client, drain)
    with client.stream(
        "POST",
        "/v1/search",
        json={"query": "ocean shore", "top_k": 10},
        headers={"Accept-Encoding": "gzip"},
    ) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["results"]


def test_small_responses_stay_plain(client: TestClient) -> None:
    response = client.get("/livez", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    problem = client.get("/v1/documents/nope", headers={"Accept-Encoding": "gzip"})
    assert problem.status_code == 404
    assert problem.headers["content-type"] == "application/problem+json"
    assert "content-encoding" not in problem.headers
