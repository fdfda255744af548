"""/v1/chat/completions with an LLM configured (a real fake OpenAI server behind ragd),
called through the official SDK on top of the in-process test client."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionMessageParam

from ragd.api.app import create_app
from ragd.container import Container
from tests.api.conftest import LLM_SECRET as SECRET
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LOOPBACK_CLIENT

BRIDGE = "# Tower Bridge\n\nTower Bridge was completed in 1894."
QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "When was Tower Bridge completed?"}
]


@pytest.fixture
def sdk(llm_container: Container) -> Iterator[openai.OpenAI]:
    container = llm_container
    app = create_app(container.settings, container=container)
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        cid = client.post("/v1/collections", json={"name": "bridges"}).json()["id"]
        client.post(f"/v1/collections/{cid}/documents", json={"text": BRIDGE, "title": "TB"})
        container.new_worker().run_until_idle()
        key = container.keys.create("sdk", "read", None).secret
        yield openai.OpenAI(
            base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0
        )


def test_llm_completion_drops_invented_citations(sdk: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.reply("Completed in 1894 [1]. Made of cheese [7].")
    completion = sdk.chat.completions.create(model="ragd:bridges", messages=QUESTION)
    content = completion.choices[0].message.content
    assert content == "Completed in 1894 [1]. Made of cheese.\n\nSources:\n[1] TB"
    assert [c["n"] for c in (completion.model_extra or {})["citations"]] == [1]


def test_llm_stream_drops_invented_citations(sdk: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.reply("In 1894 [1]. Cheese [7].", deltas=["In 1894 [", "1]. Cheese [", "7]."])
    chunks = list(sdk.chat.completions.create(model="ragd", messages=QUESTION, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "In 1894 [1]. Cheese.\n\nSources:\n[1] TB"
    assert llm.chat_requests[-1].json["stream"] is True


def test_llm_failure_mid_stream_is_an_api_error(sdk: openai.OpenAI, llm: FakeOpenAI) -> None:
    llm.fail(500, message=f"broken for {SECRET}")
    stream = sdk.chat.completions.create(model="ragd", messages=QUESTION, stream=True)
    with pytest.raises(openai.APIError, match="LLM request failed") as raised:
        list(stream)
    assert SECRET not in str(raised.value.body)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_system_messages_reach_the_llm_below_the_grounding_rules(
    sdk: openai.OpenAI, llm: FakeOpenAI, stream: bool
) -> None:
    llm.reply("Completed in 1894 [1].")
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Answer like a pirate."},
        *QUESTION,
    ]
    if stream:
        list(sdk.chat.completions.create(model="ragd", messages=messages, stream=True))
    else:
        sdk.chat.completions.create(model="ragd", messages=messages)
    (request,) = llm.chat_requests
    system, user = request.json["messages"]
    rules = system["content"].index("Never invent a source number")
    fenced = system["content"].index("<instructions>\nAnswer like a pirate.\n</instructions>")
    assert rules < fenced
    assert "pirate" not in user["content"]


def test_without_system_messages_only_the_grounding_rules(
    sdk: openai.OpenAI, llm: FakeOpenAI
) -> None:
    llm.reply("Completed in 1894 [1].")
    sdk.chat.completions.create(model="ragd", messages=QUESTION)
    assert "<instructions>" not in llm.chat_requests[0].json["messages"][0]["content"]
