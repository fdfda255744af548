"""Small helpers shared by tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# Client addresses for in-process TestClients. Before any API key exists ragd serves
# loopback clients only, and TestClient's default client host ("testclient") is not one.
LOOPBACK_CLIENT = ("127.0.0.1", 50000)
REMOTE_CLIENT = ("10.0.0.2", 1234)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    base_url: str
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for_status(
    http: httpx.Client, url: str, status: str, timeout_s: float = 60
) -> dict[str, Any]:
    """Poll a document until it reaches ``status``; fail on another terminal state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        document: dict[str, Any] = http.get(url).json()
        if document["status"] == status:
            return document
        if document["status"] in ("ready", "failed"):
            raise AssertionError(f"document ended {document['status']}: {document}")
        time.sleep(0.1)
    raise AssertionError(f"document not {status} after {timeout_s}s")


def start_server(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    args: Sequence[str] = (),
    **env_extra: str,
) -> tuple[subprocess.Popen[bytes], LiveServer]:
    """``ragd serve --host host *args`` as a real process on ``data_dir``; returns once
    /readyz answers 200 on 127.0.0.1. Rate limits are off unless ``env_extra`` turns
    them on: tests poll and upload far faster than the default budget allows."""
    log_path = data_dir / f"server-{time.monotonic_ns()}.log"
    port = free_port()
    env = {
        **os.environ,
        "RAGD_DATA_DIR": str(data_dir),
        "RAGD_LOG_FORMAT": "json",
        "RAGD_WORKER_POLL_INTERVAL_S": "0.1",
        "HF_HUB_OFFLINE": "1",
        "RAGD_RATE_LIMIT_ENABLED": "false",
        **env_extra,
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "ragd", "serve", "--host", host, "--port", str(port)),
                *args,
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, log_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return process, server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server not ready in time:\n{server.log()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def parse_sse(body: str) -> list[tuple[str | None, str]]:
    """Server-Sent Events in ``body`` as ``(event name or None, data)`` pairs."""
    events: list[tuple[str | None, str]] = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].removeprefix(" "))
        if name is not None or data:
            events.append((name, "\n".join(data)))
    return events


def cli_env_vars() -> set[str]:
    """Every environment variable an option of a ``ragd`` command reads (its ``envvar``),
    from the click objects themselves: the help text wraps differently with the width."""
    import typer.main

    from ragd.cli.app import app

    def walk(command: Any) -> set[str]:  # typer may vendor its own click
        names: set[str] = set()
        for param in command.params:
            envvar = param.envvar
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
        for sub in getattr(command, "commands", {}).values():
            names |= walk(sub)
        return names

    return walk(typer.main.get_command(app))
