"""Documents the journeys upload: a Markdown file, a real PDF, a corrupt PDF."""

from __future__ import annotations

import io

from reportlab.pdfgen import canvas

MARKDOWN = b"""# Tower Bridge

Tower Bridge is a combined bascule and suspension bridge in London, built between
1886 and 1894. It crosses the River Thames close to the Tower of London.

## Restoration

The bridge was restored in 2008 and repainted blue and white.
"""

PDF_FACT = "The quarterly revenue of Zephyr Corporation rose to 42 million euros."


def pdf_bytes(text: str = PDF_FACT) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.setTitle("Zephyr Quarterly Report")
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


CORRUPT_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a real pdf\n%%EOF\n"
