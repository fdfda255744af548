"""A folder on the server's disk as a source: its files, by path relative to it.

Only folders under an operator's allow-listed roots (``RAGD_SOURCES_FOLDER_ROOTS``) may
be synced, and nothing outside the folder is ever read: the folder is checked by its
real path (symlinks resolved) against the roots' real paths, listing never follows a
symlink (to a directory or a file), and each file is opened component by component
relative to the folder with ``O_NOFOLLOW``, so a symlink swapped in after the listing
is refused too.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ragd.errors import FetchError, InvalidInput, PayloadTooLarge

__all__ = ["FolderFile", "check_patterns", "list_folder", "read_file", "resolve_folder"]

DEFAULT_PATTERNS = ("*",)
_MAX_PATTERNS = 32
_MAX_PATTERN_CHARS = 200
_MAX_PATH_CHARS = 4096


@dataclass(frozen=True)
class FolderFile:
    """A regular file of the folder: ``key`` is its POSIX path relative to the folder;
    ``stamp`` (size and modification time) tells cheaply whether it may have changed."""

    key: str
    size: int
    stamp: str


def resolve_folder(location: str, roots: Sequence[str]) -> Path:
    """The folder's real path, when it is an existing directory at or under one of
    ``roots``; ``InvalidInput`` otherwise (folders are disabled when ``roots`` is empty)."""
    if not roots:
        raise InvalidInput(
            "folder sources are disabled on this server: its operator allows them by "
            "setting RAGD_SOURCES_FOLDER_ROOTS"
        )
    if not location or len(location) > _MAX_PATH_CHARS or not location.isprintable():
        raise InvalidInput("location must be an absolute path to a folder")
    path = Path(location)
    if not path.is_absolute():
        raise InvalidInput("location must be an absolute path to a folder")
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidInput("location is not an existing folder on the server") from None
    if not real.is_dir():
        raise InvalidInput("location is not an existing folder on the server")
    for root in roots:
        try:
            allowed = Path(root).resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real == allowed or real.is_relative_to(allowed):
            return real
    raise InvalidInput(
        "location is outside the folders this server allows (RAGD_SOURCES_FOLDER_ROOTS)"
    )


def check_patterns(raw: object) -> tuple[str, ...]:
    """A folder mapping's ``patterns``: globs matched against the relative path."""
    if raw is None:
        return DEFAULT_PATTERNS
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not 1 <= len(raw) <= _MAX_PATTERNS:
        raise InvalidInput(f"mapping.patterns must list 1 to {_MAX_PATTERNS} glob patterns")
    for pattern in raw:
        if not isinstance(pattern, str) or not 0 < len(pattern) <= _MAX_PATTERN_CHARS:
            raise InvalidInput(f"each pattern must be 1 to {_MAX_PATTERN_CHARS} characters")
        if not pattern.isprintable() or pattern.startswith("/") or ".." in pattern.split("/"):
            raise InvalidInput(f"pattern {pattern[:50]!r} must be relative, without '..'")
    return tuple(raw)


def _matches(key: str, patterns: Sequence[str]) -> bool:
    """fnmatch globs, where ``*`` also crosses ``/``; a leading ``**/`` matches files at
    the top too (``**/*.md`` takes ``a.md`` and ``docs/b.md``)."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(key, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(key, pattern[3:]):
            return True
    return False


def list_folder(folder: Path, patterns: Sequence[str], *, max_files: int) -> list[FolderFile]:
    """The regular files under ``folder`` that match ``patterns``, sorted by key. Hidden
    files and folders (``.git``) and symlinks are skipped; ``PayloadTooLarge`` past
    ``max_files`` matching files."""
    found: list[FolderFile] = []
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        base = Path(directory)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = base / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue  # a symlink, a socket, a device: never read
            key = PurePosixPath(path.relative_to(folder)).as_posix()
            if len(key) > _MAX_PATH_CHARS or not _matches(key, patterns):
                continue
            found.append(FolderFile(key, info.st_size, f"{info.st_size}:{info.st_mtime_ns}"))
            if len(found) > max_files:
                raise PayloadTooLarge(f"the folder has more than {max_files} matching files")
    return sorted(found, key=lambda f: f.key)


def read_file(folder: Path, key: str, *, max_bytes: int) -> bytes:
    """The bytes of ``folder/key``, opened without following any symlink on the way.

    Raises:
        FetchError: the path leaves the folder, crosses a symlink, or is not a regular file.
        PayloadTooLarge: the file is over ``max_bytes``.
    """
    parts = PurePosixPath(key).parts
    if not parts or any(part in ("", ".", "..") for part in parts) or key.startswith("/"):
        raise FetchError(f"{key[:200]!r} is not a path inside the folder")
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    opened: list[int] = []
    try:
        current = os.open(folder, nofollow | os.O_DIRECTORY)
        opened.append(current)
        for part in parts[:-1]:
            current = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=current)
            opened.append(current)
        handle = os.open(parts[-1], nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=current)
    except OSError:
        raise FetchError(f"cannot open {key[:200]!r}: missing, or a symlink") from None
    finally:
        for fd in opened:
            os.close(fd)
    with os.fdopen(handle, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise FetchError(f"{key[:200]!r} is not a regular file")
        if info.st_size > max_bytes:
            raise PayloadTooLarge(f"{key[:200]!r} is larger than {max_bytes} bytes")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{key[:200]!r} is larger than {max_bytes} bytes")
    return data
