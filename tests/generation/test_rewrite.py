"""The deterministic standalone-question rewrite used before retrieval."""

from __future__ import annotations

import pytest

from ragd.generation.rewrite import is_follow_up, key_words, standalone_question


def test_a_single_question_is_unchanged() -> None:
    assert standalone_question(["When was Tower Bridge completed?"]) == (
        "When was Tower Bridge completed?"
    )


def test_a_follow_up_gets_the_previous_subject() -> None:
    rewritten = standalone_question(
        ["When was Tower Bridge completed?", "and when was it restored?"]
    )
    assert rewritten == "Tower Bridge completed: and when was it restored?"


def test_a_chain_of_follow_ups_keeps_the_first_subject() -> None:
    rewritten = standalone_question(
        ["Tell me about the Lighthouse of Alexandria", "how tall?", "what about its builder?"]
    )
    assert rewritten.startswith("Lighthouse Alexandria")
    assert rewritten.endswith("what about its builder?")


def test_a_new_standalone_question_is_not_rewritten() -> None:
    rewritten = standalone_question(
        ["When was Tower Bridge completed?", "Which river flows through Paris today?"]
    )
    assert rewritten == "Which river flows through Paris today?"


def test_words_already_in_the_follow_up_are_not_repeated() -> None:
    rewritten = standalone_question(["Tower Bridge history", "and Tower Bridge colour?"])
    assert rewritten == "history: and Tower Bridge colour?"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("and then?", True),
        ("What about the north tower?", True),
        ("How about the costs of the project?", True),
        ("Who paid for it in the end?", True),
        ("Which river flows through Paris today?", False),
    ],
)
def test_follow_up_detection(question: str, expected: bool) -> None:
    assert is_follow_up(question) is expected


def test_key_words_drop_stop_words_and_duplicates() -> None:
    assert key_words("What is the bridge, the Bridge and the river?") == ["bridge", "river"]
