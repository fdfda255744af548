"""Source code: kept as written, its file name as the title, never read as Markdown.

A ``# comment`` in Python or shell is no heading, so the chunker is told the text is
not Markdown: it cuts at blank lines (between functions and blocks, mostly) and, in a
block over the budget, between lines, never inside one unless a line alone is too long.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ragd.ingest.parsers.base import ParsedDocument, ParseLimits, clean_title, decode
from ragd.ingest.textnorm import normalize_text


def parse_code(
    data: bytes, charset: str | None, limits: ParseLimits, *, mime_type: str, filename: str | None
) -> ParsedDocument:
    text = normalize_text(decode(data, charset))
    limits.check_chars(len(text), "source file")
    name = PurePosixPath(filename.replace("\\", "/")).name if filename else None
    return ParsedDocument(text, clean_title(name) if name else None, mime_type, markdown=False)
