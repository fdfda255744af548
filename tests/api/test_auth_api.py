"""API keys over HTTP on the real app: 401/403 problems, both headers, key CRUD, the
loopback-only secure default, RAGD_ADMIN_KEY and RAGD_AUTH_DISABLED, and OpenAPI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragd.api.app import create_app
from ragd.auth import generate_key
from ragd.config import load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.errors import InvalidInput
from tests.helpers import LOOPBACK_CLIENT, REMOTE_CLIENT

MakeKey = Callable[..., str]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["request_id"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    return body


# -- the secure default ------------------------------------------------------------------


def test_without_keys_only_loopback_clients_are_served(
    client: TestClient, remote_client: TestClient
) -> None:
    assert client.get("/v1/collections").status_code == 200
    body = assert_problem(remote_client.get("/v1/collections"), 401)
    assert "ragd keys create" in body["detail"]
    assert "RAGD_AUTH_DISABLED=true" in body["detail"]
    for open_path in ("/livez", "/readyz", "/openapi.json", "/docs"):
        assert remote_client.get(open_path).status_code == 200, open_path


def test_once_a_key_exists_loopback_needs_one_too(
    client: TestClient, remote_client: TestClient, make_key: MakeKey
) -> None:
    key = make_key("read")
    body = assert_problem(client.get("/v1/collections"), 401)
    assert "X-API-Key" in body["detail"]
    assert client.get("/v1/collections", headers=auth(key)).status_code == 200
    assert remote_client.get("/v1/collections", headers=auth(key)).status_code == 200
    assert client.get("/livez").status_code == 200


def test_auth_disabled_serves_everyone_as_admin(tmp_path: Path, embedder: LocalEmbedder) -> None:
    settings = load_settings(data_dir=tmp_path, inprocess_worker=False, auth_disabled=True)
    container = Container(settings, embedder=embedder)
    with TestClient(create_app(settings, container=container), client=REMOTE_CLIENT) as remote:
        assert remote.post("/v1/collections", json={"name": "open"}).status_code == 201
        assert remote.get("/v1/keys").status_code == 200
    container.close()


# -- 401 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": f"rgd_unknown1_{'x' * 43}"},
    ],
    ids=["none", "empty-bearer", "basic", "garbage", "unknown-prefix"],
)
def test_missing_or_invalid_key_is_401(
    remote_client: TestClient, make_key: MakeKey, headers: dict[str, str]
) -> None:
    make_key("admin")
    assert_problem(remote_client.get("/v1/collections", headers=headers), 401)
    assert_problem(remote_client.post("/v1/search", json={"query": "x"}, headers=headers), 401)


def test_wrong_secret_and_revoked_key_are_401(
    remote_client: TestClient, make_key: MakeKey, container: Container
) -> None:
    key = make_key("read")
    wrong = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert_problem(remote_client.get("/v1/collections", headers=auth(wrong)), 401)
    [stored] = container.keys.list_all()
    container.keys.revoke(stored.id)
    body = assert_problem(remote_client.get("/v1/collections", headers=auth(key)), 401)
    assert "revoked" in body["detail"]


def test_both_header_forms_are_accepted(remote_client: TestClient, make_key: MakeKey) -> None:
    key = make_key("read")
    for headers in (
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"bearer {key}"},
        {"X-API-Key": key},
    ):
        assert remote_client.get("/v1/collections", headers=headers).status_code == 200


# -- 403 -----------------------------------------------------------------------------------

WRITE_ROUTES = [
    ("POST", "/v1/collections", {"name": "new"}),
    ("PATCH", "/v1/collections/{cid}", {"description": "changed"}),
    ("POST", "/v1/collections/{cid}/documents", {"text": "# Hello\n\nSome text."}),
    ("DELETE", "/v1/documents/{did}", None),
]
ADMIN_ROUTES = [
    ("DELETE", "/v1/collections/{cid}", None),
    ("POST", "/v1/keys", {"name": "k", "scope": "read"}),
    ("GET", "/v1/keys", None),
    ("DELETE", "/v1/keys/{kid}", None),
]


@pytest.fixture
def seeded(client: TestClient, container: Container) -> dict[str, str]:
    """A collection with a document and a key id, made before any key exists."""
    cid = client.post("/v1/collections", json={"name": "seeded"}).json()["id"]
    did = client.post(f"/v1/collections/{cid}/documents", json={"text": "Seeded text."}).json()[
        "id"
    ]
    kid = container.keys.create("victim", "read").key.id
    return {"cid": cid, "did": did, "kid": kid}


@pytest.mark.parametrize(
    ("scope", "route"),
    [("read", r) for r in WRITE_ROUTES + ADMIN_ROUTES] + [("write", r) for r in ADMIN_ROUTES],
    ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}",
)
def test_scope_too_low_is_403(
    remote_client: TestClient,
    make_key: MakeKey,
    seeded: dict[str, str],
    scope: str,
    route: tuple[str, str, dict[str, Any] | None],
) -> None:
    method, path, body = route
    key = make_key(scope)
    response = remote_client.request(method, path.format(**seeded), json=body, headers=auth(key))
    detail = assert_problem(response, 403)["detail"]
    assert scope in detail


def test_each_scope_reaches_its_routes(
    remote_client: TestClient, make_key: MakeKey, seeded: dict[str, str]
) -> None:
    read, write, admin = make_key("read"), make_key("write"), make_key("admin")
    cid, did = seeded["cid"], seeded["did"]
    for path in (
        "/v1/collections",
        f"/v1/collections/{cid}",
        f"/v1/collections/{cid}/documents",
        f"/v1/documents/{did}",
        f"/v1/documents/{did}/chunks",
    ):
        assert remote_client.get(path, headers=auth(read)).status_code == 200, path
    assert remote_client.post("/v1/search", json={"query": "seeded"}, headers=auth(read)).is_success
    assert remote_client.post(
        "/v1/ask", json={"question": "seeded?"}, headers=auth(read)
    ).is_success
    assert remote_client.post("/v1/collections", json={"name": "w"}, headers=auth(write)).is_success
    assert remote_client.delete(f"/v1/documents/{did}", headers=auth(write)).status_code == 204
    assert remote_client.delete(f"/v1/collections/{cid}", headers=auth(admin)).status_code == 204


def test_limited_keys_cannot_create_collections_or_manage_keys(
    remote_client: TestClient, make_key: MakeKey, seeded: dict[str, str]
) -> None:
    for scope in ("write", "admin"):
        key = make_key(scope, collections=[seeded["cid"]])
        created = remote_client.post("/v1/collections", json={"name": "x"}, headers=auth(key))
        assert "cannot create collections" in assert_problem(created, 403)["detail"]
    limited_admin = make_key("admin", collections=[seeded["cid"]])
    listed = remote_client.get("/v1/keys", headers=auth(limited_admin))
    assert "not limited to collections" in assert_problem(listed, 403)["detail"]


# -- keys over HTTP --------------------------------------------------------------------------


def test_key_crud_over_http(
    remote_client: TestClient, make_key: MakeKey, seeded: dict[str, str]
) -> None:
    admin = auth(make_key("admin", name="root"))
    created = remote_client.post(
        "/v1/keys",
        json={"name": "ci bot", "scope": "write", "collections": [seeded["cid"]]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    secret, prefix = body["key"], body["prefix"]
    assert secret.startswith(f"rgd_{prefix}_")
    assert body["scope"] == "write" and body["collections"] == [seeded["cid"]]

    listed = remote_client.get("/v1/keys", headers=admin)
    assert listed.status_code == 200
    assert secret not in listed.text and secret.split("_", 2)[2] not in listed.text
    mine = next(k for k in listed.json()["keys"] if k["id"] == body["id"])
    assert mine["prefix"] == prefix and "key" not in mine and "key_hash" not in mine
    assert mine["revoked_at"] is None

    assert remote_client.get("/v1/collections", headers=auth(secret)).status_code == 200
    assert remote_client.delete(f"/v1/keys/{body['id']}", headers=admin).status_code == 204
    assert_problem(remote_client.get("/v1/collections", headers=auth(secret)), 401)
    relisted = remote_client.get("/v1/keys", headers=admin).json()["keys"]
    assert next(k for k in relisted if k["id"] == body["id"])["revoked_at"] is not None
    assert_problem(remote_client.delete("/v1/keys/key_nope", headers=admin), 404)


def test_key_create_validates_its_body(remote_client: TestClient, make_key: MakeKey) -> None:
    admin = auth(make_key("admin"))
    for bad in (
        {"name": "x", "scope": "root"},
        {"name": "", "scope": "read"},
        {"name": "x", "scope": "read", "collections": []},
        {"name": "x", "scope": "read", "collections": ["col_missing"]},
        {"name": "x", "scope": "read", "key": "rgd_chosen01_" + "x" * 40},
    ):
        assert_problem(remote_client.post("/v1/keys", json=bad, headers=admin), 422)


# -- RAGD_ADMIN_KEY --------------------------------------------------------------------------


@pytest.fixture
def bootstrapped(tmp_path: Path, embedder: LocalEmbedder) -> Iterator[tuple[TestClient, str]]:
    _, admin_key = generate_key()
    settings = load_settings(data_dir=tmp_path, inprocess_worker=False, admin_key=admin_key)
    container = Container(settings, embedder=embedder)
    with TestClient(create_app(settings, container=container), client=LOOPBACK_CLIENT) as local:
        yield local, admin_key
    container.close()


def test_admin_key_from_settings_is_upserted_on_start(
    bootstrapped: tuple[TestClient, str],
) -> None:
    local, admin_key = bootstrapped
    assert_problem(local.get("/v1/collections"), 401)  # a key exists: loopback needs one
    listed = local.get("/v1/keys", headers={"X-API-Key": admin_key})
    assert listed.status_code == 200
    [key] = listed.json()["keys"]
    assert key["scope"] == "admin" and key["collections"] is None
    assert admin_key not in listed.text


def test_admin_key_must_look_like_a_key() -> None:
    with pytest.raises(InvalidInput, match="RAGD_ADMIN_KEY") as caught:
        load_settings(admin_key="hunter2-not-a-key")
    assert "hunter2" not in caught.value.detail


# -- OpenAPI ---------------------------------------------------------------------------------


def test_openapi_declares_the_auth_schemes_and_errors(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["APIKeyHeader"]["description"],
    }
    paths = schema["paths"]
    either: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    for path, method in [
        ("/v1/collections", "get"),
        ("/v1/search", "post"),
        ("/v1/documents/{document_id}", "delete"),
        ("/v1/keys", "post"),
    ]:
        operation = paths[path][method]
        assert operation["security"] == either, path
        assert "application/problem+json" in operation["responses"]["401"]["content"]
    assert "403" in paths["/v1/keys"]["post"]["responses"]
    assert "403" in paths["/v1/collections/{collection_id}"]["delete"]["responses"]
    assert "403" not in paths["/v1/collections"]["get"]["responses"]
    assert "security" not in paths["/livez"]["get"]
    assert "security" not in paths["/readyz"]["get"]


# -- keyless loopback mode ignores credentials -------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer sk-anything"},
        {"Authorization": f"Bearer rgd_unknown1_{'x' * 43}"},
        {"X-API-Key": "not-a-key"},
    ],
    ids=["openai-style", "unknown-ragd-key", "x-api-key"],
)
def test_without_keys_a_loopback_credential_is_ignored(
    client: TestClient, remote_client: TestClient, make_key: MakeKey, headers: dict[str, str]
) -> None:
    assert client.get("/v1/collections", headers=headers).status_code == 200
    assert client.post("/v1/collections", json={"name": "c"}, headers=headers).status_code == 201
    assert_problem(remote_client.get("/v1/collections", headers=headers), 401)
    key = make_key("read")
    assert_problem(client.get("/v1/collections", headers=headers), 401)
    assert client.get("/v1/collections", headers=auth(key)).status_code == 200


def test_without_keys_a_revoked_key_is_ignored_on_loopback(
    client: TestClient, make_key: MakeKey, container: Container
) -> None:
    """Revoking the last key returns to keyless mode: nothing sent can be valid."""
    key = make_key("read")
    [stored] = container.keys.list_all()
    container.keys.revoke(stored.id)
    assert client.get("/v1/collections", headers=auth(key)).status_code == 200
    assert client.get("/v1/collections").status_code == 200
