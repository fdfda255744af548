"""A document's text, rebuilt from its chunks, and bounded excerpts of it.

ragd keeps a document's text only as its chunks (the uploaded bytes are the worker's
input, not something the services hand out). Each chunk's ``char_start``/``char_end``
locate its new material (the overlap copied from the chunk before lies in front of it),
so joining those tails in order gives the text once, without the repeated overlaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragd.domain import StoredChunk

_BLOCK_BREAK = "\n\n"


@dataclass(frozen=True)
class Excerpt:
    text: str
    truncated: bool


def document_text(chunks: Sequence[StoredChunk]) -> str:
    """The text of a document as Markdown, in order.

    Headings live in each chunk's heading path, not in its text, so they are written
    back where the path changes (one ``#`` per level: the original marks are not kept).
    Whitespace between chunks that no chunk holds comes back as a space when it was one
    character, otherwise as a paragraph break."""
    parts: list[str] = []
    end = 0
    path: tuple[str, ...] = ()
    for chunk in sorted(chunks, key=lambda c: c.ordinal):
        new = max(chunk.char_end - max(chunk.char_start, end), 0)
        tail = chunk.text[len(chunk.text) - new :] if new else ""
        shared = _shared_prefix(path, chunk.heading_path)
        headings = [
            f"{'#' * level} {title}"
            for level, title in enumerate(chunk.heading_path[shared:], start=shared + 1)
        ]
        if headings and tail.strip() == chunk.heading_path[-1]:
            tail = ""  # a section with nothing but its heading
        for block in [*headings, tail]:
            if not block:
                continue
            if parts:
                gap = chunk.char_start - end
                parts.append(" " if gap == 1 and block is tail else _BLOCK_BREAK)
            parts.append(block)
        end = max(end, chunk.char_end)
        path = chunk.heading_path
    return "".join(parts)


def _shared_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def excerpt(text: str, max_chars: int) -> Excerpt:
    """At most ``max_chars`` characters of ``text``, cut at a word boundary when one is
    near, so a caller's context window is never flooded by one large document."""
    if len(text) <= max_chars:
        return Excerpt(text, truncated=False)
    cut = text[:max_chars]
    space = cut.rfind(" ", max_chars * 3 // 4)
    return Excerpt((cut[:space] if space > 0 else cut).rstrip() + " …", truncated=True)


def snippet(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters: enough to recognise a cited passage."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
