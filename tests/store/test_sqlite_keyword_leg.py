"""SQLite's keyword leg: the FTS table's own top rows when a search covers every
collection, falling back to the exact statement whenever those rows are not the scope's."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import event, text

from ragd.domain import ScoredId
from ragd.store.sqlite.store import SqliteStore
from tests.store.conftest import StoreFactory

WORDS = ["otter", "heron", "grebe", "stoat", "vole", "finch", "wren", "lynx"]
QUERIES = [["otter"], ["heron", "grebe"], ["vole", "wren", "lynx"], ["absent"], ["otter", "x"]]


def _statements(store: SqliteStore) -> list[str]:
    """A list that records every statement ``store`` sends from now on."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    return sent


def _whole_index_ran(sent: list[str]) -> bool:
    return any("LIMIT" in s and "kept" in s for s in sent)


def _exact_ran(sent: list[str]) -> bool:
    return any("LIMIT" in s and "kept" not in s for s in sent)


def _search(store: SqliteStore, terms: list[str], scope: list[str], **kw: Any) -> list[ScoredId]:
    filters = kw.pop("filters", {})
    return store.keyword_search(terms, collection_ids=scope, filters=filters, **kw)


def test_the_whole_index_path_ranks_as_the_exact_statement(sqlite_store: SqliteStore) -> None:
    factory = StoreFactory(sqlite_store)
    first, second = factory.collection(), factory.collection()
    rng = np.random.default_rng(3)
    for i in range(80):
        texts = [" ".join(rng.choice(WORDS, int(rng.integers(2, 9)))) for _ in range(2)]
        factory.ready_doc((first, second)[i % 2].id, texts, metadata={"all": True})
    both = [first.id, second.id]
    sent = _statements(sqlite_store)
    for terms in QUERIES:
        for limit in (1, 7, 60, 500):
            sent.clear()
            fast = _search(sqlite_store, terms, both, limit=limit)
            if terms != ["absent"]:
                assert _whole_index_ran(sent) and not _exact_ran(sent)
            sent.clear()
            exact = _search(sqlite_store, terms, both, limit=limit, filters={"all": True})
            assert _exact_ran(sent) and not _whole_index_ran(sent)
            assert [(h.chunk_id, h.score) for h in fast] == [(h.chunk_id, h.score) for h in exact]


def test_a_scope_short_of_every_collection_takes_the_exact_statement(
    sqlite_store: SqliteStore,
) -> None:
    factory = StoreFactory(sqlite_store)
    first, second = factory.collection(), factory.collection()
    factory.ready_doc(first.id, ["otter otter"])
    factory.ready_doc(second.id, ["otter"])
    sent = _statements(sqlite_store)
    hits = _search(sqlite_store, ["otter"], [second.id], limit=5)
    assert len(hits) == 1
    assert _exact_ran(sent) and not _whole_index_ran(sent)


def _hide(store: SqliteStore, document_id: str) -> None:
    """Send a ready document back for reprocessing: its chunks stay, unsearchable."""
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE documents SET status = 'queued' WHERE id = :id"), {"id": document_id}
        )


def test_a_hidden_chunk_among_the_top_falls_back_to_the_exact_statement(
    sqlite_store: SqliteStore,
) -> None:
    factory = StoreFactory(sqlite_store)
    col = factory.collection()
    hidden = factory.ready_doc(col.id, ["heron heron heron heron"])
    ready = [factory.ready_doc(col.id, [f"heron and {word}"]) for word in WORDS[:4]]
    _hide(sqlite_store, hidden.id)
    sent = _statements(sqlite_store)
    hits = _search(sqlite_store, ["heron"], [col.id], limit=3)
    assert _whole_index_ran(sent) and _exact_ran(sent)
    ready_chunks = {sqlite_store.list_chunks(doc.id)[0].id for doc in ready}
    assert len(hits) == 3 and {h.chunk_id for h in hits} <= ready_chunks


def test_fewer_matches_than_the_limit_need_no_fallback(sqlite_store: SqliteStore) -> None:
    factory = StoreFactory(sqlite_store)
    col = factory.collection()
    hidden = factory.ready_doc(col.id, ["grebe grebe"])
    shown = factory.ready_doc(col.id, ["one grebe"])
    _hide(sqlite_store, hidden.id)
    sent = _statements(sqlite_store)
    hits = _search(sqlite_store, ["grebe"], [col.id], limit=10)
    assert [h.chunk_id for h in hits] == [sqlite_store.list_chunks(shown.id)[0].id]
    assert _whole_index_ran(sent) and not _exact_ran(sent)
