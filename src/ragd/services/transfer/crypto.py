"""Passphrase encryption of an export archive: scrypt, then AES-256-GCM in frames.

Why frames: one GCM message over a multi-gigabyte archive would have to be held whole to
be authenticated before any of it is used. Cut into frames of ``frame_size`` bytes, each
frame is sealed on its own, so memory stays at one frame either way, and a reader never
hands out a byte that failed its tag.

The layout (all integers big-endian)::

    header  magic "RAGD-ENC" | version u8 | kdf u8 (1: scrypt) | log2(N) u8 | r u8 | p u8
            | salt 16 | nonce prefix 7 | frame size u32 | key check 16
    frames  AES-256-GCM(frame) + tag, each ``frame size`` bytes of plaintext except the
            last, which is shorter (possibly empty)

Frame ``i`` is sealed with nonce ``prefix | i (u32) | final (u8)`` and the whole header as
associated data. So a changed header, a frame moved, dropped or flipped, and an archive
cut short (its last frame missing, or a full frame posing as the last) all fail a tag.
The key check is the tag of an empty message under a nonce no frame uses: it tells a
wrong passphrase apart from a damaged archive, and costs one scrypt run to test.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ragd.errors import InvalidInput

MAGIC = b"RAGD-ENC"
VERSION = 1
KDF_SCRYPT = 1
FRAME_SIZE = 1024 * 1024
TAG = 16
# scrypt: N = 2**17, r = 8 takes 128 MiB and about half a second: OWASP's recommendation.
DEFAULT_LOG2_N = 17
DEFAULT_R = 8
DEFAULT_P = 1
# A header asks the reader for this much work at most: an archive may come from anyone.
_MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
_MAX_FRAME_SIZE = 16 * 1024 * 1024
_HEAD = struct.Struct(">8sBBBBB16s7sI")
HEADER_SIZE = _HEAD.size + TAG
_CHECK_INDEX = 0xFFFFFFFF


class WrongPassphrase(InvalidInput):
    """The passphrase does not open this archive."""


def is_encrypted(head: bytes) -> bool:
    """Whether bytes starting a file are an encrypted archive's."""
    return head.startswith(MAGIC)


@dataclass(frozen=True)
class KdfParams:
    log2_n: int = DEFAULT_LOG2_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    def check(self) -> None:
        memory = 128 * self.r * (1 << self.log2_n)
        if not (1 <= self.log2_n <= 24 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise InvalidInput("the archive's key derivation parameters are out of range")
        if memory > _MAX_SCRYPT_MEMORY:
            raise InvalidInput(
                f"the archive's key derivation needs {memory // 2**20} MiB; "
                f"at most {_MAX_SCRYPT_MEMORY // 2**20} MiB are allowed"
            )

    def derive(self, passphrase: str, salt: bytes) -> bytes:
        kdf = Scrypt(salt=salt, length=32, n=1 << self.log2_n, r=self.r, p=self.p)
        return kdf.derive(passphrase.encode("utf-8"))


def _nonce(prefix: bytes, index: int, final: int) -> bytes:
    return prefix + struct.pack(">IB", index, final)


class EncryptingWriter:
    """A write-only stream: what is written comes out sealed on ``out``. ``close`` seals
    the last frame and must be called, or the archive reads as truncated."""

    def __init__(
        self,
        out: BinaryIO,
        passphrase: str,
        *,
        params: KdfParams | None = None,
        frame_size: int = FRAME_SIZE,
    ) -> None:
        params = params or KdfParams()
        params.check()
        if not passphrase:
            raise InvalidInput("the passphrase is empty")
        salt, self._prefix = os.urandom(16), os.urandom(7)
        key = params.derive(passphrase, salt)
        self._aead = AESGCM(key)
        head = _HEAD.pack(
            MAGIC,
            VERSION,
            KDF_SCRYPT,
            params.log2_n,
            params.r,
            params.p,
            salt,
            self._prefix,
            frame_size,
        )
        check = self._aead.encrypt(_nonce(self._prefix, _CHECK_INDEX, 2), b"", head)
        self._header = head + check
        self._out = out
        self._frame_size = frame_size
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        out.write(self._header)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._buffer += data
        while len(self._buffer) >= self._frame_size:
            frame = bytes(self._buffer[: self._frame_size])
            del self._buffer[: self._frame_size]
            self._seal(frame, final=False)
        return len(data)

    def close(self) -> None:
        if not self._closed:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True

    def _seal(self, frame: bytes, *, final: bool) -> None:
        if self._index >= _CHECK_INDEX:
            raise InvalidInput("the archive is too large to encrypt")
        nonce = _nonce(self._prefix, self._index, 1 if final else 0)
        self._out.write(self._aead.encrypt(nonce, frame, self._header))
        self._index += 1


class DecryptingReader:
    """A read-only stream of the plaintext of an encrypted archive read from ``source``.

    Raises :class:`WrongPassphrase` at once when the passphrase does not open it, and
    ``InvalidInput`` at the first frame that fails its tag or when the archive ends
    without its last frame. Read it to the end (``read`` returning ``b""``) to know the
    whole archive was authentic."""

    def __init__(self, source: BinaryIO, passphrase: str) -> None:
        header = _read_exact(source, HEADER_SIZE)
        if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
            raise InvalidInput("not an encrypted ragd archive (or its header is cut short)")
        head, check = header[: _HEAD.size], header[_HEAD.size :]
        _, version, kdf, log2_n, r, p, salt, prefix, frame_size = _HEAD.unpack(head)
        if version > VERSION:
            raise InvalidInput(
                f"the archive's encryption format {version} is newer than this ragd reads "
                f"({VERSION}); upgrade ragd"
            )
        if version != VERSION or kdf != KDF_SCRYPT:
            raise InvalidInput("the archive's encryption header is not one ragd wrote")
        if not 1 <= frame_size <= _MAX_FRAME_SIZE:
            raise InvalidInput("the archive's frame size is out of range")
        params = KdfParams(log2_n, r, p)
        params.check()
        self._aead = AESGCM(params.derive(passphrase, salt))
        try:
            self._aead.decrypt(_nonce(prefix, _CHECK_INDEX, 2), check, head)
        except InvalidTag:
            raise WrongPassphrase(
                "wrong passphrase (or the archive's header was altered)"
            ) from None
        self._source = source
        self._header = header
        self._prefix = prefix
        self._frame_size = frame_size
        self._index = 0
        self._plain = b""
        self._offset = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while piece := self.read(self._frame_size):
                parts.append(piece)
            return b"".join(parts)
        while self._offset >= len(self._plain) and not self._done:
            self._next_frame()
        piece = self._plain[self._offset : self._offset + size]
        self._offset += len(piece)
        return piece

    def drain(self) -> None:
        """Read and authenticate whatever is left, up to the last frame."""
        while not self._done:
            self._next_frame()

    def _next_frame(self) -> None:
        sealed = _read_exact(self._source, self._frame_size + TAG)
        final = len(sealed) < self._frame_size + TAG
        if final and len(sealed) < TAG:
            raise InvalidInput("the encrypted archive is truncated")
        nonce = _nonce(self._prefix, self._index, 1 if final else 0)
        try:
            self._plain = self._aead.decrypt(nonce, sealed, self._header)
        except InvalidTag:
            raise InvalidInput(
                f"the encrypted archive is damaged, altered or truncated (frame {self._index})"
            ) from None
        self._offset = 0
        self._index += 1
        self._done = final


def _read_exact(source: BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of ``source`` (which may return short reads)."""
    parts = []
    left = size
    while left > 0:
        piece = source.read(left)
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)
