"""Evaluations: run a golden set against a live collection and score the rankings.

Shared by ``POST /v1/collections/{id}/evaluations`` and ``ragd eval --golden``, so a
golden-set file gives the same numbers from curl and from the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragd.auth import Allowed
from ragd.errors import InvalidInput
from ragd.services.collections import CollectionService
from ragd.services.evaluation.golden import GoldenQuery, GoldenReport, run_golden, validate_golden
from ragd.services.search import SEARCH_MODES, SearchMode, SearchService


class EvaluationService:
    def __init__(self, search: SearchService, collections: CollectionService) -> None:
        self.search = search
        self.collections = collections

    def evaluate(
        self,
        collection_ref: str,
        queries: Sequence[GoldenQuery],
        *,
        top_k: int = 10,
        mode: SearchMode = "hybrid",
        allowed: Allowed = None,
    ) -> GoldenReport:
        """Score ``queries`` against the collection (by id or name); one that does not
        exist or lies outside ``allowed`` (the caller's collection limit) is NotFound."""
        collection = self.collections.get(collection_ref, allowed=allowed)
        limits = self.search.limits  # RAGD_MAX_TOP_K and RAGD_MAX_QUERY_CHARS hold here too
        if not 1 <= top_k <= limits.top_k:
            raise InvalidInput(f"top_k must be between 1 and {limits.top_k}")
        if mode not in SEARCH_MODES:
            raise InvalidInput(f"mode must be one of {', '.join(SEARCH_MODES)}")
        checked = validate_golden(queries)
        for n, item in enumerate(checked, start=1):
            if len(item.query) > limits.query_chars:
                raise InvalidInput(f"query {n} must be 1-{limits.query_chars} characters")
        return run_golden(self.search, collection.id, checked, mode=mode, top_k=top_k)
