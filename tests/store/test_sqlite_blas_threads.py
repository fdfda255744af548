"""The embedded store runs numpy's OpenBLAS on one thread (see
:func:`ragd.store.sqlite.vector_cache.single_threaded_blas`), unless the operator chose.

Each case is a fresh interpreter: the thread count is process-wide state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import json, sys
from threadpoolctl import threadpool_info
from ragd.config import load_settings
from ragd.store import open_store

def openblas():
    return [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]

import numpy  # noqa: F401  (loads OpenBLAS before the store does anything)
before = openblas()
store = open_store(load_settings(data_dir=sys.argv[1]))
store.migrate()
print(json.dumps({"before": before, "after": openblas()}))
store.close()
"""


def _threads(tmp_path: Path, **env: str) -> dict[str, list[int]]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, list[int]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_opening_a_sqlite_store_limits_openblas_to_one_thread(tmp_path: Path) -> None:
    threads = _threads(tmp_path)
    if not threads["before"]:
        pytest.skip("numpy here is not linked against OpenBLAS")
    assert threads["after"] == [1] * len(threads["before"])


def test_an_operators_openblas_setting_is_kept(tmp_path: Path) -> None:
    threads = _threads(tmp_path, OPENBLAS_NUM_THREADS="2")
    if not threads["before"]:
        pytest.skip("numpy here is not linked against OpenBLAS")
    assert threads["after"] == threads["before"] == [2] * len(threads["before"])
