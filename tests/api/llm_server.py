"""A real ``ragd serve`` answering from a fake LLM, with one ready document: the set-up of
the tests that need real sockets between a client, ragd and a (slow) LLM server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.generation.fake_openai import FakeOpenAI
from tests.helpers import LiveServer, start_server, stop_server, wait_for_status


@contextmanager
def serving_one_document(
    data_dir: Path, llm: FakeOpenAI, text: str, *, title: str | None = None, **env: str
) -> Iterator[tuple[LiveServer, str]]:
    """ragd on ``data_dir`` using ``llm``, with a collection ``bridges`` holding ``text``
    (ready); yields the server and the collection id, and stops the server after."""
    process, server = start_server(
        data_dir,
        RAGD_LLM_BASE_URL=llm.base_url,
        RAGD_LLM_MODEL="fake-model",
        RAGD_LLM_MAX_RETRIES="0",
        **env,
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            cid = http.post("/v1/collections", json={"name": "bridges"}).json()["id"]
            body = {"text": text} if title is None else {"text": text, "title": title}
            doc = http.post(f"/v1/collections/{cid}/documents", json=body)
            assert doc.status_code == 202, doc.text
            wait_for_status(http, doc.headers["location"], "ready")
        yield server, cid
    finally:
        stop_server(process)
