"""Prompt templates (``prompts/*.txt``, shipped as package data) and source rendering.

Templates use ``string.Template`` placeholders (``$name``) so that braces in prompts
need no escaping and text substituted into them is never re-interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from string import Template

from ragd.generation.base import NO_ANSWER_TEXT, Passage, Turn

__all__ = [
    "answer_messages",
    "clean_rewrite",
    "load_prompt",
    "render_sources",
    "rewrite_messages",
    "trim_history",
]

CHARS_PER_TOKEN = 4
REWRITE_MAX_CHARS = 1000
# Removed from instructions so that they cannot close their fence and pose as rules.
_INSTRUCTIONS_TAG = re.compile(r"</?\s*instructions\s*>", re.IGNORECASE)


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


def answer_messages(
    question: str, passages: Sequence[Passage], instructions: str | None = None
) -> tuple[str, str]:
    """The (system, user) prompt pair for answering ``question`` from ``passages``.

    ``instructions`` (a chat session's system prompt) go into the system message after
    the grounding rules, fenced in ``<instructions>`` tags and introduced as subordinate to
    those rules, so that they can shape the answer but not lift the citation rules.
    """
    system = Template(load_prompt("answer_system")).substitute(no_answer=NO_ANSWER_TEXT).strip()
    if instructions and (fenced := _unfenced(instructions)):
        extra = Template(load_prompt("answer_instructions")).substitute(instructions=fenced)
        system = f"{system}\n\n{extra.strip()}"
    user = Template(load_prompt("answer_user")).substitute(
        sources=render_sources(passages), question=question.strip()
    )
    return system, user.strip()


def _unfenced(instructions: str) -> str:
    """``instructions`` without ``<instructions>`` tags (repeatedly: removing one must not
    assemble another), so that they cannot end their fence early."""
    while (cleaned := _INSTRUCTIONS_TAG.sub("", instructions)) != instructions:
        instructions = cleaned
    return instructions.strip()


def trim_history(history: Sequence[Turn], budget_tokens: int) -> list[Turn]:
    """The latest turns of ``history`` that fit ``budget_tokens`` (~4 characters a token);
    the oldest are dropped first, and a turn that does not fit whole is dropped."""
    budget = budget_tokens * CHARS_PER_TOKEN
    kept: list[Turn] = []
    for turn in reversed(history):
        size = len(turn.content.strip())
        if size > budget:
            break
        budget -= size
        kept.append(turn)
    kept.reverse()
    return kept


def render_history(history: Sequence[Turn]) -> str:
    labels = {"user": "User", "assistant": "Assistant"}
    return "\n\n".join(
        f"{labels.get(t.role, t.role.title())}: {t.content.strip()}" for t in history
    )


def rewrite_messages(history: Sequence[Turn], question: str, budget_tokens: int) -> tuple[str, str]:
    """The (system, user) prompt pair for rewriting a follow-up ``question`` to stand alone,
    with ``history`` trimmed to ``budget_tokens``."""
    system = load_prompt("rewrite_system").strip()
    user = Template(load_prompt("rewrite_user")).substitute(
        history=render_history(trim_history(history, budget_tokens)) or "(none)",
        question=question.strip(),
    )
    return system, user.strip()


def clean_rewrite(raw: str) -> str:
    """The model's rewrite as a single-line question (quotes and labels removed)."""
    text = " ".join(raw.split())
    for label in ("Standalone question:", "Question:"):
        if text.casefold().startswith(label.casefold()):
            text = text[len(label) :].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text[:REWRITE_MAX_CHARS]
