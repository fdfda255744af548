"""The query's embedding, computed while the keyword leg runs.

On a small embedded collection a new query's hybrid search is mostly two waits in a
row: the model (~4 ms with ONNX) and the FTS5 keyword leg (~2 ms), neither of which needs
the other, and both release the GIL. So the model is started on a helper thread first,
the keyword leg runs on the request's thread meanwhile, and the vector legs wait for the
vector only when they need it. A query already in the embedder's cache skips the thread.
The helper runs in a copy of the caller's context, so its log lines keep the request id.

The cost, for whoever tunes this next: on SQLite the search's read transaction is open
while it waits for the vector, so a pooled connection is held through the model's queue
(the engine's default pool: 5 connections plus 10 overflow). Under many concurrent new
queries a keyword-only search may then wait for a connection behind them; with ONNX on
every core the overlap measured within the noise (docs/performance.md), so turning it
off (``HybridParams.embed_beside_keyword``) costs little if that shows up.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ragd.domain import Vector
from ragd.embedding.base import Embedder

# Model calls are serialized by the embedder's own gate, so a few threads only keep the
# next query ready to go; a submission beyond them waits in the queue, as it would at
# the gate.
_HELPERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ragd-query-embedding")

QueryVector = Callable[[], Vector]
"""Returns the query's vector, waiting for it if it is still being computed."""


def embed_beside(embedder: Embedder, query: str) -> QueryVector:
    """Start embedding ``query`` now, unless the embedder already holds it."""
    if _is_cached(embedder, query):
        return lambda: embedder.embed_query(query)
    pending = _HELPERS.submit(contextvars.copy_context().run, embedder.embed_query, query)
    return pending.result


def embed_in_turn(embedder: Embedder, query: str) -> QueryVector:
    """Embed ``query`` only when asked (one thread, one thing at a time)."""
    return lambda: embedder.embed_query(query)


def _is_cached(embedder: Embedder, query: str) -> bool:
    holds = getattr(embedder, "holds", None)
    return bool(holds(query)) if holds is not None else False


__all__ = ["QueryVector", "embed_beside", "embed_in_turn"]
