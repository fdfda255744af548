"""Tests for the DOCX, PPTX, XLSX, CSV, EPUB, JSON/JSONL and source code parsers, their
detection by content, and the ZIP and XML defences, on files the tests build."""

from __future__ import annotations

import io
import json
import pathlib
import zipfile

import pytest

from ragd.errors import ParseError, UnsupportedMediaType
from ragd.ingest.chunking import Chunk, chunk_document
from ragd.ingest.parsers import (
    ParsedDocument,
    ParseLimits,
    ZipLimits,
    detect_mime_type,
    parse_document,
)
from tests.ingest import bombs
from tests.ingest.office import (
    make_docx,
    make_epub,
    make_pptx,
    make_xlsx,
    replace_member,
    styled_empty_cells_xlsx,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EPUB = "application/epub+zip"


def read(
    data: bytes, filename: str | None = None, limits: ParseLimits | None = None
) -> ParsedDocument:
    """Detect then parse, as the worker does."""
    limits = limits or ParseLimits()
    mime = detect_mime_type(data, filename, None, zip_limits=limits.zip)
    return parse_document(data, mime, filename=filename, limits=limits)


def chunks_of(document: ParsedDocument, max_tokens: int = 200) -> list[Chunk]:
    return chunk_document(
        document.text, max_tokens=max_tokens, overlap_tokens=8, markdown=document.markdown
    )


# --- detection by content --------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (make_docx, DOCX),
        (lambda: make_pptx([("Hello", "World")]), PPTX),
        (lambda: make_xlsx({"S": [["a"]]}), XLSX),
        (lambda: make_epub([("One", "<p>x</p>")]), EPUB),
    ],
)
@pytest.mark.parametrize("filename", [None, "report.pdf", "notes.txt", "book.docx"])
def test_containers_are_detected_by_content_not_name(
    build: object, expected: str, filename: str | None
) -> None:
    data = build()  # type: ignore[operator]
    assert detect_mime_type(data, filename, "application/pdf") == expected


def test_a_docx_named_pdf_is_read_as_docx() -> None:
    document = read(make_docx(), "report.pdf")
    assert document.mime_type == DOCX and "mooring licence" in document.text


@pytest.mark.parametrize("filename", ["report.docx", "deck.pptx", "book.xlsx", "novel.epub"])
def test_a_container_name_on_text_is_refused(filename: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="not a ZIP container"):
        detect_mime_type(b"just text", filename, None)


def test_other_zip_files_are_refused_with_a_reason() -> None:
    odt = make_epub([("x", "<p>x</p>")])
    odt = replace_member(odt, "mimetype", b"application/vnd.oasis.opendocument.text")
    with pytest.raises(UnsupportedMediaType, match="OpenDocument"):
        detect_mime_type(odt, "a.odt", None)
    plain = bombs.many_members_zip(0).replace(b"[Content_Types]", b"[Kontent_Types]")
    with pytest.raises(UnsupportedMediaType, match="a ZIP archive"):
        detect_mime_type(plain, "notes.txt", None)
    unknown = bombs.many_members_zip(0).replace(b"word/document", b"word/dokument")
    with pytest.raises(UnsupportedMediaType, match="Office Open XML package of an unknown kind"):
        detect_mime_type(unknown, None, None)


def test_encrypted_office_files_are_refused_as_such() -> None:
    with pytest.raises(UnsupportedMediaType, match="encrypted Office document"):
        detect_mime_type(bombs.encrypted_office_file(), "secret.docx", None)
    legacy = bombs.encrypted_office_file().replace(
        "EncryptedPackage".encode("utf-16-le"), b"\0" * 32
    )
    with pytest.raises(UnsupportedMediaType, match="legacy"):
        detect_mime_type(legacy, "old.doc", None)


@pytest.mark.parametrize(
    ("data", "filename", "declared", "expected"),
    [
        (b"name,city\nann,paris\nbob,rome\n", "people.csv", None, "text/csv"),
        (b"name\tcity\nann\tparis\n", "people.tsv", None, "text/csv"),
        (b"name,city\nann,paris\n", None, "text/csv", "text/csv"),
        (b"Just a sentence, with a comma.", "prose.csv", None, "text/plain"),
        (b"name,city\nann,paris\n", None, None, "text/plain"),  # CSV needs a name or type
        (b'{"a": 1}', None, None, "application/json"),
        (b"  [1, 2, 3]\n", "data.txt", None, "application/json"),
        (b'{"a": 1}\n{"a": 2}\n', None, None, "application/x-ndjson"),
        (b'{"a": 1}\n{"a": 2}\n', "data.json", None, "application/x-ndjson"),
        (b'{"a": 1}', "log.jsonl", None, "application/x-ndjson"),
        (b"{not json at all}", "broken.json", None, "text/plain"),
        (b"[Draft] my notes", None, None, "text/plain"),
        (b"def f():\n    return 1\n", "tool.py", None, "text/x-python"),
        (b"package main\n", "main.go", None, "text/x-go"),
        (b"fn main() {}\n", "lib.rs", None, "text/x-rust"),
        (b"key: value\n", "conf.yaml", None, "application/yaml"),
        (b"SELECT 1;\n", "q.sql", None, "application/sql"),
    ],
)
def test_text_kinds(data: bytes, filename: str | None, declared: str | None, expected: str) -> None:
    assert detect_mime_type(data, filename, declared) == expected


# --- DOCX --------------------------------------------------------------------------------


def test_docx_headings_lists_and_tables() -> None:
    document = read(make_docx())
    assert document.title == "Harbour Handbook"
    assert "# Moorings" in document.text and "## Fees" in document.text
    assert "- Cash is accepted\n- Cards are accepted" in document.text
    assert "| Berth | Length | Fee |\n|-|-|-|\n| B1 | 6 m | 100 EUR |" in document.text
    paths = {c.heading_path for c in chunks_of(document)}
    assert {("Moorings",), ("Moorings", "Fees"), ("Safety",)} <= paths


def test_docx_long_table_carries_its_header_into_every_chunk() -> None:
    chunks = [c for c in chunks_of(read(make_docx(rows=80)), 60) if "EUR" in c.text]
    assert len(chunks) > 3
    for chunk in chunks:
        assert "| Berth | Length | Fee |\n|-|-|-|\n" in chunk.text
        assert chunk.heading_path == ("Moorings", "Fees")


def test_macro_enabled_docx_is_read_and_its_macros_ignored() -> None:
    data = make_docx()
    types = _member(data, "[Content_Types].xml").replace(
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        b"application/vnd.ms-word.document.macroEnabled.main+xml",
    )
    assert b"macroEnabled" in types
    docm = replace_member(data, "[Content_Types].xml", types)
    docm = _add_member(docm, "word/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro bytes")
    document = read(docm, "macros.docm")
    assert document.mime_type == DOCX and "mooring licence" in document.text


def _add_member(data: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr(name, content)
    return out.getvalue()


def test_docx_with_a_dtd_is_refused() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"
    )
    with pytest.raises(ParseError, match="DTD"):
        read(replace_member(make_docx(), "word/document.xml", evil))


def test_damaged_docx_is_a_readable_parse_error() -> None:
    data = replace_member(make_docx(), "word/document.xml", b"<w:document><unclosed>")
    with pytest.raises(ParseError, match="DOCX file could not be read"):
        read(data)


# --- PPTX --------------------------------------------------------------------------------


def test_pptx_slides_are_sections_titled_by_their_slide() -> None:
    data = make_pptx(
        [("Welcome aboard", "Ferries leave hourly."), ("Fares", "Adults pay 5 EUR.")],
        notes="Smile.",
    )
    document = read(data)
    assert document.mime_type == PPTX
    chunks = chunks_of(document)
    by_path = {c.heading_path: c.text for c in chunks}
    assert "Ferries leave hourly." in by_path[("Welcome aboard",)]
    assert "Notes: Smile." in by_path[("Fares",)]
    assert by_path[("Tide table",)].startswith("| Day | High water |\n|-|-|\n| Monday | 06:12 |")


# --- XLSX and CSV ------------------------------------------------------------------------


def test_xlsx_one_section_per_sheet_with_its_header_row() -> None:
    rows: list[list[object]] = [["Boat", "Length", "Built"]]
    rows += [[f"boat{n}", n + 0.5, 1990 + n] for n in range(120)]
    data = make_xlsx({"Fleet": rows, "Crew": [["Name"], [None], ["Ann"]]}, title="Marina")
    document = read(data)
    assert document.title == "Marina"
    chunks = chunks_of(document, 60)
    fleet = [c for c in chunks if c.heading_path == ("Fleet",)]
    assert len(fleet) > 3
    assert all(c.text.startswith("| Boat | Length | Built |\n|-|-|-|\n") for c in fleet)
    assert "| boat3 | 3.5 | 1993 |" in document.text
    [crew] = [c for c in chunks if c.heading_path == ("Crew",)]
    assert crew.text == "| Name |\n|-|\n| Ann |"  # the empty row is dropped


def test_a_million_empty_cells_fail_fast() -> None:
    data = styled_empty_cells_xlsx(1_000_000)
    with pytest.raises(ParseError, match="more than 200,000 cells"):
        read(data)


def test_a_sheet_claiming_huge_dimensions_is_not_padded() -> None:
    data = make_xlsx({"S": [["Name"], ["Ann"]]})
    claim = b'<dimension ref="A1:XFD1048576"/>'
    sheet = _member(data, "xl/worksheets/sheet1.xml")
    lying = replace_member(
        data, "xl/worksheets/sheet1.xml", sheet.replace(b'<dimension ref="A1:A2"/>', claim)
    )
    assert claim in _member(lying, "xl/worksheets/sheet1.xml")
    assert read(lying).text == "# S\n\n| Name |\n|-|\n| Ann |"


def _member(data: bytes, name: str) -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read(name)


def test_cell_cap_applies_to_csv() -> None:
    data = ("a,b\n" + "1,2\n" * 100).encode()
    with pytest.raises(ParseError, match="more than 50 cells"):
        read(data, "t.csv", ParseLimits(max_cells=50))


def test_csv_dialect_is_sniffed_and_pipes_escaped() -> None:
    document = read(b"name;note\nann;a|b\nbob;multi\n", "p.csv")
    assert document.text == "| name | note |\n|-|-|\n| ann | a\\|b |\n| bob | multi |"


# --- EPUB --------------------------------------------------------------------------------


def test_epub_chapters_in_spine_order_with_headings() -> None:
    data = make_epub(
        [
            (
                "Arrival",
                "<p>The keeper rowed out at dawn.</p><h2>The lamp</h2><p>It burned oil.</p>",
            ),
            ("Storm", "<p>Waves broke over the gallery.</p>"),
        ]
    )
    document = read(data, "book.epub")
    assert document.title == "The Lighthouse"
    assert document.text.index("Arrival") < document.text.index("Storm")
    paths = [c.heading_path for c in chunks_of(document)]
    assert ("Arrival", "The lamp") in paths and ("Storm",) in paths


def test_epub_external_entity_is_not_resolved(tmp_path: pathlib.Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    data = make_epub([("Chapter", "<p>innocent</p>")])
    evil = (
        f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Leak</h1><p>&x;</p></body></html>'
    ).encode()
    with pytest.raises(ParseError, match="entities") as caught:
        read(replace_member(data, "EPUB/chapter1.xhtml", evil))
    assert "TOP-SECRET" not in caught.value.detail


def test_epub2_doctype_without_entities_is_read() -> None:
    data = make_epub([("Chapter", "<p>innocent</p>")])
    page = (
        b'<?xml version="1.0"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        b'"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Old style</h1>'
        b"<p>Readers still meet EPUB 2 books.</p></body></html>"
    )
    document = read(replace_member(data, "EPUB/chapter1.xhtml", page))
    assert "EPUB 2 books" in document.text


# --- ZIP bombs ---------------------------------------------------------------------------


def test_zip_bomb_is_refused_before_extraction() -> None:
    with pytest.raises(ParseError, match="possible ZIP bomb"):
        read(bombs.zip_bomb(), "report.docx")


def test_total_uncompressed_size_is_capped() -> None:
    limits = ParseLimits(zip=ZipLimits(max_uncompressed_bytes=512 * 1024))
    with pytest.raises(ParseError, match=r"would expand to more than 0\.5 MB"):
        read(make_docx(), limits=limits)


def test_member_count_is_capped_from_the_directory() -> None:
    with pytest.raises(ParseError, match="more than 10,000 members"):
        read(bombs.many_members_zip(20_000))


def test_a_member_inflating_past_its_declared_size_is_refused() -> None:
    with pytest.raises(ParseError, match="damaged"):
        read(bombs.lying_size_zip(declared=100, actual=2_000_000))


# --- JSON, JSONL, code -------------------------------------------------------------------


def test_json_key_paths_become_headings() -> None:
    data = {
        "service": "ragd",
        "database": {"url": "sqlite://", "pool": {"size": 5}},
        "tags": ["a", "b"],
    }
    document = read(json.dumps(data).encode(), "config.json")
    paths = {c.heading_path: c.text for c in chunks_of(document)}
    assert paths[()] == 'service: "ragd"' or paths[()] == "service: ragd"
    assert paths[("database",)] == "url: sqlite://"
    assert paths[("database", "pool")] == "size: 5"
    assert paths[("tags",)] == "- a\n- b"


def test_jsonl_one_section_per_record() -> None:
    lines = [json.dumps({"id": n, "text": f"note {n}"}) for n in range(3)]
    document = read("\n".join(lines).encode(), "notes.jsonl")
    paths = [c.heading_path for c in chunks_of(document)]
    assert paths == [("Record 1",), ("Record 2",), ("Record 3",)]


def test_bad_jsonl_line_is_named() -> None:
    with pytest.raises(ParseError, match="JSONL line 2 is not valid JSON"):
        read(b'{"a": 1}\n{"a": \n', "x.jsonl")


def test_deep_json_is_bounded() -> None:
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_document(deep, "application/json")
    assert read(deep, "deep.json").mime_type == "text/plain"  # too deep to be structure
    nested = json.dumps({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}})
    document = read(nested.encode(), "n.json")
    assert '{"g":{"h":1}}' in document.text


def test_code_keeps_comments_as_text_and_names_the_file() -> None:
    source = (
        b"# configuration loader\nimport os\n\n\n"
        b"def load():\n    # read the file\n    return os.environ\n"
    )
    document = read(source, "src/loader.py")
    assert document.title == "loader.py" and document.mime_type == "text/x-python"
    [chunk] = chunks_of(document)
    assert chunk.heading_path == () and chunk.text.startswith("# configuration loader")
