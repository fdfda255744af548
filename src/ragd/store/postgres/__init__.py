"""The PostgreSQL + pgvector store: its dialect, search SQL and connection handling."""
