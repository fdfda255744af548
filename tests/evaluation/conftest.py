"""Where the shared retrieval datasets live, and what to do when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets`` beside the repo. Missing data skips a local run with a reason,
    but fails under CI, where a silently skipped quality check would look like a pass."""
    if not (DATASETS / "msmarco" / "corpus.jsonl").is_file():
        message = f"retrieval datasets not found at {DATASETS.resolve()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return DATASETS.resolve()
