"""The deterministic follow-up rewrite: a question that leans on an earlier turn gets
that turn's subject put in front of it, before retrieval.

"and when was it restored?" retrieves nothing useful by itself; the bridge it is about
was named in an earlier turn. Without an LLM the rewrite is this one: a question that is
short, starts with a follow-up word ("and", "what about", "when", "it", ...) or leans on
a pronoun gets the key words of the previous (already standalone) user turn put in front
of it. Turns are rewritten in order, so a chain of follow-ups keeps the subject of the
first question. It lives in the generation layer because the extractive generator's
``rewrite`` is exactly this, and the services' fallback for a failing LLM uses it too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragd.generation.prompts import REWRITE_MAX_CHARS
from ragd.retrieval.stopwords import CONTENT_STOP_WORDS

__all__ = ["is_follow_up", "key_words", "standalone_question"]

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
        if (
            folded in CONTENT_STOP_WORDS
            or folded in seen
            or (len(word) == 1 and not word.isdigit())
        ):
            continue
        seen.add(folded)
        kept.append(word)
    return kept[:KEY_WORDS_MAX]


def standalone_question(turns: Sequence[str]) -> str:
    """The last of the user's ``turns`` (oldest first), rewritten to stand alone; at most
    ``REWRITE_MAX_CHARS`` long, like an LLM's rewrite."""
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
    return standalone[:REWRITE_MAX_CHARS]
