"""ZIP containers (OOXML, EPUB) checked before anything is extracted, and read with caps.

A 40 KB ZIP can inflate to gigabytes, and its central directory can list a million
members; both must be refused before a library opens the file. So :func:`open_zip`
first reads the end-of-central-directory record (a few bytes) and refuses a directory
that claims too many members or is too large to hold only that many, then lets
:mod:`zipfile` parse it and checks every member's declared sizes: the number of
members, their total uncompressed size and each one's compression ratio.

Declared sizes are enforced, not trusted: :mod:`zipfile` never returns more than the
central directory's ``file_size`` for a member (a member that inflates further fails
its CRC check), and :func:`read_member` reads with a byte cap besides. Nothing is
ever written to disk, so a member named ``../../etc/passwd`` is only a string.

XML inside is pre-scanned by :func:`refuse_dtds`: entity declarations are how XXE and
"billion laughs" attacks work, OOXML forbids DTDs altogether, and a DTD can only sit in
an XML prolog, so reading up to the root element is enough.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from ragd.errors import ParseError

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_EOCD_SEARCH = _EOCD_SIZE + 65_535  # the record, then a comment of up to 64 KiB
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
# A central directory entry is 46 bytes plus its name, extra field and comment; OOXML
# and EPUB names are short, so this is generous and still bounds zipfile's parsing work.
_MAX_DIRECTORY_BYTES_PER_MEMBER = 1024
# Small members may compress extremely well (an empty styles part, say) without
# standing for much work; the ratio cap applies from this size on (Apache POI's rule).
_RATIO_GRACE_BYTES = 1024 * 1024
_PROLOG_READ = 64 * 1024
_MAX_PROLOG_BYTES = 1024 * 1024
_ROOT_START = re.compile(rb"<[^?!]")


class DamagedArchive(ParseError):
    """Not a readable ZIP at all (as opposed to one over the bounds)."""


@dataclass(frozen=True)
class ZipLimits:
    """How big a ZIP container may be once inflated; over a bound it is a ParseError."""

    max_members: int = 10_000
    max_uncompressed_bytes: int = 512 * 1024 * 1024
    max_ratio: float = 100.0


def is_zip(head: bytes) -> bool:
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def open_zip(data: bytes, limits: ZipLimits, what: str = "ZIP archive") -> zipfile.ZipFile:
    """A :class:`zipfile.ZipFile` over ``data`` once its directory is within ``limits``."""
    _check_directory_size(data, limits, what)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise DamagedArchive(f"{what} is damaged: {exc}") from None
    check_members(archive.infolist(), limits, what)
    return archive


def check_members(members: Iterable[zipfile.ZipInfo], limits: ZipLimits, what: str) -> None:
    """Refuse too many members, too much inflated data, or a bomb-like member."""
    total = 0
    for count, info in enumerate(members, start=1):
        if count > limits.max_members:
            raise ParseError(f"{what} has more than {limits.max_members:,} members")
        total += info.file_size
        if total > limits.max_uncompressed_bytes:
            raise ParseError(f"{what} would expand to more than {_mb(limits)} MB")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_GRACE_BYTES and ratio > limits.max_ratio:
            raise ParseError(
                f"{what} member {info.filename[:80]!r} expands {ratio:,.0f} times "
                f"(more than {limits.max_ratio:g}); refused as a possible ZIP bomb"
            )


def read_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    """A member's bytes, refusing one that inflates past ``max_bytes`` whatever it declares."""
    try:
        with archive.open(name) as member:
            data = member.read(max_bytes + 1)
    except KeyError:
        raise ParseError(f"archive member {name[:80]!r} is missing") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise ParseError(f"archive member {name[:80]!r} is damaged: {exc}") from None
    if len(data) > max_bytes:
        raise ParseError(f"archive member {name[:80]!r} is larger than {max_bytes:,} bytes")
    return data


def refuse_dtds(
    archive: zipfile.ZipFile, *, suffixes: tuple[str, ...], allow_external: bool = False
) -> None:
    """Refuse XML members whose prolog declares a DTD.

    ``allow_external`` lets through a DOCTYPE without an internal subset (EPUB 2's
    XHTML names the W3C DTD): an external DTD is never loaded by the parsers used here,
    and only an internal subset can declare the entities an attack needs.
    """
    for info in archive.infolist():
        if info.is_dir() or not info.filename.lower().endswith(suffixes):
            continue
        doctype = _doctype(archive, info)
        if doctype is None:
            continue
        if not allow_external or b"[" in doctype or b"<!ENTITY" in doctype.upper():
            raise ParseError(
                f"XML part {info.filename[:80]!r} declares a DTD or entities, "
                "which are refused (XML external entities)"
            )


def _doctype(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    """The ``<!DOCTYPE`` declaration of a member's prolog, or None when it has none.

    Reads up to the root element only; comments and processing instructions may come
    first, and a prolog longer than 1 MiB is refused rather than scanned further.
    """
    try:
        member = archive.open(info)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ParseError(f"archive member {info.filename[:80]!r} is damaged: {exc}") from None
    buffer = b""
    with member:
        while len(buffer) < _MAX_PROLOG_BYTES:
            try:
                chunk = member.read(_PROLOG_READ)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
                raise ParseError(
                    f"archive member {info.filename[:80]!r} is damaged: {exc}"
                ) from None
            buffer += chunk
            found, done = _scan_prolog(buffer, final=not chunk)
            if done:
                return found
    raise ParseError(f"XML part {info.filename[:80]!r} has an over-long prolog")


def _scan_prolog(data: bytes, *, final: bool) -> tuple[bytes | None, bool]:
    """(the DOCTYPE, whether the scan is settled) for the bytes read so far."""
    text = data.lstrip(b"\xef\xbb\xbf")
    position = 0
    while True:
        start = text.find(b"<", position)
        if start < 0:
            return None, final
        if text.startswith(b"<?", start):
            end = text.find(b"?>", start)
        elif text.startswith(b"<!--", start):
            end = text.find(b"-->", start)
        elif text[start : start + 9].upper() == b"<!DOCTYPE":
            return text[start:], True  # everything after it: the subset, maybe the root
        elif _ROOT_START.match(text, start) or text.startswith(b"<!", start):
            return None, True
        else:
            return None, final  # "<" at the very end: need more bytes
        if end < 0:
            return None, final
        position = end + 2


def _check_directory_size(data: bytes, limits: ZipLimits, what: str) -> None:
    """Refuse before :mod:`zipfile` walks a central directory of a million entries.

    :mod:`zipfile` reads the directory by its byte size, not by its (possibly lying)
    member count, so both are bounded here from the end record.
    """
    position = data.rfind(_EOCD, max(0, len(data) - _EOCD_SEARCH))
    if position < 0 or len(data) - position < _EOCD_SIZE:
        raise DamagedArchive(f"{what} is damaged: no end of central directory")
    _, _, _, _, members, size, _, _ = struct.unpack("<4s4H2LH", data[position : position + 22])
    zip64 = position - _ZIP64_LOCATOR_SIZE
    if zip64 >= 0 and data.startswith(_ZIP64_LOCATOR, zip64):
        (offset,) = struct.unpack("<Q", data[zip64 + 8 : zip64 + 16])
        record = data[offset : offset + 56]
        if len(record) < 56 or not record.startswith(_ZIP64_EOCD):
            raise DamagedArchive(f"{what} is damaged: bad ZIP64 end record")
        members, size = struct.unpack("<QQ", record[32:48])  # total entries, directory size
    if members > limits.max_members:
        raise ParseError(f"{what} has more than {limits.max_members:,} members")
    if size > limits.max_members * _MAX_DIRECTORY_BYTES_PER_MEMBER:
        raise ParseError(f"{what} has an oversized central directory")


def _mb(limits: ZipLimits) -> str:
    return f"{limits.max_uncompressed_bytes / (1024 * 1024):g}"
