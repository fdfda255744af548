"""Chat follow-ups with an LLM configured: the LLM rewrites them before retrieval."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ragd.container import Container
from tests.generation.fake_openai import FakeOpenAI

BRIDGE = "# Old Bridge\n\nThe Old Bridge was built in 1566. It was restored in 2004."


def _session(client: TestClient, container: Container) -> str:
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    client.post(f"/v1/collections/{cid}/documents", json={"text": BRIDGE})
    container.new_worker().run_until_idle()
    session = client.post("/v1/chat/sessions", json={"collections": [cid]}).json()
    return f"/v1/chat/sessions/{session['id']}/messages"


def test_follow_up_is_rewritten_by_the_llm_and_used_as_the_query(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    url = _session(client, container)
    llm.reply("The Old Bridge was built in 1566 [1].")
    first = client.post(url, json={"content": "When was the Old Bridge built?"})
    assert first.status_code == 200, first.text
    assert len(llm.chat_requests) == 1  # nothing to rewrite in a first question

    llm.reply("When was the Old Bridge restored?")
    llm.reply("It was restored in 2004 [1].")
    second = client.post(url, json={"content": "and when was it restored?"})
    assert second.status_code == 200, second.text
    assert second.json()["content"] == "It was restored in 2004 [1]."

    rewrite, answer = llm.chat_requests[1:]
    system, user = rewrite.json["messages"]
    assert "stand" in system["content"]
    assert "When was the Old Bridge built?" in user["content"]
    assert "The Old Bridge was built in 1566 [1]." in user["content"]
    assert "and when was it restored?" in user["content"]
    answer_user = answer.json["messages"][1]["content"]
    assert "Question: When was the Old Bridge restored?" in answer_user
    # the stored user message is what the user wrote, not the rewrite
    stored = client.get(url).json()["messages"]
    assert stored[2]["content"] == "and when was it restored?"


def test_failed_rewrite_falls_back_to_the_deterministic_method(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    url = _session(client, container)
    llm.reply("The Old Bridge was built in 1566 [1].")
    client.post(url, json={"content": "When was the Old Bridge built?"})

    llm.fail(500)  # the rewrite (no retries in this container)
    llm.reply("It was restored in 2004 [1].")
    response = client.post(url, json={"content": "and when was it restored?"})
    assert response.status_code == 200, response.text
    answer_user = llm.chat_requests[-1].json["messages"][1]["content"]
    assert "Question: Old Bridge built: and when was it restored?" in answer_user


def test_openai_endpoint_follow_up_is_rewritten_by_the_llm(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    _session(client, container)
    llm.reply("When was the Old Bridge restored?")
    llm.reply("It was restored in 2004 [1].")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "When was the Old Bridge built?"},
        {"role": "assistant", "content": "In 1566 [1]."},
        {"role": "user", "content": "and when was it restored?"},
    ]
    response = client.post("/v1/chat/completions", json={"model": "ragd:kb", "messages": messages})
    assert response.status_code == 200, response.text
    rewrite, answer = llm.chat_requests
    rewrite_user = rewrite.json["messages"][1]["content"]
    assert "In 1566 [1]." in rewrite_user and "Be brief." not in rewrite_user
    assert "Question: When was the Old Bridge restored?" in answer.json["messages"][1]["content"]
