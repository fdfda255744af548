"""The Generator seam: a question plus numbered passages in, a cited answer out.

Services number the retrieved chunks 1..k (``Passage.n``) and hand them to a
``Generator``; the answer cites them as ``[n]``. Three implementations exist:
``ExtractiveGenerator`` (no LLM), ``OpenAICompatGenerator`` (any OpenAI-compatible
chat-completions server) and ``AnthropicGenerator`` (Anthropic's Messages API). All three
are also ``Rewriter``s: they turn a chat follow-up into a standalone question.

``instructions`` are extra directions from whoever set up the conversation (a chat
session's ``system_prompt``): tone, length, audience. They are added after the grounding
rules and never replace them, so answers stay cited and sourced only from the passages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
    """An answer and the passage numbers it cites (valid ones only, first-cited order)."""

    text: str
    cited: tuple[int, ...]


@runtime_checkable
class Generator(Protocol):
    """Turns a question and numbered passages into an answer that cites them as [n]."""

    name: str

    def generate(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> GeneratedAnswer:
        """Answer ``question`` from ``passages``, following ``instructions`` where they do
        not conflict with the grounding rules; raises ``GenerationError`` on failure."""
        ...

    def check(self) -> None:
        """Raise ``GenerationError`` if the generator cannot serve (used by readiness)."""
        ...


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation: ``role`` is ``user`` or ``assistant``."""

    role: str
    content: str


@runtime_checkable
class Rewriter(Protocol):
    """A generator that can turn a follow-up question into one that stands alone."""

    def rewrite(self, history: Sequence[Turn], question: str) -> str:
        """``question`` rewritten to stand alone, given the earlier turns (oldest first);
        raises ``GenerationError`` on failure."""
        ...


@runtime_checkable
class StreamingGenerator(Generator, Protocol):
    """A generator that can also yield its answer as text deltas (for Server-Sent Events).

    The deltas already have invented citations removed; run ``extract_citations`` over
    their concatenation to learn which passages the answer cites.
    """

    def stream(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> Iterator[str]:
        """Yield the answer text piece by piece (``instructions`` as in ``generate``);
        raises ``GenerationError`` on failure."""
        ...
