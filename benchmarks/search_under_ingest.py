"""Search latency with and without a bulk upload running, against a real ``ragd serve``.

Issue 14: with 20 search clients and one uploader, search p50 went from 4.4 s to 19.9 s,
because the embedded worker embeds in the API process. This starts ``ragd serve`` on
loopback (embedded worker, rate limits off), seeds a collection, then runs ``--clients``
search clients for ``--seconds`` alone, and again while one client uploads a bulk of
documents (``--upload`` of them, posted as fast as the server takes them). It reports the
p50/p95 of each phase, the ratio of the p50s (target: at most 1.5) and how many of the
uploaded documents the worker finished during the loaded phase, so a "fix" that simply
stops ingesting shows. Phases alternate ``--rounds`` times (alone, loaded, alone, ...)
so that a shared machine's changing load hits both.

    python benchmarks/search_under_ingest.py [--clients 20] [--seconds 30] [--rounds 2]
        [--upload 400] [--env RAGD_X=y ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from live_server import start_server

# The shared datasets sit next to the checkout (or its worktrees' parent).
DATASET = next(
    (
        parent / "shared" / "datasets" / "msmarco"
        for parent in Path(__file__).resolve().parents
        if (parent / "shared" / "datasets" / "msmarco").is_dir()
    ),
    Path("shared/datasets/msmarco"),
)


def read_jsonl(path: Path, skip: int, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if index < skip or not line.strip():
                continue
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def wait_idle(http: httpx.Client, cid: str, timeout_s: float = 1800) -> None:
    """Until no document of the collection is queued or processing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = sum(
            len(
                http.get(
                    f"/v1/collections/{cid}/documents", params={"status": state, "limit": 1}
                ).json()["documents"]
            )
            for state in ("queued", "processing")
        )
        if not busy:
            return
        time.sleep(1.0)
    raise RuntimeError("ingestion did not finish")


def count_status(http: httpx.Client, cid: str, status: str) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"status": status, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = http.get(f"/v1/collections/{cid}/documents", params=params).json()
        total += len(page["documents"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total


def search_phase(base: str, queries: list[str], clients: int, seconds: float) -> list[float]:
    """``clients`` threads searching in a loop for ``seconds``; every latency in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=300) as http:
            i = offset
            while time.monotonic() < end:
                started = time.perf_counter()
                response = http.post(
                    "/v1/search", json={"query": queries[i % len(queries)], "top_k": 5}
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"search answered {response.status_code}")
                with lock:
                    latencies.append(elapsed)
                i += clients

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def uploader(base: str, cid: str, docs: list[dict[str, Any]], stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=300) as http:
        for doc in docs:
            if stop.is_set():
                return
            http.post(f"/v1/collections/{cid}/documents", json={"text": doc["text"]})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=300, help="documents indexed first")
    parser.add_argument("--upload", type=int, default=400, help="documents per loaded phase")
    parser.add_argument("--env", action="append", default=[], help="RAGD_X=y for the server")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env_extra = dict(item.split("=", 1) for item in args.env)
    corpus = read_jsonl(args.dataset / "corpus.jsonl", 0, args.seed + args.upload * args.rounds)
    queries = [q["text"] for q in read_jsonl(args.dataset / "queries.jsonl", 0, 200)]
    with tempfile.TemporaryDirectory(prefix="ragd-bench-") as tmp:
        process, base = start_server(Path(tmp), env_extra)
        try:
            result = run(base, corpus, queries, args)
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    result["server_env"] = env_extra
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for phase in result["phases"]:
        print(
            f"{phase['phase']:>6}: n={phase['n']:4d} p50={phase['p50_s']:.3f}s "
            f"p95={phase['p95_s']:.3f}s ready_during={phase.get('ready_during', '-')} "
            f"drain_after={phase.get('drain_after_s', '-')}s"
        )
    print(
        f"p50 alone {result['p50_alone_s']:.3f}s, with upload {result['p50_loaded_s']:.3f}s, "
        f"ratio {result['ratio']:.2f} (target <= 1.5)"
    )


def run(base: str, corpus: list[dict[str, Any]], queries: list[str], args: Any) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=300) as http:
        cid = http.post("/v1/collections", json={"name": "bench"}).json()["id"]
        for doc in corpus[: args.seed]:
            http.post(f"/v1/collections/{cid}/documents", json={"text": doc["text"]})
        wait_idle(http, cid)
        search_phase(base, queries, args.clients, 5)  # warm-up, not counted
        phases: list[dict[str, Any]] = []
        alone: list[float] = []
        loaded: list[float] = []
        for round_index in range(args.rounds):
            latencies = search_phase(base, queries, args.clients, args.seconds)
            alone += latencies
            phases.append(summary("alone", latencies))
            part = corpus[
                args.seed + round_index * args.upload : args.seed + (round_index + 1) * args.upload
            ]
            ready_before = count_status(http, cid, "ready")
            stop = threading.Event()
            up = threading.Thread(target=uploader, args=(base, cid, part, stop))
            up.start()
            latencies = search_phase(base, queries, args.clients, args.seconds)
            stop.set()
            up.join()
            loaded += latencies
            phase = summary("loaded", latencies)
            phase["ready_during"] = count_status(http, cid, "ready") - ready_before
            drain_started = time.monotonic()
            wait_idle(http, cid)
            phase["drain_after_s"] = round(time.monotonic() - drain_started, 1)
            phases.append(phase)
    return {
        "clients": args.clients,
        "seconds_per_phase": args.seconds,
        "phases": phases,
        "p50_alone_s": statistics.median(alone),
        "p50_loaded_s": statistics.median(loaded),
        "p95_alone_s": pct(alone, 95),
        "p95_loaded_s": pct(loaded, 95),
        "ratio": statistics.median(loaded) / statistics.median(alone),
        "load_average": os.getloadavg(),
    }


def summary(name: str, latencies: list[float]) -> dict[str, Any]:
    return {
        "phase": name,
        "n": len(latencies),
        "p50_s": statistics.median(latencies),
        "p95_s": pct(latencies, 95),
    }


if __name__ == "__main__":
    main()
