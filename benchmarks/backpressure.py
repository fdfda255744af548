"""Backpressure under overload, against a real ``ragd serve`` on loopback.

Issue 17, section 4: at 4x the sustainable load, the p99 of admitted requests stays
within 2x of its unloaded value and nothing is lost or half-written. This starts
``ragd serve`` (SQLite, embedded worker, rate limits off) with
``RAGD_MAX_CONCURRENT_REQUESTS=--limit`` and ``RAGD_QUEUE_TIMEOUT_MS=--queue-timeout-ms``,
indexes ``--seed`` msmarco passages, then runs two phases of closed-loop search clients
(``POST /v1/search``, ``top_k`` 5):

1. ``--clients`` clients (the sustainable concurrency) for ``--seconds``;
2. 4x as many for ``--seconds``, while one more client uploads passages one after the
   other. A shed client pauses ``--shed-pause-ms`` and tries again, so the pressure stays.

It reports each phase's admitted p50/p99, their ratio (target: at most 2), the shed count,
and checks the uploads: every answer is 202 or 503, the collection holds exactly the
seeded plus the accepted documents (a 503 wrote nothing, a 202 was not lost), and every
202 document reaches ``ready`` within 15 s of the end of the overload. The whole run is
bounded (under a minute with the defaults, server start-up included).

    python benchmarks/backpressure.py [--clients 4] [--limit 4] [--queue-timeout-ms 50]
        [--seconds 10] [--seed 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from live_server import start_server

DATASET = next(
    (
        parent / "shared" / "datasets" / "msmarco"
        for parent in Path(__file__).resolve().parents
        if (parent / "shared" / "datasets" / "msmarco").is_dir()
    ),
    Path("shared/datasets/msmarco"),
)
READY_DEADLINE_S = 15.0  # keeps the whole run near a minute


def read_jsonl(path: Path, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


@dataclass
class Phase:
    name: str
    clients: int
    admitted: list[float] = field(default_factory=list)
    shed: int = 0
    other: dict[int, int] = field(default_factory=dict)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "phase": self.name,
            "clients": self.clients,
            "admitted": len(self.admitted),
            "admitted_per_s": round(len(self.admitted) / seconds, 1),
            "p50_s": round(pct(self.admitted, 50), 4),
            "p99_s": round(pct(self.admitted, 99), 4),
            "shed": self.shed,
            "other_statuses": self.other,
        }


def search_phase(
    base: str, queries: list[str], phase: Phase, seconds: float, shed_pause_s: float
) -> None:
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            i = offset
            while time.monotonic() < end:
                started = time.perf_counter()
                response = http.post(
                    "/v1/search", json={"query": queries[i % len(queries)], "top_k": 5}
                )
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200:
                        phase.admitted.append(elapsed)
                    elif response.status_code == 503:
                        phase.shed += 1
                    else:
                        phase.other[response.status_code] = (
                            phase.other.get(response.status_code, 0) + 1
                        )
                if response.status_code == 503:
                    time.sleep(shed_pause_s)
                i += phase.clients

    threads = [threading.Thread(target=client, args=(n,)) for n in range(phase.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@dataclass
class Uploads:
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)  # Location of each 202


def uploader(
    base: str, cid: str, docs: list[dict[str, Any]], stop: threading.Event
) -> tuple[Uploads, threading.Thread]:
    """One client posting ``docs`` one after the other until ``stop``, in a thread."""
    result = Uploads()

    def run() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for doc in docs:
                if stop.is_set():
                    return
                response = http.post(f"/v1/collections/{cid}/documents", json={"text": doc["text"]})
                code = response.status_code
                result.statuses[code] = result.statuses.get(code, 0) + 1
                if code == 202:
                    result.accepted.append(response.headers["location"])
                elif code == 503:
                    time.sleep(0.02)

    thread = threading.Thread(target=run)
    thread.start()
    return result, thread


def document_count(http: httpx.Client, cid: str) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = http.get(f"/v1/collections/{cid}/documents", params=params).json()
        total += len(page["documents"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total


def wait_ready(http: httpx.Client, locations: list[str], deadline: float) -> dict[str, int]:
    """Status of each accepted document once all are ready, or at the deadline."""
    pending = list(locations)
    counts: dict[str, int] = {}
    while pending and time.monotonic() < deadline:
        still: list[str] = []
        for location in pending:
            status = http.get(location).json()["status"]
            if status in ("ready", "failed"):
                counts[status] = counts.get(status, 0) + 1
            else:
                still.append(location)
        pending = still
        if pending:
            time.sleep(0.3)
    if pending:
        counts["unfinished"] = len(pending)
    return counts


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(base: str, corpus: list[dict[str, Any]], queries: list[str], args: Any) -> dict[str, Any]:
    seed, extra = corpus[: args.seed], corpus[args.seed :]
    with httpx.Client(base_url=base, timeout=60) as http:
        cid = http.post("/v1/collections", json={"name": "backpressure"}).json()["id"]
        locations = [
            http.post(f"/v1/collections/{cid}/documents", json={"text": d["text"]}).headers[
                "location"
            ]
            for d in seed
        ]
        seeded = wait_ready(http, locations, time.monotonic() + READY_DEADLINE_S)
        http.post("/v1/search", json={"query": queries[0]})  # warm the query path

        unloaded = Phase("unloaded", args.clients)
        search_phase(base, queries, unloaded, args.seconds, args.shed_pause_ms / 1000)

        overload = Phase("4x", args.clients * 4)
        stop = threading.Event()
        uploads, upload_thread = uploader(base, cid, extra, stop)
        search_phase(base, queries, overload, args.seconds, args.shed_pause_ms / 1000)
        stop.set()
        upload_thread.join()

        finished = wait_ready(http, uploads.accepted, time.monotonic() + READY_DEADLINE_S)
        stored = document_count(http, cid)
        metrics = http.get("/metrics").text
    shed_metric = next(
        (
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("ragd_http_requests_shed_total ")
        ),
        float("nan"),
    )
    a, b = unloaded.summary(args.seconds), overload.summary(args.seconds)
    upload_ok = set(uploads.statuses) <= {202, 503}
    return {
        "limit": args.limit,
        "queue_timeout_ms": args.queue_timeout_ms,
        "seeded": seeded,
        "phases": [a, b],
        "admitted_p99_ratio": round(b["p99_s"] / a["p99_s"], 2),
        "shed_total_metric": shed_metric,
        "uploads": {
            "statuses": uploads.statuses,
            "only_202_or_503": upload_ok,
            "accepted_finished": finished,
            "stored_documents": stored,
            "expected_documents": args.seed + len(uploads.accepted),
            # A 503 stored nothing and no 202 was lost (or stored twice).
            "nothing_half_written": upload_ok and stored == args.seed + len(uploads.accepted),
            # Every 202 reached ready within READY_DEADLINE_S after the overload.
            "every_accepted_ready": finished.get("ready", 0) == len(uploads.accepted),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--clients", type=int, default=4, help="the sustainable concurrency")
    parser.add_argument("--limit", type=int, default=None, help="default: --clients")
    parser.add_argument("--queue-timeout-ms", type=int, default=50)
    parser.add_argument("--shed-pause-ms", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=50, help="documents indexed first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.limit = args.limit or args.clients
    if args.seconds * 2 > 40:
        parser.error("--seconds: at most 20 (the run is bounded to about a minute)")
    corpus = read_jsonl(args.dataset / "corpus.jsonl", args.seed + 400)
    queries = [q["text"] for q in read_jsonl(args.dataset / "queries.jsonl", 200)]
    env = {
        "RAGD_MAX_CONCURRENT_REQUESTS": str(args.limit),
        "RAGD_QUEUE_TIMEOUT_MS": str(args.queue_timeout_ms),
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ragd-bench-") as tmp:
        process, base = start_server(
            Path(tmp), {"RAGD_WORKER_POLL_INTERVAL_S": "0.1", **env}, ready_timeout_s=60
        )
        try:
            result = run(base, corpus, queries, args)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["load_average"] = [round(x, 1) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for phase in result["phases"]:
        print(
            f"{phase['phase']:>8}: clients={phase['clients']:3d} admitted={phase['admitted']:5d} "
            f"({phase['admitted_per_s']}/s) p50={phase['p50_s']:.3f}s p99={phase['p99_s']:.3f}s "
            f"shed={phase['shed']} other={phase['other_statuses']}"
        )
    print(f"admitted p99 ratio (4x / unloaded): {result['admitted_p99_ratio']} (target <= 2)")
    print(f"uploads: {result['uploads']}")
    print(f"wall {result['wall_s']} s, load average {result['load_average']}")


if __name__ == "__main__":
    main()
