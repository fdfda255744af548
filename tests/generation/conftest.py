from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_openai import FakeOpenAI


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server that accepts any key."""
    with FakeOpenAI() as server:
        yield server
