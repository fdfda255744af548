"""/v1/chat/sessions: sessions owned by a key, answered messages, streaming, pages."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.api.conftest import Drain, MakeKey
from tests.api.seed import seed
from tests.helpers import parse_sse


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_sessions_belong_to_their_key(
    client: TestClient, remote_client: TestClient, drain: Drain, make_key: MakeKey
) -> None:
    ids = seed(client, drain)
    mine, other = bearer(make_key("read")), bearer(make_key("read"))
    created = remote_client.post(
        "/v1/chat/sessions",
        json={"collections": ["bridges"], "title": "Bridges", "system_prompt": "Be brief."},
        headers=mine,
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["collections"] == [ids["bridges"]]
    assert (session["title"], session["system_prompt"]) == ("Bridges", "Be brief.")
    url = f"/v1/chat/sessions/{session['id']}"

    assert remote_client.get(url, headers=mine).json() == session
    listed = remote_client.get("/v1/chat/sessions", headers=mine).json()["sessions"]
    assert [s["id"] for s in listed] == [session["id"]]
    assert remote_client.get("/v1/chat/sessions", headers=other).json() == {"sessions": []}
    for method, path in (("GET", url), ("GET", f"{url}/messages"), ("DELETE", url)):
        assert remote_client.request(method, path, headers=other).status_code == 404
    asked = remote_client.post(f"{url}/messages", json={"content": "when?"}, headers=other)
    assert asked.status_code == 404

    assert remote_client.delete(url, headers=mine).status_code == 204
    assert remote_client.get(url, headers=mine).status_code == 404


def test_a_limited_key_cannot_chat_over_other_collections(
    client: TestClient, remote_client: TestClient, drain: Drain, make_key: MakeKey
) -> None:
    ids = seed(client, drain)
    limited = bearer(make_key("read", collections=[ids["lights"]]))
    refused = remote_client.post(
        "/v1/chat/sessions", json={"collections": [ids["bridges"]]}, headers=limited
    )
    assert refused.status_code == 404
    session = remote_client.post("/v1/chat/sessions", json={}, headers=limited).json()
    answer = remote_client.post(
        f"/v1/chat/sessions/{session['id']}/messages",
        json={"content": "When was Tower Bridge restored?"},
        headers=limited,
    ).json()
    assert {c["title"] for c in answer["citations"]} <= {"lights"}


def test_messages_are_answered_rewritten_and_stored(client: TestClient, drain: Drain) -> None:
    ids = seed(client, drain)
    session = client.post("/v1/chat/sessions", json={}).json()
    url = f"/v1/chat/sessions/{session['id']}/messages"

    first = client.post(url, json={"content": "When was Tower Bridge completed?"})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["role"] == "assistant"
    assert "1894 [1]" in answer["content"]
    assert [c["n"] for c in answer["citations"]] == [1]
    assert answer["citations"][0]["title"] == "bridges"

    follow_up = client.post(url, json={"content": "and restored?"}).json()
    assert "2008" in follow_up["content"]
    assert {c["title"] for c in follow_up["citations"]} == {"bridges"}

    stored = client.get(url).json()
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 2
    assert stored["messages"][0]["content"] == "When was Tower Bridge completed?"
    assert stored["messages"][0]["citations"] == []
    assert stored["messages"][1] == answer
    assert stored["next_cursor"] is None

    page = client.get(url, params={"limit": 3}).json()
    assert len(page["messages"]) == 3
    rest = client.get(url, params={"limit": 3, "cursor": page["next_cursor"]}).json()
    assert [m["id"] for m in rest["messages"]] == [stored["messages"][3]["id"]]
    assert rest["next_cursor"] is None
    assert ids  # both collections were searched: the session names none


def test_streamed_message_events_and_storage(client: TestClient, drain: Drain) -> None:
    seed(client, drain)
    session = client.post("/v1/chat/sessions", json={"collections": ["lights"]}).json()
    url = f"/v1/chat/sessions/{session['id']}/messages"

    response = client.post(url, json={"content": "How tall was the lighthouse?", "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [(name, json.loads(data)) for name, data in parse_sse(response.text)]
    assert [name for name, _ in events][-2:] == ["citations", "done"]
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert "100 metres" in text

    stored = client.get(url).json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == text
    assert stored[1]["citations"] == events[-2][1]["citations"]


def test_bad_session_input_is_a_problem(client: TestClient) -> None:
    assert client.post("/v1/chat/sessions", json={"collections": []}).status_code == 422
    assert client.post("/v1/chat/sessions", json={"collections": ["nope"]}).status_code == 404
    session = client.post("/v1/chat/sessions", json={}).json()
    url = f"/v1/chat/sessions/{session['id']}/messages"
    assert client.post(url, json={"content": ""}).status_code == 422
    assert client.get(url, params={"cursor": "x"}).status_code == 422
