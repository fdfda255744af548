"""File type detection and parsers from bytes to normalized text, as a registry.

``detect`` picks a type from content first; each format has one module that turns its
bytes into normalized text (Markdown-flavoured where the source has structure, so the
chunker can follow headings) plus a title when the document names one. Adding a format
(office files, say) is a new module here, one entry in :data:`PARSERS` and its magic
bytes and extensions in ``detect``.
"""

from __future__ import annotations

from ragd.config import Settings
from ragd.errors import EmptyDocument
from ragd.ingest.parsers import html
from ragd.ingest.parsers.archive import ZipLimits
from ragd.ingest.parsers.base import (
    CODE,
    CSV,
    DOCX,
    EPUB,
    HTML,
    JSON,
    JSONL,
    MARKDOWN,
    PDF,
    PLAIN,
    PPTX,
    SUPPORTED_MIME_TYPES,
    XLSX,
    ParsedDocument,
    ParseLimits,
    Parser,
    decode,
    split_content_type,
    unsupported,
)
from ragd.ingest.parsers.code import parse_code
from ragd.ingest.parsers.detect import detect_mime_type
from ragd.ingest.parsers.docx import parse_docx
from ragd.ingest.parsers.epub import parse_epub
from ragd.ingest.parsers.html import parse_html
from ragd.ingest.parsers.jsondoc import parse_json, parse_jsonl
from ragd.ingest.parsers.markdown import markdown_title, parse_markdown, parse_text
from ragd.ingest.parsers.pdf import parse_pdf
from ragd.ingest.parsers.pptx import parse_pptx
from ragd.ingest.parsers.sheets import parse_csv, parse_xlsx
from ragd.ingest.parsers.text import parse_plain

__all__ = [
    "PARSERS",
    "SUPPORTED_MIME_TYPES",
    "ParseLimits",
    "ParsedDocument",
    "ZipLimits",
    "detect_mime_type",
    "markdown_title",
    "parse_document",
    "parse_limits",
    "parse_text",
    "precheck",
]

PARSERS: dict[str, Parser] = {
    PLAIN: parse_plain,
    MARKDOWN: parse_markdown,
    HTML: parse_html,
    PDF: parse_pdf,
    DOCX: parse_docx,
    PPTX: parse_pptx,
    XLSX: parse_xlsx,
    CSV: parse_csv,
    EPUB: parse_epub,
    JSON: parse_json,
    JSONL: parse_jsonl,
}
# Read from their bytes, never decoded as text by the upload's precheck.
_BINARY = frozenset({PDF, DOCX, PPTX, XLSX, EPUB})


def parse_limits(settings: Settings) -> ParseLimits:
    """The parse bounds the settings give, for the worker and the upload's detection."""
    return ParseLimits(
        max_pages=settings.parse_max_pages,
        max_chars=settings.parse_max_chars,
        max_cells=settings.parse_max_cells,
        zip=ZipLimits(
            max_members=settings.zip_max_members,
            max_uncompressed_bytes=int(settings.zip_max_uncompressed_mb * 1024 * 1024),
            max_ratio=settings.zip_max_ratio,
        ),
    )


_DEFAULT_LIMITS = ParseLimits()


def parse_document(
    data: bytes,
    mime_type: str,
    *,
    filename: str | None = None,
    limits: ParseLimits = _DEFAULT_LIMITS,
) -> ParsedDocument:
    """Read ``data`` as ``mime_type`` (as returned by :func:`detect_mime_type`).

    ``mime_type`` may carry a ``charset`` parameter (from a fetched page's Content-Type),
    which is used only when the bytes are not UTF-8. ``filename`` is the title of source
    code, and accepted so callers need not know which parsers use it. This runs in the calling
    process with no time bound: the worker calls it through :mod:`ragd.ingest.isolation`.
    """
    base, params = split_content_type(mime_type)
    charset = params.get("charset")
    parser = PARSERS.get(base)
    if base in CODE:
        document = parse_code(data, charset, limits, mime_type=base, filename=filename)
    elif parser is None:
        raise unsupported(base or "an unknown type")
    else:
        document = parser(data, charset, limits)
    if not document.text:
        raise EmptyDocument("document contains no text")
    return document


def precheck(data: bytes, mime_type: str) -> None:
    """The checks cheap enough for an upload request: linear passes in C, never a parser.

    The bytes must decode (as the parser would decode them), and plain text or Markdown
    must not be blank, so those mistakes are a 4xx at once. Everything that needs the
    parser (HTML's main content, a PDF's pages) waits for the worker and its bounds: in
    the request, 2 MiB of one repeated HTML tag once took 54 s and ~1 GB.
    """
    base, params = split_content_type(mime_type)
    if base in _BINARY:
        return
    charset = params.get("charset") or (html.meta_charset(data) if base == HTML else None)
    text = decode(data, charset)
    if base != HTML and not text.strip():
        raise EmptyDocument("document contains no text")
