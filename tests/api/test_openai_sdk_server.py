"""The official ``openai`` SDK as the client of a real ``ragd serve`` process (no LLM:
the extractive generator answers), with a ragd API key as the OpenAI API key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from ragd.auth import generate_key
from tests.helpers import start_server, stop_server, wait_for_status

BRIDGE = "# Tower Bridge\n\nTower Bridge was completed in 1894. It crosses the River Thames."


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    _, admin_key = generate_key()
    process, server = start_server(tmp_path_factory.mktemp("sdk"), RAGD_ADMIN_KEY=admin_key)
    try:
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            cid = http.post("/v1/collections", json={"name": "bridges"}).json()["id"]
            doc = http.post(
                f"/v1/collections/{cid}/documents", json={"text": BRIDGE, "title": "Tower Bridge"}
            )
            assert doc.status_code == 202, doc.text
            wait_for_status(http, doc.headers["location"], "ready")
            read_key = http.post("/v1/keys", json={"name": "sdk", "scope": "read"}).json()["key"]
        with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=read_key) as client:
            yield client
    finally:
        stop_server(process)


def test_models_list(sdk: openai.OpenAI) -> None:
    ids = [model.id for model in sdk.models.list()]
    assert ids == ["ragd", "ragd:bridges"]
    assert sdk.models.retrieve("ragd:bridges").owned_by == "ragd"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("ragd:nope")


def test_chat_completion_with_citations(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="ragd:bridges",
        messages=[{"role": "user", "content": "When was Tower Bridge completed?"}],
        temperature=0,
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    content = completion.choices[0].message.content or ""
    assert "1894 [1]" in content
    assert content.endswith("Sources:\n[1] Tower Bridge")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    citations = (completion.model_extra or {})["citations"]
    assert [c["n"] for c in citations] == [1]
    assert "1894" in citations[0]["text"]


def test_streamed_chat_completion_with_citations(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="ragd",
        messages=[
            {"role": "user", "content": "When was Tower Bridge completed?"},
            {"role": "assistant", "content": "In 1894 [1]."},
            {"role": "user", "content": "and which river does it cross?"},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    citations = None
    finish = None
    usage = None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        text += chunk.choices[0].delta.content or ""
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            citations = (chunk.model_extra or {}).get("citations")
    assert "Thames" in text
    assert text.endswith("Sources:\n[1] Tower Bridge")
    assert finish == "stop"
    assert citations is not None and [c["n"] for c in citations] == [1]
    assert usage is not None and usage.completion_tokens > 0


def test_unknown_model_is_a_not_found_error(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello there friend"}]
        )


def test_sdk_works_against_a_fresh_keyless_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A laptop install with no key yet: the SDK insists on sending some api_key."""
    process, server = start_server(tmp_path_factory.mktemp("keyless"))
    try:
        with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="sk-whatever") as client:
            assert [model.id for model in client.models.list()] == ["ragd"]
            completion = client.chat.completions.create(
                model="ragd", messages=[{"role": "user", "content": "hello?"}]
            )
            assert completion.object == "chat.completion"
    finally:
        stop_server(process)
