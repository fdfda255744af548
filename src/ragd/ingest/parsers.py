"""File type detection and parsers from bytes to normalized text.

Detection trusts content before names: an upload called ``notes.txt`` that is really a
PNG must be refused with a clear 415, not indexed as garbage, and a PDF served as
``application/octet-stream`` must still be read. Parsers turn each supported type into
normalized text (Markdown-flavoured where the source has structure, so the chunker can
follow headings) plus a title when the document names one.
"""

from __future__ import annotations

import codecs
import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath

import pypdf
import trafilatura

from ragd.errors import (
    EmptyDocument,
    InvalidInput,
    ParseError,
    RagdError,
    UnsupportedMediaType,
)
from ragd.ingest.chunking import iter_headings
from ragd.ingest.textnorm import bom_encoding, decode_text, normalize_text

__all__ = [
    "SUPPORTED_MIME_TYPES",
    "ParsedDocument",
    "detect_mime_type",
    "parse_document",
    "parse_text",
]

PLAIN, MARKDOWN, HTML, PDF = "text/plain", "text/markdown", "text/html", "application/pdf"
SUPPORTED_MIME_TYPES = (PLAIN, MARKDOWN, HTML, PDF)
_SUPPORTED = ", ".join(SUPPORTED_MIME_TYPES)

MAX_PDF_PAGES = 2_000
MAX_PDF_CHARS = 20_000_000
_SNIFF_BYTES = 4096
_MAX_TITLE_CHARS = 500
_MAX_REASON_CHARS = 200
_TITLE_SEARCH_CHARS = 65_536
_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document", "(untitled)"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a ZIP archive (which includes .docx, .xlsx, .pptx, .odt and .epub)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Java class or Mach-O binary"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE compound file (legacy .doc, .xls or .ppt)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript document"),
)

_EXTENSIONS = {
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": PLAIN,
    ".text": PLAIN,
    ".rst": PLAIN,
    ".csv": PLAIN,
    ".log": PLAIN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
}

_UNSUPPORTED_EXTENSIONS = frozenset(
    [
        ".doc",
        ".docx",
        ".docm",
        ".dot",
        ".dotx",
        ".xls",
        ".xlsx",
        ".xlsm",
        ".ppt",
        ".pptx",
        ".odt",
        ".ods",
        ".odp",
        ".rtf",
        ".epub",
        ".pages",
        ".key",
        ".numbers",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".webp",
        ".tif",
        ".tiff",
        ".ico",
        ".heic",
        ".svg",
        ".psd",
        ".mp3",
        ".wav",
        ".flac",
        ".ogg",
        ".m4a",
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".rar",
        ".tar",
        ".exe",
        ".dll",
        ".so",
        ".dylib",
        ".bin",
        ".dmg",
        ".iso",
        ".msi",
        ".apk",
        ".jar",
        ".class",
        ".pyc",
        ".o",
        ".a",
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".sqlite",
        ".db",
    ]
)

_DECLARED = {
    PLAIN: PLAIN,
    MARKDOWN: MARKDOWN,
    "text/x-markdown": MARKDOWN,
    HTML: HTML,
    "application/xhtml+xml": HTML,
    PDF: PDF,
    "application/x-pdf": PDF,
}

_HTML_PREFIXES = (b"<!doctype html", b"<html")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n{3,}")
_WHITESPACE_RUN = re.compile(r"\s+")
_TITLE_TAG = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ParsedDocument:
    """A parser's result: normalized text, the title the document gives itself, its type."""

    text: str
    title: str | None
    mime_type: str


# --- detection -------------------------------------------------------------------------


def detect_mime_type(head: bytes, filename: str | None, declared: str | None) -> str:
    """Decide which parser reads a file from its first bytes, its name and its declared type.

    ``head`` is the start of the file (4 KB is enough). Content is checked first because
    names and Content-Type headers are often wrong; a known binary format is refused by
    name. Text of no known kind is read as plain text.
    """
    if sniffed := _sniff_content(head):
        return sniffed
    guessed = _type_from_filename(filename) or _type_from_declared(declared)
    if guessed == PDF:
        return PDF
    if guessed is not None:
        if _has_nul_bytes(head):
            raise _unsupported("binary content")
        return guessed
    if not _is_text(head):
        raise _unsupported("binary or non-UTF-8 content")
    return PLAIN


def _unsupported(what: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"{what} is not supported; supported types: {_SUPPORTED}")


def _sniff_content(head: bytes) -> str | None:
    """Recognize PDF and HTML by their opening bytes; refuse known binary formats."""
    if head.startswith(b"%PDF-"):
        return PDF
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise _unsupported(what)
    if container := _riff_or_mp4(head):
        raise _unsupported(container)
    prefix = _ascii_prefix(head).lstrip().lower()
    return HTML if prefix.startswith(_HTML_PREFIXES) else None


def _riff_or_mp4(head: bytes) -> str | None:
    """Containers whose magic is not at offset 0 or is plain ASCII needing a second check."""
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "a RIFF media file (WebP, WAV or AVI)"
    if head[4:8] == b"ftyp":
        return "an MP4/QuickTime/HEIF media file"
    return None


def _ascii_prefix(head: bytes) -> bytes:
    """The first bytes as ASCII-compatible bytes, so a UTF-16 HTML file is sniffed too."""
    found = bom_encoding(head)
    if found is None:
        return head[:256]
    encoding, skip = found
    sample = head[skip : skip + 1024].decode(encoding, errors="ignore")
    return sample.encode("ascii", errors="ignore")


def _type_from_filename(filename: str | None) -> str | None:
    if not filename:
        return None
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in _UNSUPPORTED_EXTENSIONS:
        raise _unsupported(f"file type {suffix}")
    return _EXTENSIONS.get(suffix)


def _type_from_declared(declared: str | None) -> str | None:
    """Map a Content-Type to a parser; ``application/octet-stream`` says nothing."""
    base, _ = _split_content_type(declared or "")
    return _DECLARED.get(base)


def _split_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/sub; key=value`` into the lower-cased type and its parameters."""
    base, *params = value.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        key, sep, val = param.partition("=")
        if sep:
            parsed[key.strip().lower()] = val.strip().strip("\"'")
    return base.strip().lower(), parsed


def _has_nul_bytes(head: bytes) -> bool:
    """NUL bytes mean binary, except in UTF-16/32 text, which is full of them."""
    return bom_encoding(head) is None and b"\x00" in head[:_SNIFF_BYTES]


def _is_text(head: bytes) -> bool:
    """Whether the sniffed bytes decode, allowing a multi-byte character cut off at the end."""
    if _has_nul_bytes(head):
        return False
    encoding, skip = bom_encoding(head) or ("utf-8", 0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        decoder.decode(head[skip:_SNIFF_BYTES], final=False)
    except UnicodeDecodeError:
        return False
    return True


# --- parsing ---------------------------------------------------------------------------


def parse_document(data: bytes, mime_type: str, *, filename: str | None = None) -> ParsedDocument:
    """Read ``data`` as ``mime_type`` (as returned by :func:`detect_mime_type`).

    ``mime_type`` may carry a ``charset`` parameter (from a fetched page's Content-Type),
    which is used only when the bytes are not UTF-8. ``filename`` is accepted so callers
    need not know which parsers could use it; none does yet.
    """
    base, params = _split_content_type(mime_type)
    parser = _PARSERS.get(base)
    if parser is None:
        raise _unsupported(base or "an unknown type")
    document = parser(data, params.get("charset"))
    if not document.text:
        raise EmptyDocument("document contains no text")
    return document


def parse_text(text: str, *, title: str | None = None, markdown: bool = True) -> ParsedDocument:
    """Wrap text sent as JSON; a Markdown ``# `` heading supplies a missing title."""
    normalized = normalize_text(text)
    if not normalized:
        raise EmptyDocument("document contains no text")
    found = _clean_title(title) if title else None
    if found is None and markdown:
        found = markdown_title(normalized)
    return ParsedDocument(normalized, found, MARKDOWN if markdown else PLAIN)


def markdown_title(text: str) -> str | None:
    """The first level-1 ATX heading, which Markdown documents use as their title."""
    for heading in iter_headings(text):
        if heading.level == 1 and heading.text:
            return _clean_title(heading.text)
    return None


def _parse_plain(data: bytes, charset: str | None) -> ParsedDocument:
    return ParsedDocument(normalize_text(_decode(data, charset)), None, PLAIN)


def _parse_markdown(data: bytes, charset: str | None) -> ParsedDocument:
    text = normalize_text(_decode(data, charset))
    return ParsedDocument(text, markdown_title(text), MARKDOWN)


def _decode(data: bytes, charset: str | None) -> str:
    """Strict UTF-8 first; a declared legacy charset only when the bytes are not UTF-8."""
    try:
        return decode_text(data)
    except InvalidInput:
        if not charset or _codec_name(charset) in (None, "utf-8"):
            raise
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError):  # LookupError: not a text codec ("zlib")
        raise InvalidInput(f"file is not valid UTF-8 or {charset} text") from None


def _codec_name(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


# --- HTML ------------------------------------------------------------------------------


def _parse_html(data: bytes, charset: str | None) -> ParsedDocument:
    """Keep the page's main content only: navigation, footers and ads would pollute search."""
    markup = _decode(data, charset or _meta_charset(data))
    text = _main_content(markup) or _strip_tags(markup)
    return ParsedDocument(normalize_text(text), _html_title(markup), HTML)


def _meta_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:_SNIFF_BYTES])
    return match.group(1).decode("ascii") if match else None


def _main_content(markup: str) -> str | None:
    """Markdown output keeps headings and lists, which the chunker uses for structure."""
    try:
        extracted: str | None = trafilatura.extract(
            markup,
            output_format="markdown",
            include_comments=False,
            include_tables=True,
            favor_recall=True,
        )
    except Exception:  # lxml and trafilatura raise many types on odd markup
        return None
    return extracted


def _html_title(markup: str) -> str | None:
    """trafilatura's title (og:title, a lone h1, cleaned <title>), else the raw <title>."""
    try:
        metadata = trafilatura.extract_metadata(markup)
    except Exception:
        metadata = None
    if metadata is not None and metadata.title and (title := _clean_title(metadata.title)):
        return title
    match = _TITLE_TAG.search(markup, 0, _TITLE_SEARCH_CHARS)  # <title> is in the <head>
    return _clean_title(html.unescape(match.group(1))) if match else None


class _TextExtractor(HTMLParser):
    """Fallback when trafilatura finds no main content: all visible text, blocks on lines."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "title", "svg", "head"})
    _BLOCK = frozenset(
        [
            "address",
            "article",
            "aside",
            "blockquote",
            "br",
            "dd",
            "div",
            "dl",
            "dt",
            "figcaption",
            "figure",
            "footer",
            "form",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "header",
            "hr",
            "li",
            "main",
            "nav",
            "ol",
            "p",
            "pre",
            "section",
            "table",
            "td",
            "th",
            "tr",
            "ul",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._skipping.clear()  # a missing </head> must not hide the whole body
        elif tag in self._SKIP:
            self._skipping.append(tag)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(_WHITESPACE_RUN.sub(" ", data))  # HTML collapses whitespace


def _strip_tags(markup: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    lines = "".join(extractor.parts).split("\n")
    # Nested block tags each add a newline; one blank line between blocks is enough.
    return _BLANK_LINES.sub("\n\n", "\n".join(line.strip() for line in lines))


# --- PDF -------------------------------------------------------------------------------


def _parse_pdf(data: bytes, charset: str | None) -> ParsedDocument:
    """Extract page text with pypdf; every pypdf failure becomes a short ParseError."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        _unlock(reader)
        text = _pdf_text(reader)
    except RagdError:
        raise
    except Exception as exc:  # pypdf raises anything from PdfReadError to KeyError
        raise ParseError(f"PDF could not be read: {_short_reason(exc)}") from exc
    return ParsedDocument(normalize_text(text), _pdf_title(reader), PDF)


def _unlock(reader: pypdf.PdfReader) -> None:
    """Refuse encrypted PDFs, except those openable with the empty user password.

    Those are common (an owner password only restricts printing or copying) and their
    text is readable by any viewer, so refusing them would help nobody.
    """
    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("") != pypdf.PasswordType.NOT_DECRYPTED
    except Exception:  # e.g. AES without the optional crypto dependency
        unlocked = False
    if not unlocked:
        raise ParseError("PDF is encrypted; upload a copy without a password")


def _pdf_text(reader: pypdf.PdfReader) -> str:
    """Join page texts, refusing PDFs whose size would swamp the index (bomb-like files)."""
    if len(reader.pages) > MAX_PDF_PAGES:
        raise ParseError(f"PDF has more than {MAX_PDF_PAGES:,} pages")
    pages: list[str] = []
    total = 0
    for page in reader.pages:
        page_text = (page.extract_text() or "").strip()
        total += len(page_text)
        if total > MAX_PDF_CHARS:
            raise ParseError(f"PDF text exceeds {MAX_PDF_CHARS:,} characters")
        if page_text:
            pages.append(page_text)
    return "\n\n".join(pages)


def _pdf_title(reader: pypdf.PdfReader) -> str | None:
    """The /Title metadata entry; broken metadata only costs the title, not the document.

    Generators that were given no title write placeholders such as "untitled"; those
    would label every such document the same, so they count as no title.
    """
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:
        return None
    cleaned = _clean_title(str(title)) if title else None
    return None if cleaned is None or cleaned.lower() in _PLACEHOLDER_TITLES else cleaned


def _short_reason(exc: Exception) -> str:
    """First line of an exception message, capped, for a user-facing error detail."""
    lines = str(exc).strip().splitlines()
    reason = lines[0].strip() if lines else type(exc).__name__
    if len(reason) > _MAX_REASON_CHARS:
        reason = reason[: _MAX_REASON_CHARS - 1] + "\u2026"
    return reason


def _clean_title(title: str) -> str | None:
    """One line of normalized text, capped, or None when nothing is left."""
    cleaned = " ".join(normalize_text(title).split())[:_MAX_TITLE_CHARS]
    return cleaned or None


_PARSERS: dict[str, Callable[[bytes, str | None], ParsedDocument]] = {
    PLAIN: _parse_plain,
    MARKDOWN: _parse_markdown,
    HTML: _parse_html,
    PDF: _parse_pdf,
}
