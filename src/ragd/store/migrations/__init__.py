"""Alembic migrations: one set for every database ragd supports."""
