"""Background jobs across real processes on a shared database: a worker killed with
SIGKILL mid-job leaves a job another worker resumes from its last progress; a worker
told to stop (SIGTERM) hands its job back without charging an attempt.

The workers are ``tests/services/job_worker.py``: ragd's own runner loop with a
test-only kind whose steps wait at a gate (a file), so each test decides where the job
stands when the signal arrives, without any timing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ragd.config import load_settings
from ragd.domain import JobInfo
from ragd.embedding import LocalEmbedder
from ragd.services.collections import CollectionService
from ragd.services.jobs import JobService
from ragd.store import open_store
from ragd.store.base import Store
from tests.services.job_worker import GATED, gated

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120  # an upper bound for slow machines, never a speed assertion


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(load_settings(database_url=database_url))
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def jobs(store: Store, embedder: LocalEmbedder, tmp_path: Path) -> JobService:
    settings = load_settings(database_url="sqlite://", data_dir=tmp_path)
    service = JobService(store, CollectionService(store, embedder), settings, settings.limits())
    service.register(GATED, gated)
    return service


class Worker:
    def __init__(self, database_url: str, tmp_path: Path, name: str) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RAGD_DATABASE_URL": database_url,
            "RAGD_DATA_DIR": str(tmp_path),
            "HF_HUB_OFFLINE": "1",
            "RAGD_WORKER_LEASE_S": "30",
            "RAGD_WORKER_POLL_INTERVAL_S": "0.1",
            "RAGD_SHUTDOWN_GRACE_S": "20",
        }
        self.log_path = tmp_path / f"worker-{name}.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.services.job_worker"],
                env=env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(WAIT_S)

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT_S)


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []

    def start(name: str) -> Worker:
        worker = Worker(database_url, tmp_path, name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill_if_running()


def wait_for(
    store: Store, job_id: str, ready: Callable[[JobInfo], bool], worker: Worker
) -> JobInfo:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = store.get_job(job_id)
        if ready(job):
            return job
        assert worker.process.poll() is None, worker.log_path.read_text(errors="replace")
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {store.get_job(job_id)}")


def submit(jobs: JobService, tmp_path: Path) -> JobInfo:
    params = {
        "steps": 5,
        "gate_at": 2,
        "gate": str(tmp_path / "gate"),
        "log": str(tmp_path / "steps.log"),
    }
    return jobs.submit(kind=GATED, collection_id=None, params=params, actor="local")


def steps_by_pid(tmp_path: Path) -> list[tuple[int, int]]:
    lines = (tmp_path / "steps.log").read_text().split()
    return [(int(lines[i]), int(lines[i + 1])) for i in range(0, len(lines), 2)]


def test_killed_worker_job_is_resumed_by_another(
    store: Store, jobs: JobService, workers: Callable[[str], Worker], tmp_path: Path
) -> None:
    job = submit(jobs, tmp_path)
    first = workers("first")
    wait_for(store, job.id, lambda j: j.status == "running" and j.progress_done == 2, first)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(WAIT_S)
    assert store.get_job(job.id).status == "running"  # the dead worker's lease remains

    (tmp_path / "gate").touch()
    second = workers("second")
    done = wait_for(store, job.id, lambda j: j.finished, second)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert done.result == {"resumed_from": 2, "pid": second.process.pid}
    assert steps_by_pid(tmp_path) == [
        (0, first.process.pid),
        (1, first.process.pid),
        (2, second.process.pid),
        (3, second.process.pid),
        (4, second.process.pid),
    ]
    assert second.stop(signal.SIGTERM) == 0


def test_sigterm_hands_the_job_back(
    store: Store, jobs: JobService, workers: Callable[[str], Worker], tmp_path: Path
) -> None:
    job = submit(jobs, tmp_path)
    worker = workers("only")
    wait_for(store, job.id, lambda j: j.status == "running" and j.progress_done == 2, worker)
    assert worker.stop(signal.SIGTERM) == 0
    released = store.get_job(job.id)
    assert released.status == "queued" and released.attempts == 0
    assert released.lease_owner is None and released.progress_done == 2
