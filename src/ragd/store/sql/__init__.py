"""SQL shared by every store: collections, documents, jobs, keys, chat over SQLAlchemy Core."""
