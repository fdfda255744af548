"""What every parser shares: its result, the bounds it works within, text helpers.

Kept apart from the registry so a format module imports only this, never its siblings.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field

from ragd.errors import InvalidInput, ParseError, UnsupportedMediaType
from ragd.ingest.parsers.archive import ZipLimits
from ragd.ingest.textnorm import decode_text, normalize_text

PLAIN, MARKDOWN, HTML, PDF = "text/plain", "text/markdown", "text/html", "application/pdf"
_OOXML = "application/vnd.openxmlformats-officedocument"
DOCX = f"{_OOXML}.wordprocessingml.document"
PPTX = f"{_OOXML}.presentationml.presentation"
XLSX = f"{_OOXML}.spreadsheetml.sheet"
EPUB = "application/epub+zip"
CSV, JSON, JSONL = "text/csv", "application/json", "application/x-ndjson"
# Source code, by file extension (text is text: its content cannot tell Go from Rust).
CODE_MIME_TYPES = {
    ".py": "text/x-python",
    ".pyi": "text/x-python",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".jsx": "text/javascript",
    ".ts": "text/x-typescript",
    ".tsx": "text/x-typescript",
    ".go": "text/x-go",
    ".rs": "text/x-rust",
    ".java": "text/x-java",
    ".kt": "text/x-kotlin",
    ".scala": "text/x-scala",
    ".c": "text/x-c",
    ".h": "text/x-c",
    ".cpp": "text/x-c++",
    ".cc": "text/x-c++",
    ".cxx": "text/x-c++",
    ".hpp": "text/x-c++",
    ".cs": "text/x-csharp",
    ".rb": "text/x-ruby",
    ".php": "text/x-php",
    ".swift": "text/x-swift",
    ".lua": "text/x-lua",
    ".pl": "text/x-perl",
    ".r": "text/x-r",
    ".sh": "text/x-shellscript",
    ".bash": "text/x-shellscript",
    ".zsh": "text/x-shellscript",
    ".sql": "application/sql",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".css": "text/css",
}
CODE = frozenset(CODE_MIME_TYPES.values())
SUPPORTED_MIME_TYPES = (PLAIN, MARKDOWN, HTML, PDF, DOCX, PPTX, XLSX, CSV, EPUB, JSON, JSONL)
SNIFF_BYTES = 4096
_SUPPORTED = ", ".join(SUPPORTED_MIME_TYPES) + " and source code (by file extension)"
_MAX_TITLE_CHARS = 500
_MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class ParsedDocument:
    """A parser's result: normalized text, the title the document gives itself, its type.

    ``markdown`` says whether the chunker should follow the text's Markdown headings and
    fences; source code is not Markdown (a ``# comment`` is no heading).
    """

    text: str
    title: str | None
    mime_type: str
    markdown: bool = True


@dataclass(frozen=True)
class ParseLimits:
    """How much one document may make a parser do; over a bound it is a ParseError.

    A small file can stand for a huge amount of work (2,000 PDF pages sharing one content
    stream, a page that expands to megabytes of text), so the bounds are on what comes out
    and how many pages are read, not on the input size alone. ``max_cells`` bounds the
    spreadsheet cells read (empty ones too: reading them is the cost), ``zip`` the
    containers (OOXML, EPUB) before anything is extracted. The time bound is enforced
    from outside the parser (see :mod:`ragd.ingest.isolation`), since a pure-Python parser
    cannot be interrupted from inside.
    """

    max_pages: int = 2_000
    max_chars: int = 20_000_000
    max_cells: int = 200_000
    zip: ZipLimits = field(default_factory=ZipLimits)

    def check_chars(self, count: int, what: str = "document") -> None:
        if count > self.max_chars:
            raise ParseError(f"{what} text exceeds {self.max_chars:,} characters")


Parser = Callable[[bytes, str | None, ParseLimits], ParsedDocument]


def unsupported(what: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"{what} is not supported; supported types: {_SUPPORTED}")


def split_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/sub; key=value`` into the lower-cased type and its parameters."""
    base, *params = value.split(";")
    parsed: dict[str, str] = {}
    for param in params:
        key, sep, val = param.partition("=")
        if sep:
            parsed[key.strip().lower()] = val.strip().strip("\"'")
    return base.strip().lower(), parsed


def decode(data: bytes, charset: str | None) -> str:
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


def clean_title(title: str) -> str | None:
    """One line of normalized text, capped, or None when nothing is left."""
    cleaned = " ".join(normalize_text(title).split())[:_MAX_TITLE_CHARS]
    return cleaned or None


def short_reason(exc: Exception) -> str:
    """First line of an exception message, capped, for a user-facing error detail."""
    lines = str(exc).strip().splitlines()
    reason = lines[0].strip() if lines else type(exc).__name__
    if len(reason) > _MAX_REASON_CHARS:
        reason = reason[: _MAX_REASON_CHARS - 1] + "\u2026"
    return reason
