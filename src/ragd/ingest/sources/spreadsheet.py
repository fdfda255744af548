"""Published spreadsheets (CSV or XLSX): one row is one document.

The mapping names columns of the header row: ``key_column`` (the row's identity across
syncs), ``text_columns`` (the document's text), optionally ``title_column`` and
``metadata_columns`` (a list of column names that are valid metadata keys, or an object
``{"Column name": "metadata_key"}``).

Reading a table runs in the parse child (``read_table`` is picklable and bounded): an
XLSX file is a zip archive whose XML can be made as expensive as any document's.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ragd.errors import InvalidInput, ParseError, PayloadTooLarge

__all__ = [
    "RowItem",
    "SpreadsheetMapping",
    "TableTask",
    "check_mapping",
    "read_table",
    "rows_to_items",
    "table_kind",
]

TableKind = Literal["csv", "xlsx"]
_MAX_COLUMNS = 100
_MAX_COLUMN_CHARS = 200
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# An XLSX may unpack to this many times its own size; more is a zip bomb, not a sheet.
_MAX_UNPACK_RATIO = 100
_MAX_CELL_CHARS = 1_000_000


@dataclass(frozen=True)
class SpreadsheetMapping:
    key_column: str
    text_columns: tuple[str, ...]
    title_column: str | None
    metadata_columns: dict[str, str]  # column name -> metadata key
    sheet: str | None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "key_column": self.key_column,
            "text_columns": list(self.text_columns),
            "title_column": self.title_column,
            "metadata_columns": dict(self.metadata_columns),
        }
        if self.sheet is not None:
            found["sheet"] = self.sheet
        return found


def check_mapping(raw: Any) -> SpreadsheetMapping:
    """A spreadsheet source's mapping, or ``InvalidInput`` naming what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidInput("mapping must be an object with key_column and text_columns")
    unknown = set(raw) - {"key_column", "text_columns", "title_column", "metadata_columns", "sheet"}
    if unknown:
        raise InvalidInput(f"mapping has unknown fields: {', '.join(sorted(unknown))}")
    key = _column(raw.get("key_column"), "mapping.key_column")
    texts = raw.get("text_columns")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not 1 <= len(texts) <= _MAX_COLUMNS:
        raise InvalidInput(f"mapping.text_columns must list 1 to {_MAX_COLUMNS} column names")
    title = raw.get("title_column")
    metadata = _metadata_columns(raw.get("metadata_columns"))
    sheet = raw.get("sheet")
    return SpreadsheetMapping(
        key_column=key,
        text_columns=tuple(_column(t, "mapping.text_columns") for t in texts),
        title_column=None if title is None else _column(title, "mapping.title_column"),
        metadata_columns=metadata,
        sheet=None if sheet is None else _column(sheet, "mapping.sheet"),
    )


def _column(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_COLUMN_CHARS:
        raise InvalidInput(f"{where} must be a column name of 1 to {_MAX_COLUMN_CHARS} characters")
    if not value.isprintable():
        raise InvalidInput(f"{where} must not contain control characters")
    return value.strip()


def _metadata_columns(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        value = {_column(name, "mapping.metadata_columns"): name for name in value}
    if not isinstance(value, dict) or len(value) > _MAX_COLUMNS:
        raise InvalidInput(
            f"mapping.metadata_columns must be a list of column names or an object of "
            f"column name to metadata key, at most {_MAX_COLUMNS}"
        )
    found: dict[str, str] = {}
    for column, key in value.items():
        name = _column(column, "mapping.metadata_columns")
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise InvalidInput(
                f"metadata key for column {name!r} must be 1-64 letters, digits, '_', '.' "
                'or \'-\' (map the column to one: {"Column name": "key"})'
            )
        found[name] = key
    return found


def table_kind(data: bytes, filename: str | None, content_type: str | None) -> TableKind:
    """XLSX by its zip signature (a CSV never starts with ``PK\\x03\\x04``), else CSV."""
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    return "csv"


@dataclass(frozen=True)
class TableTask:
    """What the parse child reads: the file's bytes and the bounds."""

    data: bytes
    kind: TableKind
    sheet: str | None
    max_rows: int


def read_table(task: TableTask) -> list[list[str]]:
    """The header row and the data rows, every cell as text; blank rows are dropped.

    Raises:
        ParseError: not a readable CSV (UTF-8) or XLSX, or a missing sheet.
        PayloadTooLarge: more than ``max_rows`` data rows.
    """
    rows = _csv_rows(task.data) if task.kind == "csv" else _xlsx_rows(task.data, task.sheet)
    table: list[list[str]] = []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        table.append(row)
        if len(table) > task.max_rows + 1:  # the header does not count
            raise PayloadTooLarge(f"the spreadsheet has more than {task.max_rows} rows")
    if not table:
        raise ParseError("the spreadsheet is empty: no header row")
    return table


def _csv_rows(data: bytes) -> Iterable[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParseError("the CSV is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        yield from reader
    except csv.Error as exc:
        raise ParseError(f"the CSV cannot be read: {str(exc)[:200]}") from None


def _xlsx_rows(data: bytes, sheet: str | None) -> Iterable[list[str]]:
    from openpyxl import load_workbook  # only for XLSX sources: keep it off the import path

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > max(len(data), 1024 * 1024) * _MAX_UNPACK_RATIO:
            raise ParseError("the XLSX unpacks to far more than its size (a zip bomb?)")
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise ParseError("the file is not a readable XLSX workbook") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ParseError(f"the workbook has no sheet {sheet!r}")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        for values in worksheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in values]
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    return text[:_MAX_CELL_CHARS]


@dataclass(frozen=True)
class RowItem:
    """One row as a document: its key, text, title and metadata, and a hash of them."""

    key: str
    title: str | None
    text: str
    metadata: dict[str, str]

    @property
    def item_hash(self) -> str:
        payload = json.dumps([self.title, self.text, self.metadata], sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def rows_to_items(
    table: list[list[str]], mapping: SpreadsheetMapping
) -> tuple[list[RowItem], list[str]]:
    """The rows as items, and a reason for each row that cannot be one (no key, a key
    seen before, no text). ``ParseError`` when a mapped column is not in the header."""
    header = [cell.strip() for cell in table[0]]
    index = {name: i for i, name in reversed(list(enumerate(header))) if name}
    wanted = [mapping.key_column, *mapping.text_columns, *mapping.metadata_columns]
    if mapping.title_column:
        wanted.append(mapping.title_column)
    missing = [name for name in dict.fromkeys(wanted) if name not in index]
    if missing:
        raise ParseError(f"the header row has no column {missing[0]!r}")

    def cell(row: list[str], name: str) -> str:
        i = index[name]
        return row[i].strip() if i < len(row) else ""

    items: list[RowItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(table[1:], start=2):
        key = cell(row, mapping.key_column)
        if not key:
            problems.append(f"row {number}: the key column {mapping.key_column!r} is empty")
            continue
        if key in seen:
            problems.append(f"row {number}: key {key[:100]!r} appears more than once")
            continue
        seen.add(key)
        text = _row_text(mapping.text_columns, [cell(row, c) for c in mapping.text_columns])
        if not text:
            problems.append(f"row {number} (key {key[:100]!r}): the text columns are empty")
            continue
        items.append(
            RowItem(
                key=key[:2000],
                title=(cell(row, mapping.title_column) or None) if mapping.title_column else None,
                text=text,
                metadata={
                    meta: cell(row, column) for column, meta in mapping.metadata_columns.items()
                },
            )
        )
    return items, problems


def _row_text(columns: tuple[str, ...], values: list[str]) -> str:
    """One text column is the text as it is; several become labelled paragraphs, so a
    passage still says which field it came from."""
    if len(columns) == 1:
        return values[0]
    return "\n\n".join(
        f"{column}: {value}" for column, value in zip(columns, values, strict=True) if value
    )
