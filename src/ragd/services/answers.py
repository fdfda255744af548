"""Answers: retrieve passages, let the generator answer, keep only real citations.

This is the one place that decides which citations are real: a generator's text cites
passages as the model wrote them, and here every number that names no retrieved passage
is dropped from the text (``ask``, ``stream`` and with them chat), so ``[9]`` of five
passages never reaches a client, and ``citations`` lists what the cleaned text cites.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ragd.auth import Allowed
from ragd.domain import Filters
from ragd.errors import InvalidInput
from ragd.generation.base import Generator, Passage
from ragd.generation.citations import CitationFilter, extract_citations
from ragd.limits import CEILINGS
from ragd.services.search import SearchHit, SearchService

DEFAULT_ANSWER_TOP_K = 5
ANSWER_TOP_K_MAX = CEILINGS.answer_top_k


@dataclass(frozen=True)
class Citation:
    n: int
    document_id: str
    chunk_id: str
    title: str | None
    text: str
    score: float


@dataclass(frozen=True)
class AnswerResult:
    answer: str
    citations: list[Citation]


@dataclass(frozen=True)
class AnswerDelta:
    """A piece of a streamed answer's text (invented citations already removed)."""

    text: str


@dataclass(frozen=True)
class AnswerCitations:
    """The last event of a streamed answer: the passages its text cited."""

    citations: list[Citation]


AnswerEvent = AnswerDelta | AnswerCitations


class AnswerService:
    def __init__(self, search: SearchService, generator: Generator) -> None:
        self.search_service = search
        self.generator = generator

    def retrieve(
        self,
        question: str,
        *,
        collections: list[str] | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        allowed: Allowed = None,
    ) -> list[Passage]:
        top_k = top_k or DEFAULT_ANSWER_TOP_K
        if not 1 <= top_k <= ANSWER_TOP_K_MAX:
            raise InvalidInput(f"top_k must be between 1 and {ANSWER_TOP_K_MAX} for answers")
        hits = self.search_service.search(
            question,
            collections=collections,
            top_k=top_k,
            mode="hybrid",
            filters=filters,
            allowed=allowed,
        )
        return [_passage(n, hit) for n, hit in enumerate(hits, start=1)]

    def ask(
        self,
        question: str,
        *,
        collections: list[str] | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        allowed: Allowed = None,
        instructions: str | None = None,
    ) -> AnswerResult:
        """Retrieve, then answer; ``instructions`` (a chat session's system prompt) go to
        the generator, below its grounding rules."""
        passages = self.retrieve(
            question, collections=collections, top_k=top_k, filters=filters, allowed=allowed
        )
        return self.answer(question.strip(), passages, instructions)

    def answer(
        self, question: str, passages: list[Passage], instructions: str | None = None
    ) -> AnswerResult:
        """The generator's answer from ``passages``, citing only passages that exist."""
        generated = self.generator.generate(question, passages, instructions=instructions)
        by_number = {p.n: p for p in passages}
        text, cited = extract_citations(generated.text, by_number)
        return AnswerResult(answer=text, citations=[_citation(by_number[n]) for n in cited])

    def stream(
        self,
        question: str,
        *,
        collections: list[str] | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        allowed: Allowed = None,
        instructions: str | None = None,
    ) -> Iterator[AnswerEvent]:
        """Retrieve now (so bad input and unknown collections raise here, before any
        event), then return the answer as ``AnswerDelta``s and one final
        ``AnswerCitations``. Generation errors raise from the iterator; closing it early
        closes the generator's stream (and with it the LLM request). ``instructions`` as
        in :meth:`ask`."""
        passages = self.retrieve(
            question, collections=collections, top_k=top_k, filters=filters, allowed=allowed
        )
        return self.answer_stream(question.strip(), passages, instructions)

    def answer_stream(
        self, question: str, passages: list[Passage], instructions: str | None = None
    ) -> Iterator[AnswerEvent]:
        """:meth:`answer` as events: the text as it arrives, invented citations removed,
        then the citations."""
        by_number = {p.n: p for p in passages}
        cleaner = CitationFilter(by_number)
        pieces = self.generator.stream(question, passages, instructions=instructions)
        try:
            for piece in pieces:
                if text := cleaner.feed(piece):
                    yield AnswerDelta(text)
            if tail := cleaner.close():
                yield AnswerDelta(tail)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        yield AnswerCitations([_citation(by_number[n]) for n in cleaner.cited])


def _passage(n: int, hit: SearchHit) -> Passage:
    return Passage(
        n=n,
        chunk_id=hit.chunk_id,
        document_id=hit.document_id,
        title=hit.title,
        text=hit.text,
        score=hit.score,
        heading_path=hit.heading_path,
    )


def _citation(passage: Passage) -> Citation:
    return Citation(
        n=passage.n,
        document_id=passage.document_id,
        chunk_id=passage.chunk_id,
        title=passage.title,
        text=passage.text,
        score=passage.score,
    )
