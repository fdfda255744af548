"""File type detection and parsers from bytes to normalized text, as a registry.

``detect`` picks a type from content first; each format has one module that turns its
bytes into normalized text (Markdown-flavoured where the source has structure, so the
chunker can follow headings) plus a title when the document names one. Adding a format
(office files, say) is a new module here, one entry in :data:`PARSERS` and its magic
bytes and extensions in ``detect``.
"""

from __future__ import annotations

from ragd.errors import EmptyDocument
from ragd.ingest.parsers import html
from ragd.ingest.parsers.base import (
    HTML,
    MARKDOWN,
    PDF,
    PLAIN,
    SUPPORTED_MIME_TYPES,
    ParsedDocument,
    ParseLimits,
    Parser,
    decode,
    split_content_type,
    unsupported,
)
from ragd.ingest.parsers.detect import detect_mime_type
from ragd.ingest.parsers.html import parse_html
from ragd.ingest.parsers.markdown import markdown_title, parse_markdown, parse_text
from ragd.ingest.parsers.pdf import parse_pdf
from ragd.ingest.parsers.text import parse_plain

__all__ = [
    "PARSERS",
    "SUPPORTED_MIME_TYPES",
    "ParseLimits",
    "ParsedDocument",
    "detect_mime_type",
    "markdown_title",
    "parse_document",
    "parse_text",
    "precheck",
]

PARSERS: dict[str, Parser] = {
    PLAIN: parse_plain,
    MARKDOWN: parse_markdown,
    HTML: parse_html,
    PDF: parse_pdf,
}

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
    which is used only when the bytes are not UTF-8. ``filename`` is accepted so callers
    need not know which parsers could use it; none does yet. This runs in the calling
    process with no time bound: the worker calls it through :mod:`ragd.ingest.isolation`.
    """
    base, params = split_content_type(mime_type)
    parser = PARSERS.get(base)
    if parser is None:
        raise unsupported(base or "an unknown type")
    document = parser(data, params.get("charset"), limits)
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
    if base == PDF:
        return
    charset = params.get("charset") or (html.meta_charset(data) if base == HTML else None)
    text = decode(data, charset)
    if base != HTML and not text.strip():
        raise EmptyDocument("document contains no text")
