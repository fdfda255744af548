from __future__ import annotations

from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.config import Settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from tests.api.upload_schema import upload_json_schema


def test_livez_and_readyz(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["embedder"]["status"] == "ok"


def test_readyz_is_503_when_the_model_cannot_load(settings: Settings) -> None:
    broken = LocalEmbedder(str(settings.data_dir / "no-such-model"))
    container = Container(settings, embedder=broken)
    with TestClient(create_app(settings, container=container)) as client:
        broken._loaded.wait(30)
        response = client.get("/readyz")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["embedder"]["status"] == "fail"
        assert "could not be loaded" in checks["embedder"]["detail"]
        assert checks["database"]["status"] == "ok"
        assert client.get("/livez").status_code == 200
    container.close()


def test_openapi_is_complete(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in [
        "/v1/collections",
        "/v1/collections/{collection_id}",
        "/v1/collections/{collection_id}/documents",
        "/v1/documents/{document_id}",
        "/v1/documents/{document_id}/chunks",
        "/v1/search",
        "/v1/ask",
        "/livez",
        "/readyz",
    ]:
        assert path in paths, path
    upload = paths["/v1/collections/{collection_id}/documents"]["post"]["requestBody"]
    assert set(upload["content"]) == {"multipart/form-data", "application/json"}
    assert upload_json_schema(schema, "TextDocumentCreate")["required"] == ["text"]
    assert client.get("/docs").status_code == 200
