"""Small helpers shared by tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


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
