-- Run by the postgres image once, when its data directory is first initialised, as the
-- superuser in POSTGRES_DB: ragd stores embeddings in pgvector columns.
CREATE EXTENSION IF NOT EXISTS vector;
