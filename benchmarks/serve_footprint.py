"""Start-up time and idle memory of ``ragd serve`` with the local embedding model.

Issue 17, section 3: the idle resident memory of ``ragd serve`` with the local model
should be at most 400 MB, and the time from start to ``/readyz`` 200 is reported. This
starts a real ``ragd serve`` (SQLite on a fresh data directory, embedded worker) ``--runs``
times and reports, per run:

* ``ready_s``: from launching the process to the first ``/readyz`` 200 (polled every
  50 ms): interpreter, imports, migrations, model load;
* ``idle_rss_mb``: the server's resident memory ``--idle-s`` seconds after ready, and
  the same summed over its child processes (the parser forkserver, when started);
* ``after_search_rss_mb``: after one hybrid search and one document ingested, then
  ``--idle-s`` seconds of rest: what an idle server that has done some work holds.

PSS (proportional set size) is reported next to RSS: the forkserver child shares pages
with nobody but itself, so there the two agree; it is the honest total of the tree.

    python benchmarks/serve_footprint.py [--runs 3] [--idle-s 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from live_server import free_port


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [g for c in found for g in _children(c)]


def memory(pid: int) -> dict[str, float]:
    kids = _children(pid)
    return {
        "rss_mb": round(_status_kb(pid, "VmRSS") / 1024, 1),
        "pss_mb": round(_pss_kb(pid) / 1024, 1),
        "threads": _status_kb(pid, "Threads"),
        "children": len(kids),
        "tree_pss_mb": round((_pss_kb(pid) + sum(_pss_kb(c) for c in kids)) / 1024, 1),
    }


def one_run(idle_s: float, env_extra: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ragd-footprint-") as folder:
        port = free_port()
        env = {
            **os.environ,
            "RAGD_DATA_DIR": folder,
            "RAGD_LOG_LEVEL": "warning",
            "HF_HUB_OFFLINE": "1",
            **env_extra,
        }
        started = time.perf_counter()
        log = (Path(folder) / "server.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "ragd", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            ready_s = None
            while time.perf_counter() - started < 300:
                if process.poll() is not None:
                    raise RuntimeError((Path(folder) / "server.log").read_text()[-2000:])
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        ready_s = time.perf_counter() - started
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            if ready_s is None:
                raise RuntimeError("not ready within 300 s")
            time.sleep(idle_s)
            idle = memory(process.pid)
            with httpx.Client(base_url=base, timeout=120) as http:
                cid = http.post("/v1/collections", json={"name": "f"}).json()["id"]
                location = http.post(
                    f"/v1/collections/{cid}/documents",
                    json={"text": "The footprint benchmark indexes one short document."},
                ).headers["location"]
                deadline = time.monotonic() + 120
                while http.get(location).json()["status"] not in ("ready", "failed"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the document did not finish")
                    time.sleep(0.2)
                http.post("/v1/search", json={"query": "footprint benchmark"}).raise_for_status()
            time.sleep(idle_s)
            worked = memory(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        return {"ready_s": round(ready_s, 2), "idle": idle, "after_work": worked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=5)
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env_extra = dict(item.split("=", 1) for item in args.env)
    runs = []
    for number in range(args.runs):
        run = one_run(args.idle_s, env_extra)
        runs.append(run)
        print(
            f"run {number + 1}: ready in {run['ready_s']:.2f} s; idle RSS "
            f"{run['idle']['rss_mb']:.0f} MB (tree PSS {run['idle']['tree_pss_mb']:.0f} MB, "
            f"{run['idle']['threads']} threads, {run['idle']['children']} children); after "
            f"work RSS {run['after_work']['rss_mb']:.0f} MB (tree PSS "
            f"{run['after_work']['tree_pss_mb']:.0f} MB, {run['after_work']['children']} "
            "children)",
            flush=True,
        )
    summary = {
        "ready_s_median": statistics.median(r["ready_s"] for r in runs),
        "idle_rss_mb_median": statistics.median(r["idle"]["rss_mb"] for r in runs),
        "idle_tree_pss_mb_median": statistics.median(r["idle"]["tree_pss_mb"] for r in runs),
        "after_work_rss_mb_median": statistics.median(r["after_work"]["rss_mb"] for r in runs),
        "after_work_tree_pss_mb_median": statistics.median(
            r["after_work"]["tree_pss_mb"] for r in runs
        ),
        "env": env_extra,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(summary) if not args.json else json.dumps({"runs": runs, **summary}, indent=2))


if __name__ == "__main__":
    main()
