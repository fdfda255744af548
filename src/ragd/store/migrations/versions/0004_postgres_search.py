"""Chunk titles on every database; on PostgreSQL the search structures.

PostgreSQL gets pgvector embeddings (HNSW indexes are made per dimension when a collection
needs one), JSONB metadata with a GIN index, a generated ``tsvector`` over title, headings
and text with a GIN index, and the statistics BM25 needs (document frequency per lexeme,
chunk count and total length per collection), kept current by statement-level triggers so
that every path that adds or removes chunks (finish a job, delete a document or a
collection) keeps them true in the same transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _folding_pairs() -> tuple[str, str]:
    """Latin letters with diacritics and their bare letters (é → e), for ``translate``:
    SQLite's tokenizer folds diacritics, and PostgreSQL's needs the unaccent extension,
    which not every server has."""
    accented, plain = [], []
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = unicodedata.normalize("NFD", char)[0]
        if base != char and base.isascii() and base.isalpha():
            accented.append(char)
            plain.append(base)
    return "".join(accented), "".join(plain)


_ACCENTED, _PLAIN = _folding_pairs()

# Title weighs A, headings B, body D: the keyword leg weights them like SQLite's bm25().
_TSV_FUNCTIONS = [
    f"""
    CREATE FUNCTION ragd_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT translate(value, '{_ACCENTED}', '{_PLAIN}')
    $$
    """,
    """
    CREATE FUNCTION ragd_tsv(title text, headings json, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT setweight(to_tsvector('english'::regconfig, ragd_fold(coalesce(title, ''))), 'A')
          || setweight(
               to_tsvector('english'::regconfig, ragd_fold(coalesce(headings::text, ''))), 'B')
          || to_tsvector('english'::regconfig, ragd_fold(coalesce(body, '')))
    $$
    """,
    # BM25's document length: the highest word position, which counts stop words too,
    # like SQLite FTS5's token count does.
    """
    CREATE FUNCTION ragd_tsv_length(tsv tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT coalesce(max(p), 0)::integer FROM unnest(tsv) AS u, unnest(u.positions) AS p
    $$
    """,
]

_STATS_TRIGGERS = [
    """
    CREATE FUNCTION ragd_keyword_stats_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO keyword_stats AS s (collection_id, chunks, length)
        SELECT collection_id, count(*), sum(search_len) FROM new_rows
        GROUP BY collection_id ORDER BY collection_id
      ON CONFLICT (collection_id) DO UPDATE
        SET chunks = s.chunks + excluded.chunks, length = s.length + excluded.length;
      INSERT INTO keyword_terms AS t (collection_id, lexeme, df)
        SELECT r.collection_id, u.lexeme, count(*) FROM new_rows AS r, unnest(r.search_tsv) AS u
        GROUP BY 1, 2 ORDER BY 1, 2
      ON CONFLICT (collection_id, lexeme) DO UPDATE SET df = t.df + excluded.df;
      RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION ragd_keyword_stats_remove() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE keyword_stats AS s SET chunks = s.chunks - g.n, length = s.length - g.len
        FROM (SELECT collection_id, count(*) AS n, sum(search_len) AS len FROM old_rows
              GROUP BY collection_id) AS g
        WHERE s.collection_id = g.collection_id;
      -- One statement over one snapshot: lexemes whose count drops to zero are deleted,
      -- the others decremented (disjoint rows, so the two parts never meet).
      WITH g AS MATERIALIZED (
        SELECT r.collection_id, u.lexeme, count(*) AS n
        FROM old_rows AS r, unnest(r.search_tsv) AS u GROUP BY 1, 2
      ), gone AS (
        DELETE FROM keyword_terms AS t USING g
        WHERE t.collection_id = g.collection_id AND t.lexeme = g.lexeme AND t.df <= g.n
      )
      UPDATE keyword_terms AS t SET df = t.df - g.n FROM g
      WHERE t.collection_id = g.collection_id AND t.lexeme = g.lexeme AND t.df > g.n;
      RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER chunks_keyword_stats_add AFTER INSERT ON chunks "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION ragd_keyword_stats_add()",
    "CREATE TRIGGER chunks_keyword_stats_remove AFTER DELETE ON chunks "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION ragd_keyword_stats_remove()",
]


def upgrade() -> None:
    op.add_column("chunks", sa.Column("title", sa.Text, nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # PostgreSQL was not supported before this revision, so these tables are empty.
    op.execute("ALTER TABLE chunks DROP COLUMN embedding")
    op.execute("ALTER TABLE chunks ADD COLUMN embedding vector NOT NULL")
    # Keep vectors inline (they barely compress): an exact scan then reads no TOAST.
    op.execute("ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE MAIN")
    op.execute("ALTER TABLE documents ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb")
    op.execute(
        "CREATE INDEX ix_documents_metadata ON documents USING gin (metadata jsonb_path_ops)"
    )
    for statement in _TSV_FUNCTIONS:
        op.execute(statement)
    op.execute(
        "ALTER TABLE chunks ADD COLUMN search_tsv tsvector "
        "GENERATED ALWAYS AS (ragd_tsv(title, heading_path, text)) STORED"
    )
    op.execute(
        "ALTER TABLE chunks ADD COLUMN search_len integer "
        "GENERATED ALWAYS AS (ragd_tsv_length(ragd_tsv(title, heading_path, text))) STORED"
    )
    op.execute("CREATE INDEX ix_chunks_search_tsv ON chunks USING gin (search_tsv)")
    op.execute("CREATE INDEX ix_chunks_document ON chunks (document_id)")
    op.create_table(
        "keyword_terms",
        sa.Column("collection_id", sa.String(40), primary_key=True),
        sa.Column("lexeme", sa.Text, primary_key=True),
        sa.Column("df", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "keyword_stats",
        sa.Column("collection_id", sa.String(40), primary_key=True),
        sa.Column("chunks", sa.BigInteger, nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
    )
    for statement in _STATS_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS chunks_keyword_stats_remove ON chunks")
        op.execute("DROP TRIGGER IF EXISTS chunks_keyword_stats_add ON chunks")
        op.execute("DROP FUNCTION IF EXISTS ragd_keyword_stats_remove()")
        op.execute("DROP FUNCTION IF EXISTS ragd_keyword_stats_add()")
        op.drop_table("keyword_stats")
        op.drop_table("keyword_terms")
        op.execute("ALTER TABLE chunks DROP COLUMN search_len")
        op.execute("ALTER TABLE chunks DROP COLUMN search_tsv")
        op.execute("DROP FUNCTION IF EXISTS ragd_tsv_length(tsvector)")
        op.execute("DROP FUNCTION IF EXISTS ragd_tsv(text, json, text)")
        op.execute("DROP FUNCTION IF EXISTS ragd_fold(text)")
    op.drop_column("chunks", "title")
