"""Alembic environment: runs on the connection the Store hands over.

ragd calls migrations from code (``Store.migrate``) rather than from an ``alembic.ini``,
so the connection arrives in ``config.attributes``; no URL is read here.
"""

from __future__ import annotations

from alembic import context

from ragd.store.tables import metadata_obj

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata_obj,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
