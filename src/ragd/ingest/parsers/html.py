"""HTML: the page's main content as Markdown (headings and lists kept for the chunker),
falling back to all visible text when trafilatura finds no main content."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import trafilatura

from ragd.ingest.parsers.base import (
    HTML,
    SNIFF_BYTES,
    ParsedDocument,
    ParseLimits,
    clean_title,
    decode,
)
from ragd.ingest.textnorm import normalize_text

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n{3,}")
_WHITESPACE_RUN = re.compile(r"\s+")
_TITLE_TAG = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TITLE_SEARCH_CHARS = 65_536


def parse_html(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    """Keep the page's main content only: navigation, footers and ads would pollute search."""
    markup = decode(data, charset or meta_charset(data))
    text = html_to_markdown(markup)
    limits.check_chars(len(text), "HTML")
    return ParsedDocument(text, _html_title(markup), HTML)


def html_to_markdown(markup: str) -> str:
    """The main content of decoded markup as normalized Markdown (EPUB chapters use it)."""
    return normalize_text(_main_content(markup) or _strip_tags(markup))


def meta_charset(data: bytes) -> str | None:
    """The ``<meta charset>`` near the top, used only when the bytes are not UTF-8."""
    match = _META_CHARSET.search(data[:SNIFF_BYTES])
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
    if metadata is not None and metadata.title and (title := clean_title(metadata.title)):
        return title
    match = _TITLE_TAG.search(markup, 0, _TITLE_SEARCH_CHARS)  # <title> is in the <head>
    return clean_title(html.unescape(match.group(1))) if match else None


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
