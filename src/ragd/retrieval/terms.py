"""Query text → keyword terms for the full-text leg.

Terms are plain words; the store quotes each one, so operators, quotes, parentheses or
SQL in a query are just characters that do not match anything.
"""

from __future__ import annotations

import re

from ragd.retrieval.stopwords import QUERY_STOP_WORDS

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 64


def keyword_terms(query: str) -> list[str]:
    """Distinct lowercase words of the query, stop words dropped unless nothing else is
    left (a query of only stop words should still find something)."""
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))
    content = [w for w in words if w not in QUERY_STOP_WORDS]
    return (content or words)[:MAX_TERMS]
