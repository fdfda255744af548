"""The two stop-word lists: one for search queries, a longer one for comparing content."""

from __future__ import annotations

import re

from ragd.retrieval.stopwords import CONTENT_STOP_WORDS, QUERY_STOP_WORDS

_WORD = re.compile(r"\w+")


def test_the_content_list_extends_the_query_list() -> None:
    assert QUERY_STOP_WORDS < CONTENT_STOP_WORDS
    # Words a keyword search may be looking for are only content stop words.
    assert {"about", "after", "over", "tell", "explain"} <= CONTENT_STOP_WORDS - QUERY_STOP_WORDS


def test_both_lists_are_lowercase_words() -> None:
    for words in (QUERY_STOP_WORDS, CONTENT_STOP_WORDS):
        assert all(word == word.lower() and _WORD.fullmatch(word) for word in words)
