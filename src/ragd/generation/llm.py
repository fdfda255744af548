"""What every LLM-backed generator does the same way, whatever its client library:
latency and token metrics, and turning a raw reply into a cited answer."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from ragd.generation.base import NO_ANSWER_TEXT, GeneratedAnswer, Passage
from ragd.generation.citations import extract_citations
from ragd.telemetry.metrics import LLM_DURATION, LLM_TOKENS


def observe(operation: str, outcome: str, started: float) -> None:
    LLM_DURATION.labels(operation=operation, outcome=outcome).observe(time.perf_counter() - started)


def count_tokens(model: str, kind: str, used: object) -> None:
    """Record a token count the server reported, when it reported one."""
    if isinstance(used, int) and used > 0:
        LLM_TOKENS.labels(model=model, type=kind).inc(used)


def _normalized(text: str) -> str:
    return " ".join(re.findall(r"[^\W\d_]+", text.casefold()))


def cited_answer(raw: str, passages: Sequence[Passage]) -> GeneratedAnswer:
    """Drop invented citations; a "don't know" reply becomes exactly NO_ANSWER_TEXT.

    An answer that cites nothing valid is kept as it is; callers see ``cited == ()``.
    """
    text, cited = extract_citations(raw, {p.n for p in passages})
    if _normalized(text) == _normalized(NO_ANSWER_TEXT):
        return GeneratedAnswer(NO_ANSWER_TEXT, ())
    return GeneratedAnswer(text, cited)
