"""HTTP throughput of ``POST /v1/search`` against a bare FastAPI endpoint, same run.

Issue 17, section 3: with 16 concurrent clients, ``/v1/search`` should serve at least
half the requests per second of a bare FastAPI endpoint that returns a payload of the
same size, on the same machine in the same run. This starts

* a real ``ragd serve`` (SQLite, embedded worker, an API key required, rate limits on
  with a budget no client reaches, so the limiter still counts every request) with
  ``--seed`` msmarco passages indexed, and
* a bare FastAPI app under uvicorn with the same worker count, loop and HTTP parser,
  whose ``POST /v1/search`` validates a body with a pydantic model and returns, for the
  body's ``mode``, the very JSON ragd answered for that mode (so the same bytes go out),

then drives each with ``--clients`` keep-alive connections for ``--seconds``, alternating
ragd and the bare app ``--rounds`` times per workload so both see the same machine load.
Workloads (``--modes``):

* ``keyword-repeated``: one keyword query over and over: what the HTTP layer costs on
  top of the cheapest search;
* ``keyword``: the msmarco queries in turn, keyword mode;
* ``hybrid``: the msmarco queries in turn, hybrid mode (query embedding, ~25 ms of CPU
  each on these cores, dominates).

The load comes from ``wrk`` (Debian package ``wrk``) when it is installed, otherwise from
an httpx async client in its own process (which costs more CPU, so the ratio is then
pessimistic for both sides alike). Reported: requests/s, p50 and p99 per side, and the
ratio ragd / bare per workload.

    python benchmarks/http_throughput.py [--seconds 10] [--rounds 2] [--clients 16]
        [--modes keyword-repeated,keyword,hybrid] [--seed 200] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from live_server import free_port, start_server

DATASET = next(
    (
        parent / "shared" / "datasets" / "msmarco"
        for parent in Path(__file__).resolve().parents
        if (parent / "shared" / "datasets" / "msmarco").is_dir()
    ),
    Path(os.environ.get("RAGD_BENCH_MSMARCO", "shared/datasets/msmarco")),
)
MODES = ("keyword-repeated", "keyword", "hybrid")
READY_DEADLINE_S = 300.0


def read_jsonl(path: Path, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def make_key() -> str:
    alphabet = string.ascii_letters + string.digits
    prefix = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"rgd_{prefix}_{secrets.token_urlsafe(32)}"


# -- the bare app -------------------------------------------------------------------------


def serve_bare(port: int, payload_file: Path, workers: int) -> None:
    """The baseline: FastAPI as its tutorial shows it, under uvicorn with ragd's options."""
    import uvicorn

    os.environ["BARE_PAYLOADS"] = str(payload_file)
    uvicorn.run(
        "http_throughput:bare_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        app_dir=str(Path(__file__).parent),
    )


class BareBody(BaseModel):
    query: str
    top_k: int = 10
    mode: str = "hybrid"


def bare_app() -> Any:
    from fastapi import FastAPI

    payloads: dict[str, Any] = json.loads(Path(os.environ["BARE_PAYLOADS"]).read_text())
    app = FastAPI()

    @app.post("/v1/search")
    async def search(body: BareBody) -> Any:
        return payloads[body.mode]

    return app


def start_bare(payloads: dict[str, Any], folder: Path, workers: int) -> tuple[Any, str]:
    payload_file = folder / "payloads.json"
    payload_file.write_text(json.dumps(payloads))
    port = free_port()
    log = (folder / "bare.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare", str(port), str(payload_file), str(workers)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{base}/v1/search", json={"query": "x", "mode": "keyword"}, timeout=2)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the bare app did not start")


# -- load -----------------------------------------------------------------------------------

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{headers}
local bodies = {{{bodies}}}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT {{\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, \\"errors\\": %d, "
    .. "\\"p50_ms\\": %f, \\"p99_ms\\": %f}}\\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def run_wrk(
    base: str, bodies: list[str], headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    script = _WRK_SCRIPT.format(
        headers="\n".join(
            f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()
        ),
        bodies=", ".join(lua_string(b) for b in bodies),
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{clients}",
                f"-d{seconds:g}s",
                "--timeout",
                "30s",
                "-s",
                handle.name,
                f"{base}/v1/search",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result


async def _httpx_load(
    base: str, bodies: list[str], headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    non2xx = 0
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def client(offset: int) -> None:
            nonlocal non2xx
            i = offset
            while time.monotonic() < end:
                started = time.perf_counter()
                response = await http.post(
                    "/v1/search",
                    content=bodies[i % len(bodies)],
                    headers={**headers, "Content-Type": "application/json"},
                )
                latencies.append((time.perf_counter() - started) * 1000)
                non2xx += response.status_code >= 300
                i += clients

        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "non2xx": non2xx,
        "errors": 0,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
    }


def load(
    base: str, bodies: list[str], headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    if shutil.which("wrk"):
        result = run_wrk(base, bodies, headers, clients, seconds)
        result["client"] = "wrk"
    else:
        result = asyncio.run(_httpx_load(base, bodies, headers, clients, seconds))
        result["client"] = "httpx"
    if result["non2xx"] or result["errors"]:
        raise RuntimeError(f"{base}: {result['non2xx']} non-2xx answers, {result['errors']} errors")
    result["rps"] = round(result["requests"] / result["seconds"], 1)
    return result


# -- the run --------------------------------------------------------------------------------


def seed_ragd(base: str, headers: dict[str, str], passages: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
        cid = http.post("/v1/collections", json={"name": "throughput"}).json()["id"]
        pending = []
        for row in passages:
            response = http.post(f"/v1/collections/{cid}/documents", json={"text": row["text"]})
            response.raise_for_status()
            pending.append(response.headers["location"])
        deadline = time.monotonic() + READY_DEADLINE_S
        while pending and time.monotonic() < deadline:
            pending = [
                p for p in pending if http.get(p).json()["status"] not in ("ready", "failed")
            ]
            time.sleep(0.5 if pending else 0)
    if pending:
        raise RuntimeError("seeding did not finish")


def workload(mode: str, queries: list[str]) -> list[str]:
    if mode == "keyword-repeated":
        return [json.dumps({"query": queries[0], "mode": "keyword"})]
    return [json.dumps({"query": q, "mode": mode}) for q in queries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve-bare", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=200, help="msmarco passages to index")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-auth", action="store_true", help="RAGD_AUTH_DISABLED=true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.serve_bare:
        port, payload_file, workers = args.serve_bare
        serve_bare(int(port), Path(payload_file), int(workers))
        return
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    passages = read_jsonl(DATASET / "corpus.jsonl", args.seed)
    queries = [row["text"] for row in read_jsonl(DATASET / "queries.jsonl", 200)]
    key = make_key()
    env = {
        "RAGD_RATE_LIMIT_ENABLED": "true",
        "RAGD_RATE_LIMIT": "100000000/minute",
        "RAGD_INGEST_RATE_LIMIT": "100000000/minute",
    }
    headers: dict[str, str] = {}
    if args.no_auth:
        env["RAGD_AUTH_DISABLED"] = "true"
    else:
        env["RAGD_ADMIN_KEY"] = key
        headers["Authorization"] = f"Bearer {key}"
    results: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="ragd-http-") as folder:
        data = Path(folder)
        ragd, ragd_base = start_server(data, env, args=["--workers", str(args.workers)])
        bare = None
        try:
            seed_ragd(ragd_base, headers, passages)
            payloads = {}
            with httpx.Client(base_url=ragd_base, headers=headers, timeout=60) as http:
                for mode in ("keyword", "hybrid", "vector"):
                    response = http.post("/v1/search", json={"query": queries[0], "mode": mode})
                    response.raise_for_status()
                    payloads[mode] = response.json()
            results["payload_bytes"] = {m: len(json.dumps(p)) for m, p in payloads.items()}
            bare, bare_base = start_bare(payloads, data, args.workers)
            for mode in modes:
                bodies = workload(mode, queries)
                sides: dict[str, list[dict[str, Any]]] = {"ragd": [], "bare": []}
                for number in range(args.rounds):
                    order = [("ragd", ragd_base, headers), ("bare", bare_base, {})]
                    for side, base, hdrs in order if number % 2 == 0 else order[::-1]:
                        sides[side].append(load(base, bodies, hdrs, args.clients, args.seconds))
                summary = {side: combine(runs) for side, runs in sides.items()}
                summary["ratio"] = round(summary["ragd"]["rps"] / summary["bare"]["rps"], 3)
                results["runs"][mode] = summary
                print(
                    f"{mode:17s} ragd {summary['ragd']['rps']:8.1f} req/s p50 "
                    f"{summary['ragd']['p50_ms']:7.2f} p99 {summary['ragd']['p99_ms']:7.2f} ms | "
                    f"bare {summary['bare']['rps']:8.1f} req/s p50 "
                    f"{summary['bare']['p50_ms']:7.2f} p99 {summary['bare']['p99_ms']:7.2f} ms | "
                    f"ratio {summary['ratio']:.3f}",
                    flush=True,
                )
        finally:
            for process in (ragd, bare):
                if process is not None:
                    process.terminate()
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
    results["load_average"] = os.getloadavg()
    if args.json:
        print(json.dumps(results, indent=2))


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the rounds; the latency figures are the worst round's (a conservative
    p99, since wrk reports percentiles per run, not raw samples)."""
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {
        "requests": requests,
        "rps": round(requests / seconds, 1),
        "p50_ms": round(max(r["p50_ms"] for r in runs), 2),
        "p99_ms": round(max(r["p99_ms"] for r in runs), 2),
        "non2xx": sum(r["non2xx"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "client": runs[0]["client"],
        "rounds": [{k: r[k] for k in ("rps", "p50_ms", "p99_ms")} for r in runs],
    }


if __name__ == "__main__":
    main()
