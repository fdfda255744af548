"""Chat sessions and messages in the store: migration 0003 matches the models, order
and pages of messages, and deletion."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ragd.domain import NewChatMessage
from ragd.errors import NotFound
from ragd.store.tables import metadata_obj
from tests.store.conftest import AnyStore


def test_migration_matches_the_chat_tables(store: AnyStore) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata_obj)
    chat = [d for d in differences if "chat_" in repr(d)]
    assert chat == []


def test_messages_keep_their_order_and_page(store: AnyStore) -> None:
    session = store.add_chat_session(
        key_id="key_1", title="t", system_prompt=None, collection_ids=["col_1"]
    )
    assert session.collection_ids == ("col_1",)
    for n in range(3):
        store.add_chat_messages(
            session.id,
            [
                NewChatMessage("user", f"q{n}", []),
                NewChatMessage("assistant", f"a{n}", [{"n": 1}]),
            ],
        )
    first = store.list_chat_messages(session.id, limit=4)
    assert [m.content for m in first.items] == ["q0", "a0", "q1", "a1"]
    assert [m.ordinal for m in first.items] == [1, 2, 3, 4]
    assert first.next_cursor == "4"
    rest = store.list_chat_messages(session.id, limit=4, after=4)
    assert [m.content for m in rest.items] == ["q2", "a2"]
    assert rest.next_cursor is None
    assert rest.items[1].citations == [{"n": 1}]

    assert [s.id for s in store.list_chat_sessions("key_1", limit=10)] == [session.id]
    assert store.list_chat_sessions(None, limit=10) == []


def test_delete_removes_the_session_and_its_messages(store: AnyStore) -> None:
    session = store.add_chat_session(
        key_id=None, title=None, system_prompt=None, collection_ids=None
    )
    store.add_chat_messages(session.id, [NewChatMessage("user", "q", [])])
    store.delete_chat_session(session.id)
    with pytest.raises(NotFound):
        store.get_chat_session(session.id)
    assert store.list_chat_messages(session.id, limit=10).items == []
    with pytest.raises(NotFound):
        store.delete_chat_session(session.id)
    with pytest.raises(NotFound):
        store.add_chat_messages(session.id, [NewChatMessage("user", "q", [])])
