"""Chat sessions and messages over SQL: :class:`~ragd.store.base.ChatStore` for every
database.

Messages are numbered per session (``ordinal``) inside the write transaction that adds
them, so a user message and its answer are stored together and keep their order; pages
of messages are keyed by ordinal. The SQL is portable, so every database shares it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from ragd.audit import AuditEntry
from ragd.domain import ChatMessage, ChatSession, NewChatMessage, Page
from ragd.errors import NotFound
from ragd.store.sql.audit_chain import AuditChain
from ragd.store.sql.database import Database
from ragd.store.tables import chat_messages, chat_sessions, new_id, utcnow


class SqlChat:
    """Chat operations over the ``chat_sessions`` and ``chat_messages`` tables."""

    _db: Database
    _audit: AuditChain

    def add_chat_session(
        self,
        *,
        key_id: str | None,
        title: str | None,
        system_prompt: str | None,
        collection_ids: Sequence[str] | None,
    ) -> ChatSession:
        session_id = new_id("chat")
        now = utcnow()
        statement = insert(chat_sessions).values(
            id=session_id,
            key_id=key_id,
            title=title,
            system_prompt=system_prompt,
            collection_ids=None if collection_ids is None else list(collection_ids),
            created_at=now,
            updated_at=now,
        )
        self._db.write(lambda conn: conn.execute(statement))
        return self.get_chat_session(session_id)

    def get_chat_session(self, session_id: str) -> ChatSession:
        query = select(chat_sessions).where(chat_sessions.c.id == session_id)
        row = self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            raise NotFound(f"chat session {session_id!r} not found")
        return session_from_row(row)

    def list_chat_sessions(self, key_id: str | None, *, limit: int) -> list[ChatSession]:
        owner = (
            chat_sessions.c.key_id.is_(None) if key_id is None else chat_sessions.c.key_id == key_id
        )
        query = (
            select(chat_sessions)
            .where(owner)
            .order_by(chat_sessions.c.updated_at.desc(), chat_sessions.c.id)
            .limit(limit)
        )
        rows = self._db.read(lambda conn: conn.execute(query).all())
        return [session_from_row(row) for row in rows]

    def delete_chat_session(self, session_id: str) -> None:
        def work(conn: Connection) -> int:
            messages = conn.execute(
                delete(chat_messages).where(chat_messages.c.session_id == session_id)
            )
            deleted: int = conn.execute(
                delete(chat_sessions).where(chat_sessions.c.id == session_id)
            ).rowcount
            if deleted:
                detail = {"messages": int(messages.rowcount)}
                self._audit.append(conn, [AuditEntry("chat_session.delete", (session_id,), detail)])
            return deleted

        if self._db.write(work) == 0:
            raise NotFound(f"chat session {session_id!r} not found")

    def add_chat_messages(
        self, session_id: str, messages: Sequence[NewChatMessage]
    ) -> list[ChatMessage]:
        now = utcnow()

        def work(conn: Connection) -> list[ChatMessage]:
            touched = conn.execute(
                update(chat_sessions).where(chat_sessions.c.id == session_id).values(updated_at=now)
            )
            if touched.rowcount == 0:
                raise NotFound(f"chat session {session_id!r} not found")
            last = conn.execute(
                select(func.max(chat_messages.c.ordinal)).where(
                    chat_messages.c.session_id == session_id
                )
            ).scalar()
            start = 1 if last is None else int(last) + 1
            stored = [
                ChatMessage(
                    id=new_id("msg"),
                    session_id=session_id,
                    ordinal=start + offset,
                    role=message.role,
                    content=message.content,
                    citations=message.citations,
                    created_at=now,
                )
                for offset, message in enumerate(messages)
            ]
            # The records are the rows: their fields are the table's columns.
            if stored:
                conn.execute(insert(chat_messages), [asdict(m) for m in stored])
            return stored

        return self._db.write(work)

    def list_chat_messages(
        self, session_id: str, *, limit: int, after: int | None = None
    ) -> Page[ChatMessage]:
        query = select(chat_messages).where(chat_messages.c.session_id == session_id)
        if after is not None:
            query = query.where(chat_messages.c.ordinal > after)
        query = query.order_by(chat_messages.c.ordinal).limit(limit + 1)
        rows = self._db.read(lambda conn: conn.execute(query).all())
        items = [message_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=str(items[-1].ordinal) if more else None)


def session_from_row(row: Any) -> ChatSession:
    m = row._mapping
    ids = m["collection_ids"]
    return ChatSession(
        id=m["id"],
        key_id=m["key_id"],
        title=m["title"],
        system_prompt=m["system_prompt"],
        collection_ids=None if ids is None else tuple(ids),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def message_from_row(row: Any) -> ChatMessage:
    m = row._mapping
    return ChatMessage(
        id=m["id"],
        session_id=m["session_id"],
        ordinal=m["ordinal"],
        role=m["role"],
        content=m["content"],
        citations=list(m["citations"]),
        created_at=m["created_at"],
    )


__all__ = ["SqlChat", "message_from_row", "session_from_row"]
