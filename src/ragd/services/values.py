"""Metadata and filter values the databases can hold, checked in one place.

Document metadata is stored as JSON and filters are compared against it in SQL: SQLite
binds integers as signed 64-bit (a larger one raises OverflowError deep in the driver),
and PostgreSQL compares JSONB numbers that it could hold but SQLite could not. So both
metadata and filters are bounded to what every supported database stores exactly,
and a filter's size is bounded before it becomes one SQL expression per key (SQLite
refuses an expression tree deeper than 1,000).
"""

from __future__ import annotations

import math

from ragd.domain import Filters
from ragd.errors import InvalidInput
from ragd.limits import CEILINGS, Limits

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8, or a 422 naming ``what``: JSON can carry a lone surrogate
    (``"\\ud800"``), a str Python holds but no encoding, and so no database, can store."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode (it has a lone surrogate)") from None


def check_scalar(what: str, value: object) -> None:
    """Refuse a value no database of ours stores exactly (``what`` names the field): a
    number out of range, or a string that is not valid Unicode."""
    if isinstance(value, str):
        utf8(value, what)
        return
    if isinstance(value, bool):
        return
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(f"{what} must be an integer between {INT64_MIN} and {INT64_MAX}")
    if isinstance(value, float) and not math.isfinite(value):
        # Python's JSON reader accepts NaN and Infinity; JSON (and JSONB) do not.
        raise InvalidInput(f"{what} must be a finite number")


def validate_filters(filters: Filters | None, limits: Limits = CEILINGS) -> Filters:
    """Metadata equality filters within ``limits``: key count, key length, values."""
    if not filters:
        return {}
    if len(filters) > limits.filter_keys:
        raise InvalidInput(f"filters may have at most {limits.filter_keys} keys")
    for key, value in filters.items():
        if not key or len(key) > limits.filter_key_chars:
            raise InvalidInput(f"filter keys must be 1-{limits.filter_key_chars} characters")
        utf8(key, "a filter key")
        check_scalar(f"filter value of {key!r}", value)
    return filters
