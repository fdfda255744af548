from __future__ import annotations

from fastapi.testclient import TestClient


def create(client: TestClient, name: str = "docs", **extra: str) -> dict[str, object]:
    response = client.post("/v1/collections", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_create_get_list(client: TestClient) -> None:
    created = create(client, "handbook", description="HR handbook")
    assert created["name"] == "handbook"
    assert created["embedding_model"] == "all-MiniLM-L6-v2"
    assert created["embedding_dim"] == 384
    assert created["document_count"] == 0
    got = client.get(f"/v1/collections/{created['id']}").json()
    assert got["description"] == "HR handbook"
    listed = client.get("/v1/collections").json()["collections"]
    assert [c["id"] for c in listed] == [created["id"]]


def test_duplicate_name_is_409_problem(client: TestClient) -> None:
    create(client, "dup")
    response = client.post("/v1/collections", json={"name": "dup"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 409
    assert problem["title"] == "Conflict"
    assert "dup" in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]


def test_patch_renames_and_describes(client: TestClient) -> None:
    created = create(client, "old")
    create(client, "taken")
    response = client.patch(f"/v1/collections/{created['id']}", json={"name": "new"})
    assert response.status_code == 200
    assert response.json()["name"] == "new"
    clash = client.patch(f"/v1/collections/{created['id']}", json={"name": "taken"})
    assert clash.status_code == 409
    described = client.patch(f"/v1/collections/{created['id']}", json={"description": "d"})
    assert described.json() == {**described.json(), "name": "new", "description": "d"}


def test_delete_removes_documents(client: TestClient) -> None:
    created = create(client, "gone")
    doc = client.post(f"/v1/collections/{created['id']}/documents", json={"text": "hello"})
    assert doc.status_code == 202
    assert client.delete(f"/v1/collections/{created['id']}").status_code == 204
    assert client.get(f"/v1/collections/{created['id']}").status_code == 404
    assert client.get(f"/v1/documents/{doc.json()['id']}").status_code == 404
    assert client.delete(f"/v1/collections/{created['id']}").status_code == 404


def test_invalid_names_are_422(client: TestClient) -> None:
    for bad in ["", "../etc", "a b", "x" * 201, "-lead", "naïve"]:
        response = client.post("/v1/collections", json={"name": bad})
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"
    assert client.post("/v1/collections", json={"name": 5}).status_code == 422
    assert client.post("/v1/collections", json={}).status_code == 422
    assert client.post("/v1/collections", json={"name": "ok", "extra": 1}).status_code == 422


def test_unknown_collection_is_404(client: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/collections/col_nope"),
        ("PATCH", "/v1/collections/col_nope"),
        ("DELETE", "/v1/collections/col_nope"),
        ("GET", "/v1/collections/col_nope/documents"),
    ]:
        response = client.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path)
        assert response.json()["title"] == "Not Found"
