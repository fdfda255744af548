"""The Generator seam: a question plus numbered passages in, a cited answer out.

Services number the retrieved chunks 1..k (``Passage.n``) and hand them to a
``Generator``; the answer cites them as ``[n]``. Two kinds exist: ``ExtractiveGenerator``
(no LLM) and ``LLMGenerator`` (a chat model behind one of the ``ChatBackend``s in
``ragd.generation.backends``). Every generator streams its answer, and its non-streaming
``generate`` is the same pieces joined (:func:`finished_answer`), so the two can never
drift apart. Every generator also rewrites a chat follow-up into a standalone question.

A generator does not decide which citations are real: its text cites passages as the
model wrote them, and ``AnswerService`` alone drops the numbers that name no passage.

``instructions`` are extra directions from whoever set up the conversation (a chat
session's ``system_prompt``): tone, length, audience. They are added after the grounding
rules and never replace them, so answers stay cited and sourced only from the passages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ragd.domain import Turn as Turn  # re-exported: a generator takes history as Turns
from ragd.generation.citations import cited_numbers, extract_citations

NO_ANSWER_TEXT = "I could not find an answer to that in the indexed documents."


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk as the generator sees it; ``n`` is its citation number."""

    n: int
    chunk_id: str
    document_id: str
    title: str | None
    text: str
    score: float
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class GeneratedAnswer:
    """An answer and the numbers its markers cite, in first-cited order.

    The numbers are as written, not yet checked against the passages: that is
    ``AnswerService``'s job, and only its result reaches a client.
    """

    text: str
    cited: tuple[int, ...]


@runtime_checkable
class Generator(Protocol):
    """Turns a question and numbered passages into an answer that cites them as [n].

    Implementations subclass this protocol to inherit ``generate``, which joins what
    ``stream`` yields.
    """

    name: str

    def check(self) -> None:
        """Raise ``GenerationError`` if the generator cannot serve (used by readiness)."""
        ...

    def stream(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> Iterator[str]:
        """Yield the answer text piece by piece (for Server-Sent Events), following
        ``instructions`` where they do not conflict with the grounding rules; raises
        ``GenerationError`` on failure. Closing the iterator early ends the work."""
        ...

    def generate(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> GeneratedAnswer:
        """The whole answer at once: what ``stream`` yields, joined and finished."""
        return finished_answer(self.stream(question, passages, instructions=instructions))

    def rewrite(self, history: Sequence[Turn], question: str) -> str:
        """``question`` rewritten to stand alone, given the earlier turns (oldest first);
        raises ``GenerationError`` on failure."""
        ...


def finished_answer(pieces: Iterable[str]) -> GeneratedAnswer:
    """The streamed ``pieces`` as one answer; a "don't know" reply, in whatever case and
    with whatever markers, becomes exactly ``NO_ANSWER_TEXT`` citing nothing."""
    text = "".join(pieces).strip()
    if _letters(extract_citations(text, ())[0]) == _letters(NO_ANSWER_TEXT):
        return GeneratedAnswer(NO_ANSWER_TEXT, ())
    return GeneratedAnswer(text, cited_numbers(text))


def _letters(text: str) -> str:
    return " ".join(re.findall(r"[^\W\d_]+", text.casefold()))
