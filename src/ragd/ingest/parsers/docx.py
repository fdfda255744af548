"""DOCX: paragraphs, headings, lists and tables in document order, through python-docx.

Headings come from paragraph styles (``Heading 1`` to ``Heading 9``) and become
Markdown headings, so the chunker's heading paths follow the document's outline;
tables become Markdown tables whose header row the chunker repeats in every chunk.
The ``Title`` paragraph and the core properties give the title.
"""

from __future__ import annotations

import io
import re

from docx.document import Document as DocxDocument
from docx.opc.constants import CONTENT_TYPE as CT
from docx.opc.part import PartFactory
from docx.package import Package
from docx.parts.document import DocumentPart
from docx.table import Table
from docx.text.paragraph import Paragraph

from ragd.ingest.parsers.base import DOCX, ParsedDocument, ParseLimits, clean_title
from ragd.ingest.parsers.ooxml import check_package, read_with
from ragd.ingest.parsers.tables import cell_text, markdown_table
from ragd.ingest.textnorm import normalize_text

_HEADING_STYLE = re.compile(r"heading\s*([1-9])$", re.IGNORECASE)
_LIST_STYLE = re.compile(r"list", re.IGNORECASE)
# python-docx refuses a macro-enabled main part by its content type; its XML is the
# same as a .docx's, so it is read the same way (the macros are never loaded).
_MACRO_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
PartFactory.part_type_for.setdefault(_MACRO_MAIN, DocumentPart)


def parse_docx(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    check_package(data, limits, "DOCX")
    document = read_with("DOCX", lambda: _open(data))
    blocks: list[str] = []
    title: str | None = None
    total = 0
    for block in read_with("DOCX", lambda: list(document.iter_inner_content())):
        if isinstance(block, Paragraph):
            text, is_title = _paragraph(block)
            if is_title and title is None:
                title = clean_title(block.text)
        else:
            text = _table(block)
        if text:
            total += len(text)
            limits.check_chars(total, "DOCX")
            blocks.append(text)
    title = clean_title(document.core_properties.title or "") or title
    return ParsedDocument(normalize_text(_join(blocks)), title, DOCX)


def _open(data: bytes) -> DocxDocument:
    part = Package.open(io.BytesIO(data)).main_document_part
    if part.content_type not in (CT.WML_DOCUMENT_MAIN, _MACRO_MAIN):
        raise ValueError(f"not a Word document (main part is {part.content_type})")
    document: DocxDocument = part.document
    return document


def _paragraph(paragraph: Paragraph) -> tuple[str, bool]:
    """The paragraph as a Markdown line, and whether it is the document's title."""
    text = " ".join(paragraph.text.split())
    style = paragraph.style.name if paragraph.style is not None else ""
    style = style or ""
    if not text:
        return "", False
    if match := _HEADING_STYLE.match(style):
        return f"{'#' * min(int(match.group(1)), 6)} {text}", False
    if style == "Title":
        return text, True
    if _LIST_STYLE.search(style) or _numbered(paragraph):
        return f"- {text}", False
    return text, False


def _numbered(paragraph: Paragraph) -> bool:
    properties = paragraph._p.pPr
    return properties is not None and properties.numPr is not None


def _table(table: Table) -> str:
    rows = [[cell_text(cell.text) for cell in row.cells] for row in table.rows]
    rows = [row for row in rows if any(row)]
    return markdown_table(rows)


def _join(blocks: list[str]) -> str:
    """Blank lines between blocks, except between items of one list."""
    parts: list[str] = []
    for index, block in enumerate(blocks):
        if index:
            both_items = block.startswith("- ") and blocks[index - 1].startswith("- ")
            parts.append("\n" if both_items else "\n\n")
        parts.append(block)
    return "".join(parts)
