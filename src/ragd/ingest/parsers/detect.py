"""Which parser reads a file: decided by content first, then by name, then by header.

Detection trusts content before names: an upload called ``notes.txt`` that is really a
PNG must be refused with a clear 415, not indexed as garbage, and a PDF served as
``application/octet-stream`` must still be read. A new format adds its magic bytes,
extensions and declared types here and its parser to the registry.
"""

from __future__ import annotations

import codecs
from pathlib import PurePosixPath

from ragd.ingest.parsers.base import (
    HTML,
    MARKDOWN,
    PDF,
    PLAIN,
    SNIFF_BYTES,
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
        if has_nul_bytes(head):
            raise unsupported("binary content")
        return guessed
    if not _is_text(head):
        raise unsupported("binary or non-UTF-8 content")
    return PLAIN


def _sniff_content(head: bytes) -> str | None:
    """Recognize PDF and HTML by their opening bytes; refuse known binary formats."""
    if head.startswith(b"%PDF-"):
        return PDF
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise unsupported(what)
    if container := _riff_or_mp4(head):
        raise unsupported(container)
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
