"""The listers of synced sources on hostile input: sitemaps that try XML tricks or are
too long, spreadsheets over their bounds or not what they claim, folder paths that
try to leave the folder."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from ragd.errors import FetchError, InvalidInput, ParseError, PayloadTooLarge
from ragd.ingest.sources.folder import check_patterns, list_folder, read_file, resolve_folder
from ragd.ingest.sources.sitemap import parse_sitemap
from ragd.ingest.sources.spreadsheet import TableTask, check_mapping, read_table, rows_to_items

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def test_sitemap_urlset_and_index() -> None:
    urlset = f"<urlset {NS}><url><loc> https://a.example/1 </loc></url><url><loc>https://a.example/1</loc></url><url><loc>https://a.example/2</loc><lastmod>2025-01-01</lastmod></url></urlset>"
    found = parse_sitemap(urlset.encode(), max_urls=10)
    assert found.pages == ["https://a.example/1", "https://a.example/2"] and found.sitemaps == []
    index = (
        f"<sitemapindex {NS}><sitemap><loc>https://a.example/s1.xml</loc></sitemap></sitemapindex>"
    )
    assert parse_sitemap(index.encode(), max_urls=10).sitemaps == ["https://a.example/s1.xml"]


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b"<html><body>hello</body></html>",
        # Billion laughs: entity expansion, refused before it starts.
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<urlset><url><loc>&lol2;</loc></url></urlset>",
        # An external entity reading a local file.
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<urlset><url><loc>&e;</loc></url></urlset>",
    ],
)
def test_sitemap_refuses_what_is_not_a_plain_sitemap(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_sitemap(body, max_urls=10)


def test_sitemap_url_bound() -> None:
    urls = "".join(f"<url><loc>https://a.example/{n}</loc></url>" for n in range(4))
    body = f"<urlset {NS}>{urls}</urlset>".encode()
    assert len(parse_sitemap(body, max_urls=4).pages) == 4
    with pytest.raises(PayloadTooLarge):
        parse_sitemap(body, max_urls=3)


MAPPING = check_mapping({"key_column": "id", "text_columns": "body"})


def test_csv_rows_at_and_past_the_bound() -> None:
    data = b"id,body\n1,one\n2,two\n\n,\n"
    table = read_table(TableTask(data, "csv", None, max_rows=2))
    assert table == [["id", "body"], ["1", "one"], ["2", "two"]]  # blank rows dropped
    with pytest.raises(PayloadTooLarge):
        read_table(TableTask(data, "csv", None, max_rows=1))


def test_csv_that_is_not_utf8_or_empty() -> None:
    with pytest.raises(ParseError, match="UTF-8"):
        read_table(TableTask("id,body\n1,caf\u00e9\n".encode("latin-1"), "csv", None, 10))
    with pytest.raises(ParseError, match="empty"):
        read_table(TableTask(b"\n\n", "csv", None, 10))


def test_a_zip_that_is_not_a_workbook_or_is_a_bomb() -> None:
    with pytest.raises(ParseError):
        read_table(TableTask(b"PK\x03\x04garbage", "xlsx", None, 10))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/big.xml", b"0" * (200 * 1024 * 1024))
    with pytest.raises(ParseError, match="zip bomb"):
        read_table(TableTask(bomb.getvalue(), "xlsx", None, 10))


def test_rows_map_to_items_and_bad_rows_are_named() -> None:
    items, problems = rows_to_items(
        [["id", "body"], ["a", "one"], ["a", "again"], ["b", ""], ["c"]], MAPPING
    )
    assert [i.key for i in items] == ["a"]
    assert len(problems) == 3 and "appears more than once" in problems[0]
    with pytest.raises(ParseError, match="no column 'id'"):
        rows_to_items([["key", "body"]], MAPPING)


@pytest.mark.parametrize(
    "mapping",
    [
        "id",
        {"text_columns": ["x"]},
        {"key_column": "", "text_columns": ["x"]},
        {"key_column": "id", "text_columns": []},
        {"key_column": "id", "text_columns": ["x"] * 101},
        {"key_column": "id\n", "text_columns": ["x"]},
        {"key_column": "id", "text_columns": ["x"], "metadata_columns": {"c": "bad key!"}},
    ],
)
def test_bad_mappings(mapping: object) -> None:
    with pytest.raises(InvalidInput):
        check_mapping(mapping)


def test_folder_roots_and_patterns(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    assert resolve_folder(str(root / "docs"), [str(root)]) == (root / "docs").resolve()
    assert resolve_folder(str(root), [str(root)]) == root.resolve()
    for location in (str(tmp_path), str(root / "docs" / ".." / ".."), str(root / "missing")):
        with pytest.raises(InvalidInput):
            resolve_folder(location, [str(root)])
    with pytest.raises(InvalidInput):
        resolve_folder(str(root / "docs"), [])
    for patterns in ([], ["/abs/*"], ["a/../../b"], ["x" * 201]):
        with pytest.raises(InvalidInput):
            check_patterns(patterns)


def test_folder_listing_skips_symlinks_and_reading_never_follows_one(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "ok.md").write_text("fine")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("secret")
    (folder / "file-link.md").symlink_to(outside / "secret.md")
    (folder / "dir-link").symlink_to(outside, target_is_directory=True)
    listed = list_folder(folder, ["*"], max_files=10)
    assert [f.key for f in listed] == ["sub/ok.md"]
    with pytest.raises(PayloadTooLarge):
        list_folder(folder, ["*"], max_files=0)

    assert read_file(folder, "sub/ok.md", max_bytes=4) == b"fine"
    with pytest.raises(PayloadTooLarge):
        read_file(folder, "sub/ok.md", max_bytes=3)
    for key in ("file-link.md", "dir-link/secret.md", "../outside/secret.md", "/etc/passwd", ""):
        with pytest.raises(FetchError):
            read_file(folder, key, max_bytes=100)
    # A directory swapped for a symlink after the listing is refused too.
    os.rename(folder / "sub", tmp_path / "sub-moved")
    (folder / "sub").symlink_to(tmp_path / "sub-moved", target_is_directory=True)
    with pytest.raises(FetchError):
        read_file(folder, "sub/ok.md", max_bytes=100)
