"""Turning a follow-up question into one that stands alone, before retrieval.

"and when was it restored?" retrieves nothing useful by itself; the bridge it is about
was named in an earlier turn. Without an LLM the rewrite is deterministic: a question
that is short, starts with a follow-up word ("and", "what about", "when", "it", ...)
or leans on a pronoun gets the key words of the previous (already standalone) user turn
put in front of it. Turns are rewritten in order, so a chain of follow-ups keeps the
subject of the first question. With an LLM configured, :func:`rewrite_follow_up` asks it
instead (the generator's ``rewrite``), and falls back to the deterministic method when the
LLM fails.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import structlog

from ragd.errors import GenerationError
from ragd.generation.base import Rewriter, Turn
from ragd.generation.extractive import STOP_WORDS
from ragd.limits import CEILINGS

__all__ = ["is_follow_up", "key_words", "rewrite_follow_up", "standalone_question"]

log = structlog.get_logger(__name__)

FOLLOW_UP_STARTS = (
    "and",
    "but",
    "also",
    "so",
    "then",
    "what about",
    "how about",
    "what of",
    "and what",
    "when",
    "where",
    "why",
    "how",
    "who",
    "it",
    "its",
    "they",
    "their",
    "them",
    "he",
    "she",
    "this",
    "that",
    "those",
    "these",
)
_PRONOUNS = frozenset({"it", "its", "they", "them", "their", "he", "she", "his", "her"})
SHORT_QUESTION_WORDS = 4
KEY_WORDS_MAX = 8
_WORD = re.compile(r"[^\W_][\w'-]*")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def is_follow_up(question: str) -> bool:
    """Whether ``question`` probably depends on an earlier turn to make sense."""
    words = [w.casefold() for w in _words(question)]
    if not words:
        return False
    if len(words) < SHORT_QUESTION_WORDS:
        return True
    opening = " ".join(words[:2])
    if any(opening == start or opening.startswith(start + " ") for start in FOLLOW_UP_STARTS):
        return True
    return any(word in _PRONOUNS for word in words)


def key_words(text: str) -> list[str]:
    """The content words of ``text`` as written (stop words and duplicates removed)."""
    seen: set[str] = set()
    kept: list[str] = []
    for word in _words(text):
        folded = word.casefold()
        if folded in STOP_WORDS or folded in seen or (len(word) == 1 and not word.isdigit()):
            continue
        seen.add(folded)
        kept.append(word)
    return kept[:KEY_WORDS_MAX]


def standalone_question(turns: Sequence[str]) -> str:
    """The last of the user's ``turns`` (oldest first), rewritten to stand alone."""
    standalone = ""
    for turn in turns:
        turn = turn.strip()
        if not turn:
            continue
        if standalone and is_follow_up(turn):
            folded = turn.casefold()
            missing = [w for w in key_words(standalone) if w.casefold() not in folded]
            if missing:
                turn = f"{' '.join(missing)}: {turn}"
        standalone = turn
    return standalone[: CEILINGS.query_chars]


def rewrite_follow_up(generator: object, history: Sequence[Turn], question: str) -> str:
    """``question`` rewritten to stand alone given the earlier ``history`` (oldest first):
    by ``generator`` when it is a :class:`~ragd.generation.base.Rewriter` (an LLM trims
    the history to its token budget), by :func:`standalone_question` without one, without
    history, or when the generator fails."""
    fallback = standalone_question([*(t.content for t in history if t.role == "user"), question])
    if not history or not isinstance(generator, Rewriter):
        return fallback
    try:
        rewritten = generator.rewrite(history, question).strip()
    except GenerationError as exc:
        log.warning("conversation.rewrite_failed", error=exc.detail)
        return fallback
    return rewritten[: CEILINGS.query_chars] or fallback
