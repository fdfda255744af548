"""The OpenAI-compatible endpoint's logic: models are collections, chats are questions.

``ragd:<collection name>`` answers from that collection, ``ragd`` from every collection
the caller may read. A chat completion is one answer: the last user message, rewritten
to stand alone using the earlier turns, with system (and ``developer``) messages handed
on as instructions. The HTTP route only parses, authorizes and shapes OpenAI's JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ragd.auth import Allowed
from ragd.errors import InvalidInput, NotFound
from ragd.generation.base import Generator, Turn
from ragd.services.answers import AnswerEvent, AnswerService, Citation
from ragd.services.collections import CollectionService
from ragd.services.conversation import rewrite_follow_up

ALL_MODEL = "ragd"
MODEL_PREFIX = "ragd:"


@dataclass(frozen=True)
class Model:
    id: str
    created: int
    """Unix time: the collection's creation (the oldest collection's for ``ragd``)."""


@dataclass(frozen=True)
class Completion:
    text: str
    """The answer with its sources appended (see :func:`sources_text`)."""
    citations: list[Citation]
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class CompletionStream:
    events: Iterator[AnswerEvent]
    prompt_tokens: int


def sources_text(citations: Sequence[Citation]) -> str:
    """``"\\n\\nSources:\\n[1] title\\n[2] title"``, or nothing without citations: chat
    front-ends that ignore ragd's ``citations`` field still show the sources."""
    if not citations:
        return ""
    lines = [f"[{c.n}] {c.title or 'Untitled'}" for c in citations]
    return "\n\nSources:\n" + "\n".join(lines)


def count_tokens(text: str) -> int:
    """A rough token count: about four characters a token."""
    return math.ceil(len(text) / 4)


class CompletionService:
    def __init__(
        self, collections: CollectionService, answers: AnswerService, generator: Generator
    ) -> None:
        self.collections = collections
        self.answers = answers
        self.generator = generator

    def models(self, *, allowed: Allowed = None) -> list[Model]:
        found = self.collections.list_all(allowed=allowed)
        created = [int(c.created_at.timestamp()) for c in found]
        every = Model(ALL_MODEL, min(created, default=0))
        return [every] + [
            Model(f"{MODEL_PREFIX}{c.name}", stamp) for c, stamp in zip(found, created, strict=True)
        ]

    def model(self, model_id: str, *, allowed: Allowed = None) -> Model:
        for listed in self.models(allowed=allowed):
            if listed.id == model_id:
                return listed
        raise _unknown(model_id)

    def complete(
        self, model: str, messages: Sequence[Turn], *, allowed: Allowed = None
    ) -> Completion:
        collections, question, instructions = self._prepare(model, messages, allowed)
        result = self.answers.ask(
            question, collections=collections, allowed=allowed, instructions=instructions
        )
        text = result.answer + sources_text(result.citations)
        return Completion(
            text=text,
            citations=result.citations,
            prompt_tokens=_prompt_tokens(messages),
            completion_tokens=count_tokens(text),
        )

    def stream(
        self, model: str, messages: Sequence[Turn], *, allowed: Allowed = None
    ) -> CompletionStream:
        collections, question, instructions = self._prepare(model, messages, allowed)
        events = self.answers.stream(
            question, collections=collections, allowed=allowed, instructions=instructions
        )
        return CompletionStream(events, _prompt_tokens(messages))

    def _prepare(
        self, model: str, messages: Sequence[Turn], allowed: Allowed
    ) -> tuple[list[str] | None, str, str | None]:
        collections = self._collections(model, allowed)
        return collections, self._question(messages), _instructions(messages)

    def _collections(self, model: str, allowed: Allowed) -> list[str] | None:
        if model == ALL_MODEL:
            return None
        name = model.removeprefix(MODEL_PREFIX)
        if not model.startswith(MODEL_PREFIX) or not name:
            raise _unknown(model)
        try:
            return [self.collections.get(name, allowed=allowed).id]
        except NotFound:
            raise _unknown(model) from None

    def _question(self, messages: Sequence[Turn]) -> str:
        """The last user message, rewritten to stand alone using the earlier turns (by
        the LLM when one is configured). System messages are instructions, not turns."""
        turns = [m for m in messages if m.role in ("user", "assistant")]
        while turns and turns[-1].role != "user":
            turns.pop()
        if not turns or not turns[-1].content.strip():
            raise InvalidInput("messages must end with a user message that has text")
        return rewrite_follow_up(self.generator, turns[:-1], turns[-1].content)


def _instructions(messages: Sequence[Turn]) -> str | None:
    """System (and ``developer``) messages, as a chat session's ``system_prompt`` is used:
    handed to the LLM after ragd's grounding rules, which they cannot override."""
    texts = [m.content.strip() for m in messages if m.role in ("system", "developer")]
    joined = "\n\n".join(t for t in texts if t)
    return joined or None


def _prompt_tokens(messages: Sequence[Turn]) -> int:
    return sum(count_tokens(m.content) for m in messages)


def _unknown(model: str) -> NotFound:
    return NotFound(f"model {model!r} not found; GET /v1/models lists the models")
