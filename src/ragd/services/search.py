"""Search: keyword, vector or hybrid retrieval over one or more collections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ragd.auth import Allowed
from ragd.config import Settings
from ragd.domain import Collection, Filters, ScoredId
from ragd.embedding.base import Embedder
from ragd.errors import InvalidInput
from ragd.limits import CEILINGS, Limits
from ragd.retrieval.hybrid import HybridParams, HybridRanker
from ragd.retrieval.terms import keyword_terms
from ragd.services.collections import CollectionService
from ragd.services.values import validate_filters
from ragd.store.base import Store
from ragd.telemetry.metrics import SEARCH_DURATION

SearchMode = Literal["hybrid", "keyword", "vector"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "keyword", "vector")


@dataclass(frozen=True)
class SearchHit:
    chunk_id: str
    document_id: str
    collection_id: str
    title: str | None
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    heading_path: tuple[str, ...] = ()


def validate_query(query: str, max_chars: int = CEILINGS.query_chars) -> str:
    query = query.strip()
    if not query:
        raise InvalidInput("query must not be empty")
    if len(query) > max_chars:
        raise InvalidInput(f"query must be at most {max_chars} characters")
    return query


class SearchService:
    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        collections: CollectionService,
        settings: Settings,
        limits: Limits | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.collections = collections
        self.settings = settings
        self.limits = limits or settings.limits()
        self.hybrid = HybridRanker(
            store,
            embedder,
            HybridParams(
                keyword_weight=settings.hybrid_keyword_weight,
                final_keyword_weight=settings.hybrid_final_keyword_weight,
                feedback_docs=settings.hybrid_feedback_docs,
                feedback_weight=settings.hybrid_feedback_weight,
                fusion=settings.hybrid_fusion,
                feedback_leg=settings.hybrid_feedback_leg,
                rrf_k=settings.rrf_k,
            ),
        )

    def search(
        self,
        query: str,
        *,
        collections: list[str] | None = None,
        top_k: int | None = None,
        mode: SearchMode = "hybrid",
        filters: Filters | None = None,
        allowed: Allowed = None,
    ) -> list[SearchHit]:
        """Search ``collections`` (all the caller may see when None); naming one outside
        ``allowed`` is NotFound, exactly like naming one that does not exist."""
        query = validate_query(query, self.limits.query_chars)
        top_k = top_k or self.settings.search_top_k
        if not 1 <= top_k <= self.limits.top_k:
            raise InvalidInput(f"top_k must be between 1 and {self.limits.top_k}")
        if mode not in SEARCH_MODES:
            raise InvalidInput(f"mode must be one of {', '.join(SEARCH_MODES)}")
        filters = validate_filters(filters, self.limits)
        scope = [c.id for c in self._scope(collections, mode, allowed)]
        if not scope:
            return []
        with SEARCH_DURATION.labels(mode=mode).time():
            ranked = self._rank(query, scope, top_k, mode, filters)
            return self._hits(ranked[:top_k])

    def _scope(
        self, refs: list[str] | None, mode: SearchMode, allowed: Allowed
    ) -> list[Collection]:
        """The collections to search. Unnamed means every collection this embedder can
        search; a named one embedded by another model is refused, not silently wrong."""
        if refs is None:
            every = self.collections.list_all(allowed=allowed, counts=False)
            if mode == "keyword":
                return every
            return [c for c in every if c.embedding_model == self.embedder.model_name]
        chosen = [
            self.collections.get(ref, allowed=allowed, counts=False) for ref in dict.fromkeys(refs)
        ]
        if mode != "keyword":
            for collection in chosen:
                if collection.embedding_model != self.embedder.model_name:
                    raise InvalidInput(
                        f"collection {collection.name!r} was embedded with "
                        f"{collection.embedding_model!r}, not the configured "
                        f"{self.embedder.model_name!r}; use mode=keyword"
                    )
        return chosen

    def _rank(
        self, query: str, scope: list[str], top_k: int, mode: SearchMode, filters: Filters
    ) -> list[ScoredId]:
        if mode == "keyword":
            return self.store.keyword_search(
                keyword_terms(query), collection_ids=scope, filters=filters, limit=top_k
            )
        if mode == "vector":
            return self.store.vector_search(
                self.embedder.embed_query(query),
                collection_ids=scope,
                filters=filters,
                limit=top_k,
            )
        return self.hybrid.rank(query, collection_ids=scope, filters=filters, top_k=top_k)

    def _hits(self, ranked: list[ScoredId]) -> list[SearchHit]:
        chunks = self.store.get_chunks([hit.chunk_id for hit in ranked])
        hits = []
        for hit in ranked:
            chunk = chunks.get(hit.chunk_id)
            if chunk is None:  # deleted between ranking and fetching
                continue
            hits.append(
                SearchHit(
                    chunk_id=chunk.id,
                    document_id=chunk.document_id,
                    collection_id=chunk.collection_id,
                    title=chunk.title,
                    text=chunk.text,
                    score=hit.score,
                    metadata=chunk.metadata,
                    heading_path=chunk.heading_path,
                )
            )
        return hits
