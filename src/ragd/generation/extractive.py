"""An answer generator without an LLM: the best-matching sentences, each cited.

Honest, offline and instant. The passages are split into sentences; a sentence scores by
how much of the question's content words it covers (weighted by IDF across the passages,
with half credit for words only in its passage's title or headings) plus a small bonus
for its passage's rank. Up to ``max_sentences`` sentences that cover at least
``min_overlap`` of the question are kept, near-duplicates dropped, best first, each
ending with its passage's ``[n]``. Everything is deterministic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ragd.generation.base import NO_ANSWER_TEXT, Generator, Passage, Turn
from ragd.generation.rewrite import standalone_question
from ragd.retrieval.stopwords import CONTENT_STOP_WORDS

__all__ = ["ExtractiveGenerator", "content_terms", "split_sentences"]

_WORD = re.compile(r"\w+")
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]\s+|\d{1,3}[.)]\s+|>\s?|\|)")
_SENTENCE_BREAK = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])"
    # Scraped text often loses the space: "in 2019.The next sentence".
    r"|(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])"
)
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|cf|dr|mr|mrs|ms|prof|no|fig|approx|inc|ltd|st)|\b[A-Z])\.$",
    re.IGNORECASE,
)
# Footnote markers already in the source text would read as our citations.
_SOURCE_FOOTNOTE = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_END_PUNCTUATION = re.compile(r"[.!?][\"')\]]*$")

_MAX_SENTENCE_CHARS = 400
_MIN_SENTENCE_WORDS = 3
_CONTEXT_CREDIT = 0.5  # a question word found only in the title/headings
_RANK_BONUS = 0.05
_RELATIVE_CUTOFF = 0.5  # later sentences must score at least this share of the best
_NEAR_DUPLICATE = 0.7  # Jaccard similarity of content words


def _stem(word: str) -> str:
    """A deliberately light suffix stripper; it only has to be consistent."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 6:
        word = word[:-2]
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]
    return word


def content_terms(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stop words, in order."""
    terms = []
    for word in _WORD.findall(text.lower()):
        if word in CONTENT_STOP_WORDS or (len(word) == 1 and not word.isdigit()):
            continue
        terms.append(_stem(word))
    return terms


def _units(text: str) -> Iterator[str]:
    """Paragraphs (hard-wrapped lines joined) and list items; headings are skipped."""
    for block in _BLOCK_BREAK.split(text):
        lines: list[str] = []
        for line in block.splitlines():
            if _HEADING.match(line) or _LIST_ITEM.match(line):
                if lines:
                    yield " ".join(lines)
                    lines = []
                if not _HEADING.match(line):
                    yield _LIST_ITEM.sub("", line, count=1).strip(" |")
            elif line.strip():
                lines.append(line.strip())
        if lines:
            yield " ".join(lines)


def split_sentences(text: str) -> list[str]:
    """Split passage text into sentences, keeping abbreviations like "e.g." intact."""
    sentences: list[str] = []
    for unit in _units(text):
        merged: list[str] = []
        for piece in _SENTENCE_BREAK.split(unit):
            if merged and _ABBREVIATION.search(merged[-1]):
                merged[-1] += " " + piece
            else:
                merged.append(piece)
        sentences.extend(s.strip() for s in merged if s.strip())
    return sentences


@dataclass(frozen=True)
class _Candidate:
    score: float
    coverage: float
    rank: int
    position: int
    n: int
    text: str
    terms: frozenset[str]


class ExtractiveGenerator(Generator):
    """Composes an answer from the retrieved passages' best sentences; no LLM."""

    name: str = "extractive"

    def __init__(self, max_sentences: int = 3, min_overlap: float = 0.2) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        if not 0.0 <= min_overlap <= 1.0:
            raise ValueError("min_overlap must be between 0 and 1")
        self.max_sentences = max_sentences
        self.min_overlap = min_overlap

    def __repr__(self) -> str:
        return (
            f"ExtractiveGenerator(max_sentences={self.max_sentences}, "
            f"min_overlap={self.min_overlap})"
        )

    def check(self) -> None:
        """Always usable: nothing to connect to."""

    def stream(
        self, question: str, passages: Sequence[Passage], *, instructions: str | None = None
    ) -> Iterator[str]:
        """The best-matching sentences, each cited, as one piece: there is nothing to wait
        for. ``instructions`` are ignored: the answer is source sentences quoted verbatim,
        and there is no model to direct."""
        yield self._answer(question, passages)

    def rewrite(self, history: Sequence[Turn], question: str) -> str:
        """The deterministic follow-up rewrite over the earlier user turns."""
        return standalone_question([*(t.content for t in history if t.role == "user"), question])

    def _answer(self, question: str, passages: Sequence[Passage]) -> str:
        question_terms = frozenset(content_terms(question))
        if not passages or not question_terms:
            return NO_ANSWER_TEXT
        chosen = self._select(self._candidates(question_terms, passages))
        if not chosen:
            return NO_ANSWER_TEXT
        return " ".join(_with_marker(c.text, c.n) for c in chosen)

    def _candidates(
        self, question: frozenset[str], passages: Sequence[Passage]
    ) -> list[_Candidate]:
        idf = _idf(question, [frozenset(content_terms(p.text)) for p in passages])
        total = sum(idf.values())
        candidates = []
        for rank, passage in enumerate(passages):
            labels = " ".join([passage.title or "", *passage.heading_path])
            context = frozenset(content_terms(labels))
            bonus = _RANK_BONUS * (len(passages) - rank) / len(passages)
            text = _SOURCE_FOOTNOTE.sub("", passage.text)
            for position, sentence in enumerate(split_sentences(text)):
                terms = frozenset(content_terms(sentence))
                matched = question & terms
                if not matched or len(_WORD.findall(sentence)) < _MIN_SENTENCE_WORDS:
                    continue
                from_context = (question & context) - matched
                coverage = (len(matched) + _CONTEXT_CREDIT * len(from_context)) / len(question)
                weight = sum(idf[t] for t in matched)
                weight += _CONTEXT_CREDIT * sum(idf[t] for t in from_context)
                candidates.append(
                    _Candidate(
                        score=weight / total + bonus,
                        coverage=coverage,
                        rank=rank,
                        position=position,
                        n=passage.n,
                        text=_shorten(sentence),
                        terms=terms,
                    )
                )
        return candidates

    def _select(self, candidates: Iterable[_Candidate]) -> list[_Candidate]:
        ordered = sorted(candidates, key=lambda c: (-c.score, c.rank, c.position))
        chosen: list[_Candidate] = []
        for candidate in ordered:
            if len(chosen) == self.max_sentences:
                break
            if candidate.coverage < self.min_overlap:
                continue
            if chosen and candidate.score < _RELATIVE_CUTOFF * chosen[0].score:
                break
            if any(_near_duplicate(candidate, other) for other in chosen):
                continue
            chosen.append(candidate)
        return chosen


def _idf(question: frozenset[str], documents: Sequence[frozenset[str]]) -> dict[str, float]:
    """BM25-style IDF of each question term over the passages (always positive)."""
    count = len(documents)
    idf = {}
    for term in question:
        df = sum(term in doc for doc in documents)
        idf[term] = math.log(1.0 + (count - df + 0.5) / (df + 0.5))
    return idf


def _near_duplicate(a: _Candidate, b: _Candidate) -> bool:
    if a.text.casefold() in b.text.casefold() or b.text.casefold() in a.text.casefold():
        return True
    union = a.terms | b.terms
    return bool(union) and len(a.terms & b.terms) / len(union) >= _NEAR_DUPLICATE


def _shorten(sentence: str) -> str:
    if len(sentence) <= _MAX_SENTENCE_CHARS:
        return sentence
    cut = sentence[:_MAX_SENTENCE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _with_marker(sentence: str, n: int) -> str:
    """``"Paris is in France."`` -> ``"Paris is in France [1]."``"""
    sentence = sentence.rstrip()
    end = _END_PUNCTUATION.search(sentence)
    if end:
        return f"{sentence[: end.start()]} [{n}]{sentence[end.start() :]}"
    return f"{sentence.rstrip(',;:')} [{n}]."
