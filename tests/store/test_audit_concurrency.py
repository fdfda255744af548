"""Many processes appending to one audit chain at once (SQLite and PostgreSQL): the
chain stays linear, seq gap-free, and it verifies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ragd.services.audit_verify import verify_chain
from ragd.signing import load_or_create_signer
from tests.store.conftest import AnyStore

WRITERS = 4
ROUNDS = 10
EVENTS_PER_ROUND = 3  # collection.create, document.create, document.delete


def test_concurrent_writers_keep_one_gap_free_chain(
    store: AnyStore, db_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    root = Path(__file__).resolve().parents[2]
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                *("-m", "tests.store.audit_writer"),
                *(db_url, str(tmp_path), f"w{n}", str(ROUNDS), str(go)),
            ],
            cwd=root,
            stderr=subprocess.PIPE,
        )
        for n in range(WRITERS)
    ]
    go.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()

    found = store.read_audit(lambda reader: list(reader.events()))
    total = WRITERS * ROUNDS * EVENTS_PER_ROUND
    assert [e.seq for e in found] == list(range(1, total + 1))
    # Each writer's own events appear in its order, interleaved with the others'.
    names = [e.detail["name"] for e in found if e.action == "collection.create"]
    assert len(names) == WRITERS * ROUNDS
    for n in range(WRITERS):
        assert [x for x in names if x.startswith(f"w{n}-")] == [f"w{n}-{r}" for r in range(ROUNDS)]
    checkpoints = store.read_audit(lambda reader: list(reader.checkpoints()))
    assert [c.seq for c in checkpoints] == list(range(7, total + 1, 7))
    verdict = store.read_audit(
        lambda reader: verify_chain(reader, load_or_create_signer(None, tmp_path))
    )
    assert verdict.ok, verdict
    assert verdict.checked == total
