"""Search results (chunks) → a ranking of documents, as judgments are made per document.

A document's rank is the rank of its best chunk. Search returns chunks, so one long
document can fill several places; asking for a few times more chunks than ``k`` is what
lets ``k`` distinct documents come out.
"""

from __future__ import annotations

from ragd.services.search import SearchMode, SearchService

CHUNKS_PER_DOCUMENT = 5


def ranked_documents(
    search: SearchService, query: str, *, collection_id: str, mode: SearchMode, k: int
) -> list[str]:
    """The top ``k`` document ids for ``query``, best first, through the search service
    (so it measures whatever fusion and scoring ragd currently does)."""
    deepest = search.limits.top_k
    depth = min(deepest, CHUNKS_PER_DOCUMENT * k)
    documents, hits = _search(search, query, collection_id, mode, depth)
    if len(documents) < k and hits == depth < deepest:
        # Long documents took many places: look deeper once before giving up.
        documents, _ = _search(search, query, collection_id, mode, deepest)
    return documents[:k]


def _search(
    search: SearchService, query: str, collection_id: str, mode: SearchMode, depth: int
) -> tuple[list[str], int]:
    hits = search.search(query, collections=[collection_id], top_k=depth, mode=mode)
    return list(dict.fromkeys(hit.document_id for hit in hits)), len(hits)
