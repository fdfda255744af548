"""Scope and metadata filters as bound-parameter SQL, shared by SQLite's two legs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragd.domain import Filters


def in_clause(column: str, prefix: str, values: Sequence[str], params: dict[str, Any]) -> str:
    """``column IN (...)`` over ``values`` bound as ``prefix0``, ``prefix1``, ..."""
    names = []
    for i, value in enumerate(values):
        params[f"{prefix}{i}"] = value
        names.append(f":{prefix}{i}")
    return f"{column} IN ({', '.join(names)})"


def filter_sql(filters: Filters, params: dict[str, Any]) -> str:
    """Metadata equality filters as bound-parameter SQL over ``d.metadata``.

    Keys reach SQL only as bound JSON paths, values only as parameters.
    """
    clauses = []
    for i, (key, value) in enumerate(sorted(filters.items())):
        if '"' in key:
            # A JSON path cannot quote it, and no stored key has one: match nothing
            # rather than a different key with the quote dropped.
            clauses.append(" AND 0")
            continue
        params[f"fpath{i}"] = '$."' + key + '"'
        extracted = f"json_extract(d.metadata, :fpath{i})"
        if value is None:
            clauses.append(f" AND {extracted} IS NULL")
        elif isinstance(value, bool):
            params[f"fval{i}"] = 1 if value else 0
            clauses.append(
                f" AND json_type(d.metadata, :fpath{i}) IN ('true', 'false')"
                f" AND {extracted} = :fval{i}"
            )
        else:
            params[f"fval{i}"] = value
            clauses.append(f" AND {extracted} = :fval{i}")
    return "".join(clauses)


__all__ = ["filter_sql", "in_clause"]
