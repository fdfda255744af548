"""Session-wide fixtures: the real embedding model, loaded once."""

from __future__ import annotations

import os

import pytest

from ragd.embedding import LocalEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    model = LocalEmbedder("all-MiniLM-L6-v2")
    assert model.dimension == 384  # loads it now, once, not inside the first test
    return model
