"""Chat with an LLM configured: the LLM rewrites follow-ups before retrieval, and the
session's system prompt reaches it below the grounding rules."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ragd.container import Container
from tests.generation.fake_openai import FakeOpenAI

BRIDGE = "# Old Bridge\n\nThe Old Bridge was built in 1566. It was restored in 2004."


def _session(client: TestClient, container: Container, system_prompt: str | None = None) -> str:
    cid = client.post("/v1/collections", json={"name": "kb"}).json()["id"]
    client.post(f"/v1/collections/{cid}/documents", json={"text": BRIDGE})
    container.new_worker().run_until_idle()
    body = {"collections": [cid], "system_prompt": system_prompt}
    session = client.post("/v1/chat/sessions", json=body).json()
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


SYSTEM_PROMPT = "Answer for a ten-year-old, in one sentence."


@pytest.mark.parametrize("stream", [False, True])
def test_session_system_prompt_reaches_the_llm_below_the_grounding_rules(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI, stream: bool
) -> None:
    client, container = llm_client
    url = _session(client, container, system_prompt=SYSTEM_PROMPT)
    llm.reply("It was built in 1566 [1].")
    response = client.post(
        url, json={"content": "When was the Old Bridge built?", "stream": stream}
    )
    assert response.status_code == 200, response.text
    assert client.get(url).json()["messages"][-1]["content"] == "It was built in 1566 [1]."

    (answer,) = llm.chat_requests
    assert answer.json.get("stream", False) is stream
    system, user = answer.json["messages"]
    assert system["role"] == "system"
    rules = system["content"].index("Never invent a source number")
    fenced = system["content"].index(f"<instructions>\n{SYSTEM_PROMPT}\n</instructions>")
    assert rules < fenced
    assert SYSTEM_PROMPT not in user["content"]


def test_session_without_system_prompt_sends_only_the_grounding_rules(
    llm_client: tuple[TestClient, Container], llm: FakeOpenAI
) -> None:
    client, container = llm_client
    url = _session(client, container)
    llm.reply("It was built in 1566 [1].")
    assert client.post(url, json={"content": "When was the Old Bridge built?"}).status_code == 200
    assert "<instructions>" not in llm.chat_requests[0].json["messages"][0]["content"]
