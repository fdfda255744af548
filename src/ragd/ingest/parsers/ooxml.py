"""What the Office Open XML parsers (DOCX, PPTX, XLSX) share: the safe opening.

The libraries (python-docx, python-pptx, openpyxl) open the ZIP and parse its XML
themselves. Before they do, the package's directory has passed the ZIP bounds and no
XML part declares a DTD: OOXML forbids them (ECMA-376 Part 2), so one is an attack
(XXE, entity expansion), not a document. Macro-enabled files (.docm, .xlsm, .pptm) are
read like the others: their ``vbaProject.bin`` is never loaded, let alone run, and the
text they show is indexed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ragd.errors import ParseError, RagdError
from ragd.ingest.parsers.archive import open_zip, refuse_dtds
from ragd.ingest.parsers.base import ParseLimits, short_reason

T = TypeVar("T")

_XML_SUFFIXES = (".xml", ".rels", ".vml")


def check_package(data: bytes, limits: ParseLimits, what: str) -> None:
    """Refuse a package over the ZIP bounds or with a DTD in any XML part."""
    with open_zip(data, limits.zip, f"{what} file") as archive:
        refuse_dtds(archive, suffixes=_XML_SUFFIXES)


def read_with(what: str, read: Callable[[], T]) -> T:
    """Call a library's reader; its many failure types become one readable ParseError."""
    try:
        return read()
    except RagdError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # lxml, zipfile, KeyError on a missing part, ValueError...
        raise ParseError(f"{what} file could not be read: {short_reason(exc)}") from exc
