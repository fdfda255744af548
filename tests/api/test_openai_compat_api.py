"""/v1/models and /v1/chat/completions in OpenAI's shapes, in-process (extractive)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.api.conftest import Drain, MakeKey
from tests.api.seed import seed
from tests.helpers import parse_sse


def test_models_lists_readable_collections(
    remote_client: TestClient, client: TestClient, drain: Drain, make_key: MakeKey
) -> None:
    ids = seed(client, drain)
    limited = make_key("read", collections=[ids["lights"]])
    everything = make_key("read")

    listed = remote_client.get("/v1/models", headers={"Authorization": f"Bearer {everything}"})
    assert listed.status_code == 200
    body = listed.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["ragd", "ragd:bridges", "ragd:lights"]
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
        assert model["owned_by"] == "ragd"
        assert isinstance(model["created"], int)

    mine = remote_client.get("/v1/models", headers={"X-API-Key": limited}).json()
    assert [m["id"] for m in mine["data"]] == ["ragd", "ragd:lights"]
    hidden = remote_client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {limited}"},
        json={"model": "ragd:bridges", "messages": [{"role": "user", "content": "bridge?"}]},
    )
    assert hidden.status_code == 404
    assert remote_client.get("/v1/models").status_code == 401


def test_completion_has_openai_shape_and_citations(client: TestClient, drain: Drain) -> None:
    ids = seed(client, drain)
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "ragd:bridges",
            "messages": [
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": "When was Tower Bridge completed?"},
            ],
            "temperature": 0.2,
            "max_tokens": 50,
            "some_future_field": {"x": 1},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "ragd:bridges"
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert "1894 [1]" in content
    assert content.endswith("\n\nSources:\n[1] bridges")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    [citation] = body["citations"]
    assert citation["n"] == 1
    assert "1894" in citation["text"]
    assert ids["bridges"]  # the citation came from the named collection
    plain = client.post(
        "/v1/ask",
        json={"question": "When was Tower Bridge completed?", "collections": [ids["bridges"]]},
    ).json()
    assert body["citations"] == plain["citations"]


def test_follow_up_question_is_rewritten_before_retrieval(client: TestClient, drain: Drain) -> None:
    seed(client, drain)
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "ragd",
            "messages": [
                {"role": "user", "content": "When was Tower Bridge completed?"},
                {"role": "assistant", "content": "In 1894 [1]."},
                {"role": "user", "content": [{"type": "text", "text": "and restored?"}]},
            ],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "2008" in body["choices"][0]["message"]["content"]
    assert {c["title"] for c in body["citations"]} == {"bridges"}

    alone = client.post(
        "/v1/chat/completions",
        json={"model": "ragd", "messages": [{"role": "user", "content": "and restored?"}]},
    ).json()
    assert "lights" in {c["title"] for c in alone["citations"]}


def test_streamed_completion_chunks(client: TestClient, drain: Drain) -> None:
    seed(client, drain)
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "ragd",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "How tall was the Lighthouse of Alexandria?"}],
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "100 metres" in text
    assert text.endswith("\n\nSources:\n[1] lights")
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finish) == 1
    assert finish[0]["choices"][0]["finish_reason"] == "stop"
    assert [c["n"] for c in finish[0]["citations"]] == [1]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_unknown_model_and_bad_messages_are_problems(client: TestClient) -> None:
    unknown = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi there"}]},
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "GET /v1/models" in unknown.json()["detail"]
    no_user = client.post(
        "/v1/chat/completions",
        json={"model": "ragd", "messages": [{"role": "system", "content": "be nice"}]},
    )
    assert no_user.status_code == 422
    assert no_user.headers["content-type"] == "application/problem+json"
