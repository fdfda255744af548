"""Peak memory and time of `ragd export` and `ragd import` as a collection grows.

Three synthetic collections (random unit vectors, 384 dimensions, 100 chunks per
document, written through the store's own job queue) are exported and imported into a
fresh database by real `ragd` processes; each process's peak RSS comes from
``wait4``. The smallest collection is the same-run baseline: what the process needs
whatever the data (Python, torch and the embedding model the import loads to compare
models), so the difference is what the data costs. Memory is bounded when that
difference stays flat from 10k to 100k chunks; time should grow about linearly.

    python benchmarks/export_import.py                       # SQLite, 100 / 10k / 100k
    python benchmarks/export_import.py --database-url postgresql+psycopg://...  # server
    python benchmarks/export_import.py --sizes 1000 20000    # quicker

The PostgreSQL URL must name a database the user may create databases beside: the
import goes into ``<name>_import``, created and dropped here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ragd.config import load_settings
from ragd.store import open_store

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(ROOT))

from tests.services.transfer_kit import fill  # noqa: E402

CHUNKS_PER_DOCUMENT = 100
RESULTS = Path(__file__).parent / "results" / "export_import.json"


def measured(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``command``; its wall time and peak resident memory (MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        assert process.stderr is not None
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    return {"seconds": round(elapsed, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def fresh_databases(kind_url: str | None, work: Path, label: str) -> tuple[str, str]:
    """A source and an import database for one size."""
    if kind_url is None:
        return (
            f"sqlite:///{work / f'{label}-source.db'}",
            f"sqlite:///{work / f'{label}-target.db'}",
        )
    base = make_url(kind_url)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    names = (f"{base.database}_{label}_source", f"{base.database}_{label}_target")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return tuple(base.set(database=n).render_as_string(hide_password=False) for n in names)  # type: ignore[return-value]


def run_size(chunks: int, database_url: str | None, work: Path) -> dict[str, Any]:
    documents = max(1, chunks // CHUNKS_PER_DOCUMENT)
    per_document = min(chunks, CHUNKS_PER_DOCUMENT)
    source_url, target_url = fresh_databases(database_url, work, f"c{chunks}")
    store = open_store(load_settings(database_url=source_url, data_dir=work))
    store.migrate()
    started = time.perf_counter()
    fill(store, "bench", documents=documents, chunks_per_document=per_document)
    fill_s = time.perf_counter() - started
    store.close()

    data_dir = work / f"data-{chunks}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGD_")},
        "RAGD_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
    }
    archive = work / f"bench-{chunks}.ragd"
    ragd = [sys.executable, "-m", "ragd"]
    export = measured(
        [*ragd, "export", "-c", "bench", "-o", str(archive)],
        {**env, "RAGD_DATABASE_URL": source_url},
    )
    imported = measured([*ragd, "import", str(archive)], {**env, "RAGD_DATABASE_URL": target_url})
    result = {
        "chunks": documents * per_document,
        "documents": documents,
        "archive_mib": round(archive.stat().st_size / 2**20, 1),
        "fill_s": round(fill_s, 1),
        "export": export,
        "import": imported,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--database-url", help="PostgreSQL instead of SQLite files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragd-bench-") as tmp:
        runs = [run_size(size, args.database_url, Path(tmp)) for size in args.sizes]
    kind = "postgresql" if args.database_url else "sqlite"
    RESULTS.parent.mkdir(exist_ok=True)
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored[kind] = runs
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    base = runs[0]
    print(
        f"\n| {kind} chunks | archive MiB | export s | export peak MiB (+ over smallest) "
        "| import s | import peak MiB (+ over smallest) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        e, i = run["export"], run["import"]
        print(
            f"| {run['chunks']:,} | {run['archive_mib']} | {e['seconds']} | "
            f"{e['peak_rss_mib']} (+{e['peak_rss_mib'] - base['export']['peak_rss_mib']:.0f}) | "
            f"{i['seconds']} | "
            f"{i['peak_rss_mib']} (+{i['peak_rss_mib'] - base['import']['peak_rss_mib']:.0f}) |"
        )


if __name__ == "__main__":
    main()
