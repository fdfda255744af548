"""Where the shared retrieval datasets live, and what to do when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ``RAGD_DATASETS_DIR`` first, then ``../shared/datasets`` beside the repo, then the
# workplace's shared folder (CI may clone the repo somewhere else).
CANDIDATES = [
    *([Path(os.environ["RAGD_DATASETS_DIR"])] if os.environ.get("RAGD_DATASETS_DIR") else []),
    Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets",
    Path("/work/shared/datasets"),
]


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets`` beside the repo. Missing data skips a local run with a reason,
    but fails under CI, where a silently skipped quality check would look like a pass."""
    for candidate in CANDIDATES:
        if (candidate / "msmarco" / "corpus.jsonl").is_file():
            return candidate.resolve()
    message = "retrieval datasets not found in " + ", ".join(str(c) for c in CANDIDATES)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
