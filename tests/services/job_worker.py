"""A job worker process for the tests: ragd's real container and runner loop, with one
test-only kind registered (ragd ships no job kind for testing).

``python -m tests.services.job_worker`` reads the usual ``RAGD_*`` environment and runs
until SIGTERM/SIGINT, exactly as the runner thread of ``ragd worker`` does.

The ``test.gated`` handler works through ``params["steps"]`` steps from where the job's
progress says it stopped, appending ``"<step> <pid>"`` to ``params["log"]`` for each; from
step ``params["gate_at"]`` on it waits until the file ``params["gate"]`` exists,
reporting progress meanwhile (which keeps its lease and lets a SIGTERM through).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import JobInfo
from ragd.services.jobs import JobContext

GATED = "test.gated"


def gated(job: JobInfo, ctx: JobContext) -> dict[str, Any]:
    params = job.params
    steps, gate_at = int(params["steps"]), int(params["gate_at"])
    gate, log = Path(params["gate"]), Path(params["log"])
    for step in range(job.progress_done, steps):
        while step >= gate_at and not gate.exists():
            ctx.progress(step, steps)
            time.sleep(0.05)
        with log.open("a") as out:
            out.write(f"{step} {os.getpid()}\n")
        ctx.progress(step + 1, steps)
    return {"resumed_from": job.progress_done, "pid": os.getpid()}


def main() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    container = Container(load_settings())
    try:
        container.database.migrate()
        container.jobs.register(GATED, gated)
        print("job worker ready", flush=True)
        container.jobs.run(stop)
    finally:
        container.close()


if __name__ == "__main__":
    main()
