"""Rows of cells as a Markdown table, the shape the chunker cuts between rows.

The first row is the header; the chunker repeats it (with the delimiter row) at the top
of every chunk of a long table, so each chunk says what its columns are. The delimiter
is one dash per column: dashes count as tokens, and a wide table repeats it often.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CELL_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def cell_text(value: object) -> str:
    """One cell on one line, its pipes escaped so they cannot open a new column."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return _CELL_BREAKS.sub(" ", text.strip()).replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` (already :func:`cell_text`) with the first as header; short rows padded."""
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    lines = [_row(rows[0], width), "|" + "-|" * width]
    lines.extend(_row(row, width) for row in rows[1:])
    return "\n".join(lines)


def _row(cells: Sequence[str], width: int) -> str:
    padded = [*cells, *([""] * (width - len(cells)))]
    return "| " + " | ".join(padded) + " |"
