"""Text decoding, normalization and hashing shared by every parser.

Everything downstream (chunk offsets, content hashes used to skip re-embedding, the
embedding cache) depends on the same bytes producing the same text, so all parsers route
their output through :func:`normalize_text` and all raw text through :func:`decode_text`.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata

from ragd.errors import InvalidInput

__all__ = ["content_hash", "decode_text", "normalize_text"]

_INVALID_UTF8 = "file is not valid UTF-8 text"

# Vertical tab, form feed, NEL and the Unicode line/paragraph separators act as line
# breaks (PDF extractors emit form feeds between pages); turning them into "\n" keeps the
# words on either side apart instead of gluing them together when they are removed.
_LINE_BREAKS = re.compile("[\x0b\x0c\x85\u2028\u2029]")
# Remaining C0/C1 controls (not \t or \n; \r is gone by then) carry no text.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
# Four or more newlines are three or more blank lines; keep two blank lines at most.
_EXTRA_BLANK_LINES = re.compile(r"\n{4,}")

# Order matters: the UTF-32 LE BOM starts with the UTF-16 LE BOM.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def normalize_text(text: str) -> str:
    """Return ``text`` in the one canonical form that is hashed, chunked and stored.

    NFC so that visually equal strings compare and hash equal; LF line ends; no control
    characters (NUL breaks PostgreSQL text columns); no trailing spaces or runs of blank
    lines that only inflate chunks; no leading or trailing whitespace.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROLS.sub("", text)
    # Per-line rstrip is linear; a regex like r"\s+$" backtracks on long space runs.
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _EXTRA_BLANK_LINES.sub("\n\n\n", text)
    return text.strip()


def content_hash(normalized: str) -> str:
    """SHA-256 hex digest of normalized text: the identity used to detect unchanged content."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """Return (codec, BOM length) when ``data`` starts with a Unicode byte-order mark."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def decode_text(data: bytes) -> str:
    """Decode uploaded bytes strictly, so mojibake never reaches the index.

    UTF-8 is the contract; a byte-order mark is honoured because editors on Windows
    write UTF-8 with BOM and UTF-16 by default. Anything else is refused rather than
    guessed at.
    """
    found = bom_encoding(data)
    encoding, skip = found if found else ("utf-8", 0)
    try:
        return data[skip:].decode(encoding)
    except UnicodeDecodeError:
        raise InvalidInput(_INVALID_UTF8) from None
