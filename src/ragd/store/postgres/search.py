"""SQL for PostgreSQL's search legs: BM25 over ``tsvector`` and pgvector distance.

PostgreSQL's own ``ts_rank`` ignores how rare a term is across the collection, which is
most of what makes BM25 rank well. The statistics BM25 needs (chunks per collection, their
total length, document frequency per lexeme) are kept by triggers, so the keyword leg
computes the same Okapi BM25 as SQLite FTS5's ``bm25()``: idf ``ln((N−n+0.5)/(n+0.5))``
floored at 1e-6, k1 = 1.2, b = 0.75, and term frequency weighted by field (title 2.0,
headings 1.5, body 1.0), in one statement.

User text reaches SQL only as bound parameters: query terms go through ``to_tsvector``
and are quoted lexeme by lexeme into the ``tsquery``, so no input is tsquery syntax.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragd.domain import Filters, FusionWeights, Vector

# pgvector's HNSW indexes take ``vector`` columns of up to 2,000 dimensions.
HNSW_MAX_DIM = 2000
BM25_K1 = 1.2
BM25_B = 0.75
FIELD_WEIGHTS = {"A": 2.0, "B": 1.5, "D": 1.0}
# ``keyword_log`` rows a snapshot (``:watermark``) did not see: written by transactions
# still running or not yet begun when it was taken; every earlier one had ended.
UNSEEN_LOG = (
    "xid >= pg_snapshot_xmin(CAST(:watermark AS pg_snapshot)) "
    "AND NOT pg_visible_in_snapshot(xid, CAST(:watermark AS pg_snapshot))"
)


def hnsw_index_sql(dim: int) -> str:
    """A partial HNSW index over the chunks of one embedding dimension (cosine)."""
    dim = int(dim)
    return (
        f"CREATE INDEX IF NOT EXISTS ix_chunks_embedding_hnsw_{dim} ON chunks "
        f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
        f"WHERE vector_dims(embedding) = {dim}"
    )


def vector_literal(vector: Vector) -> str:
    """pgvector's text form, bound as a parameter and cast in SQL."""
    values = np.asarray(vector, dtype=np.float32)
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


def filter_sql(filters: Filters, params: dict[str, Any]) -> str:
    """Metadata equality as JSONB containment (GIN-indexed); ``None`` matches a missing
    key or a JSON null, as on SQLite."""
    present = {key: value for key, value in filters.items() if value is not None}
    clauses = []
    if present:
        params["filter_doc"] = json.dumps(present)
        clauses.append(" AND d.metadata @> CAST(:filter_doc AS jsonb)")
    for i, key in enumerate(sorted(k for k, v in filters.items() if v is None)):
        params[f"null_key{i}"] = key
        clauses.append(f" AND coalesce(d.metadata -> :null_key{i}, 'null'::jsonb) = 'null'::jsonb")
    return "".join(clauses)


def _scope_sql(collection_ids: list[str], filters: Filters, params: dict[str, Any]) -> str:
    params["collection_ids"] = collection_ids
    return "c.collection_id = ANY(:collection_ids) AND d.status = 'ready'" + filter_sql(
        filters, params
    )


def scope_size_ctes(filters: Filters, params: dict[str, Any], cap: int) -> list[str]:
    """``scope_size(chunks)``: the ready chunks in a filtered scope, exact below ``cap``
    and at least ``cap`` above it. It sums the documents' own ``chunk_count`` in a running
    total that stops at the cap, so it reads the filter's documents until then and never a
    chunk: counting the chunks, joined to their documents, took 25-36 ms at 1M chunks for
    a cap of 10,000, in every filtered search (docs/scaling.md, "Filters at 1M").

    The documents come from a MATERIALIZED CTE, read only as far as the running total
    needs: planned on its own, it is planned to read them all (the metadata index for a
    selective filter), whereas under the total's ``LIMIT 1`` the planner counted on
    stopping early and scanned every document when the filter was selective. A document's
    ``chunk_count`` is written with its chunks (and by a reindex switch), so the two
    agree; where they briefly would not, only the choice of path depends on it."""
    params["size_cap"] = cap
    scope = "d.collection_id = ANY(:collection_ids) AND d.status = 'ready'" + filter_sql(
        filters, params
    )
    return [
        f"scope_docs AS MATERIALIZED (SELECT d.chunk_count FROM documents AS d WHERE {scope})",
        """scope_size AS (
  SELECT coalesce(
    (SELECT s.run FROM (
       SELECT sum(chunk_count) OVER (ROWS UNBOUNDED PRECEDING) AS run FROM scope_docs
     ) AS s WHERE s.run >= :size_cap LIMIT 1),
    (SELECT coalesce(sum(chunk_count), 0) FROM scope_docs)) AS chunks
)""",
    ]


def _hits_cte(scope: str, among: str, small_scope: bool) -> str:
    """``hits(id, search_tsv, search_len)``: the chunks in scope that hold a query term.

    ``small_scope``: the statement also has ``kw_small(exact)``, and when it is true the
    chunks are found from the scope instead (its documents by the metadata index, their
    chunks by document), each tested against the query. PostgreSQL cannot estimate a
    ``tsquery`` built in the statement, assumes 5,000 hits, and reads them by the
    full-text index: at 1M chunks under a filter that left 9,770, a 3-term query read
    112,659 hits and looked each one's document up, 870 ms. The function form of ``@@``
    (``ts_match_vq``) is the same test with no index behind it, so that branch can only
    start from the filter."""
    matched = f"""SELECT c.id, c.search_tsv, c.search_len
  FROM chunks AS c JOIN documents AS d ON d.id = c.document_id, tsq
  WHERE {among}c.search_tsv @@ tsq.query AND {scope}"""
    if not small_scope:
        return f"hits AS (\n  {matched}\n)"
    return f"""hits AS (
  {matched} AND NOT (SELECT exact FROM kw_small)
  UNION ALL
  SELECT c.id, c.search_tsv, c.search_len
  FROM documents AS d JOIN chunks AS c ON c.document_id = d.id, tsq
  WHERE (SELECT exact FROM kw_small) AND ts_match_vq(c.search_tsv, tsq.query) AND {scope}
)"""


def _keyword_ctes(
    terms: Sequence[str],
    scope: str,
    params: dict[str, Any],
    depth_param: str,
    candidates: Sequence[int] | None = None,
    small_scope: bool = False,
) -> str:
    """CTEs ending in ``kw(id, score)``: the BM25 top ``depth_param`` chunks, among
    ``candidates`` (chunk row ids, from the keyword index) when given: the same scores,
    computed for those rows only. ``small_scope``: see :func:`_hits_cte`."""
    params["query"] = " ".join(terms)
    among = ""
    if candidates is not None:
        params["kw_ids"] = list(candidates)
        among = "c.id = ANY(CAST(:kw_ids AS bigint[])) AND "
    weight = " ".join(f"WHEN '{label}' THEN {value}" for label, value in FIELD_WEIGHTS.items())
    return f"""
q AS (
  SELECT DISTINCT u.lexeme FROM unnest(to_tsvector('english'::regconfig, ragd_fold(:query))) AS u
),
stats AS (
  SELECT coalesce(sum(chunks), 0)::float8 AS n,
         coalesce(sum(length), 0)::float8 / greatest(coalesce(sum(chunks), 0), 1) AS avgdl
  FROM keyword_stats WHERE collection_id = ANY(:collection_ids)
),
idf AS (
  SELECT q.lexeme,
         greatest(ln((stats.n - coalesce(sum(t.df), 0) + 0.5)
                     / (coalesce(sum(t.df), 0) + 0.5)), 1e-6) AS idf
  FROM q CROSS JOIN stats
  LEFT JOIN keyword_terms AS t
    ON t.lexeme = q.lexeme AND t.collection_id = ANY(:collection_ids)
  GROUP BY q.lexeme, stats.n
),
tsq AS (
  SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS query,
         array_agg(lexeme) AS lexemes
  FROM q
),
{_hits_cte(scope, among, small_scope)},
kw AS (
  -- Rounded to 1e-9: the sum's order of terms follows the plan, so two chunks that tie
  -- could otherwise differ in the last bit and swap places between two plans (the
  -- exact statement and the index's re-score must rank alike).
  SELECT h.id,
         round(sum(idf.idf * f.tf * {BM25_K1 + 1}
                   / (f.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * h.search_len
                                          / greatest(stats.avgdl, 1)))) * 1e9) / 1e9 AS score
  FROM hits AS h
  CROSS JOIN stats
  CROSS JOIN tsq
  -- Only the query's lexemes of each hit: deleting from the tsvector every lexeme that
  -- is not in the query (the inner ts_delete lists those) leaves 1-5 entries to expand
  -- instead of the whole tsvector; same scores, a fraction of the rows.
  CROSS JOIN LATERAL unnest(
    ts_delete(h.search_tsv, tsvector_to_array(ts_delete(h.search_tsv, tsq.lexemes)))
  ) AS u
  JOIN idf ON idf.lexeme = u.lexeme
  CROSS JOIN LATERAL (
    SELECT sum(CASE w {weight} ELSE 1.0 END) AS tf FROM unnest(u.weights) AS w
  ) AS f
  GROUP BY h.id
  ORDER BY score DESC, h.id
  LIMIT :{depth_param}
)"""


def _small_scope_cte(
    name: str, cap_param: str, filters: Filters, params: dict[str, Any], cap: int
) -> str:
    """``name(exact)``: whether the scope holds fewer than ``cap`` ready chunks, so an
    exact scan is cheap and complete. Without a filter the trigger-kept totals answer at
    once; with one, ``scope_size`` (:func:`scope_size_ctes`) does."""
    params[cap_param] = cap
    if cap <= 0:
        return f"{name} AS (SELECT false AS exact)"
    if not filters:
        return (
            f"{name} AS (SELECT coalesce(sum(chunks), 0) < :{cap_param} AS exact "
            "FROM keyword_stats WHERE collection_id = ANY(:collection_ids))"
        )
    return f"{name} AS (SELECT chunks < :{cap_param} AS exact FROM scope_size)"


def _scope_ctes(
    filters: Filters, params: dict[str, Any], exact_below: int, keyword_exact_below: int | None
) -> list[str]:
    """The CTEs that size the scope: ``small`` for the vector legs (``exact_below``) and,
    when ``keyword_exact_below`` is given (a filtered exact keyword leg), ``kw_small``."""
    ctes = []
    if filters:
        ctes += scope_size_ctes(filters, params, max(exact_below, keyword_exact_below or 0))
    ctes.append(_small_scope_cte("small", "exact_cap", filters, params, exact_below))
    if keyword_exact_below is not None:
        ctes.append(
            _small_scope_cte("kw_small", "kw_exact_cap", filters, params, keyword_exact_below)
        )
    return ctes


def _vector_cte(
    name: str, target: str, dim: int, filters: Filters, scope: str, limit_param: str
) -> str:
    """``name(id, score)``: the chunks nearest ``target`` (a SQL expression of type
    vector). Exact when ``small`` says so (or above HNSW's dimension limit): ordering by
    the bare column, which no index serves; otherwise ordering by the expression the
    HNSW index of this dimension is built on, with iterative scans (set per connection)
    so that a filter does not starve the result. Only one branch runs: the other's
    one-time filter is false.

    Without a filter the documents table is not joined: chunks exist only for ready
    documents (they are written in the transaction that makes a document ready), and
    the SQLite store's vector leg does the same."""
    dim = int(dim)
    source = "chunks AS c JOIN documents AS d ON d.id = c.document_id"
    if not filters:
        source, scope = "chunks AS c", "c.collection_id = ANY(:collection_ids)"
    exact = f"""(
    SELECT c.id, 1 - (c.embedding <=> {target}) AS score
    FROM {source}
    WHERE (SELECT exact FROM small) AND {scope}
    ORDER BY c.embedding <=> {target}, c.id
    LIMIT :{limit_param}
  )"""
    if dim > HNSW_MAX_DIM:
        return f"{name} AS {exact}"
    indexed = f"""(
    SELECT c.id, 1 - (c.embedding::vector({dim}) <=> ({target})::vector({dim})) AS score
    FROM {source}
    WHERE NOT (SELECT exact FROM small) AND {scope} AND vector_dims(c.embedding) = {dim}
    ORDER BY c.embedding::vector({dim}) <=> ({target})::vector({dim})
    LIMIT :{limit_param}
  )"""
    return f"{name} AS (\n  {exact}\n  UNION ALL\n  {indexed}\n)"


def _normalized_cte(name: str, source: str) -> str:
    """Min-max normalized scores of one leg, as ``convex_fusion`` computes them."""
    return f"""{name} AS (
  SELECT id, CASE WHEN max(score) OVER () > min(score) OVER ()
                  THEN (score - min(score) OVER ()) / (max(score) OVER () - min(score) OVER ())
                  ELSE 1.0 END AS s
  FROM {source}
)"""


def _fused_cte(name: str, keyword: str, vector: str, weight: str = ":keyword_weight") -> str:
    """``w·kw + (1−w)·vec`` over normalized scores, ``weight`` a SQL expression."""
    return f"""{name} AS (
  SELECT coalesce(k.id, v.id) AS id,
         ({weight}) * coalesce(k.s, 0) + (1 - ({weight})) * coalesce(v.s, 0) AS score
  FROM {keyword} AS k FULL JOIN {vector} AS v ON k.id = v.id
)"""


def _agreement_cte() -> str:
    """``agree(scale)``: what the keyword weights are multiplied by, as
    :func:`ragd.retrieval.hybrid.agreement_scale` computes it: 1 for fixed weights, else
    min(1, share of the legs' top chunks in common / ``agreement_full``)."""
    return """agree AS (
  SELECT CASE WHEN CAST(:agreement_full AS float8) <= 0 OR :agreement_depth <= 0 THEN 1.0
         ELSE least(1.0, (
           SELECT count(*) FROM (
             SELECT id FROM kw ORDER BY score DESC, id LIMIT :agreement_depth
           ) AS k JOIN (
             SELECT id FROM vec ORDER BY score DESC, id LIMIT :agreement_depth
           ) AS v USING (id)
         )::float8 / :agreement_depth / CAST(:agreement_full AS float8)) END AS scale
)"""


def _scaled(vector_expr: str, weight: float, dim: int) -> str:
    """``weight · vector``: pgvector multiplies vectors element-wise only."""
    if weight == 1.0:
        return vector_expr
    return (
        f"({vector_expr} * CAST(array_fill(CAST(:feedback_weight AS real), "
        f"ARRAY[{int(dim)}]) AS vector))"
    )


# Ties break on the public chunk id as text, as the Python fusion sorts them.
_TIE_BREAK = "('chk_' || id) COLLATE \"C\""


def _feedback_leg_cte(
    weights: FusionWeights, target: str, dim: int, filters: Filters, scope: str
) -> str:
    """``vec_fb(id, score)``: the feedback round's vector leg. ``search``: the nearest
    chunks to the fed-back vector, a second vector search; ``rescore``: the first
    pass's candidates (both legs' hits, already in scope) scored against it, the best
    ``depth``, as :func:`ragd.retrieval.hybrid.rescored` does. The candidates go in as
    an array, which the plan looks up by primary key whatever it is: as ``IN (subquery)``
    a generic plan joined them by scanning every chunk (590 ms p50 at 1M)."""
    if weights.feedback_leg == "search":
        return _vector_cte("vec_fb", target, dim, filters, scope, "depth")
    dim = int(dim)
    return f"""vec_fb AS (
  SELECT c.id, 1 - (c.embedding <=> {target}) AS score
  FROM chunks AS c
  WHERE c.id = ANY(ARRAY(SELECT id FROM vec UNION SELECT id FROM kw))
    AND vector_dims(c.embedding) = {dim}
  ORDER BY c.embedding <=> {target}, ('chk_' || c.id) COLLATE "C"
  LIMIT :depth
)"""


def keyword_sql(
    terms: Sequence[str],
    collection_ids: list[str],
    filters: Filters,
    limit: int,
    candidates: Sequence[int] | None = None,
    *,
    keyword_exact_below: int = 0,
) -> tuple[str, dict[str, Any]]:
    """The BM25 top ``limit``: of ``candidates`` when given, else of every matching
    chunk, found from the scope when a filter leaves fewer than ``keyword_exact_below``
    chunks (:func:`_hits_cte`)."""
    params: dict[str, Any] = {"limit": limit}
    scope = _scope_sql(collection_ids, filters, params)
    small_scope = _keyword_small_scope(filters, candidates, keyword_exact_below)
    ctes = []
    if small_scope:
        ctes += scope_size_ctes(filters, params, keyword_exact_below)
        ctes.append(
            _small_scope_cte("kw_small", "kw_exact_cap", filters, params, keyword_exact_below)
        )
    ctes.append(_keyword_ctes(terms, scope, params, "limit", candidates, small_scope))
    return "WITH " + ",\n".join(ctes) + "\nSELECT id, score FROM kw ORDER BY score DESC, id", params


def _keyword_small_scope(
    filters: Filters, candidates: Sequence[int] | None, keyword_exact_below: int
) -> bool:
    """Whether an exact keyword leg needs the small-scope branch: only under a filter
    (a whole collection's size is not what makes the full-text index the wrong start)."""
    return bool(filters) and candidates is None and keyword_exact_below > 0


def keyword_plan_sql(
    terms: Sequence[str],
    collection_ids: list[str],
    filters: Filters,
    *,
    watermark: str,
    pending_cap: int,
    exact_cap: int,
) -> tuple[str, dict[str, Any]]:
    """What the keyword index's path needs to know first, in one round trip: the query's
    lexemes (PostgreSQL tokenizes both sides), the chunks inserted since the index's
    ``watermark`` (searched exactly with its candidates), how many log rows it has not
    seen (at ``pending_cap``, too many: the exact path), whether log rows it has not seen
    may have been pruned (``behind``: the exact path), and with a filter whether the
    scope holds fewer than ``exact_cap`` chunks (then the exact path is the cheaper).
    ``behind`` and ``pending`` come from one snapshot, and pruning moves the horizon and
    deletes rows in one transaction, so a pruned row is never silently missing."""
    params: dict[str, Any] = {
        "query": " ".join(terms),
        "watermark": watermark,
        "pending_cap": pending_cap,
        "exact_cap": exact_cap,
    }
    ctes = [
        f"pending AS MATERIALIZED (\n  SELECT chunk_id, op FROM keyword_log "
        f"WHERE {UNSEEN_LOG} LIMIT :pending_cap\n)"
    ]
    scope_chunks = "NULL::bigint"
    if filters:
        params["collection_ids"] = collection_ids
        ctes += scope_size_ctes(filters, params, exact_cap)
        scope_chunks = "(SELECT chunks FROM scope_size)"
    sql = (
        "WITH "
        + ",\n".join(ctes)
        + f"""
SELECT (SELECT array_agg(DISTINCT u.lexeme)
        FROM unnest(to_tsvector('english'::regconfig, ragd_fold(:query))) AS u) AS lexemes,
       (SELECT array_agg(chunk_id) FROM pending WHERE op = 'i') AS inserted,
       (SELECT count(*) FROM pending) AS pending,
       (SELECT pruned_below > pg_snapshot_xmin(CAST(:watermark AS pg_snapshot))
        FROM keyword_log_horizon WHERE id = 1) AS behind,
       {scope_chunks} AS scope_chunks"""
    )
    return sql, params


def survivors_sql(
    candidates: Sequence[int], collection_ids: list[str], filters: Filters
) -> tuple[str, dict[str, Any]]:
    """How many of ``candidates`` are in scope (the collections and the filter)."""
    params: dict[str, Any] = {"kw_ids": list(candidates)}
    scope = _scope_sql(collection_ids, filters, params)
    return (
        "SELECT count(*) FROM chunks AS c JOIN documents AS d ON d.id = c.document_id "
        f"WHERE c.id = ANY(CAST(:kw_ids AS bigint[])) AND {scope}",
        params,
    )


def vector_sql(
    literal: str,
    dim: int,
    collection_ids: list[str],
    filters: Filters,
    limit: int,
    *,
    exact_below: int,
) -> tuple[str, dict[str, Any]]:
    """Nearest chunks by cosine, exact or by the index as the scope's size decides."""
    params: dict[str, Any] = {"vector": literal, "limit": limit}
    scope = _scope_sql(collection_ids, filters, params)
    ctes = _scope_ctes(filters, params, exact_below, None)
    ctes.append(_vector_cte("vec", "CAST(:vector AS vector)", dim, filters, scope, "limit"))
    return (
        "WITH " + ",\n".join(ctes) + "\nSELECT id, score FROM vec ORDER BY score DESC, id",
        params,
    )


def hybrid_sql(
    terms: Sequence[str],
    literal: str,
    dim: int,
    collection_ids: list[str],
    filters: Filters,
    *,
    depth: int,
    limit: int,
    weights: FusionWeights,
    exact_below: int,
    candidates: Sequence[int] | None = None,
    keyword_exact_below: int = 0,
) -> tuple[str, dict[str, Any]]:
    """The whole hybrid ranking of :class:`ragd.retrieval.hybrid.HybridRanker` (convex
    fusion, its keyword weights scaled by the legs' agreement when adaptive, then one
    Rocchio feedback round on the vector leg) in one statement: both legs, the
    agreement, the fusion, the feedback vector (pgvector's ``avg`` over the best
    first-pass chunks) and the second vector search never leave the database."""
    params: dict[str, Any] = {
        "vector": literal,
        "depth": depth,
        "limit": limit,
        "keyword_weight": weights.keyword_weight,
        "final_keyword_weight": weights.final_keyword_weight,
        "feedback_docs": weights.feedback_docs,
        "feedback_weight": weights.feedback_weight,
        "agreement_full": weights.agreement_full,
        "agreement_depth": weights.agreement_depth,
    }
    scope = _scope_sql(collection_ids, filters, params)
    query = "CAST(:vector AS vector)"
    scale = "(SELECT scale FROM agree)"
    feedback_target = "(SELECT v FROM fb)"
    small_scope = _keyword_small_scope(filters, candidates, keyword_exact_below)
    ctes = [
        *_scope_ctes(filters, params, exact_below, keyword_exact_below if small_scope else None),
        _keyword_ctes(terms, scope, params, "depth", candidates, small_scope),
        _vector_cte("vec", query, dim, filters, scope, "depth"),
        _normalized_cte("kw_n", "kw"),
        _normalized_cte("vec_n", "vec"),
        _agreement_cte(),
        _fused_cte("first_pass", "kw_n", "vec_n", f":keyword_weight * {scale}"),
        f"""fb AS (
  SELECT l2_normalize({query} + {_scaled("avg(c.embedding)", weights.feedback_weight, dim)}) AS v
  FROM chunks AS c
  WHERE :feedback_docs > 0 AND c.id IN (
    SELECT id FROM first_pass ORDER BY score DESC, {_TIE_BREAK} LIMIT :feedback_docs
  )
)""",
        _feedback_leg_cte(weights, feedback_target, dim, filters, scope),
        f"""vec_final AS (
  SELECT id, score FROM vec_fb WHERE {feedback_target} IS NOT NULL
  UNION ALL
  SELECT id, score FROM vec WHERE {feedback_target} IS NULL
)""",
        _normalized_cte("vec_final_n", "vec_final"),
        # Without feedback the answer is the first pass, as in Python.
        _fused_cte(
            "fused",
            "kw_n",
            "vec_final_n",
            f"CASE WHEN {feedback_target} IS NULL THEN :keyword_weight "
            f"ELSE :final_keyword_weight END * {scale}",
        ),
    ]
    sql = (
        "WITH " + ",\n".join(ctes) + f"\nSELECT id, score FROM fused "
        f"ORDER BY score DESC, {_TIE_BREAK} LIMIT :limit"
    )
    return sql, params


__all__ = [
    "HNSW_MAX_DIM",
    "UNSEEN_LOG",
    "filter_sql",
    "hnsw_index_sql",
    "hybrid_sql",
    "keyword_plan_sql",
    "keyword_sql",
    "scope_size_ctes",
    "survivors_sql",
    "vector_literal",
    "vector_sql",
]
