"""Markdown: kept as written (the chunker follows its headings); the first ``# `` heading
is the title."""

from __future__ import annotations

from ragd.errors import EmptyDocument
from ragd.ingest.chunking import iter_headings
from ragd.ingest.parsers.base import (
    MARKDOWN,
    PLAIN,
    ParsedDocument,
    ParseLimits,
    clean_title,
    decode,
)
from ragd.ingest.textnorm import normalize_text


def parse_markdown(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    text = normalize_text(decode(data, charset))
    limits.check_chars(len(text))
    return ParsedDocument(text, markdown_title(text), MARKDOWN)


def parse_text(text: str, *, title: str | None = None, markdown: bool = True) -> ParsedDocument:
    """Wrap text sent as JSON; a Markdown ``# `` heading supplies a missing title."""
    normalized = normalize_text(text)
    if not normalized:
        raise EmptyDocument("document contains no text")
    found = clean_title(title) if title else None
    if found is None and markdown:
        found = markdown_title(normalized)
    return ParsedDocument(normalized, found, MARKDOWN if markdown else PLAIN)


def markdown_title(text: str) -> str | None:
    """The first level-1 ATX heading, which Markdown documents use as their title."""
    for heading in iter_headings(text):
        if heading.level == 1 and heading.text:
            return clean_title(heading.text)
    return None
