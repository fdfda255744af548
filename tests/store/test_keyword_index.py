"""The tantivy keyword index beside PostgreSQL (``RAGD_KEYWORD_INDEX=tantivy``): the
keyword leg ranks as the exact BM25 statement does, never returns a deleted chunk, stays
correct while the index lags or is missing, falls back to the exact path under a
selective filter, and is rebuilt by ``ragd reindex --keyword``.

Two stores share each database: one with the index, one without (the exact statement);
every answer of the first is compared with the second's."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from ragd.config import load_settings
from ragd.domain import Filters, FusionWeights, JobCompletion, NewJob
from ragd.store.postgres.store import PostgresStore
from tests.databases import PostgresForTests
from tests.store.conftest import StoreFactory, seeded_vector

WORDS = [
    "river",
    "bridge",
    "castle",
    "garden",
    "forest",
    "harbor",
    "market",
    "temple",
    "valley",
    "meadow",
    "tower",
    "island",
    "desert",
    "glacier",
    "canyon",
    "lagoon",
    "prairie",
    "summit",
    "village",
    "orchard",
]
WEIGHTS = FusionWeights(
    keyword_weight=0.5, final_keyword_weight=0.5, feedback_docs=3, feedback_weight=0.5
)


@dataclass
class Pair:
    indexed: PostgresStore
    exact: PostgresStore
    factory: StoreFactory
    url: str
    index_dir: Path


def _store(url: str, **overrides: Any) -> PostgresStore:
    return PostgresStore(url, load_settings(database_url=url, **overrides))


def _indexed_store(url: str, index_dir: Path, **overrides: Any) -> PostgresStore:
    """A store using the tantivy index; no background indexer unless a test asks for one."""
    settings: dict[str, Any] = {"keyword_index_interval_s": 0, **overrides}
    return _store(url, keyword_index="tantivy", keyword_index_dir=index_dir, **settings)


@pytest.fixture
def pair(postgres: PostgresForTests, tmp_path: Path) -> Iterator[Pair]:
    url = postgres.new_database()
    index_dir = tmp_path / "keyword-index"
    # No background indexer: each test decides when the index catches up.
    indexed = _indexed_store(url, index_dir, keyword_exact_below=0)
    exact = _store(url)
    yield Pair(indexed, exact, StoreFactory(indexed), url, index_dir)
    indexed.close()
    exact.close()
    postgres.drop_database(url)


def _text(rng: np.random.Generator, words: int = 12) -> str:
    # Zipf-like: early words are common, late ones rare, so the pruning has work to do.
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    return " ".join(rng.choice(WORDS, size=words, p=p / p.sum()))


def _fill(pair: Pair, collection_id: str, docs: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(docs):
        texts = [_text(rng) for _ in range(3)]
        tenant = "rare" if i % 10 == 0 else "common"
        document = pair.factory.ready_doc(
            collection_id, texts, title=f"doc {seed} {i}", metadata={"tenant": tenant}
        )
        ids.append(document.id)
    return ids


def _queries(count: int = 25) -> list[list[str]]:
    rng = np.random.default_rng(3)
    return [
        list(rng.choice(WORDS, size=int(rng.integers(1, 4)), replace=False)) for _ in range(count)
    ]


def _same_everywhere(pair: Pair, collection_ids: list[str], filters: Filters | None = None) -> None:
    """Keyword and hybrid answers of the indexed store equal the exact store's."""
    for terms in _queries():
        for limit in (5, 20):
            got = pair.indexed.keyword_search(
                terms, collection_ids=collection_ids, filters=filters or {}, limit=limit
            )
            want = pair.exact.keyword_search(
                terms, collection_ids=collection_ids, filters=filters or {}, limit=limit
            )
            assert [h.chunk_id for h in got] == [h.chunk_id for h in want], terms
            assert [h.score for h in got] == pytest.approx([h.score for h in want])
        vector = seeded_vector(" ".join(terms))
        kwargs: dict[str, Any] = {
            "collection_ids": collection_ids,
            "filters": filters or {},
            "depth": 20,
            "limit": 10,
            "weights": WEIGHTS,
        }
        got_h = pair.indexed.hybrid_search(terms, vector, **kwargs)
        want_h = pair.exact.hybrid_search(terms, vector, **kwargs)
        assert [h.chunk_id for h in got_h] == [h.chunk_id for h in want_h], terms


def _uses_index(pair: Pair, collection_ids: list[str], filters: Filters | None = None) -> bool:
    found = pair.indexed._index.keyword_candidates_for(["river"], collection_ids, filters or {}, 5)
    return found is not None


def test_index_ranks_as_exact_bm25(pair: Pair) -> None:
    first, second = pair.factory.collection(), pair.factory.collection()
    _fill(pair, first.id, 40, seed=1)
    _fill(pair, second.id, 20, seed=2)
    assert pair.indexed.rebuild_keyword_index() == 180
    assert _uses_index(pair, [first.id])
    # Three times the depth at least (60 here), then scored by the exact statement's BM25.
    _same_everywhere(pair, [first.id])
    _same_everywhere(pair, [first.id, second.id])
    # 10 of ~100 matching chunks: tantivy's pruning picks them; on real text its top 10
    # is the exact one for >= 95% of queries (docs/scaling.md), on this 20-word toy
    # vocabulary of near-ties most of it still is.
    pruned = _indexed_store(pair.url, pair.index_dir, keyword_candidates=10)
    try:
        overlaps = []
        for terms in _queries():
            got = pruned.keyword_search(terms, collection_ids=[first.id], filters={}, limit=5)
            want = pair.exact.keyword_search(terms, collection_ids=[first.id], filters={}, limit=5)
            overlaps.append(len({h.chunk_id for h in got} & {h.chunk_id for h in want}) / 5)
            # Whatever it returns carries its exact score.
            exact_scores = {
                h.chunk_id: h.score
                for h in pair.exact.keyword_search(
                    terms, collection_ids=[first.id], filters={}, limit=200
                )
            }
            for hit in got:
                assert hit.score == pytest.approx(exact_scores[hit.chunk_id])
        assert np.mean(overlaps) >= 0.7, overlaps
    finally:
        pruned.close()


def test_a_deep_ask_gets_three_times_its_depth_in_candidates(pair: Pair) -> None:
    first = pair.factory.collection()
    _fill(pair, first.id, 40, seed=1)
    pair.indexed.rebuild_keyword_index()
    matching = len(
        pair.exact.keyword_search(["river"], collection_ids=[first.id], filters={}, limit=1000)
    )
    assert matching > 60
    few = _indexed_store(pair.url, pair.index_dir, keyword_candidates=10)
    try:
        found = few._index.keyword_candidates_for(["river"], [first.id], {}, 20)
        assert found is not None and len(found) == 60
    finally:
        few.close()


def _plans(pair: Pair, like: str, unlike: str = "") -> Any:
    """Generic and custom plans so far of the statements prepared on the indexed store's
    connection (one: the searches run one after another) whose SQL matches ``like``."""
    sql = (
        "SELECT coalesce(sum(generic_plans), 0) AS generic, "
        "coalesce(sum(custom_plans), 0) AS custom FROM pg_prepared_statements "
        "WHERE statement LIKE :like AND (:unlike = '' OR statement NOT LIKE :unlike)"
    )
    return pair.indexed._db.read(
        lambda conn: conn.execute(text(sql), {"like": like, "unlike": unlike}).one()
    )


def test_index_statements_are_planned_once_per_connection(pair: Pair) -> None:
    """The candidates' re-score, and the unfiltered hybrid statement with candidates, run
    on a generic plan once psycopg has prepared them: planning their CTEs costs more
    than it gains, and their plans (the candidates by primary key, HNSW for vectors) do
    not depend on the values. A filtered hybrid keeps per-run plans: the filter's
    selectivity may rightly change how its vector leg is searched."""
    col = pair.factory.collection()
    _fill(pair, col.id, 20, seed=9)
    pair.indexed.rebuild_keyword_index()
    kwargs: dict[str, Any] = {"depth": 20, "limit": 5, "weights": WEIGHTS}
    for terms in _queries(12):
        pair.indexed.keyword_search(terms, collection_ids=[col.id], filters={}, limit=5)
        vector = seeded_vector(" ".join(terms))
        pair.indexed.hybrid_search(terms, vector, collection_ids=[col.id], filters={}, **kwargs)
        common: Filters = {"tenant": "common"}
        pair.indexed.hybrid_search(terms, vector, collection_ids=[col.id], filters=common, **kwargs)
    among = "%AS bigint[])) AND %"
    keyword = _plans(pair, among, unlike="%vec_fb%")
    assert keyword.generic >= 5 and keyword.custom == 0, keyword
    hybrid = _plans(pair, among + "vec_fb%", unlike="%jsonb%")
    assert hybrid.generic >= 5 and hybrid.custom == 0, hybrid
    filtered = _plans(pair, among + "jsonb%vec_fb%")
    assert filtered.custom >= 5, filtered
    _same_everywhere(pair, [col.id])
    _same_everywhere(pair, [col.id], {"tenant": "common"})


def test_deleted_chunk_is_never_returned(pair: Pair) -> None:
    col = pair.factory.collection()
    _fill(pair, col.id, 10, seed=4)
    unique = pair.factory.ready_doc(col.id, ["zeppelin zeppelin river", "zeppelin castle"])
    pair.indexed.rebuild_keyword_index()
    found = pair.indexed.keyword_search(["zeppelin"], collection_ids=[col.id], filters={}, limit=5)
    assert len(found) == 2
    gone = {c.id for c in pair.exact.list_chunks(unique.id)}
    pair.indexed.delete_document(unique.id)
    # The index still holds both chunks: the re-score reads `chunks`, which does not.
    assert pair.indexed._index.keyword_index is not None
    view = pair.indexed._index.keyword_index.view()
    assert view is not None and len(view.candidates(["zeppelin"], [col.id], 5).ids) == 2
    for terms in (["zeppelin"], ["zeppelin", "river"]):
        hits = pair.indexed.keyword_search(terms, collection_ids=[col.id], filters={}, limit=50)
        assert not {h.chunk_id for h in hits} & gone
    assert (
        pair.indexed.keyword_search(["zeppelin"], collection_ids=[col.id], filters={}, limit=5)
        == []
    )
    _same_everywhere(pair, [col.id])
    # Once the indexer has applied the delete, too.
    assert pair.indexed._index.keyword_index.sync(pair.indexed.engine) == 2
    assert (
        pair.indexed.keyword_search(["zeppelin"], collection_ids=[col.id], filters={}, limit=5)
        == []
    )


def test_lagging_or_missing_index_gives_exact_results(pair: Pair) -> None:
    col = pair.factory.collection()
    # Missing: never built; the exact statement answers.
    _fill(pair, col.id, 15, seed=5)
    assert not _uses_index(pair, [col.id])
    _same_everywhere(pair, [col.id])
    # Built, then left behind: new documents (their chunks come from the log, scored with
    # the candidates) and deletions (filtered by the re-score) it has not seen.
    pair.indexed.rebuild_keyword_index()
    added = _fill(pair, col.id, 15, seed=6)
    for document_id in added[:5]:
        pair.indexed.delete_document(document_id)
    strong = pair.factory.ready_doc(col.id, ["river river river river", "river castle castle"])
    assert _uses_index(pair, [col.id])
    _same_everywhere(pair, [col.id])
    top = pair.indexed.keyword_search(["river"], collection_ids=[col.id], filters={}, limit=1)
    assert top[0].chunk_id == pair.exact.list_chunks(strong.id)[0].id
    # Caught up: the same answers.
    assert pair.indexed._index.keyword_index is not None
    assert pair.indexed._index.keyword_index.sync(pair.indexed.engine)
    _same_everywhere(pair, [col.id])
    # Nothing new: the round changes nothing and keeps the watermark.
    assert pair.indexed._index.keyword_index.sync(pair.indexed.engine) == 0


def test_transaction_committing_after_the_indexer_looked_is_covered(pair: Pair) -> None:
    """Chunks written by a transaction that began before the indexer's snapshot and
    committed after it (so later rows of the log were already applied): the watermark
    is that snapshot, not a sequence number, so readers still count them as unseen."""
    col, other = pair.factory.collection(), pair.factory.collection()
    document = pair.factory.ready_doc(col.id, ["river castle"])
    pair.indexed.rebuild_keyword_index()
    index = pair.indexed._index.keyword_index
    assert index is not None
    engine = pair.indexed.engine
    with engine.connect() as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO chunks (document_id, collection_id, ordinal, text, heading_path, "
                "title, token_count, char_start, char_end, text_hash, embedding) "
                "SELECT document_id, collection_id, 100, 'quokka quokka river', heading_path, "
                "title, 3, 0, 19, text_hash, embedding FROM chunks WHERE document_id = :d"
            ),
            {"d": document.id},
        )
        # Meanwhile another document is added (later in the log) and indexed; in another
        # collection, whose BM25 statistics rows the open transaction does not lock.
        pair.factory.ready_doc(other.id, ["quokka garden"])
        assert index.sync(engine) == 1
    hits = pair.indexed.keyword_search(["quokka"], collection_ids=[col.id], filters={}, limit=5)
    assert len(hits) == 1
    _same_everywhere(pair, [col.id])
    assert index.sync(engine) == 1
    _same_everywhere(pair, [col.id])


def test_selective_filter_takes_the_exact_path_and_ranks_the_same(
    postgres: PostgresForTests, pair: Pair
) -> None:
    col = pair.factory.collection()
    _fill(pair, col.id, 60, seed=9)
    pair.indexed.rebuild_keyword_index()
    # Threshold 0: every filter goes through the index (more candidates when it rejects
    # most), and ranks as the exact statement.
    rare: Filters = {"tenant": "rare"}
    common: Filters = {"tenant": "common"}
    for filters in (rare, common):
        assert _uses_index(pair, [col.id], filters)
        _same_everywhere(pair, [col.id], filters)
    # Threshold 100 chunks: the rare tenant (18 chunks) is scored exactly, the common
    # one (162) by the index; both rank as the exact statement.
    thresholded = _indexed_store(pair.url, pair.index_dir, keyword_exact_below=100)
    try:
        selective = Pair(thresholded, pair.exact, pair.factory, pair.url, pair.index_dir)
        assert not _uses_index(selective, [col.id], rare)
        assert _uses_index(selective, [col.id], common)
        _same_everywhere(selective, [col.id], rare)
        _same_everywhere(selective, [col.id], common)
    finally:
        thresholded.close()


def test_background_indexer_catches_up(pair: Pair) -> None:
    col = pair.factory.collection()
    _fill(pair, col.id, 5, seed=10)
    store = _indexed_store(pair.url, pair.index_dir, keyword_index_interval_s=0.05)
    try:
        # The first search starts this process's indexer; it builds the index.
        store.keyword_search(["river"], collection_ids=[col.id], filters={}, limit=5)
        index = store._index.keyword_index
        assert index is not None
        deadline = time.monotonic() + 60
        while index.view() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first = index.view()
        assert first is not None
        pair.factory.ready_doc(col.id, ["wombat river"])
        while index.view() is first and time.monotonic() < deadline:
            time.sleep(0.05)
        view = index.view()
        assert view is not None and view is not first
        assert view.candidates(["wombat"], [col.id], 5).ids
    finally:
        store.close()


def test_reindex_command_rebuilds_the_index(pair: Pair, tmp_path: Path) -> None:
    col = pair.factory.collection()
    _fill(pair, col.id, 8, seed=11)
    env = {
        **os.environ,
        "RAGD_DATABASE_URL": pair.url,
        "RAGD_DATA_DIR": str(tmp_path),
        "RAGD_KEYWORD_INDEX": "tantivy",
        "RAGD_KEYWORD_INDEX_DIR": str(pair.index_dir),
    }
    run = subprocess.run(
        [sys.executable, "-m", "ragd", "reindex", "--keyword"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "keyword index rebuilt: 24 chunks" in run.stdout
    recorded = pair.exact.read_audit(lambda reader: list(reader.events()))
    start, finish = recorded[-2:]
    assert (start.action, finish.action) == ("keyword_index.start", "keyword_index.finish")
    assert start.detail == {"host": socket.gethostname()} and start.actor == "local"
    assert finish.detail == {"host": socket.gethostname(), "chunks": 24}
    assert _uses_index(pair, [col.id])
    _same_everywhere(pair, [col.id])
    # Without the index configured, or on SQLite, there is nothing to rebuild.
    for extra in (
        {"RAGD_KEYWORD_INDEX": "off"},
        {"RAGD_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
    ):
        failed = subprocess.run(
            [sys.executable, "-m", "ragd", "reindex", "--keyword"],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert failed.returncode == 1
        assert "keyword index" in failed.stderr
    # A refused rebuild changed nothing, so it recorded nothing.
    assert pair.exact.read_audit(lambda reader: reader.head())[0] == recorded[-1].seq


def _format_1_directory(directory: Path, snapshot: str) -> None:
    """What the previous release left on a host: an empty index of its schema (collection
    in a field of its own) under a watermark claiming every chunk up to ``snapshot``."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_text_field("collection", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("lexemes", tokenizer_name="whitespace", index_option="freq")
    (directory / "tantivy").mkdir(parents=True)
    old = tantivy.Index(builder.build(), path=str(directory / "tantivy"))
    writer = old.writer(15_000_000, 1)
    writer.commit()
    writer.wait_merging_threads()
    (directory / "watermark.json").write_text(json.dumps({"snapshot": snapshot}))


def test_a_format_1_directory_is_never_read(pair: Pair) -> None:
    """The index format changed (terms carry their collection, so tantivy can prune a
    scoped query): an index of the old one is not searched, and the first sync builds
    the new one beside it, leaving the old files to the old release's processes."""
    col = pair.factory.collection()
    _fill(pair, col.id, 10, seed=21)
    with pair.exact.engine.connect() as conn:
        snapshot = str(conn.execute(text("SELECT pg_current_snapshot()::text")).scalar())
    _format_1_directory(pair.index_dir, snapshot)
    # Read as covering every chunk, the empty old index would make every search empty.
    assert not _uses_index(pair, [col.id])
    _same_everywhere(pair, [col.id])
    assert pair.indexed.rebuild_keyword_index() == 30
    assert _uses_index(pair, [col.id])
    _same_everywhere(pair, [col.id])
    assert (pair.index_dir / "watermark.json").read_text() == json.dumps({"snapshot": snapshot})


def test_reindex_switch_keeps_the_index_exact(pair: Pair) -> None:
    """A reindex moves its new chunks into the collection by UPDATE: the keyword log
    must make the index pick them up under the collection and drop the old ones."""
    col = pair.factory.collection()
    docs = _fill(pair, col.id, 12, seed=8)
    pair.indexed.rebuild_keyword_index()
    job = pair.indexed.submit_job(
        NewJob(kind="reindex", collection_id=col.id, params={}, created_by="t", max_attempts=3)
    )
    assert pair.indexed.claim_background_job(owner="r", kinds=["reindex"], lease_s=600)
    rng = np.random.default_rng(11)
    completions = [
        JobCompletion(
            document_id=document_id,
            lease_owner="r",
            title=None,
            mime_type="text/markdown",
            content_hash="unused",
            chunks=[pair.factory.chunk(0, "zeppelin " + _text(rng))],
        )
        for document_id in docs
    ]
    pair.indexed.add_generation_chunks("gen_k", completions, job_id=job.id, owner="r")
    assert pair.indexed._index.keyword_index is not None
    pair.indexed._index.keyword_index.sync(pair.indexed.engine)
    _same_everywhere(pair, [col.id])  # the generation is indexed, yet invisible
    assert (
        pair.indexed.keyword_search(["zeppelin"], collection_ids=[col.id], filters={}, limit=5)
        == []
    )
    assert (
        pair.indexed.switch_generation(
            col.id,
            generation="gen_k",
            job_id=job.id,
            owner="r",
            embedding_model="m",
            embedding_dim=8,
            chunk_max_tokens=None,
        )
        == 0
    )
    _same_everywhere(pair, [col.id])  # the index lags: its unseen log covers the move
    found = pair.indexed.keyword_search(["zeppelin"], collection_ids=[col.id], filters={}, limit=50)
    assert len(found) == 12
    pair.indexed._index.keyword_index.sync(pair.indexed.engine)
    view = pair.indexed._index.keyword_index.view()
    assert view is not None
    assert {f"chk_{i}" for i in view.candidates(["zeppelin"], [col.id], 50).ids} == {
        h.chunk_id for h in found
    }
    _same_everywhere(pair, [col.id])


# -- pruning of keyword_log (migration 0013) ---------------------------------------------------


def _log_rows(pair: Pair) -> int:
    with pair.exact.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM keyword_log")).scalar_one())


def _keyword_index(store: PostgresStore) -> Any:
    index = store._index.keyword_index
    assert index is not None
    return index


def test_log_rows_the_only_indexer_has_applied_are_pruned(pair: Pair) -> None:
    col = pair.factory.collection()
    _fill(pair, col.id, 10, seed=11)
    assert _log_rows(pair) == 30
    pair.indexed.rebuild_keyword_index()  # records its snapshot and prunes
    assert _log_rows(pair) == 0
    added = _fill(pair, col.id, 5, seed=12)
    pair.indexed.delete_document(added[0])
    assert _log_rows(pair) == 18  # 15 inserts, 3 deletes: not yet applied, kept
    index = _keyword_index(pair.indexed)
    assert index.sync(pair.indexed.engine) == 18
    watermark = index.view().watermark
    assert index.prune(pair.indexed.engine, watermark) == 18
    assert _log_rows(pair) == 0
    assert _uses_index(pair, [col.id])
    _same_everywhere(pair, [col.id])


def test_rows_another_indexer_has_not_applied_are_kept(pair: Pair, tmp_path: Path) -> None:
    col = pair.factory.collection()
    _fill(pair, col.id, 8, seed=13)
    other = _indexed_store(pair.url, tmp_path / "other-host", keyword_exact_below=0)
    try:
        other.rebuild_keyword_index()  # the other host, at this point
        later = _fill(pair, col.id, 6, seed=14)
        pair.indexed.delete_document(later[1])
        pair.indexed.rebuild_keyword_index()  # this host, further on: prunes
        assert _log_rows(pair) == 21  # what the other host has not applied
        # The other host still searches with its index (the rows it needs are there),
        # and catches up from the log.
        other_pair = Pair(other, pair.exact, pair.factory, pair.url, tmp_path / "other-host")
        assert _uses_index(other_pair, [col.id])
        _same_everywhere(other_pair, [col.id])
        assert _keyword_index(other).sync(other.engine) == 21
        _same_everywhere(other_pair, [col.id])
        watermark = _keyword_index(other).view().watermark
        _keyword_index(other).prune(other.engine, watermark)
        assert _log_rows(pair) == 0
    finally:
        other.close()


def test_an_index_behind_the_pruned_horizon_is_skipped_then_rebuilt(
    pair: Pair, tmp_path: Path
) -> None:
    col = pair.factory.collection()
    _fill(pair, col.id, 8, seed=15)
    away = _indexed_store(pair.url, tmp_path / "away-host", keyword_exact_below=0)
    away_pair = Pair(away, pair.exact, pair.factory, pair.url, tmp_path / "away-host")
    try:
        away.rebuild_keyword_index()
        removed = _fill(pair, col.id, 6, seed=16)
        for document_id in removed[:3]:
            pair.indexed.delete_document(document_id)
        # The away host has been silent for longer than the retention: it no longer
        # holds pruning back, and this host prunes what it has not applied.
        with pair.exact.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE keyword_indexers SET seen_at = now() - interval '8 days' "
                    "WHERE name = :n"
                ),
                {"n": _keyword_index(away).name},
            )
        pair.indexed.rebuild_keyword_index()
        assert _log_rows(pair) == 0
        # Its index lacks those changes and the log no longer has them: searches take
        # the exact path (never a stale answer) ...
        assert not _uses_index(away_pair, [col.id])
        _same_everywhere(away_pair, [col.id])
        # ... until its indexer, finding itself behind the horizon, rebuilds.
        assert _keyword_index(away).sync(away.engine) == 33  # every chunk, 11 documents
        assert _uses_index(away_pair, [col.id])
        _same_everywhere(away_pair, [col.id])
    finally:
        away.close()
