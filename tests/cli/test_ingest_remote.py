"""``ragd ingest --server``: a folder pushed to a real ``ragd serve`` through the batch
endpoint, with per-file results, batches split when the server's bound is tighter, and a
429 from the documents budget waited out as its Retry-After says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ragd.auth import generate_key
from ragd.cli.app import app
from tests.helpers import LiveServer, start_server, stop_server

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@dataclass
class Remote:
    server: LiveServer
    admin_key: str

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=30,
        )

    def write_key(self, name: str) -> str:
        with self.http() as http:
            response = http.post("/v1/keys", json={"name": name, "scope": "write"})
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key

    def documents(self, collection: str) -> list[dict[str, Any]]:
        with self.http() as http:
            cid = http.get(f"/v1/collections/{collection}").json()["id"]
            listed: list[dict[str, Any]] = http.get(
                f"/v1/collections/{cid}/documents", params={"limit": 100}
            ).json()["documents"]
        return listed


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """A server with rate limits on, at most 2 documents per batch, and a documents
    budget small enough to run out: 3 per 20 seconds."""
    _, admin_key = generate_key()
    process, server = start_server(
        tmp_path_factory.mktemp("remote-ingest"),
        RAGD_ADMIN_KEY=admin_key,
        RAGD_RATE_LIMIT_ENABLED="true",
        RAGD_INGEST_DOCUMENTS_RATE_LIMIT="3 per 20 seconds",
        RAGD_MAX_BATCH_DOCUMENTS="2",
        RAGD_INPROCESS_WORKER="false",
    )
    try:
        yield Remote(server, admin_key)
    finally:
        stop_server(process)


def push(remote: Remote, folder: Path, collection: str, key: str, *extra: str) -> Any:
    args = ["ingest", str(folder), "-c", collection, "--server", remote.server.base_url]
    return runner.invoke(app, [*args, "--key", key, *extra], env={"RAGD_API_KEY": ""})


def summary(output: str) -> list[int]:
    """The numbers of the summary table's row: queued, duplicate, rejected, retries."""
    rows = [line for line in output.splitlines() if re.fullmatch(r"[│ \d]+", line.strip())]
    assert rows, output
    return [int(n) for n in re.findall(r"\d+", rows[-1])]


def test_a_folder_is_pushed_with_a_result_per_file(remote: Remote, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Alpha\n\nThe alpha lighthouse.")
    (folder / "b.md").write_text("# Beta\n\nThe beta harbour.")
    (folder / "c.txt").write_text("Gamma rays and quiet nights.")
    (folder / "d.html").write_text("<html><title>Delta</title><body><p>Delta.</p></body>")
    (folder / "e.md").write_text("# Alpha\n\nThe alpha lighthouse.")  # a.md again
    (folder / "f.png").write_bytes(PNG)
    (folder / "sub" / "g.md").write_text("# Gee\n\nNested notes.")
    (folder / ".hidden.md").write_text("never sent")

    # --batch-size 3 is over the server's bound of 2: batches are split until they fit.
    result = push(remote, folder, "pushed", remote.admin_key, "--batch-size", "3")
    assert result.exit_code == 1, result.output  # one file was rejected
    assert "splitting" in result.output
    assert summary(result.output) == [5, 1, 1, 0]
    assert re.search(r"rejected \S*f\.png: a PNG image is not supported", result.output)

    stored = remote.documents("pushed")
    assert sorted(d["source"] for d in stored) == ["a.md", "b.md", "c.txt", "d.html", "g.md"]
    assert all(d["status"] == "queued" for d in stored)

    # Again: everything that was taken is now a duplicate; nothing new is stored.
    again = push(remote, folder, "pushed", remote.admin_key)
    assert summary(again.output) == [0, 6, 1, 0]
    assert len(remote.documents("pushed")) == 5


def test_a_429_is_waited_out_and_the_batch_sent_again(remote: Remote, tmp_path: Path) -> None:
    """A write key spends the documents budget (3 per 20 s): the second batch of two
    is refused with Retry-After, and sent again once the window has passed."""
    key = remote.write_key("pusher")
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(4):
        (folder / f"note-{i}.md").write_text(f"# Note {i}\n\nNote number {i} of four.")
    result = push(remote, folder, "limited", key, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "server answered 429" in result.output
    assert "documents budget" in result.output
    queued, duplicates, rejected, retries = summary(result.output)
    assert (queued, duplicates, rejected) == (4, 0, 0)
    assert retries >= 1
    assert len(remote.documents("limited")) == 4
    refused = [
        line
        for line in remote.server.log().splitlines()
        if "documents:batch" in line and '"status": 429' in line
    ]
    assert refused


def test_a_refused_run_stops_with_one_line(remote: Remote, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\ntext")
    _, unknown = generate_key()
    result = push(remote, tmp_path / "a.md", "kb", unknown)
    assert result.exit_code == 1
    assert "401" in result.output and "Traceback" not in result.output
    reader = remote.http().post("/v1/keys", json={"name": "r", "scope": "read"}).json()["key"]
    with remote.http(reader) as http:
        assert http.get("/v1/collections").status_code == 200
    forbidden = push(remote, tmp_path / "a.md", "pushed", reader)
    assert forbidden.exit_code == 1
    assert "403" in forbidden.output
