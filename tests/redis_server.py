"""A real Redis for tests: the one on 127.0.0.1:6379, or one started here.

Neither available: the tests that need it skip with the reason, except under CI=true,
where a missing service is a failure rather than a silent gap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.helpers import free_port

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextmanager
def running_redis(work_dir: Path) -> Iterator[str]:
    """Yields the URL of a Redis that answers PING."""
    if answers(DEFAULT_URL):
        yield DEFAULT_URL
        return
    executable = shutil.which("redis-server")
    if executable is None:
        reason = "no Redis on 127.0.0.1:6379 and no redis-server to start one"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
        pytest.skip(reason)
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    process = subprocess.Popen(
        [
            *(executable, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(work_dir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {port} did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
