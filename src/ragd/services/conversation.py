"""Turning a follow-up question into one that stands alone, before retrieval.

"and when was it restored?" retrieves nothing useful by itself; the bridge it is about
was named in an earlier turn. Every generator can ``rewrite`` a follow-up: an LLM asks
the model (trimming the history to its token budget), the extractive generator uses the
deterministic method of :mod:`ragd.generation.rewrite`. :func:`rewrite_follow_up` falls
back to that deterministic method when the LLM fails, so a chat never fails for want of
a rewrite.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from ragd.errors import GenerationError
from ragd.generation.base import Generator, Turn
from ragd.generation.rewrite import standalone_question
from ragd.limits import CEILINGS

__all__ = ["rewrite_follow_up"]

log = structlog.get_logger(__name__)


def rewrite_follow_up(generator: Generator, history: Sequence[Turn], question: str) -> str:
    """``question`` rewritten to stand alone given the earlier ``history`` (oldest first):
    by ``generator``, or by :func:`~ragd.generation.rewrite.standalone_question` without
    history or when the generator fails."""
    fallback = standalone_question([*(t.content for t in history if t.role == "user"), question])
    fallback = fallback[: CEILINGS.query_chars]
    if not history:
        return fallback
    try:
        rewritten = generator.rewrite(history, question).strip()
    except GenerationError as exc:
        log.warning("conversation.rewrite_failed", error=exc.detail)
        return fallback
    return rewritten[: CEILINGS.query_chars] or fallback
