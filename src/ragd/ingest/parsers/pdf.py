"""PDF: page text through pypdf, within the page and character bounds.

Every pypdf failure becomes a short ParseError: pypdf raises anything from PdfReadError
to KeyError on damaged files, and a user needs one readable line, not a traceback.
"""

from __future__ import annotations

import io

import pypdf

from ragd.errors import ParseError, RagdError
from ragd.ingest.parsers.base import (
    PDF,
    ParsedDocument,
    ParseLimits,
    clean_title,
    short_reason,
)
from ragd.ingest.textnorm import normalize_text

_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document", "(untitled)"})


def parse_pdf(data: bytes, charset: str | None, limits: ParseLimits) -> ParsedDocument:
    """Extract page text with pypdf; ``charset`` means nothing to a PDF."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        _unlock(reader)
        text = _pdf_text(reader, limits)
    except RagdError:
        raise
    except Exception as exc:  # pypdf raises anything from PdfReadError to KeyError
        raise ParseError(f"PDF could not be read: {short_reason(exc)}") from exc
    return ParsedDocument(normalize_text(text), _pdf_title(reader), PDF)


def _unlock(reader: pypdf.PdfReader) -> None:
    """Refuse encrypted PDFs, except those openable with the empty user password.

    Those are common (an owner password only restricts printing or copying) and their
    text is readable by any viewer, so refusing them would help nobody.
    """
    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("") != pypdf.PasswordType.NOT_DECRYPTED
    except Exception:  # e.g. AES without the optional crypto dependency
        unlocked = False
    if not unlocked:
        raise ParseError("PDF is encrypted; upload a copy without a password")


def _pdf_text(reader: pypdf.PdfReader, limits: ParseLimits) -> str:
    """Join page texts, refusing PDFs whose size would swamp the index (bomb-like files)."""
    if len(reader.pages) > limits.max_pages:
        raise ParseError(f"PDF has more than {limits.max_pages:,} pages")
    pages: list[str] = []
    total = 0
    for page in reader.pages:
        page_text = (page.extract_text() or "").strip()
        total += len(page_text)
        limits.check_chars(total, "PDF")
        if page_text:
            pages.append(page_text)
    return "\n\n".join(pages)


def _pdf_title(reader: pypdf.PdfReader) -> str | None:
    """The /Title metadata entry; broken metadata only costs the title, not the document.

    Generators that were given no title write placeholders such as "untitled"; those
    would label every such document the same, so they count as no title.
    """
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:
        return None
    cleaned = clean_title(str(title)) if title else None
    return None if cleaned is None or cleaned.lower() in _PLACEHOLDER_TITLES else cleaned
