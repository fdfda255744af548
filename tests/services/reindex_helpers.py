"""What the reindex tests share: documents worth re-chunking, and an embedding server
(the protocol-level fake) whose document batches can be held at a gate, so a test
decides where a reindex stands without any timing."""

from __future__ import annotations

import threading

from tests.embedding.fake_embeddings import bags_of_words

TOPICS = ("harbour", "orchard", "glacier", "bakery", "observatory", "vineyard")
QUERIES = ("harbour lighthouse keeper", "orchard apples", "glacier ice", "winter festival")


def document_text(i: int) -> str:
    """A few paragraphs under headings: a small chunk size makes several chunks of it."""
    topic = TOPICS[i % len(TOPICS)]
    return (
        f"# The {topic} {i}\n\nThe {topic} number {i} keeps a careful ledger of the winter "
        f"festival and of every storm that passed.\n\n## Visiting\n\nVisitors of the {topic} "
        f"come on day {i % 7} and meet the lighthouse keeper, who sells apples and ice."
    )


class Gate:
    """A vectors function for ``FakeEmbeddings``: bags of words, except that once
    :meth:`close_after` was called, the batch after ``calls`` more of them waits (with
    ``blocked`` set) until :meth:`open`. Only batches of several texts count: documents
    are embedded that way, a search query alone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self.blocked = threading.Event()
        self._batches = 0
        self._block_at: int | None = None

    def close_after(self, batches: int) -> None:
        with self._lock:
            self._block_at = self._batches + batches
            self._open.clear()
            self.blocked.clear()

    def open(self) -> None:
        with self._lock:
            self._block_at = None
        self._open.set()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        if len(texts) > 1:
            with self._lock:
                self._batches += 1
                wait = self._block_at is not None and self._batches > self._block_at
            if wait:
                self.blocked.set()
                self._open.wait(300)
        return bags_of_words(texts)
