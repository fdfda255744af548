"""Tests for ragd.ingest.parsers: type detection and the text, Markdown, HTML, PDF parsers."""

from __future__ import annotations

import codecs
import io

import pytest
import trafilatura
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas

from ragd.errors import EmptyDocument, InvalidInput, ParseError, UnsupportedMediaType
from ragd.ingest.parsers import (
    SUPPORTED_MIME_TYPES,
    ParsedDocument,
    ParseLimits,
    detect_mime_type,
    parse_document,
    parse_text,
)

ARTICLE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>The Gardener's Almanac</title></head>
<body>
<nav><ul>
  <li><a href="/">Home</a></li><li><a href="/about">About us</a></li>
  <li><a href="/shop">Shop our catalogue</a></li>
</ul></nav>
<main><article>
<h1>The Gardener's Almanac</h1>
<p>Tomatoes need at least six hours of direct sunlight every day to produce a good crop.
Plant them after the last frost, when the soil has warmed up and the nights are mild.</p>
<h2>Watering</h2>
<p>Water deeply twice a week rather than a little every day, so that the roots grow down
into the soil and the plants survive the dry spells of late summer without wilting.</p>
<ul><li>Morning watering is best.</li><li>Avoid wetting the leaves.</li></ul>
</article></main>
<footer><p>Copyright 2024 Example Corp. All rights reserved.</p>
<a href="/privacy">Privacy policy</a></footer>
</body></html>
"""


def make_pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """Build a real PDF with one line of text per page."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    if title is not None:
        pdf.setTitle(title)
    for text in pages:
        if text:
            pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def encrypt_pdf(data: bytes, user_password: str, owner_password: str | None = None) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- detection -------------------------------------------------------------------------


def test_supported_mime_types() -> None:
    office = "application/vnd.openxmlformats-officedocument"
    expected = (
        "text/plain",
        "text/markdown",
        "text/html",
        "application/pdf",
        f"{office}.wordprocessingml.document",
        f"{office}.presentationml.presentation",
        f"{office}.spreadsheetml.sheet",
        "text/csv",
        "application/epub+zip",
        "application/json",
        "application/x-ndjson",
    )
    assert expected == SUPPORTED_MIME_TYPES


def test_pdf_magic_wins_over_name_and_declared_type() -> None:
    assert detect_mime_type(b"%PDF-1.7\n...", "notes.txt", "text/plain") == "application/pdf"
    assert detect_mime_type(b"%PDF-1.4", None, "application/octet-stream") == "application/pdf"


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"GIF89a\x01\x00", "GIF"),
        (b"PK\x03\x04\x14\x00\x06\x00", "ZIP"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x7fELF\x02\x01\x01", "ELF"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "OLE"),
    ],
)
def test_binary_magic_is_refused_by_name(head: bytes, named: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        detect_mime_type(head, "innocent.txt", "text/plain")
    assert named in caught.value.detail
    assert "supported types: text/plain" in caught.value.detail


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html><body>x</body></html>",
        b"  \n\t<!doctype HTML>\n<html>",
        b"<HTML><head></head></HTML>",
        codecs.BOM_UTF8 + b"\n<html lang='en'>",
        codecs.BOM_UTF16_LE + "<!DOCTYPE html><html>".encode("utf-16-le"),
    ],
)
def test_html_is_sniffed_from_content(head: bytes) -> None:
    assert detect_mime_type(head, "page.txt", None) == "text/html"
    assert detect_mime_type(head, None, None) == "text/html"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("README.md", "text/markdown"),
        ("notes.MARKDOWN", "text/markdown"),
        ("a.txt", "text/plain"),
        ("a.text", "text/plain"),
        ("doc.rst", "text/plain"),
        ("data.csv", "text/plain"),
        ("server.log", "text/plain"),
        ("page.html", "text/html"),
        ("page.HTM", "text/html"),
        ("dir\\sub\\report.pdf", "application/pdf"),
        ("script.py", "text/x-python"),
        ("no_extension", "text/plain"),
    ],
)
def test_type_from_extension(filename: str, expected: str) -> None:
    assert detect_mime_type(b"just some words", filename, None) == expected


def test_extension_beats_declared_type() -> None:
    assert detect_mime_type(b"# Title", "a.md", "text/plain") == "text/markdown"


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("text/markdown; charset=utf-8", "text/markdown"),
        ("TEXT/HTML; Charset=UTF-8", "text/html"),
        ("text/x-markdown", "text/markdown"),
        ("application/pdf", "application/pdf"),
        ("application/octet-stream", "text/plain"),
        ("text/csv", "text/plain"),
        ("", "text/plain"),
        (None, "text/plain"),
    ],
)
def test_type_from_declared_content_type(declared: str | None, expected: str) -> None:
    assert detect_mime_type(b"plain words here", None, declared) == expected


@pytest.mark.parametrize("filename", ["report.doc", "photo.PNG", "setup.exe", "a.tar.gz"])
def test_known_unsupported_extension_is_refused(filename: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        detect_mime_type(b"looks like text", filename, None)
    suffix = filename.rsplit(".", 1)[1].lower()
    assert f".{suffix} is not supported" in caught.value.detail
    assert "supported types:" in caught.value.detail


@pytest.mark.parametrize("head", [b"abc\x00def", b"caf\xe9 au lait", b"\x80\x81\x82"])
def test_undecodable_content_without_hints_is_refused(head: bytes) -> None:
    with pytest.raises(UnsupportedMediaType):
        detect_mime_type(head, None, "application/octet-stream")


def test_nul_bytes_are_binary_even_with_a_text_extension() -> None:
    with pytest.raises(UnsupportedMediaType):
        detect_mime_type(b"MZ\x90\x00\x03\x00\x00\x00", "program.txt", None)


def test_truncated_multibyte_tail_still_counts_as_text() -> None:
    head = b"a" * 4095 + "\u00e9".encode()  # the 4 KB sniff window cuts the last character
    assert detect_mime_type(head, None, None) == "text/plain"
    assert detect_mime_type(b"ok \xe2\x98", None, None) == "text/plain"


def test_utf16_text_with_bom_is_text() -> None:
    head = codecs.BOM_UTF16_LE + "hello world".encode("utf-16-le")
    assert detect_mime_type(head, None, None) == "text/plain"


# --- text and Markdown -----------------------------------------------------------------


def test_markdown_title_is_first_level_one_heading() -> None:
    data = b"intro\n\n```sh\n# not a title\n```\n\n## Sub\n\n#  Real Title  #\n\n# Second\n"
    doc = parse_document(data, "text/markdown")
    assert doc == ParsedDocument(data.decode().strip(), "Real Title", "text/markdown")


def test_markdown_without_heading_has_no_title() -> None:
    assert parse_document(b"## Only a subheading\n\ntext", "text/markdown").title is None


def test_plain_text_is_normalized_and_untitled() -> None:
    doc = parse_document(b"\xef\xbb\xbf# Looks like a heading\r\n\r\nbody  \r\n", "text/plain")
    assert doc == ParsedDocument("# Looks like a heading\n\nbody", None, "text/plain")


def test_invalid_utf8_text_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        parse_document(b"caf\xe9", "text/plain")


def test_declared_charset_is_used_when_bytes_are_not_utf8() -> None:
    doc = parse_document(b"caf\xe9", "text/plain; charset=iso-8859-1")
    assert doc.text == "caf\u00e9"


@pytest.mark.parametrize("mime", ["text/plain", "text/markdown", "text/html"])
def test_empty_document_is_refused(mime: str) -> None:
    with pytest.raises(EmptyDocument) as caught:
        parse_document(b" \n\t\x00\n", mime)
    assert caught.value.detail == "document contains no text"


def test_unsupported_mime_type_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_document(b"x", "image/png")


def test_parse_text_uses_markdown_heading_as_title() -> None:
    doc = parse_text("  # Hello\n\nWorld\r\n")
    assert doc == ParsedDocument("# Hello\n\nWorld", "Hello", "text/markdown")


def test_parse_text_explicit_title_wins() -> None:
    assert parse_text("# Hello\n\nWorld", title="  Given\ttitle ").title == "Given title"


def test_parse_text_plain_mode_ignores_headings() -> None:
    doc = parse_text("# Hello\n\nWorld", markdown=False)
    assert (doc.title, doc.mime_type) == (None, "text/plain")


def test_parse_text_empty_is_refused() -> None:
    with pytest.raises(EmptyDocument):
        parse_text(" \n\n ", title="Title only")


# --- HTML ------------------------------------------------------------------------------


def test_html_keeps_main_content_and_drops_boilerplate() -> None:
    doc = parse_document(ARTICLE_HTML.encode(), "text/html")
    assert doc.mime_type == "text/html"
    assert doc.title == "The Gardener's Almanac"
    assert "six hours of direct sunlight" in doc.text
    assert "Water deeply twice a week" in doc.text
    assert "Avoid wetting the leaves." in doc.text
    assert "## Watering" in doc.text  # headings survive as Markdown for the chunker
    for boilerplate in ("Shop our catalogue", "About us", "Copyright 2024", "Privacy policy"):
        assert boilerplate not in doc.text


def test_html_title_falls_back_to_title_tag() -> None:
    markup = (
        b"<html><head><title>Caf&eacute; &amp; Bar</title></head><body><p>Hi.</p></body></html>"
    )
    doc = parse_document(markup, "text/html")
    assert doc.title == "Caf\u00e9 & Bar"
    assert doc.text == "Hi."


def test_html_fallback_strips_tags_scripts_and_styles(monkeypatch: pytest.MonkeyPatch) -> None:
    markup = (
        b"<html><head><title>T</title><style>p{color:red}</style></head><body>"
        b"<p>First   line</p><script>var secret = 1;</script>"
        b"<div>Second &amp; <b>bold</b></div><ul><li>one</li><li>two</li></ul></body></html>"
    )
    monkeypatch.setattr(trafilatura, "extract", lambda *args, **kwargs: None)
    doc = parse_document(markup, "text/html")
    assert doc.text == "First line\n\nSecond & bold\n\none\n\ntwo"
    assert doc.title == "T"


def test_html_honours_meta_charset_for_legacy_encodings() -> None:
    markup = (
        b'<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head>'
        b"<body><p>Caf\xe9 au lait.</p></body></html>"
    )
    doc = parse_document(markup, "text/html")
    assert doc.title == "Caf\u00e9"
    assert "Caf\u00e9 au lait." in doc.text


def test_html_without_text_is_empty() -> None:
    with pytest.raises(EmptyDocument):
        parse_document(b"<html><body><script>x()</script></body></html>", "text/html")


# --- PDF -------------------------------------------------------------------------------


def test_pdf_text_and_title_are_extracted() -> None:
    data = make_pdf(["Revenue grew by twelve percent.", "", "Costs were flat."], title="Q3")
    doc = parse_document(data, "application/pdf", filename="q3.pdf")
    assert doc == ParsedDocument(
        "Revenue grew by twelve percent.\n\nCosts were flat.", "Q3", "application/pdf"
    )


def test_pdf_without_title_metadata_has_no_title() -> None:
    assert parse_document(make_pdf(["Body text."]), "application/pdf").title is None


def test_corrupt_pdf_is_a_parse_error_with_a_short_reason() -> None:
    with pytest.raises(ParseError) as caught:
        parse_document(b"%PDF-1.4 garbage", "application/pdf")
    assert caught.value.detail.startswith("PDF could not be read: ")
    assert "\n" not in caught.value.detail
    assert "Traceback" not in caught.value.detail


def test_encrypted_pdf_is_refused() -> None:
    data = encrypt_pdf(make_pdf(["Top secret plans."]), "secret")
    with pytest.raises(ParseError, match="encrypted"):
        parse_document(data, "application/pdf")


def test_pdf_with_owner_password_only_is_read() -> None:
    data = encrypt_pdf(make_pdf(["Readable by anyone."]), "", "owner-secret")
    assert parse_document(data, "application/pdf").text == "Readable by anyone."


def test_pdf_without_text_is_empty() -> None:
    with pytest.raises(EmptyDocument):
        parse_document(make_pdf(["", ""]), "application/pdf")


def test_pdf_page_cap() -> None:
    with pytest.raises(ParseError, match="more than 2 pages"):
        parse_document(make_pdf(["a", "b", "c"]), "application/pdf", limits=ParseLimits(2))


def test_pdf_text_cap() -> None:
    with pytest.raises(ParseError, match="exceeds 20 characters"):
        parse_document(
            make_pdf(["fifteen chars!!", "fifteen chars!!"]),
            "application/pdf",
            limits=ParseLimits(max_chars=20),
        )
