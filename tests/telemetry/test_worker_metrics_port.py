"""``ragd worker --metrics-port``: a worker process has no HTTP API, so this is how
Prometheus sees its heartbeat (the worker-absent and worker-stalled alerts) and its
ingestion metrics. A real process, scraped over a real socket, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port


def heartbeat(url: str) -> float | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "ragd_worker_heartbeat_timestamp_seconds" and sample.value > 0:
                return float(sample.value)
    return None


def test_worker_serves_its_heartbeat_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "RAGD_DATA_DIR": str(tmp_path),
        "RAGD_WORKER_POLL_INTERVAL_S": "0.1",
        "HF_HUB_OFFLINE": "1",
    }
    log = (tmp_path / "worker.log").open("wb")
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "ragd", "worker", "--metrics-port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 120
        beat = None
        while beat is None and time.monotonic() < deadline and process.poll() is None:
            beat = heartbeat(url)
            time.sleep(0.2)
        output = (tmp_path / "worker.log").read_text(errors="replace")
        assert beat is not None, f"no heartbeat at {url}:\n{output}"
        assert beat >= started - 1.0
        # Polling an empty queue keeps beating: a later scrape sees a newer heartbeat.
        later = None
        while (later is None or later <= beat) and time.monotonic() < deadline:
            later = heartbeat(url)
            time.sleep(0.2)
        assert later is not None and later > beat
        # Never probed, so no readiness series (a 0 would raise the not-ready alert).
        families = text_string_to_metric_families(httpx.get(url, timeout=5).text)
        names = {sample.name for family in families for sample in family.samples}
        assert "ragd_readiness_check_success" not in names
        assert "ragd_worker_heartbeat_timestamp_seconds" in names
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "worker.log").read_text(errors="replace")
