"""Malicious documents built on the fly: small files that stand for a lot of work.

The shapes are the ones an attacker used against ragd: a PDF whose pages all share one
heavy content stream (a few hundred KB, minutes to hours of pypdf time), and Markdown
that is nothing but headings.
"""

from __future__ import annotations

import io
import struct
import zipfile

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


def zip_bomb(inner_name: str = "word/document.xml", megabytes: int = 64) -> bytes:
    """An OOXML-looking ZIP whose one big member inflates about 1,000 times."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open(inner_name, "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(megabytes):
                member.write(block)
    return out.getvalue()


def many_members_zip(count: int) -> bytes:
    """A ZIP of ``count`` tiny members: a huge central directory in a small file."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        for index in range(count):
            archive.writestr(f"m/{index}", b"")
    return out.getvalue()


def lying_size_zip(declared: int, actual: int) -> bytes:
    """A ZIP whose central directory declares ``declared`` bytes for a member that
    inflates to ``actual``: its sizes must be enforced, not trusted."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<a>" + b"x" * actual + b"</a>")
    data = bytearray(out.getvalue())
    directory = data.rfind(b"PK\x01\x02")
    # The last central directory entry is word/document.xml; its uncompressed size is
    # at offset 24 of the entry.
    struct.pack_into("<L", data, directory + 24, declared)
    return bytes(data)


def encrypted_office_file() -> bytes:
    """The opening of an OLE compound file holding an ``EncryptedPackage`` stream, the
    shape of a password-protected .docx (MS-OFFCRYPTO)."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    directory = "EncryptionInfo".encode("utf-16-le").ljust(128, b"\0")
    directory += "EncryptedPackage".encode("utf-16-le").ljust(128, b"\0")
    return header + directory + b"\0" * 1024
