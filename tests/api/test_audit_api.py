"""/v1/audit over HTTP: events name the key, request and client; failed authentication
is recorded per source without the secret; listing filters and pages; verify reports
tampering; only admin keys that see every collection may read it. Both databases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from ragd.auth import key_prefix
from ragd.container import Container
from tests.api.conftest import MakeKey


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def audit(http: TestClient, key: str | None = None, **params: Any) -> dict[str, Any]:
    response = http.get("/v1/audit", params=params, headers=bearer(key) if key else {})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_events_name_the_key_the_request_and_the_client(
    remote_client: TestClient, make_key: MakeKey
) -> None:
    admin, writer = make_key("admin"), make_key("write")
    created = remote_client.post(
        "/v1/collections",
        json={"name": "notes"},
        headers={**bearer(writer), "X-Request-ID": "req-audit-1"},
    )
    assert created.status_code == 201, created.text
    [event] = audit(remote_client, admin, action="collection.create")["events"]
    assert event["actor"] == key_prefix(writer)
    assert (event["request_id"], event["client"]) == ("req-audit-1", "10.0.0.2")
    assert event["target"] == [created.json()["id"]]
    assert event["detail"]["name"] == "notes"
    [made] = audit(remote_client, admin, action="key.create", limit=1)["events"]
    assert made["actor"] == "local"  # keys made through the service, outside a request
    assert made["at"].endswith("Z") and len(made["hash"]) == 64


def test_a_caller_without_a_key_is_anonymous(client: TestClient) -> None:
    assert client.post("/v1/collections", json={"name": "notes"}).status_code == 201
    [event] = audit(client)["events"]
    assert (event["actor"], event["client"]) == ("anonymous", "127.0.0.1")


def test_failed_authentication_is_recorded_once_a_minute_per_source(
    remote_client: TestClient, make_key: MakeKey, container: Container
) -> None:
    admin = make_key("admin")
    wrong = "rgd_abcd1234_" + "s3cr3t" * 8
    for _ in range(3):
        assert remote_client.get("/v1/collections", headers=bearer(wrong)).status_code == 401
    assert remote_client.get("/v1/collections").status_code == 401  # no key at all
    page = audit(remote_client, admin, action="auth.failed")
    assert "s3cr3t" not in str(page)
    by_key, by_address = reversed(page["events"])
    assert by_key["detail"] == {"reason": "invalid", "count": 1, "key_prefix": "abcd1234"}
    assert by_address["detail"] == {"reason": "missing", "count": 1}
    assert by_key["client"] == by_address["client"] == "10.0.0.2"
    assert by_key["actor"] == "anonymous"

    container.audit.failed_auths.flush()  # what shutdown does: the 2 counted since
    [pending] = audit(remote_client, admin, action="auth.failed", limit=1)["events"]
    assert pending["detail"] == {"reason": "invalid", "count": 2, "key_prefix": "abcd1234"}


def test_listing_filters_and_pages(client: TestClient) -> None:
    ids = [client.post("/v1/collections", json={"name": f"c{n}"}).json()["id"] for n in range(3)]
    first = audit(client, limit=2)
    assert [e["seq"] for e in first["events"]] == [3, 2]
    rest = audit(client, limit=2, cursor=first["next_cursor"])
    assert [e["seq"] for e in rest["events"]] == [1] and rest["next_cursor"] is None
    assert [e["seq"] for e in audit(client, target=ids[1])["events"]] == [2]
    assert audit(client, actor="someone")["events"] == []
    at = first["events"][1]["at"]
    assert [e["seq"] for e in audit(client, since=at, until=at)["events"]] == []
    assert [e["seq"] for e in audit(client, since=at)["events"]] == [3, 2]
    assert [e["seq"] for e in audit(client, until=at.removesuffix("Z"))["events"]] == [1]


def test_bad_listing_input_is_a_422(client: TestClient) -> None:
    for params in (
        {"cursor": "abc"},
        {"cursor": "9" * 40},
        {"limit": 0},
        {"limit": 10_000},
        {"action": "x" * 129},
        {"target": ""},
        {"since": "yesterday"},
        {"since": "0001-01-01T00:00:00+01:00"},
    ):
        response = client.get("/v1/audit", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_only_admin_keys_that_see_everything_may_read_it(
    remote_client: TestClient, make_key: MakeKey
) -> None:
    admin = make_key("admin")
    remote_client.post("/v1/collections", json={"name": "notes"}, headers=bearer(admin))
    limited = make_key("admin", collections=["notes"])
    for path in ("/v1/audit", "/v1/audit/verify"):
        assert remote_client.get(path).status_code == 401
        assert remote_client.get(path, headers=bearer(make_key("write"))).status_code == 403
        assert remote_client.get(path, headers=bearer(limited)).status_code == 403


def test_verify_reports_the_first_bad_seq(client: TestClient, container: Container) -> None:
    for n in range(3):
        client.post("/v1/collections", json={"name": f"c{n}"})
    verdict = client.get("/v1/audit/verify").json()
    assert verdict["ok"] and verdict["checked"] == 3 and verdict["first_bad_seq"] is None
    assert verdict["key_ids"] == [verdict["key_id"]] and verdict["signed_by"] == {}
    with container.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text('UPDATE audit_events SET detail = \'{"name":"c9"}\' WHERE seq = 2'))
    verdict = client.get("/v1/audit/verify").json()
    assert (verdict["ok"], verdict["first_bad_seq"], verdict["kind"]) == (False, 2, "modified")
    assert verdict["problem"] == "seq 2 does not match its hash"
