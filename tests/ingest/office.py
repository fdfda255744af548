"""Real office documents, e-books and containers built on the fly for the format tests.

Each builder writes a file with the library a user's tools would produce it with
(python-docx, python-pptx, openpyxl, ebooklib) and returns its bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

import docx
import openpyxl
import pptx
from ebooklib import epub
from openpyxl.utils import get_column_letter
from pptx.util import Inches


def make_docx(*, title: str = "Harbour Handbook", rows: int = 3) -> bytes:
    """A title, a two-level outline, a list and a table with a header row."""
    document = docx.Document()
    document.core_properties.title = title
    document.add_paragraph(title, style="Title")
    document.add_heading("Moorings", level=1)
    document.add_paragraph("Every boat needs a mooring licence before the season opens.")
    document.add_heading("Fees", level=2)
    document.add_paragraph("Fees are paid at the harbour office.")
    document.add_paragraph("Cash is accepted", style="List Bullet")
    document.add_paragraph("Cards are accepted", style="List Bullet")
    table = document.add_table(rows=rows + 1, cols=3)
    for column, name in enumerate(("Berth", "Length", "Fee")):
        table.cell(0, column).text = name
    for row in range(1, rows + 1):
        for column, value in enumerate((f"B{row}", f"{row + 5} m", f"{row * 100} EUR")):
            table.cell(row, column).text = value
    document.add_heading("Safety", level=1)
    document.add_paragraph("Life jackets are mandatory on the pontoons.")
    return _save(document)


def make_pptx(slides: Sequence[tuple[str, str]], *, notes: str | None = None) -> bytes:
    """Title-and-content slides, then one slide holding a table."""
    presentation = pptx.Presentation()
    for heading, body in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = heading
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "Tide table"
    shape = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2))
    for row, cells in enumerate((("Day", "High water"), ("Monday", "06:12"), ("Tuesday", "07:01"))):
        for column, value in enumerate(cells):
            shape.table.cell(row, column).text = value
    return _save(presentation)


def make_xlsx(sheets: dict[str, list[list[object]]], *, title: str | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    for default in workbook.worksheets:
        workbook.remove(default)
    if title:
        workbook.properties.title = title
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    return _save(workbook)


def styled_empty_cells_xlsx(cells: int, width: int = 1000) -> bytes:
    """A sheet of ``cells`` cells that hold nothing but a style: no text, all cost.

    The sheet XML is written directly (openpyxl takes ~20 s to write a million cells);
    the rest of the package is openpyxl's, so it is a workbook Excel opens."""
    workbook = openpyxl.Workbook()
    sheet = workbook.worksheets[0]
    sheet.title = "Empty"
    sheet["A1"].number_format = "0.00"  # style 1, which the cells use
    base = _save(workbook)
    columns = [get_column_letter(n) for n in range(1, width + 1)]
    rows = "".join(
        f'<row r="{r}">' + "".join(f'<c r="{c}{r}" s="1"/>' for c in columns) + "</row>"
        for r in range(1, cells // width + 1)
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{rows}</sheetData></worksheet>"
    )
    return replace_member(base, "xl/worksheets/sheet1.xml", xml.encode())


def make_epub(chapters: Sequence[tuple[str, str]], *, title: str = "The Lighthouse") -> bytes:
    """An EPUB 3 whose spine lists ``chapters`` (heading, XHTML body) in order."""
    book = epub.EpubBook()
    book.set_identifier("ragd-test-book")
    book.set_title(title)
    book.set_language("en")
    items = []
    for number, (heading, body) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=heading, file_name=f"chapter{number}.xhtml", lang="en")
        item.content = f"<h1>{heading}</h1>{body}"
        book.add_item(item)
        items.append(item)
    book.toc = tuple(items)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    buffer = io.BytesIO()
    epub.write_epub(buffer, book)
    return buffer.getvalue()


def replace_member(data: bytes, name: str, content: bytes) -> bytes:
    """The same ZIP with one member's content swapped (to plant a DTD, say)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            payload = content if info.filename == name else source.read(info)
            compress = zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED
            target.writestr(info.filename, payload, compress_type=compress)
    return out.getvalue()


def _save(
    document: docx.document.Document | pptx.presentation.Presentation | openpyxl.Workbook,
) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
