"""Prompt templates (``prompts/*.txt``, shipped as package data) and source rendering.

Templates use ``string.Template`` placeholders (``$name``) so that braces in prompts
need no escaping and text substituted into them is never re-interpreted.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from string import Template

from ragd.generation.base import NO_ANSWER_TEXT, Passage

__all__ = ["answer_messages", "load_prompt", "render_sources"]


@cache
def load_prompt(name: str) -> str:
    """Return the text of ``prompts/<name>.txt``; raises ``FileNotFoundError`` if absent."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"invalid prompt name: {name!r}")
    path = resources.files("ragd.generation") / "prompts" / f"{name}.txt"
    return path.read_text(encoding="utf-8")


def render_sources(passages: Sequence[Passage]) -> str:
    """Render passages as ``[n] title — heading path`` followed by their text."""
    blocks = []
    for passage in passages:
        header = f"[{passage.n}] {passage.title or 'Untitled'}"
        if passage.heading_path:
            header += " — " + " > ".join(passage.heading_path)
        blocks.append(f"{header}\n{passage.text.strip()}")
    return "\n\n".join(blocks)


def answer_messages(question: str, passages: Sequence[Passage]) -> tuple[str, str]:
    """The (system, user) prompt pair for answering ``question`` from ``passages``."""
    system = Template(load_prompt("answer_system")).substitute(no_answer=NO_ANSWER_TEXT)
    user = Template(load_prompt("answer_user")).substitute(
        sources=render_sources(passages), question=question.strip()
    )
    return system.strip(), user.strip()
