"""Spreadsheets and CSV: one Markdown table per sheet, headed by the sheet's name.

XLSX goes through openpyxl in read-only mode, which streams each sheet's XML instead of
building every cell. Its declared dimensions are dropped first (``reset_dimensions``):
a sheet may claim ``A1:XFD1048576`` and get every row padded to 16,384 cells. Every
row read, and every cell in it, counts against ``max_cells`` whether empty or not, since
reading them is the cost: a sheet of a million empty cells fails in about a second
instead of taking minutes. Empty rows and trailing empty cells are dropped; the first
row left is the header, which the chunker repeats in every chunk of the table.

openpyxl spends some 50 microseconds on each cell, empty or not (200,000 styled empty
cells took 14 s here, markitdown 16.5 s), so before it starts the cells and rows of
every worksheet are counted in the raw XML (a regular expression over the inflated
bytes, over 20 times faster): a sheet over ``max_cells`` fails at once instead of after
a minute of parsing, and the default cap keeps a parse near ten seconds.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

import openpyxl

from ragd.errors import ParseError
from ragd.ingest.parsers.archive import open_zip
from ragd.ingest.parsers.base import CSV, XLSX, ParsedDocument, ParseLimits, clean_title, decode
from ragd.ingest.parsers.ooxml import check_package, read_with
from ragd.ingest.parsers.tables import cell_text, markdown_table
from ragd.ingest.textnorm import normalize_text

_SNIFF_CHARS = 64 * 1024
_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")
_CELL_OR_ROW = re.compile(rb"<(?:\w{1,20}:)?(?:c|row)[\s>/]")
_COUNT_READ = 1024 * 1024
_TAG_OVERLAP = 32  # longest tag the pattern matches, kept across read boundaries


def parse_xlsx(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    check_package(data, limits, "XLSX")
    _precount(data, limits)
    workbook = read_with(
        "XLSX",
        lambda: openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        ),
    )
    try:
        budget = _Budget(limits, "XLSX")
        sections = read_with("XLSX", lambda: list(_sheets(workbook, budget)))
        title = clean_title(workbook.properties.title or "")
    finally:
        workbook.close()
    return ParsedDocument(normalize_text("\n\n".join(sections)), title, XLSX)


def parse_csv(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    text = decode(data, charset)
    limits.check_chars(len(text), "CSV")
    dialect = _dialect(text[:_SNIFF_CHARS])
    budget = _Budget(limits, "CSV")
    try:
        rows = _rows(csv.reader(io.StringIO(text, newline=""), dialect), budget)
        table = markdown_table(rows)
    except csv.Error as exc:
        raise ParseError(f"CSV could not be read: {exc}") from None
    return ParsedDocument(normalize_text(table), None, CSV)


def _precount(data: bytes, limits: ParseLimits) -> None:
    """Refuse a workbook whose worksheets hold more cells and rows than ``max_cells``."""
    total = 0
    with open_zip(data, limits.zip, "XLSX file") as archive:
        for info in archive.infolist():
            if _WORKSHEET.fullmatch(info.filename):
                with archive.open(info) as member:
                    total += _count_tags(member)
                if total > limits.max_cells:
                    raise ParseError(f"XLSX has more than {limits.max_cells:,} cells")


def _count_tags(member: IO[bytes]) -> int:
    count, tail = 0, b""
    while chunk := member.read(_COUNT_READ):
        window = tail + chunk
        # A tag cut by the read boundary is counted once the next chunk completes it.
        cut = max(len(window) - _TAG_OVERLAP, 0)
        count += sum(1 for m in _CELL_OR_ROW.finditer(window) if m.start() < cut)
        tail = window[cut:]
    return count + len(_CELL_OR_ROW.findall(tail))


class _Budget:
    """Cells read and characters kept so far, against the parse limits."""

    def __init__(self, limits: ParseLimits, what: str) -> None:
        self.limits, self.what = limits, what
        self.cells = self.chars = 0

    def read(self, cells: int) -> None:
        self.cells += max(cells, 1)  # an empty row costs a step too
        if self.cells > self.limits.max_cells:
            raise ParseError(f"{self.what} has more than {self.limits.max_cells:,} cells")

    def keep(self, cells: Sequence[str]) -> None:
        self.chars += sum(len(cell) + 3 for cell in cells)
        self.limits.check_chars(self.chars, self.what)


def _sheets(workbook: openpyxl.Workbook, budget: _Budget) -> Iterator[str]:
    for sheet in workbook.worksheets:
        sheet.reset_dimensions()  # read-only sheets have it
        rows = _rows(sheet.iter_rows(values_only=True), budget)
        if rows:
            yield f"# {cell_text(sheet.title) or 'Sheet'}\n\n{markdown_table(rows)}"


def _rows(source: Iterable[Sequence[object]], budget: _Budget) -> list[list[str]]:
    """Non-empty rows as cell texts, trailing empty cells dropped, within the budget."""
    rows: list[list[str]] = []
    for values in source:
        budget.read(len(values))
        cells = [cell_text(value) for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            budget.keep(cells)
            rows.append(cells)
    return rows


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    """The sniffed dialect, or plain commas when the sample is too regular to tell."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel
