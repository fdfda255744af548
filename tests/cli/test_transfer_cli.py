"""``ragd export`` and ``ragd import`` as real processes on real databases, including
processes killed with SIGKILL half-way: nothing may be lost or half-visible after."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ragd.signing import load_or_create_signer
from tests.databases import sqlalchemy_url
from tests.services.transfer_kit import fill
from tests.store.conftest import open_test_store

TABLES = ("collections", "documents", "document_sources", "chunks")


def environment(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    return {
        **env,
        "RAGD_DATA_DIR": str(data_dir),
        "RAGD_DATABASE_URL": database_url,
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def ragd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragd", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def counts(database_url: str) -> dict[str, int]:
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            return {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES
            }
    finally:
        engine.dispose()


def filled(database_url: str, *, documents: int, chunks_per_document: int) -> str:
    store = open_test_store(database_url)
    store.migrate()
    try:
        return fill(store, "big", documents=documents, chunks_per_document=chunks_per_document)
    finally:
        store.close()


def wait_until(
    condition: Callable[[], bool],
    process: subprocess.Popen[bytes],
    what: str,
    explain: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``condition`` until it holds while ``process`` still runs."""
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the process ended before {what}: make the collection larger")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"never saw {what}: {explain()}")


def import_is_writing(database_url: str) -> Callable[[], bool]:
    """True while another connection holds an open write transaction on the database."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database

        def sqlite_locked() -> bool:
            conn = sqlite3.connect(str(path), timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:
                return True
            finally:
                conn.close()

        return sqlite_locked
    name = make_url(database_url).database
    engine = create_engine(sqlalchemy_url(database_url))
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :name "
        "AND application_name = 'ragd' AND backend_xid IS NOT NULL"
    )

    def postgres_writing() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(query, {"name": name}).scalar_one())

    return postgres_writing


def activity(database_url: str) -> str:
    """What the database's sessions are doing, for a failure message."""
    if database_url.startswith("sqlite"):
        return ""
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT application_name, state, backend_xid, wait_event_type, "
                    "left(query, 80) FROM pg_stat_activity WHERE datname = :name"
                ),
                {"name": make_url(database_url).database},
            ).all()
            return "\n".join(str(tuple(row)) for row in rows)
    finally:
        engine.dispose()


def kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


@pytest.mark.timeout(1200)
def test_export_and_import_killed_half_way_lose_nothing(tmp_path: Path, database_url: str) -> None:
    filled(database_url, documents=80, chunks_per_document=100)
    env = environment(tmp_path / "data", database_url)
    archive = tmp_path / "out" / "big.ragd"
    archive.parent.mkdir()

    # An export killed while it writes leaves no file under the archive's name.
    exporting = subprocess.Popen(
        [sys.executable, "-m", "ragd", "export", "-c", "big", "-o", str(archive)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pattern = ".ragd-export-*/members/chunks.parquet"
    wait_until(
        lambda: any(p.stat().st_size > 0 for p in archive.parent.glob(pattern)),
        exporting,
        "chunks staged",
    )
    kill(exporting)
    assert not archive.exists()

    done = ragd(env, "export", "-c", "big", "-o", str(archive))
    assert done.returncode == 0, done.stderr
    assert "8000 chunks" in done.stdout

    # An import killed inside its transaction leaves nothing; run again, it is whole.
    before = counts(database_url)
    log = tmp_path / "import.log"
    with log.open("wb") as err:
        importing = subprocess.Popen(
            [sys.executable, "-m", "ragd", "import", str(archive), "-c", "big-copy"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    writing = import_is_writing(database_url)
    wait_until(
        lambda: "importing" in log.read_text() and writing(),
        importing,
        "the write",
        lambda: log.read_text() + activity(database_url),
    )
    kill(importing)
    assert counts(database_url) == before
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        with sqlite3.connect(str(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    again = ragd(env, "import", str(archive), "-c", "big-copy")
    assert again.returncode == 0, again.stderr
    assert "80 documents, 8000 chunks" in again.stdout
    after = counts(database_url)
    assert after == {
        "collections": before["collections"] + 1,
        "documents": 2 * before["documents"],
        "document_sources": 2 * before["document_sources"],
        "chunks": 2 * before["chunks"],
    }


def test_encrypted_archive_moves_between_deployments(tmp_path: Path, database_url: str) -> None:
    """Laptop to server: export encrypted on one data directory and database, import on
    another that trusts the first one's public key."""
    filled(database_url, documents=6, chunks_per_document=3)
    laptop = environment(tmp_path / "laptop", database_url)
    archive = tmp_path / "move.ragd"
    secret = tmp_path / "passphrase.txt"
    secret.write_text("tide and time\n")
    done = ragd(laptop, "export", "-c", "big", "-o", str(archive), "--passphrase-file", str(secret))
    assert done.returncode == 0, done.stderr
    assert "encrypted" in done.stdout

    laptop_key = load_or_create_signer(None, tmp_path / "laptop")
    public = tmp_path / "laptop.pub"
    public.write_text(laptop_key.pem())
    server_db = f"sqlite:///{tmp_path / 'server.db'}"
    server = environment(tmp_path / "server", server_db, RAGD_EXPORT_PASSPHRASE="tide and time")

    untrusted = ragd(server, "import", str(archive))
    assert untrusted.returncode == 1
    assert "not by the trusted key" in untrusted.stderr

    wrong = ragd({**server, "RAGD_EXPORT_PASSPHRASE": "time and tide"}, "import", str(archive))
    assert wrong.returncode == 1
    assert "wrong passphrase" in wrong.stderr
    assert counts(server_db)["documents"] == 0

    moved = ragd(server, "import", str(archive), "--public-key", str(public))
    assert moved.returncode == 0, moved.stderr
    assert "imported big" in moved.stdout and "6 documents, 18 chunks" in moved.stdout
    assert counts(server_db) == {
        "collections": 1,
        "documents": 6,
        "document_sources": 6,
        "chunks": 18,
    }

    clash = ragd(server, "import", str(archive), "--public-key", str(public))
    assert clash.returncode == 1
    assert "already exists" in clash.stderr
