"""A client that hangs up on a streamed answer ends the LLM request: over real sockets,
from an httpx client through a real ``ragd serve`` process to a slow fake LLM server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.llm_server import serving_one_document
from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LiveServer

BRIDGE = "# Tower Bridge\n\nTower Bridge was completed in 1894. It crosses the River Thames."
QUESTION = "When was Tower Bridge completed?"
# 20 deltas, 0.2 s apart: 4 s if nobody stops it, so an early end is plainly a cut-off.
DELTAS = [f"word{i} " for i in range(20)]
DELTA_DELAY_S = 0.2
# Noticing the hang-up takes ragd up to one delta (the pending read) and the fake one
# more; this is far below the 4 s the whole stream would take.
END_WAIT_S = 3.0


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def ragd(
    tmp_path_factory: pytest.TempPathFactory, slow_llm: FakeOpenAI
) -> Iterator[tuple[LiveServer, str]]:
    """ragd as a real process using ``slow_llm``, with one collection; served without a
    key (no key exists and the client is on loopback)."""
    with serving_one_document(
        tmp_path_factory.mktemp("disconnect"), slow_llm, BRIDGE, title="Tower Bridge"
    ) as served:
        yield served


def _first_delta_then_hang_up(base_url: str, path: str, body: dict[str, Any]) -> str:
    """POST a streaming request, read up to the first ``delta`` event, close the
    connection; returns that event's data line."""
    with (
        httpx.Client(base_url=base_url, timeout=10) as http,
        http.stream("POST", path, json=body) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        for line in lines:
            if line == "event: delta":
                return next(lines)
    raise AssertionError("the stream ended without a delta event")


def test_hanging_up_on_ask_cuts_off_the_llm_stream(
    ragd: tuple[LiveServer, str], slow_llm: FakeOpenAI
) -> None:
    server, cid = ragd
    slow_llm.reply("".join(DELTAS), deltas=DELTAS, delta_delay_s=DELTA_DELAY_S)
    index = len(slow_llm.streams)

    first = _first_delta_then_hang_up(
        server.base_url, "/v1/ask", {"question": QUESTION, "collections": [cid], "stream": True}
    )

    assert "word0" in first
    outcome = slow_llm.wait_for_stream(index, timeout_s=END_WAIT_S)
    assert outcome.cut_off and not outcome.completed
    assert 1 <= outcome.sent < len(DELTAS)


def test_hanging_up_on_a_chat_message_cuts_off_the_llm_stream_and_stores_nothing(
    ragd: tuple[LiveServer, str], slow_llm: FakeOpenAI
) -> None:
    server, cid = ragd
    session = httpx.post(
        f"{server.base_url}/v1/chat/sessions", json={"collections": [cid]}, timeout=10
    ).json()
    path = f"/v1/chat/sessions/{session['id']}/messages"
    slow_llm.reply("".join(DELTAS), deltas=DELTAS, delta_delay_s=DELTA_DELAY_S)
    index = len(slow_llm.streams)

    first = _first_delta_then_hang_up(server.base_url, path, {"content": QUESTION, "stream": True})

    assert "word0" in first
    outcome = slow_llm.wait_for_stream(index, timeout_s=END_WAIT_S)
    assert outcome.cut_off and not outcome.completed
    assert 1 <= outcome.sent < len(DELTAS)
    # an abandoned answer leaves no half-written turn
    stored = httpx.get(f"{server.base_url}{path}", timeout=10).json()["messages"]
    assert stored == []
