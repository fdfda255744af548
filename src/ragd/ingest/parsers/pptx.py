"""PPTX: one section per slide, its title as the heading, through python-pptx.

Each slide becomes ``# <title>`` (``Slide N`` when it has none) followed by the text of
its other shapes in reading order (top to bottom, then left to right), grouped shapes
included, tables as Markdown tables, then the speaker notes: so a chunk's heading path
names the slide it came from.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import pptx
from pptx.presentation import Presentation as PresentationObject
from pptx.shapes.base import BaseShape
from pptx.shapes.group import GroupShape
from pptx.slide import Slide

from ragd.errors import ParseError
from ragd.ingest.parsers.base import PPTX, ParsedDocument, ParseLimits, clean_title
from ragd.ingest.parsers.ooxml import check_package, read_with
from ragd.ingest.parsers.tables import cell_text, markdown_table
from ragd.ingest.textnorm import normalize_text


def parse_pptx(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    check_package(data, limits, "PPTX")
    presentation = read_with("PPTX", lambda: pptx.Presentation(io.BytesIO(data)))
    text = read_with("PPTX", lambda: _sections(presentation, limits))
    title = clean_title(presentation.core_properties.title or "")
    return ParsedDocument(normalize_text(text), title, PPTX)


def _sections(presentation: PresentationObject, limits: ParseLimits) -> str:
    slides = list(presentation.slides)
    if len(slides) > limits.max_pages:
        raise ParseError(f"PPTX has more than {limits.max_pages:,} slides")
    sections: list[str] = []
    total = 0
    for number, slide in enumerate(slides, start=1):
        section = _slide(slide, number)
        total += len(section)
        limits.check_chars(total, "PPTX")
        sections.append(section)
    return "\n\n".join(sections)


def _slide(slide: Slide, number: int) -> str:
    title_shape = slide.shapes.title
    heading = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    blocks = [
        block
        for shape in _reading_order(slide.shapes)
        if title_shape is None or shape.shape_id != title_shape.shape_id
        if (block := _shape_text(shape))
    ]
    notes = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
    if notes is not None and (text := notes.text.strip()):
        blocks.append(f"Notes: {text}")
    return "\n\n".join([f"# {heading or f'Slide {number}'}", *blocks])


def _reading_order(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    def position(shape: BaseShape) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    for shape in sorted(shapes, key=position):
        if isinstance(shape, GroupShape):
            yield from _reading_order(shape.shapes)
        else:
            yield shape


def _shape_text(shape: BaseShape) -> str:
    if getattr(shape, "has_table", False):
        rows = [[cell_text(cell.text) for cell in row.cells] for row in shape.table.rows]  # type: ignore[attr-defined]
        return markdown_table([row for row in rows if any(row)])
    if getattr(shape, "has_text_frame", False):
        lines = [" ".join(p.text.split()) for p in shape.text_frame.paragraphs]  # type: ignore[attr-defined]
        return "\n".join(line for line in lines if line)
    return ""
