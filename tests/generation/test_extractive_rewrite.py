from __future__ import annotations

from ragd.generation import ExtractiveGenerator, Generator, Turn


def test_extractive_rewrite_is_the_deterministic_method() -> None:
    generator = ExtractiveGenerator()
    assert isinstance(generator, Generator)
    history = [
        Turn("user", "When was the Old Bridge built?"),
        Turn("assistant", "In 1566 [1]."),
    ]
    assert generator.rewrite(history, "and when was it restored?") == (
        "Old Bridge built: and when was it restored?"
    )
