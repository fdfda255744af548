"""The embedded SQLite store: FTS5 keyword search and an in-memory exact vector index."""
