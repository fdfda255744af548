"""A tantivy keyword index beside PostgreSQL: the candidates of the BM25 leg.

PostgreSQL's BM25 statement scores every chunk that contains any query term, so its cost
grows with the collection (about 2.4 s at 1M chunks, docs/scaling.md). Tantivy prunes
(block-max WAND) to the best few hundred chunks in milliseconds; PostgreSQL then scores
only those exactly, with its own statistics (``chunks.id = ANY(...)``), so what a search
returns is always ragd's BM25 over rows that exist now. PostgreSQL stays the source of
truth; this index is a cache of it that may lag or be missing:

* **Fed from the database.** Triggers write every chunk insert and delete to
  ``keyword_log`` in the changing transaction, with its transaction id (migration 0008).
  The indexer reads, in one REPEATABLE READ snapshot, the log rows its last snapshot did
  not see and the lexemes of the inserted chunks, applies them, commits tantivy and then
  records that snapshot as the index's **watermark** (a file beside the index).
* **Same tokens.** Tantivy is given PostgreSQL's own lexemes (from the chunk's
  ``search_tsv``) on a whitespace field, and is queried with the lexemes of the query's
  ``to_tsvector``: both sides tokenize once, in PostgreSQL.
* **Terms carry their collection** (``col_…/lexeme``), so a query over some collections
  is a plain union of terms, which tantivy prunes with block-max WAND, and each term's
  document frequency is its collection's, as in ragd's BM25. (Format 1 held the
  collection in a field of its own and required it: a conjunction that tantivy cannot
  prune, so every chunk with a query term was scored.)
* **Readers** open the index read-only, read the watermark first and reload the index
  when it changes (so the index they search is at least as new as the watermark). Chunks
  the watermark has not seen are added to the candidates from the log, so a lagging index
  costs a little speed, never a result; a missing one means the exact statement.
* **One indexer per host**: a background thread in each process that searches takes a
  file lock for each round, so processes on one host share one index and hosts each keep
  their own. ``ragd reindex --keyword`` rebuilds it from ``chunks`` under the same lock.
* **Pruning** (migration 0013): each indexer records in ``keyword_indexers`` the
  ``xmin`` of the snapshot its index holds (every log row older than that is applied),
  at most once a minute, and then deletes the log rows older than the smallest such
  ``xmin`` of the indexers heard from within ``RAGD_KEYWORD_LOG_RETENTION_S``, raising
  ``keyword_log_horizon`` to it in the same transaction. An indexer whose watermark is
  below the horizon (it was away longer than the retention) rebuilds from ``chunks``;
  until it has, searches find the horizon above the watermark and take the exact path.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import tantivy
from sqlalchemy import Connection, Engine, text

from ragd.store.postgres.search import UNSEEN_LOG

log = structlog.get_logger(__name__)

# Format 2 (terms prefixed by their collection). A format 1 directory beside it
# (``watermark.json``, ``tantivy/``) is never read: the first sync builds format 2, and
# processes of the previous release on the host keep their own until they are replaced.
_WATERMARK = "watermark-v2.json"
_LOCK = "indexer.lock"
_INDEX = "tantivy-v2"
_WRITER_HEAP = 128_000_000
_BATCH = 5_000
# How often an indexer records what it has seen and prunes the log (a write or two).
_PRUNE_EVERY_S = 60.0

# Record what this indexer has seen, then delete the log rows every indexer heard from
# within the retention has seen; the horizon moves in the same transaction.
_REGISTER = """
INSERT INTO keyword_indexers (name, seen_xmin, seen_at)
VALUES (:name, pg_snapshot_xmin(CAST(:snapshot AS pg_snapshot)), now())
ON CONFLICT (name) DO UPDATE SET seen_xmin = EXCLUDED.seen_xmin, seen_at = EXCLUDED.seen_at
"""
_FORGET_SILENT = (
    "DELETE FROM keyword_indexers WHERE seen_at <= now() - make_interval(secs => :retention)"
)
_RAISE_HORIZON = """
UPDATE keyword_log_horizon
SET pruned_below = greatest(pruned_below, (SELECT min(seen_xmin) FROM keyword_indexers))
WHERE id = 1 AND EXISTS (SELECT 1 FROM keyword_indexers)
RETURNING pruned_below::text
"""
_PRUNE = "DELETE FROM keyword_log WHERE xid < CAST(:horizon AS xid8)"
_BEHIND = (
    "SELECT pruned_below > pg_snapshot_xmin(CAST(:watermark AS pg_snapshot)) "
    "FROM keyword_log_horizon WHERE id = 1"
)

# Each lexeme once per position, title and headings twice (ragd's BM25 weighs them 2.0
# and 1.5, body 1.0): tantivy's term frequencies follow ragd's closely enough to rank
# the candidates, which PostgreSQL then scores exactly.
_LEXEMES = """
SELECT c.id,
       coalesce((SELECT string_agg(repeat(c.collection_id || '/' || u.lexeme || ' ', f.w), '')
                 FROM unnest(c.search_tsv) AS u
                 CROSS JOIN LATERAL (
                   SELECT sum(CASE x WHEN 'D' THEN 1 ELSE 2 END)::int AS w
                   FROM unnest(u.weights) AS x
                 ) AS f), '') AS lexemes
FROM chunks AS c
"""


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
    return builder.build()


def _term(collection_id: str, lexeme: str) -> str:
    """A lexeme as indexed for one collection (ids are ``col_`` and hex: no ``/``)."""
    return f"{collection_id}/{lexeme}"


@dataclass(frozen=True)
class Candidates:
    """What the index offers one query: chunk row ids, best first by tantivy's BM25;
    ``complete`` when they are every indexed chunk of the scope with a query term."""

    ids: list[int]
    complete: bool


@dataclass(frozen=True)
class IndexView:
    """A searcher at least as new as ``watermark`` (a ``pg_snapshot`` in text form)."""

    watermark: str
    searcher: Any
    schema: tantivy.Schema

    def candidates(
        self, lexemes: Sequence[str], collection_ids: Sequence[str], limit: int
    ) -> Candidates:
        if not lexemes or not collection_ids or limit <= 0:
            return Candidates([], True)
        # Only optional term clauses: the shape tantivy answers with block-max WAND.
        should, term_query = tantivy.Occur.Should, tantivy.Query.term_query
        query = tantivy.Query.boolean_query(
            [
                (should, term_query(self.schema, "terms", _term(collection_id, lexeme)))
                for collection_id in dict.fromkeys(collection_ids)
                for lexeme in lexemes
            ]
        )
        hits = self.searcher.search(query, limit, count=False).hits
        ids = self.searcher.fast_field_values("id", [address for _, address in hits])
        return Candidates([int(i) for i in ids], len(ids) < limit)


class TantivyKeywordIndex:
    """The index in ``directory`` of one host: read by every process, written by one
    at a time (a file lock), every ``interval_s`` by a background thread when started."""

    def __init__(
        self, directory: Path, *, interval_s: float, retention_s: float = 7 * 86_400
    ) -> None:
        self.directory = directory
        self.interval_s = interval_s
        self.retention_s = retention_s
        # Who holds this index back from pruning: the host and the index's directory.
        self.name = f"{socket.gethostname()}:{directory.resolve()}"
        self._pruned_at: float | None = None
        self._index_dir = directory / _INDEX
        self._mutex = threading.Lock()
        self._reader: tantivy.Index | None = None
        self._view: IndexView | None = None
        self._watermark_key: tuple[int, int, int] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- readers --------------------------------------------------------------------------

    def view(self) -> IndexView | None:
        """The index as far as its watermark says, or None when there is none (yet)."""
        path = self.directory / _WATERMARK
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._mutex:
            if key != self._watermark_key or self._view is None:
                try:
                    # The watermark first, then the index: tantivy was committed before
                    # the watermark was written, so the searcher is at least as new.
                    watermark = str(json.loads(path.read_text())["snapshot"])
                    if self._reader is None:
                        self._reader = tantivy.Index.open(str(self._index_dir))
                    else:
                        self._reader.reload()
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("keyword index unreadable", error=str(exc))
                    return None
                self._view = IndexView(watermark, self._reader.searcher(), self._reader.schema)
                self._watermark_key = key
            return self._view

    # -- the indexer ----------------------------------------------------------------------

    def start(self, engine: Engine) -> None:
        """Keep the index current in a background thread (idempotent; ``interval_s`` 0
        means never: only ``ragd reindex --keyword`` writes it)."""
        if self.interval_s <= 0 or self._thread is not None:
            return
        with self._mutex:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, args=(engine,), name="ragd-keyword-indexer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)

    def _run(self, engine: Engine) -> None:
        while not self._stop.is_set():
            try:
                self.sync(engine, wait=False)
            except Exception as exc:  # keep indexing; searches stay correct meanwhile
                log.warning("keyword indexing failed", error=str(exc))
            self._stop.wait(self.interval_s)

    def sync(self, engine: Engine, *, rebuild: bool = False, wait: bool = True) -> int | None:
        """Apply what the index has not seen (everything, when ``rebuild`` or there is no
        index yet); the number of chunks added or removed, or None when another process
        holds the lock and ``wait`` is false."""
        with self._locked(wait) as held:
            if not held:
                return None
            watermark = None if rebuild else self._read_watermark()
            with (
                engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
                conn.begin(),
            ):
                # The first statement fixes the transaction's snapshot: this one.
                snapshot = str(conn.execute(text("SELECT pg_current_snapshot()::text")).scalar())
                if watermark is not None and self._behind(conn, watermark):
                    log.warning("keyword index is older than the pruned log: rebuilding")
                    watermark = None
                rebuilt = watermark is None
                if watermark is None:
                    changed = self._rebuild(conn)
                else:
                    changed = self._apply_log(conn, watermark)
            if rebuilt or changed:
                self._write_watermark(snapshot)
                watermark = snapshot
            self._maybe_prune(engine, watermark, force=rebuild)
            return changed

    def _behind(self, conn: Connection, watermark: str) -> bool:
        """Whether log rows this watermark has not seen may have been pruned."""
        return bool(conn.execute(text(_BEHIND), {"watermark": watermark}).scalar())

    def _maybe_prune(self, engine: Engine, watermark: str | None, *, force: bool) -> int:
        """Record ``watermark`` as what this index holds and prune what every indexer
        holds; at most once per ``_PRUNE_EVERY_S`` unless ``force``. The number of log
        rows deleted."""
        now = time.monotonic()
        due = self._pruned_at is None or now - self._pruned_at >= _PRUNE_EVERY_S
        if watermark is None or not (due or force):
            return 0
        self._pruned_at = now
        return self.prune(engine, watermark)

    def prune(self, engine: Engine, watermark: str) -> int:
        """Record that this index holds every log row older than ``watermark``'s xmin,
        then delete the rows every indexer within the retention holds."""
        with engine.begin() as conn:
            conn.execute(text(_REGISTER), {"name": self.name, "snapshot": watermark})
            conn.execute(text(_FORGET_SILENT), {"retention": self.retention_s})
            horizon = conn.execute(text(_RAISE_HORIZON)).scalar()
            if horizon is None:
                return 0
            deleted = conn.execute(text(_PRUNE), {"horizon": horizon}).rowcount
        if deleted:
            log.info("keyword log pruned", rows=deleted, horizon=horizon)
        return int(deleted or 0)

    def _rebuild(self, conn: Connection) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._index_dir.mkdir(exist_ok=True)
        index = tantivy.Index(_schema(), path=str(self._index_dir), reuse=True)
        writer = index.writer(_WRITER_HEAP, 1)
        # Readers go on seeing the old index until the commit replaces it all at once.
        writer.delete_all_documents()
        count = 0
        rows = conn.execution_options(yield_per=_BATCH).execute(text(_LEXEMES))
        for row in rows:
            writer.add_document(_document(row))
            count += 1
        writer.commit()
        writer.wait_merging_threads()
        return count

    def _apply_log(self, conn: Connection, watermark: str) -> int:
        changes = conn.execute(
            text(f"SELECT chunk_id, op FROM keyword_log WHERE {UNSEEN_LOG}"),  # noqa: S608 # nosec B608
            {"watermark": watermark},
        ).all()
        if not changes:
            return 0
        inserted = [row.chunk_id for row in changes if row.op == "i"]
        deleted = {row.chunk_id for row in changes if row.op == "d"}
        index = tantivy.Index(_schema(), path=str(self._index_dir), reuse=True)
        writer = index.writer(_WRITER_HEAP, 1)
        for chunk_id in deleted | set(inserted):
            # Also before an insert: a round interrupted between tantivy's commit and the
            # watermark is applied again, and must not index a chunk twice.
            writer.delete_documents_by_term("id", chunk_id)
        alive = [i for i in inserted if i not in deleted]
        for start in range(0, len(alive), _BATCH):
            rows = conn.execute(
                text(_LEXEMES + " WHERE c.id = ANY(:ids)"), {"ids": alive[start : start + _BATCH]}
            )
            for row in rows:
                writer.add_document(_document(row))
        writer.commit()
        writer.wait_merging_threads()
        return len(changes)

    @contextmanager
    def _locked(self, wait: bool) -> Iterator[bool]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    def _read_watermark(self) -> str | None:
        path = self.directory / _WATERMARK
        if not path.exists() or not tantivy.Index.exists(str(self._index_dir)):
            return None
        try:
            return str(json.loads(path.read_text())["snapshot"])
        except (OSError, ValueError, KeyError):
            return None

    def _write_watermark(self, snapshot: str) -> None:
        path = self.directory / _WATERMARK
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps({"snapshot": snapshot}))
        os.replace(partial, path)


def _document(row: Any) -> tantivy.Document:
    document = tantivy.Document()
    document.add_integer("id", int(row.id))
    document.add_text("terms", row.lexemes)
    return document


__all__ = ["Candidates", "IndexView", "TantivyKeywordIndex"]
