"""JSON and JSON Lines: structure kept as key paths, one section per record.

A JSON document becomes Markdown: nested objects become headings named by their key
path (``# config``, then ``## database``), scalar fields ``key: value`` lines under them, and
arrays of scalars one line each; an array of objects gets one section per element
(``items[3]``). JSONL gets one section per line (``Record 12``). Nesting deeper than
``_MAX_DEPTH`` is written as compact JSON rather than followed, and the character cap
holds as the text grows, so a small file of deep or wide values cannot run away.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ragd.errors import ParseError
from ragd.ingest.parsers.base import JSON, JSONL, ParsedDocument, ParseLimits, decode
from ragd.ingest.textnorm import normalize_text

_MAX_DEPTH = 6  # Markdown has six heading levels
_MAX_KEY_CHARS = 200


def parse_json(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    text = decode(data, charset)
    limits.check_chars(len(text), "JSON")
    value = _loads(text, "JSON")
    return ParsedDocument(_render(_blocks(value, (), 0), limits, "JSON"), None, JSON)


def parse_jsonl(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    text = decode(data, charset)
    limits.check_chars(len(text), "JSONL")

    def records() -> Iterator[str]:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                value = _loads(line, f"JSONL line {number}")
                yield from _blocks(value, (f"Record {number}",), 0, heading=True)

    return ParsedDocument(_render(records(), limits, "JSONL"), None, JSONL)


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ParseError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise ParseError(f"{what} is not valid JSON: {exc}") from None


def _render(blocks: Iterator[str], limits: ParseLimits, what: str) -> str:
    parts: list[str] = []
    total = 0
    for block in blocks:
        total += len(block) + 2
        limits.check_chars(total, what)
        parts.append(block)
    return normalize_text("\n\n".join(parts))


def _blocks(
    value: Any, path: tuple[str, ...], depth: int, *, heading: bool = False
) -> Iterator[str]:
    """Markdown blocks for ``value`` found at ``path``; a heading opens each section."""
    containers = isinstance(value, list) and any(isinstance(i, dict | list) for i in value)
    if heading and path and not containers:  # elements of a list head their own sections
        # The chunker nests headings into the path: the last part will do.
        yield f"{'#' * min(len(path), _MAX_DEPTH)} {path[-1]}"
    if depth >= _MAX_DEPTH or not isinstance(value, dict | list):
        yield _compact(value)
        return
    if isinstance(value, list):
        if not containers:
            yield "\n".join(f"- {_scalar(item)}" for item in value) or "[]"
            return
        for index, item in enumerate(value):
            child = (*path[:-1], f"{path[-1]}[{index}]") if path else (f"[{index}]",)
            yield from _blocks(item, child, depth + 1, heading=True)
        return
    scalars = [f"{_key(k)}: {_scalar(v)}" for k, v in value.items() if not _nested(v)]
    if scalars:
        yield "\n".join(scalars)
    for key, item in value.items():
        if _nested(item):
            yield from _blocks(item, (*path, _key(key)), depth + 1, heading=True)


def _nested(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def _key(key: str) -> str:
    return " ".join(str(key).split())[:_MAX_KEY_CHARS] or '""'


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.split()) if "\n" in value else value
    return _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
