"""Which parser reads a file: decided by content first, then by name, then by header.

Detection trusts content before names: an upload called ``notes.txt`` that is really a
PNG must be refused with a clear 415, not indexed as garbage, a PDF served as
``application/octet-stream`` must still be read, and a Word file named ``report.pdf``
is read as Word. ZIP containers are told apart by what they hold (OOXML by its main
part, EPUB by its ``mimetype`` member) once their central directory passed the ZIP
bounds; text is told apart by parsing (JSON), sniffing (CSV, when named or declared
so) or, for source code, by extension only, since text is text. A new format adds its
magic bytes, extensions and declared types here and its parser to the registry.
"""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import PurePosixPath

from ragd.ingest.parsers.archive import (
    DamagedArchive,
    ZipLimits,
    is_zip,
    open_zip,
    read_member,
)
from ragd.ingest.parsers.base import (
    CODE_MIME_TYPES,
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
    SNIFF_BYTES,
    XLSX,
    split_content_type,
    unsupported,
)
from ragd.ingest.textnorm import bom_encoding

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Java class or Mach-O binary"),
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
    ".csv": CSV,
    ".tsv": CSV,
    ".log": PLAIN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
    ".json": JSON,
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".docx": DOCX,
    ".docm": DOCX,
    ".pptx": PPTX,
    ".pptm": PPTX,
    ".xlsx": XLSX,
    ".xlsm": XLSX,
    ".epub": EPUB,
    **CODE_MIME_TYPES,
}
# Names of formats read only from their container: a .docx that is not a ZIP is refused.
_CONTAINER_TYPES = frozenset({DOCX, PPTX, XLSX, EPUB})
# OOXML main parts, which tell a Word, PowerPoint and Excel package apart.
_OOXML_MAIN_PARTS = (
    ("word/document.xml", DOCX),
    ("ppt/presentation.xml", PPTX),
    ("xl/workbook.xml", XLSX),
)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted OOXML file is an OLE compound file holding this stream (MS-OFFCRYPTO).
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
# Detecting JSON by parsing it whole is affordable in a request up to this size; a
# larger JSON file needs its name or Content-Type to say so.
_JSON_SNIFF_BYTES = 4 * 1024 * 1024
_CSV_CHECK_ROWS = 20

_UNSUPPORTED_EXTENSIONS = frozenset(
    [
        ".doc",
        ".dot",
        ".xls",
        ".ppt",
        ".odt",
        ".ods",
        ".odp",
        ".rtf",
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
    CSV: CSV,
    "text/tab-separated-values": CSV,
    JSON: JSON,
    "text/json": JSON,
    JSONL: JSONL,
    "application/jsonl": JSONL,
    "application/ndjson": JSONL,
    "application/x-jsonlines": JSONL,
    DOCX: DOCX,
    PPTX: PPTX,
    XLSX: XLSX,
    EPUB: EPUB,
}

_HTML_PREFIXES = (b"<!doctype html", b"<html")


def detect_mime_type(
    head: bytes,
    filename: str | None,
    declared: str | None,
    *,
    zip_limits: ZipLimits = ZipLimits(),
) -> str:
    """Decide which parser reads a file from its bytes, its name and its declared type.

    ``head`` is the file, or its start: the first 4 KB decide everything except ZIP
    containers and encrypted Office files (whose directories may sit anywhere) and
    JSON (parsed whole), so pass the whole file when you have it. Content is checked
    first because names and Content-Type headers are often wrong; a known binary format
    is refused by name, a ZIP over ``zip_limits`` with a ParseError. Text of no known
    kind is read as plain text.
    """
    if sniffed := _sniff_content(head, zip_limits):
        return sniffed
    guessed = _type_from_filename(filename) or _type_from_declared(declared)
    if guessed == PDF:
        return PDF
    if guessed in _CONTAINER_TYPES:
        raise unsupported(f"content named or declared as {guessed} but not a ZIP container")
    if guessed is not None:
        if has_nul_bytes(head):
            raise unsupported("binary content")
        return _refine_text(head, guessed)
    if not _is_text(head):
        raise unsupported("binary or non-UTF-8 content")
    return _json_kind(head) or PLAIN


def _refine_text(data: bytes, guessed: str) -> str:
    """A name or header said CSV or JSON: believe it only if the content agrees."""
    if guessed == CSV and not _sniffs_as_csv(data):
        return PLAIN
    if guessed == JSON:
        return _json_kind(data) or PLAIN if len(data) <= _JSON_SNIFF_BYTES else JSON
    if guessed == PLAIN:  # a .txt holding JSON is JSON: content first
        return _json_kind(data) or PLAIN
    return guessed


def _sniffs_as_csv(data: bytes) -> bool:
    """A sniffed dialect under which the first rows have one width of two columns or more."""
    lines = data[:SNIFF_BYTES].decode("utf-8", errors="ignore").splitlines()
    sample = lines[:-1] if len(lines) > 1 and len(data) > SNIFF_BYTES else lines
    try:
        dialect = csv.Sniffer().sniff("\n".join(sample), delimiters=",;\t|")
        widths = {len(row) for row in csv.reader(sample[:_CSV_CHECK_ROWS], dialect)}
    except csv.Error:
        return False
    return len(sample) >= 2 and len(widths) == 1 and widths.pop() >= 2


def _json_kind(data: bytes) -> str | None:
    """JSON if the whole file parses as one object or array, JSONL if lines do."""
    body = data.lstrip(codecs.BOM_UTF8).lstrip()
    if not body.startswith((b"{", b"[")):
        return None
    if len(data) <= _JSON_SNIFF_BYTES:
        try:
            json.loads(body)
            return JSON
        except (ValueError, RecursionError):  # too deep to be structure worth keeping
            pass
    return JSONL if _looks_like_jsonl(body) else None


def _looks_like_jsonl(body: bytes) -> bool:
    """The first two non-empty lines are each a JSON object or array on its own."""
    lines = [line for line in body[:SNIFF_BYTES].split(b"\n")[:-1] if line.strip()][:2]
    if len(lines) < 2:
        return False
    try:
        return all(isinstance(json.loads(line), dict | list) for line in lines)
    except (ValueError, RecursionError):
        return False


def _sniff_content(head: bytes, zip_limits: ZipLimits) -> str | None:
    """Recognize PDF, ZIP containers and HTML by content; refuse known binary formats."""
    if head.startswith(b"%PDF-"):
        return PDF
    if is_zip(head):
        return _zip_kind(head, zip_limits)
    if head.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in head:
            raise unsupported("an encrypted Office document (remove its password first)")
        raise unsupported("an OLE compound file (legacy .doc, .xls or .ppt)")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise unsupported(what)
    if container := _riff_or_mp4(head):
        raise unsupported(container)
    prefix = _ascii_prefix(head).lstrip().lower()
    return HTML if prefix.startswith(_HTML_PREFIXES) else None


def _zip_kind(data: bytes, limits: ZipLimits) -> str:
    """OOXML by its main part, EPUB by its ``mimetype``; other ZIP files are refused.

    Over the ZIP bounds is a ParseError (a 422 at upload); a ZIP that cannot be opened
    at all is of no type we know, so a 415 like any unknown binary."""
    try:
        archive = open_zip(data, limits)
    except DamagedArchive as exc:
        raise unsupported(f"a ZIP archive that cannot be opened ({exc.detail})") from None
    with archive:
        names = set(archive.namelist())
        if "mimetype" in names:
            mimetype = read_member(archive, "mimetype", 100).strip()
            if mimetype == EPUB.encode():
                return EPUB
            if mimetype.startswith(b"application/vnd.oasis.opendocument"):
                raise unsupported("an OpenDocument file (.odt, .ods or .odp)")
    if "[Content_Types].xml" in names:
        for part, kind in _OOXML_MAIN_PARTS:
            if part in names:
                return kind
        raise unsupported("an Office Open XML package of an unknown kind")
    raise unsupported("a ZIP archive")


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
        raise unsupported(f"file type {suffix}")
    return _EXTENSIONS.get(suffix)


def _type_from_declared(declared: str | None) -> str | None:
    """Map a Content-Type to a parser; ``application/octet-stream`` says nothing."""
    base, _ = split_content_type(declared or "")
    return _DECLARED.get(base)


def has_nul_bytes(head: bytes) -> bool:
    """NUL bytes mean binary, except in UTF-16/32 text, which is full of them."""
    return bom_encoding(head) is None and b"\x00" in head[:SNIFF_BYTES]


def _is_text(head: bytes) -> bool:
    """Whether the sniffed bytes decode, allowing a multi-byte character cut off at the end."""
    if has_nul_bytes(head):
        return False
    encoding, skip = bom_encoding(head) or ("utf-8", 0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        decoder.decode(head[skip:SNIFF_BYTES], final=False)
    except UnicodeDecodeError:
        return False
    return True
