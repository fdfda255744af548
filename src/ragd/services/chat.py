"""Chat sessions: a conversation over some collections, owned by the key that began it.

A message is answered like ``/v1/ask`` after the follow-up rewrite of
:mod:`ragd.services.conversation` over the session's earlier user messages; the user's
message and the answer (with its citations) are stored together once the answer is
complete, so a failed or abandoned answer leaves no half-written turn. A session of
another key is NotFound, exactly like one that does not exist. The session's
``system_prompt`` reaches the generator as ``instructions`` for every answer (not for the
follow-up rewrite, which only has to restate the question); the generator keeps its own
grounding and citation rules above it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from ragd.auth import Allowed
from ragd.domain import ChatMessage, ChatSession, NewChatMessage, Page
from ragd.errors import InvalidInput, NotFound
from ragd.generation.base import Turn
from ragd.limits import CEILINGS, Limits
from ragd.services.answers import AnswerCitations, AnswerEvent, AnswerService, Citation
from ragd.services.collections import CollectionService
from ragd.services.conversation import rewrite_follow_up
from ragd.store.base import Store

TITLE_MAX = CEILINGS.chat_title_chars
SYSTEM_PROMPT_MAX = CEILINGS.system_prompt_chars
SESSIONS_LISTED_MAX = 200
MESSAGES_PAGE_MAX = CEILINGS.page_size
HISTORY_TURNS = 20  # earlier user messages (with their answers) read for the rewrite


class ChatService:
    def __init__(
        self,
        store: Store,
        collections: CollectionService,
        answers: AnswerService,
        limits: Limits = CEILINGS,
    ) -> None:
        self.store = store
        self.collections = collections
        self.answers = answers
        self.limits = limits

    def create(
        self,
        *,
        key_id: str | None,
        collections: list[str] | None,
        title: str | None = None,
        system_prompt: str | None = None,
        allowed: Allowed = None,
    ) -> ChatSession:
        if title is not None and len(title) > TITLE_MAX:
            raise InvalidInput(f"title must be at most {TITLE_MAX} characters")
        if system_prompt is not None and len(system_prompt) > SYSTEM_PROMPT_MAX:
            raise InvalidInput(f"system_prompt must be at most {SYSTEM_PROMPT_MAX} characters")
        ids = None
        if collections is not None:
            if not collections:
                raise InvalidInput("collections must name at least one collection, or be omitted")
            refs = dict.fromkeys(collections)
            ids = [self.collections.get(ref, allowed=allowed).id for ref in refs]
        return self.store.add_chat_session(
            key_id=key_id, title=title, system_prompt=system_prompt, collection_ids=ids
        )

    def list_sessions(self, *, key_id: str | None) -> list[ChatSession]:
        return self.store.list_chat_sessions(key_id, limit=SESSIONS_LISTED_MAX)

    def get(self, session_id: str, *, key_id: str | None) -> ChatSession:
        session = self.store.get_chat_session(session_id)
        if session.key_id != key_id:
            raise NotFound(f"chat session {session_id!r} not found")
        return session

    def delete(self, session_id: str, *, key_id: str | None) -> None:
        self.get(session_id, key_id=key_id)
        self.store.delete_chat_session(session_id)

    def messages(
        self, session_id: str, *, key_id: str | None, limit: int | None, cursor: str | None
    ) -> Page[ChatMessage]:
        self.get(session_id, key_id=key_id)
        if limit is None:
            limit = min(self.limits.default_page_size, self.limits.page_size)
        if not 1 <= limit <= self.limits.page_size:
            raise InvalidInput(f"limit must be between 1 and {self.limits.page_size}")
        after = None
        if cursor is not None:
            if not cursor.isdigit():
                raise InvalidInput("cursor is not valid")
            after = int(cursor)
        return self.store.list_chat_messages(session_id, limit=limit, after=after)

    def reply(
        self, session_id: str, content: str, *, key_id: str | None, allowed: Allowed = None
    ) -> ChatMessage:
        """Answer ``content``; store it and the answer; return the stored answer."""
        session, question = self._prepare(session_id, content, key_id)
        result = self.answers.ask(
            question,
            collections=_refs(session),
            allowed=allowed,
            instructions=session.system_prompt,
        )
        return self._store_turn(session, content, result.answer, result.citations)

    def stream_reply(
        self, session_id: str, content: str, *, key_id: str | None, allowed: Allowed = None
    ) -> Iterator[AnswerEvent]:
        """Like :meth:`reply`, as the answer's events; the turn is stored when the
        answer is complete (before the citations event), not when abandoned midway."""
        session, question = self._prepare(session_id, content, key_id)
        events = self.answers.stream(
            question,
            collections=_refs(session),
            allowed=allowed,
            instructions=session.system_prompt,
        )
        return self._stored_stream(session, content, events)

    def _stored_stream(
        self, session: ChatSession, content: str, events: Iterator[AnswerEvent]
    ) -> Iterator[AnswerEvent]:
        text = ""
        try:
            for event in events:
                if isinstance(event, AnswerCitations):
                    self._store_turn(session, content, text, event.citations)
                else:
                    text += event.text
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _prepare(
        self, session_id: str, content: str, key_id: str | None
    ) -> tuple[ChatSession, str]:
        content = content.strip()
        if not content:
            raise InvalidInput("content must not be empty")
        longest = self.limits.query_chars  # RAGD_MAX_QUERY_CHARS, as for /v1/ask
        if len(content) > longest:
            raise InvalidInput(f"content must be at most {longest} characters")
        session = self.get(session_id, key_id=key_id)
        generator = self.answers.generator
        question = rewrite_follow_up(generator, self._history(session_id), content)
        return session, question[:longest]

    def _history(self, session_id: str) -> list[Turn]:
        turns: list[Turn] = []
        cursor: int | None = None
        while True:  # sessions are short; read them whole, keep the last turns
            page = self.store.list_chat_messages(session_id, limit=MESSAGES_PAGE_MAX, after=cursor)
            turns += [Turn(m.role, m.content) for m in page.items]
            if page.next_cursor is None:
                return turns[-2 * HISTORY_TURNS :]
            cursor = int(page.next_cursor)

    def _store_turn(
        self, session: ChatSession, content: str, answer: str, citations: list[Citation]
    ) -> ChatMessage:
        stored = self.store.add_chat_messages(
            session.id,
            [
                NewChatMessage(role="user", content=content.strip(), citations=[]),
                NewChatMessage(
                    role="assistant", content=answer, citations=[asdict(c) for c in citations]
                ),
            ],
        )
        return stored[-1]


def _refs(session: ChatSession) -> list[str] | None:
    return None if session.collection_ids is None else list(session.collection_ids)
