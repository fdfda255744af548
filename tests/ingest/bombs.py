"""Malicious documents built on the fly: small files that stand for a lot of work.

The shapes are the ones an attacker used against ragd: a PDF whose pages all share one
heavy content stream (a few hundred KB, minutes to hours of pypdf time), and Markdown
that is nothing but headings.
"""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas


def heavy_page_pdf(operators: int = 4000) -> bytes:
    """One page drawing ``operators`` short strings: slow for pypdf to extract."""
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    for i in range(operators):
        page.drawString(20 + (i % 40) * 13, 20 + (i // 40) % 60 * 12, f"w{i % 97}")
    page.save()
    return buffer.getvalue()


def shared_stream_pdf(pages: int = 2000, operators: int = 4000) -> bytes:
    """``pages`` pages that all point at one content stream: the file stays small (the
    stream is stored once), the extraction work grows with every page."""
    reader = PdfReader(io.BytesIO(heavy_page_pdf(operators)))
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_page(reader.pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def headings_markdown(count: int) -> bytes:
    """``count`` sections, each a heading and one word: one chunk each, unbounded."""
    return "".join(f"# Heading {i}\n\nword{i}\n\n" for i in range(count)).encode()
