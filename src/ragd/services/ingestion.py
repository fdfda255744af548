"""Ingesting here and now: drain the queue with a worker of our own.

``ragd ingest`` and ``ragd eval`` submit documents and then wait for them, working the
queue themselves instead of relying on a server's worker; this is that loop, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from ragd.domain import Document
from ragd.ingest.worker import IngestWorker, run_pool
from ragd.store.base import Store

DrainProgress = Callable[[int, int], None]
"""Called as ``(done, total)`` while draining."""

_FINISHED = ("ready", "failed")
_STATUS_BATCH = 500


def _quiet(done: int, total: int) -> None:
    """The default progress callback: say nothing."""


class IngestionService:
    def __init__(
        self, store: Store, new_worker: Callable[[], IngestWorker], poll_interval_s: float
    ) -> None:
        self.store = store
        self.new_worker = new_worker
        self.poll_interval_s = poll_interval_s

    def drain(self, document_ids: Sequence[str], progress: DrainProgress = _quiet) -> None:
        """Work the queue until every one of ``document_ids`` is ready or failed. Another
        worker (a running server) may take some of them, so when ours runs dry it waits
        for theirs, checking their status every poll interval."""
        worker = self.new_worker()
        pending = set(document_ids)
        total, done = len(pending), 0
        progress(0, total)
        while pending:
            handled = worker.run_once()
            if handled:
                done = min(total, done + handled)
                progress(done, total)
                continue
            pending -= {d.id for d in self.documents(list(pending)) if d.status in _FINISHED}
            done = total - len(pending)
            progress(done, total)
            if pending:
                threading.Event().wait(self.poll_interval_s)

    def run_workers(self, count: int, stop: threading.Event, *, grace_s: float) -> int:
        """Run ``count`` workers until ``stop`` is set (``ragd worker``); returns how many
        overran ``grace_s`` and had their documents handed back (see ``run_pool``)."""
        return run_pool([self.new_worker() for _ in range(count)], stop, grace_s=grace_s)

    def documents(self, document_ids: Sequence[str]) -> Iterator[Document]:
        """The documents with these ids (any number: read in batches)."""
        for start in range(0, len(document_ids), _STATUS_BATCH):
            yield from self.store.get_documents(document_ids[start : start + _STATUS_BATCH])
