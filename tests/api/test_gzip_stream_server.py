"""A streamed answer stays a stream when the client accepts gzip: over real sockets,
through a real ``ragd serve`` process, each event arrives while the (fake) LLM is still
writing the rest, not all at once at the end as a compressing buffer would deliver it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.llm_server import serving_one_document
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LiveServer

BRIDGE = "# Tower Bridge\n\nTower Bridge was completed in 1894. It crosses the River Thames."
DELTAS = [f"word{i} " for i in range(20)]
DELTA_DELAY_S = 0.2  # 4 s for the whole reply: an event seen before then was not held back


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def ragd(
    tmp_path_factory: pytest.TempPathFactory, slow_llm: FakeOpenAI
) -> Iterator[tuple[LiveServer, str]]:
    with serving_one_document(tmp_path_factory.mktemp("gzip-stream"), slow_llm, BRIDGE) as served:
        yield served


def first_delta_while_the_llm_writes(
    server: LiveServer, slow_llm: FakeOpenAI, path: str, body: dict[str, Any]
) -> None:
    slow_llm.reply("".join(DELTAS), deltas=DELTAS, delta_delay_s=DELTA_DELAY_S)
    index = len(slow_llm.streams)
    headers = {"Accept-Encoding": "gzip"}
    with (
        httpx.Client(base_url=server.base_url, timeout=30) as http,
        http.stream("POST", path, json=body, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data:") and "word0" in line:
                outcome = slow_llm.streams[index]
                assert not outcome.completed, "the first event waited for the whole reply"
                assert outcome.sent < len(DELTAS)
                break
        else:
            raise AssertionError("no delta event")
        rest = "\n".join(lines)
    assert "word19" in rest and "event: done" in rest


def test_ask_streams_incrementally_with_gzip_accepted(
    ragd: tuple[LiveServer, str], slow_llm: FakeOpenAI
) -> None:
    server, cid = ragd
    body = {"question": "When was Tower Bridge completed?", "collections": [cid], "stream": True}
    first_delta_while_the_llm_writes(server, slow_llm, "/v1/ask", body)


def test_openai_compatible_stream_is_not_buffered_either(
    ragd: tuple[LiveServer, str], slow_llm: FakeOpenAI
) -> None:
    server, _ = ragd
    body = {
        "model": "ragd:bridges",
        "stream": True,
        "messages": [{"role": "user", "content": "When was Tower Bridge completed?"}],
    }
    slow_llm.reply("".join(DELTAS), deltas=DELTAS, delta_delay_s=DELTA_DELAY_S)
    index = len(slow_llm.streams)
    with (
        httpx.Client(base_url=server.base_url, timeout=30) as http,
        http.stream(
            "POST", "/v1/chat/completions", json=body, headers={"Accept-Encoding": "gzip"}
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        assert "content-encoding" not in response.headers
        for line in response.iter_lines():
            if "word0" in line:
                assert not slow_llm.streams[index].completed
                break
        else:
            raise AssertionError("no delta")
