"""Plain text: decoded strictly and normalized, nothing else to find in it."""

from __future__ import annotations

from ragd.ingest.parsers.base import PLAIN, ParsedDocument, ParseLimits, decode
from ragd.ingest.textnorm import normalize_text


def parse_plain(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    text = normalize_text(decode(data, charset))
    limits.check_chars(len(text))
    return ParsedDocument(text, None, PLAIN)
