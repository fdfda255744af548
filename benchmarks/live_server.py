"""A real ``ragd serve`` on loopback for the benchmarks that measure a running server.

One copy of what three benchmarks each wrote for themselves (web page, search under
ingestion, backpressure): a free port, the embedded defaults on a temporary data
directory, rate limits off (a benchmark sends far more than a person would), and a wait
for ``/readyz``. The server's output goes to ``server.log`` in the data directory, so a
start-up failure can say why.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    data_dir: Path,
    env_extra: dict[str, str] | None = None,
    *,
    ready_timeout_s: float = 180,
    args: list[str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """``ragd serve`` on ``data_dir`` (``args`` appended to its command line); returns the
    process and its base URL once ready."""
    port = free_port()
    env = {
        **os.environ,
        "RAGD_DATA_DIR": str(data_dir),
        "RAGD_LOG_LEVEL": "warning",
        "RAGD_RATE_LIMIT_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        **(env_extra or {}),
    }
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ragd",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *(args or []),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become ready")
