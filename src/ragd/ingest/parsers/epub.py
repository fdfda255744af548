"""EPUB: the chapters in spine order via ebooklib, their XHTML as Markdown.

Chapter headings (``h1``..``h6``) come out as Markdown headings, so heading paths follow
the book's chapters and sections; paragraphs, list items and tables (with their header
row) follow in order. A chapter is the whole text, not a page with navigation around
it, so it is converted block by block with lxml rather than through the HTML parser's
main-content extraction, which dropped the headings of short chapters. The navigation
document (a table of contents) is skipped: it would repeat the chapters' headings.

Before ebooklib opens the book, its directory has passed the ZIP bounds and no XML part
has an internal DTD subset, which is where an external entity (XXE: ``<!ENTITY x
SYSTEM "file:///etc/passwd">``) or an expanding one would be declared; EPUB 2's XHTML
DOCTYPE naming the W3C DTD is allowed, since that DTD is never loaded.
"""

from __future__ import annotations

import io
import warnings

import lxml.html
from ebooklib import epub
from lxml.etree import ParserError, _Element

from ragd.errors import InvalidInput
from ragd.ingest.parsers.archive import open_zip, refuse_dtds
from ragd.ingest.parsers.base import EPUB, ParsedDocument, ParseLimits, clean_title, decode
from ragd.ingest.parsers.html import html_to_markdown
from ragd.ingest.parsers.ooxml import read_with
from ragd.ingest.parsers.tables import cell_text, markdown_table
from ragd.ingest.textnorm import normalize_text

_XML_SUFFIXES = (".xml", ".opf", ".ncx", ".xhtml", ".html", ".htm", ".svg", ".smil")
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_TEXT_BLOCKS = frozenset({"p", "li", "pre", "dt", "dd", "blockquote", "figcaption", "caption"})
_SKIPPED = frozenset({"script", "style", "head", "nav"})


def parse_epub(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    with open_zip(data, limits.zip, "EPUB file") as archive:
        refuse_dtds(archive, suffixes=_XML_SUFFIXES, allow_external=True)
    book = read_with("EPUB", lambda: _read(data))
    chapters: list[str] = []
    total = 0
    for item in _spine(book):
        text = chapter_markdown(item.get_content())
        if text:
            total += len(text)
            limits.check_chars(total, "EPUB")
            chapters.append(text)
    titles = book.get_metadata("DC", "title")
    title = clean_title(str(titles[0][0])) if titles and titles[0][0] else None
    return ParsedDocument("\n\n".join(chapters), title, EPUB)


def chapter_markdown(content: bytes) -> str:
    """A chapter's XHTML as Markdown blocks; the HTML path if nothing block-like is found."""
    try:
        root = lxml.html.document_fromstring(content)
    except (ParserError, ValueError):
        return html_to_markdown(decode_markup(content))
    blocks: list[str] = []
    done: set[_Element] = set()
    for element in root.iter():
        if not isinstance(element.tag, str) or _inside(element, done):
            continue
        if element.tag in _SKIPPED:
            done.add(element)
        elif block := _block(element):
            blocks.append(block)
            done.add(element)
    text = normalize_text("\n\n".join(blocks))
    return text or html_to_markdown(decode_markup(content))


def _inside(element: _Element, done: set[_Element]) -> bool:
    return any(ancestor in done for ancestor in element.iterancestors())


def _block(element: _Element) -> str:
    tag = element.tag
    if tag == "table":
        rows = [
            [cell_text(_text(cell)) for cell in row.iter("th", "td")] for row in element.iter("tr")
        ]
        return markdown_table([row for row in rows if any(row)])
    text = _text(element)
    if not text:
        return ""
    if tag in _HEADINGS:
        return f"{'#' * _HEADINGS[tag]} {text}"
    if tag == "li":
        return f"- {text}"
    if tag in _TEXT_BLOCKS or (tag == "div" and not any(_is_block(c) for c in element)):
        return text
    return ""


def _is_block(element: _Element) -> bool:
    return isinstance(element.tag, str) and (
        element.tag in _TEXT_BLOCKS
        or element.tag in _HEADINGS
        or element.tag in ("div", "table", "section", "ul", "ol")
    )


def _text(element: _Element) -> str:
    return " ".join(element.text_content().split())


def decode_markup(content: bytes) -> str:
    """UTF-8 (or UTF-16 with a BOM), as EPUB requires; a stray legacy byte is replaced."""
    try:
        return decode(content, None)
    except InvalidInput:
        return content.decode("utf-8", errors="replace")


def _read(data: bytes) -> epub.EpubBook:
    with warnings.catch_warnings():  # ebooklib warns about options it will change
        warnings.simplefilter("ignore")
        return epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})


def _spine(book: epub.EpubBook) -> list[epub.EpubHtml]:
    """The spine's documents in reading order, the navigation document left out."""
    items = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if isinstance(item, epub.EpubHtml) and not isinstance(item, epub.EpubNav):
            items.append(item)
    return items
