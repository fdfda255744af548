"""Syncing sources against a real website and a real folder, on both databases: new
items are added, changed ones replaced in place, removed ones deleted; unchanged pages
cost a 304; a search running meanwhile never sees two versions of a document, nor one
that was deleted."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook

from ragd.config import Settings, load_settings
from ragd.container import Container
from ragd.embedding import LocalEmbedder
from ragd.errors import InvalidInput
from tests.api.fake_site import Site, page, running_site


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The API settings, with the fake site's loopback address allowed and one folder
    root."""
    (tmp_path / "allowed").mkdir()
    return load_settings(
        data_dir=tmp_path,
        database_url=database_url,
        inprocess_worker=False,
        allow_private_urls=True,
        sources_folder_roots=str(tmp_path / "allowed"),
        log_format="json",
    )


@pytest.fixture
def site() -> Iterator[Site]:
    with running_site() as running:
        yield running


def collection_id(container: Container, name: str = "synced") -> str:
    return container.collections.create(name).id


def texts_of(container: Container, document_id: str) -> str:
    return " ".join(c.text for c in container.documents.chunks(document_id))


def test_sitemap_sync_adds_replaces_and_deletes(container: Container, site: Site) -> None:
    for name in ("a", "b", "c"):
        site.put(f"/{name}", page(f"Page {name}", f"The first words of page {name}."))
    sitemap = site.sitemap("/sitemap.xml", ["/a", "/b", "/c"])
    cid = collection_id(container)
    created = container.sources.create(cid, type="sitemap", location=sitemap)

    first = container.sources.sync_now(created.source.id)
    assert (first["status"], first["added"], first["failed"]) == ("ok", 3, 0)
    items = container.store.list_source_items(created.source.id)
    b_doc = items[site.url("/b")].document_id
    assert container.documents.get(b_doc).title == "Page b"
    assert "first words of page b" in texts_of(container, b_doc)

    again = container.sources.sync_now(created.source.id)
    assert (again["unchanged"], again["added"], again["updated"]) == (3, 0, 0)
    assert site.conditional_hits("/b") == 1  # a conditional request, answered 304

    site.put("/b", page("Page b", "Entirely new words for page b."))
    site.put("/d", page("Page d", "A page that joined later."))
    site.sitemap("/sitemap.xml", ["/a", "/b", "/d"])
    third = container.sources.sync_now(created.source.id)
    assert {k: third[k] for k in ("added", "updated", "deleted", "unchanged", "failed")} == {
        "added": 1,
        "updated": 1,
        "deleted": 1,
        "unchanged": 1,
        "failed": 0,
    }
    items = container.store.list_source_items(created.source.id)
    assert set(items) == {site.url(p) for p in ("/a", "/b", "/d")}
    assert items[site.url("/b")].document_id == b_doc  # replaced in place
    assert "new words for page b" in texts_of(container, b_doc)
    assert "first words" not in texts_of(container, b_doc)

    source = container.sources.get(created.source.id)
    assert source.last_status == "ok" and source.last_counts.deleted == 1
    assert source.last_sync_at is not None and source.next_sync_at is None


def test_a_failed_listing_deletes_nothing(container: Container, site: Site) -> None:
    site.put("/a", page("A", "Kept through a broken sitemap."))
    sitemap = site.sitemap("/sitemap.xml", ["/a"])
    cid = collection_id(container)
    source_id = container.sources.create(cid, type="sitemap", location=sitemap).source.id
    assert container.sources.sync_now(source_id)["added"] == 1

    site.remove("/sitemap.xml")
    broken = container.sources.sync_now(source_id)
    assert broken["status"] == "failed" and "404" in broken["error"]
    assert broken["deleted"] == 0
    assert len(container.store.list_source_items(source_id)) == 1
    assert container.sources.get(source_id).last_error == broken["error"]


def test_a_failing_item_keeps_the_others_and_its_old_version(
    container: Container, site: Site
) -> None:
    good, bad = site.put("/good", page("Good", "Fine.")), site.put("/bad", page("Bad", "Once."))
    cid = collection_id(container)
    source_id = container.sources.create(cid, type="urls", location=[good, bad]).source.id
    assert container.sources.sync_now(source_id)["added"] == 2
    bad_doc = container.store.list_source_items(source_id)[bad].document_id

    site.remove("/bad")
    result = container.sources.sync_now(source_id)
    assert (result["status"], result["failed"], result["unchanged"]) == ("partial", 1, 1)
    assert "404" in result["error"]
    assert "Once." in texts_of(container, bad_doc)  # the old version stays


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


SHEET_MAPPING = {
    "key_column": "id",
    "text_columns": ["question", "answer"],
    "title_column": "question",
    "metadata_columns": {"Team name": "team"},
}


def test_spreadsheet_rows_become_documents(container: Container, site: Site) -> None:
    header = ["id", "question", "answer", "Team name"]
    url = site.put(
        "/sheet.csv",
        _csv(
            [header, ["1", "How long is leave?", "25 days.", "hr"], ["2", "VPN?", "Use it.", "it"]]
        ),
        "text/csv",
    )
    cid = collection_id(container)
    source_id = container.sources.create(
        cid, type="spreadsheet", location=url, mapping=SHEET_MAPPING
    ).source.id
    assert container.sources.sync_now(source_id)["added"] == 2
    items = container.store.list_source_items(source_id)
    doc = container.documents.get(items["1"].document_id)
    assert doc.title == "How long is leave?" and doc.metadata == {"team": "hr"}
    assert "answer: 25 days." in texts_of(container, doc.id)

    # The whole sheet unchanged: one 304, no row looked at.
    assert container.sources.sync_now(source_id)["unchanged"] == 2

    site.put(
        "/sheet.csv",
        _csv([header, ["1", "How long is leave?", "30 days.", "hr"], ["", "no key", "x", ""]]),
        "text/csv",
    )
    result = container.sources.sync_now(source_id)
    assert (result["updated"], result["deleted"], result["failed"]) == (1, 1, 1)
    assert "key column 'id' is empty" in result["error"]
    assert "30 days." in texts_of(container, doc.id)


def test_xlsx_spreadsheet(container: Container, site: Site) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["id", "question", "answer", "Team name"], [7, "Lunch?", "At noon.", "ops"]):
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    url = site.put("/sheet.xlsx", data.getvalue(), "application/octet-stream")
    cid = collection_id(container)
    source_id = container.sources.create(
        cid, type="spreadsheet", location=url, mapping=SHEET_MAPPING
    ).source.id
    assert container.sources.sync_now(source_id)["added"] == 1
    assert set(container.store.list_source_items(source_id)) == {"7"}


def test_spreadsheet_mapping_errors_are_422(container: Container, site: Site) -> None:
    cid = collection_id(container)
    url = site.url("/sheet.csv")
    for mapping in (None, {}, {"key_column": "id"}, {**SHEET_MAPPING, "extra": 1}):
        with pytest.raises(InvalidInput):
            container.sources.create(cid, type="spreadsheet", location=url, mapping=mapping)
    with pytest.raises(InvalidInput, match="metadata key"):
        container.sources.create(
            cid,
            type="spreadsheet",
            location=url,
            mapping={**SHEET_MAPPING, "metadata_columns": ["Team name"]},
        )
    site.put("/sheet.csv", _csv([["id", "text"], ["1", "x"]]), "text/csv")
    source_id = container.sources.create(
        cid, type="spreadsheet", location=url, mapping=SHEET_MAPPING
    ).source.id
    result = container.sources.sync_now(source_id)
    assert result["status"] == "failed" and "no column 'question'" in result["error"]


def test_folder_source_syncs_and_never_leaves_its_folder(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "allowed"
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nThe alpha handbook.")
    (docs / "sub" / "b.txt").write_text("Beta notes.")
    (docs / "skip.bin").write_bytes(b"\x00\x01")
    (docs / ".hidden.md").write_text("secret")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("The secret outside the root.")
    (docs / "link.md").symlink_to(outside / "secret.md")
    (docs / "linkdir").symlink_to(outside, target_is_directory=True)

    cid = collection_id(container)
    for location in (
        str(outside),
        str(root / ".." / "outside"),
        "relative/path",
        str(docs / "a.md"),
    ):
        with pytest.raises(InvalidInput):
            container.sources.create(cid, type="folder", location=location)
    # A symlink inside the root that points outside it is refused by its real path.
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="outside"):
        container.sources.create(cid, type="folder", location=str(root / "escape"))
    with pytest.raises(InvalidInput, match="relative"):
        container.sources.create(
            cid, type="folder", location=str(docs), mapping={"patterns": ["../*"]}
        )

    source_id = container.sources.create(
        cid, type="folder", location=str(docs), mapping={"patterns": ["**/*.md", "**/*.txt"]}
    ).source.id
    result = container.sources.sync_now(source_id)
    assert (result["added"], result["failed"]) == (2, 0)
    items = container.store.list_source_items(source_id)
    assert set(items) == {"a.md", "sub/b.txt"}
    assert container.documents.get(items["a.md"].document_id).title == "Alpha"

    (docs / "sub" / "b.txt").write_text("Beta notes, second edition.")
    (docs / "a.md").unlink()
    result = container.sources.sync_now(source_id)
    assert (result["updated"], result["deleted"]) == (1, 1)
    # Swapping the folder for a symlink to elsewhere after creation: the sync refuses.
    docs.rename(root / "docs-old")
    docs.symlink_to(outside, target_is_directory=True)
    refused = container.sources.sync_now(source_id)
    assert refused["status"] == "failed" and "outside" in refused["error"]
    assert len(container.store.list_source_items(source_id)) == 1


def test_folder_sources_are_off_without_roots(
    tmp_path: Path, database_url: str, embedder: LocalEmbedder
) -> None:
    settings = load_settings(data_dir=tmp_path, database_url=database_url, log_format="json")
    container = Container(settings, embedder=embedder)
    try:
        container.store.migrate()
        cid = collection_id(container)
        with pytest.raises(InvalidInput, match="RAGD_SOURCES_FOLDER_ROOTS"):
            container.sources.create(cid, type="folder", location=str(tmp_path))
    finally:
        container.close()


def _long_page(version: int) -> str:
    """A page of several chunks, every one marked with its version."""
    paragraphs = [
        f"Section {n} of the zebra guide, edition ver{version}. "
        + " ".join(f"word{n}x{i} zebra" for i in range(60))
        for n in range(4)
    ]
    return (
        "<html><head><title>Zebra guide</title></head><body><main>"
        + "".join(f"<h2>Part {n}</h2><p>{p}</p>" for n, p in enumerate(paragraphs))
        + "</main></body></html>"
    )


def test_search_never_sees_two_versions_or_a_deleted_document(
    container: Container, site: Site
) -> None:
    site.put("/guide", _long_page(1))
    site.put("/doomed", page("Doomed zebra", "zebra zebra, soon to be removed."))
    sitemap = site.sitemap("/sitemap.xml", ["/guide", "/doomed"])
    cid = collection_id(container)
    source_id = container.sources.create(cid, type="sitemap", location=sitemap).source.id
    assert container.sources.sync_now(source_id)["added"] == 2
    guide = container.store.list_source_items(source_id)[site.url("/guide")].document_id
    doomed = container.store.list_source_items(source_id)[site.url("/doomed")].document_id
    assert len(container.documents.chunks(guide)) >= 2

    stop = threading.Event()
    mixed: list[set[str]] = []
    searches = [0]

    def search_loop() -> None:
        while not stop.is_set():
            hits = container.search.search("zebra guide edition", collections=[cid], top_k=50)
            versions = {
                word
                for hit in hits
                if hit.document_id == guide
                for word in hit.text.split()
                if word.startswith("ver") and word[3:-1].isdigit()
            }
            if len(versions) > 1:
                mixed.append(versions)
            searches[0] += 1

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        for version in range(2, 6):
            site.put("/guide", _long_page(version))
            result = container.sources.sync_now(source_id)
            assert result["updated"] == 1, result
        site.sitemap("/sitemap.xml", ["/guide"])
        assert container.sources.sync_now(source_id)["deleted"] == 1
    finally:
        stop.set()
        thread.join()
    assert searches[0] > 0
    assert mixed == []
    # Once the deletion committed, no search finds the removed page.
    for _ in range(3):
        hits = container.search.search("zebra soon to be removed", collections=[cid], top_k=50)
        assert doomed not in {hit.document_id for hit in hits}
        assert {w for h in hits for w in h.text.split() if w.startswith("ver")} <= {"ver5."}


class _StopAfter:
    """A progress sink that stops the sync after ``n`` items, as a cancelled job does."""

    def __init__(self, n: int) -> None:
        self.n = n

    def progress(self, done: int, total: int) -> None:
        if done >= self.n:
            raise KeyboardInterrupt


def test_a_sync_stopped_midway_keeps_whole_items_and_frees_the_source(
    container: Container, site: Site
) -> None:
    urls = [site.put(f"/p{n}", page(f"P{n}", f"Page number {n}.")) for n in range(17)]
    cid = collection_id(container)
    source_id = container.sources.create(cid, type="urls", location=urls).source.id
    with pytest.raises(KeyboardInterrupt):
        container.sources.sync_now(source_id, progress=_StopAfter(16))
    stopped = container.sources.get(source_id)
    assert stopped.last_status == "failed" and "stopped" in (stopped.last_error or "")
    held = container.store.list_source_items(source_id)
    assert len(held) == stopped.last_counts.added == 16  # one full batch was stored
    for item in held.values():
        assert container.documents.get(item.document_id).status == "ready"
    # The source is free again, and the next sync picks up where this one stopped.
    rest = container.sources.sync_now(source_id)
    assert (rest["added"], rest["unchanged"]) == (1, 16)
