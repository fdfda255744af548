"""Query text to keyword terms: plain distinct words, never search syntax."""

from __future__ import annotations

import re

import pytest

from ragd.retrieval.stopwords import QUERY_STOP_WORDS
from ragd.retrieval.terms import MAX_TERMS, keyword_terms

_WORD = re.compile(r"\w+")


def test_stop_words_are_dropped() -> None:
    assert keyword_terms("What is the capital of France?") == ["capital", "france"]
    assert keyword_terms("How do I reset my password") == ["reset", "password"]


def test_only_stop_words_are_kept_rather_than_nothing() -> None:
    assert keyword_terms("What is this?") == ["what", "is", "this"]
    assert keyword_terms("The THE the") == ["the"]


def test_lowercased_and_deduplicated_in_first_seen_order() -> None:
    assert keyword_terms("Apple pie, APPLE tart, apple Pie") == ["apple", "pie", "tart"]


def test_unicode_words() -> None:
    assert keyword_terms("Café in Zürich — naïve Ελλάδα 東京タワー") == [
        "café",
        "zürich",
        "naïve",
        "ελλάδα",
        "東京タワー",
    ]


def test_digits_and_underscores_are_word_characters() -> None:
    assert keyword_terms("snake_case v2 2024 3.14") == ["snake_case", "v2", "2024", "3", "14"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"exact phrase"', ["exact", "phrase"]),
        ("NEAR(foo bar, 5)", ["near", "foo", "bar", "5"]),
        ("title:report body:summary", ["title", "report", "body", "summary"]),
        ("pref* -excluded +required ^start", ["pref", "excluded", "required", "start"]),
        ("cats OR dogs AND NOT birds", ["cats", "dogs", "birds"]),
        ("(alpha) [beta] {gamma}", ["alpha", "beta", "gamma"]),
        ("'; DROP TABLE chunks; --", ["drop", "table", "chunks"]),
        ("x\x00y\ttab\nline", ["x", "y", "tab", "line"]),
        ("a-b.c/d\\e", ["b", "c", "d", "e"]),
    ],
)
def test_syntax_is_stripped(query: str, expected: list[str]) -> None:
    terms = keyword_terms(query)
    assert terms == expected
    assert all(_WORD.fullmatch(term) for term in terms)
    assert not any(ch in term for term in terms for ch in "\"'*:()-+^{}[]\x00")


@pytest.mark.parametrize("query", ["", "   ", "?!...", '"" () * : - --', "\x00\x01"])
def test_no_words_no_terms(query: str) -> None:
    assert keyword_terms(query) == []


def test_at_most_max_terms() -> None:
    words = [f"word{i}" for i in range(MAX_TERMS + 36)]
    terms = keyword_terms(" ".join(words))
    assert MAX_TERMS == 64
    assert terms == words[:MAX_TERMS]


def test_cap_applies_after_stop_words_and_duplicates() -> None:
    stop = sorted(QUERY_STOP_WORDS)
    words = [f"w{i}" for i in range(MAX_TERMS)]
    query = " ".join(stop + words + words + ["extra"])
    assert keyword_terms(query) == words


def test_only_stop_words_are_capped_too() -> None:
    stop = sorted(QUERY_STOP_WORDS)
    assert len(stop) > MAX_TERMS
    assert keyword_terms(" ".join(stop)) == stop[:MAX_TERMS]


def test_stop_words_are_lowercase_words() -> None:
    assert all(word == word.lower() and _WORD.fullmatch(word) for word in QUERY_STOP_WORDS)
    assert {"the", "a", "and", "of", "what"} <= QUERY_STOP_WORDS
