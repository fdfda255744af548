"""Documents across every visible collection, by cursor (what MCP ``resources/list``
pages through), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragd.auth import Allowed
from ragd.config import load_settings
from ragd.container import Container
from ragd.domain import DocumentStatus
from ragd.embedding import LocalEmbedder
from ragd.errors import InvalidInput


@pytest.fixture
def container(tmp_path: Path, database_url: str, embedder: LocalEmbedder) -> Iterator[Container]:
    settings = load_settings(
        data_dir=tmp_path, database_url=database_url, inprocess_worker=False, log_format="json"
    )
    built = Container(settings, embedder=embedder)
    built.store.migrate()
    yield built
    built.close()


def every_page(
    container: Container,
    limit: int,
    allowed: Allowed = None,
    status: DocumentStatus | None = None,
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = container.documents.list_visible(
            status=status, limit=limit, cursor=cursor, allowed=allowed
        )
        pages.append([d.id for d in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_pages_cover_every_visible_document_once(container: Container) -> None:
    made: dict[str, list[str]] = {}
    for name, count in (("a", 3), ("empty", 0), ("b", 4), ("c", 2)):
        cid = container.collections.create(name).id
        made[cid] = [
            container.documents.add_text(cid, f"# {name} {i}\n\ntext {name} {i}")[0].id
            for i in range(count)
        ]
    everything = {d for ids in made.values() for d in ids}
    for limit in (1, 2, 4, 9, 100):
        pages = every_page(container, limit)
        assert all(len(page) <= limit for page in pages)
        flat = [d for page in pages for d in page]
        assert len(flat) == len(set(flat)) == 9 and set(flat) == everything, limit
    a, _, _, c = made
    allowed = frozenset({a, c})
    limited = [d for page in every_page(container, 2, allowed) for d in page]
    assert set(limited) == set(made[a]) | set(made[c]) and len(limited) == 5


def test_only_ready_documents_when_asked(container: Container) -> None:
    cid = container.collections.create("kb").id
    ready = [container.documents.add_text(cid, f"# R{i}\n\nready {i}")[0].id for i in range(2)]
    container.new_worker().run_until_idle()
    container.documents.add_text(cid, "# Q\n\nstill queued")
    pages = every_page(container, 10, status="ready")
    assert sorted(d for page in pages for d in page) == sorted(ready)


def test_cursors_it_did_not_hand_out_are_refused(container: Container) -> None:
    mine = container.collections.create("mine").id
    theirs = container.collections.create("theirs").id
    for cid in (mine, theirs):
        for i in range(3):
            container.documents.add_text(cid, f"# {cid} {i}\n\ntext {i}")
    page = container.documents.list_visible(limit=2)
    assert page.next_cursor is not None
    for bad in ("not-base64!", "bm90IGpzb24", "WzFd", page.next_cursor + "x"):
        with pytest.raises(InvalidInput):
            container.documents.list_visible(limit=2, cursor=bad)
    # A cursor into a collection the caller may not see tells nothing about it.
    into_theirs = None
    cursor = None
    while True:
        page = container.documents.list_visible(limit=1, cursor=cursor)
        if page.next_cursor is None:
            break
        if into_theirs is None and any(d.collection_id == theirs for d in page.items):
            into_theirs = page.next_cursor  # theirs has 3: this one still points into it
        cursor = page.next_cursor
    assert into_theirs is not None
    with pytest.raises(InvalidInput):
        container.documents.list_visible(limit=1, cursor=into_theirs, allowed=frozenset({mine}))
    with pytest.raises(InvalidInput):
        container.documents.list_visible(limit=0)
