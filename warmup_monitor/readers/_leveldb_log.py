"""Incremental reader of LevelDB-log framed files (SwanLab's ``*.swanlab`` record files).

Layout: a 7-byte file header, then 32 KiB blocks (block 0 includes the header). Each chunk is
``uint32le crc | uint16le length | uint8 type | data`` where ``crc`` is zlib's CRC-32 of ``data``
seeded with the CRC-32 of the type byte, and ``type`` is 1 (full record), 2 (first piece),
3 (middle) or 4 (last). A block tail shorter than a chunk header is zero padding.

The reader is written for files that are still growing: it consumes whole chunks only, keeps the
pieces of a record split across chunks until its last piece arrives (possibly several polls
later) and never reads past the end of what is on disk. Corruption never raises: the bad part is
skipped with a warning and reading resumes at the next block, as LevelDB itself does.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import numpy as np

from ..errors import FormatError
from ..untrusted import open_regular
from ._leveldb_frames import frame

__all__: list[str] = []

_BLOCK = 32768
_CHUNK_HEADER = 7
_FILE_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
# CRC-32 of each type byte: the seed of the chunk checksum.
_SEED = {t: zlib.crc32(bytes([t])) for t in (_FULL, _FIRST, _MIDDLE, _LAST)}
_HEAD = struct.Struct("<IHB")
_FILE_HEAD = struct.Struct("<4sHB")
# One read() consumes at most this much; ``more`` then says the file holds further bytes, so a
# huge file is decoded in bounded pieces instead of being held in memory whole.
_MAX_READ = 32 * 1024 * 1024
_NO_OFFSETS = np.empty(0, dtype=np.int64)
_NO_BYTES = np.empty(0, dtype=np.uint8)
_T = TypeVar("_T")


def _read_into_array(fh: IO[bytes], want: int, spare: np.ndarray | None = None) -> np.ndarray:
    """Up to ``want`` bytes of ``fh`` (fewer when the file ends first), in ``spare`` when it
    is big enough, else in a new array."""
    out = spare[:want] if spare is not None and len(spare) >= want else np.empty(want, np.uint8)
    view = memoryview(out)
    got = 0
    while got < want:
        n = fh.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    del view
    return out if got == want else out[:got]


@dataclass
class Batch:
    """Records of one read: ``buf[offsets[i] : offsets[i] + lengths[i]]``, or ``joined[i]``
    for a record that is not one piece of ``buf`` (offset ``-1``)."""

    buf: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint8))
    offsets: np.ndarray = field(default_factory=lambda: _NO_OFFSETS)
    lengths: np.ndarray = field(default_factory=lambda: _NO_OFFSETS)
    joined: dict[int, bytes] = field(default_factory=dict)
    #: Records whose chunk checksum the consumer must check (see ``_leveldb_frames.frame``),
    #: and the checksum stored for each record (where ``deferred``).
    deferred: np.ndarray | None = None
    stored: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets)

    def record(self, i: int) -> bytes:
        at = int(self.offsets[i])
        if at < 0:
            return self.joined[i]
        return bytes(self.buf.data[at : at + int(self.lengths[i])])

    @staticmethod
    def of(records: list[bytes]) -> Batch:
        n = len(records)
        return Batch(
            offsets=np.full(n, -1, dtype=np.int64),
            lengths=np.fromiter(map(len, records), dtype=np.int64, count=n),
            joined=dict(enumerate(records)),
        )


class _LevelDBLog:
    """Yields the complete records appended to one framed file since the previous call.

    ``versions`` maps the header version byte to a format label; an unknown version raises
    :class:`FormatError`. ``warnings`` collects one line per skipped piece.
    """

    def __init__(
        self,
        path: Path,
        ident: bytes,
        magic: int,
        versions: dict[int, str],
        deferred: dict[int, int] | None = None,
    ) -> None:
        self.path = Path(path)
        # File version -> length up to which read_batch() leaves whole-record checksums to
        # the consumer (who then calls reread() when one fails).
        self._deferred = deferred or {}
        self._undo: tuple[int, bytes, list[bytes], int, int | None] | None = None
        self._ident = ident
        self._magic = magic
        self._versions = versions
        #: Header version byte, None until the header is on disk.
        self.version: int | None = None
        self.warnings: list[str] = []
        self._offset = 0  # next file byte to examine
        self._pieces: list[bytes] = []  # pieces of a record whose last piece is not on disk yet
        self._pieces_at = 0
        self._ahead = False  # the offset was moved past the end of the file by a skip
        self._tail = b""  # the last bytes consumed, to notice a file rewritten in place
        #: True when the last read() stopped at its size cap with more bytes on disk.
        self.more = False

    @property
    def offset(self) -> int:
        """Bytes of the file consumed so far."""
        return self._offset

    @property
    def ahead(self) -> bool:
        """True when a skipped damaged block moved the offset past the end of the file."""
        return self._ahead

    def same_tail(self) -> bool:
        """True when the bytes just before the offset are still the ones read there."""
        if not self._tail:
            return True
        try:
            with open_regular(self.path) as fh:
                fh.seek(self._offset - len(self._tail))
                return fh.read(len(self._tail)) == self._tail
        except OSError:
            return False

    def _read_tail(self) -> bytes:
        """The bytes from the offset on (at most ``_MAX_READ``)."""
        return self._read_from_offset(lambda fh, n: fh.read(n), b"")

    def _read_tail_array(self, spare: np.ndarray | None) -> np.ndarray:
        """:meth:`_read_tail` read into a ``uint8`` array (``spare`` when it is big enough).

        Fresh memory is slow to fault in, as slow as reading the file into it: numpy asks Linux
        for huge pages for a big array (a 32 MiB ``bytes`` takes 8,192 small ones), and the
        reads of one poll reuse one array.
        """
        return self._read_from_offset(lambda fh, n: _read_into_array(fh, n, spare), _NO_BYTES)

    def _read_from_offset(self, read: Callable[[IO[bytes], int], _T], nothing: _T) -> _T:
        try:
            with open_regular(self.path) as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self._offset and self._ahead:
                    return nothing  # skipped a damaged block whose tail is not on disk yet
                if size < self._offset:
                    raise FormatError(
                        f"'{self.path.name}' shrank from {self._offset} to {size} bytes while "
                        "being read",
                        "The run was overwritten; read it again from the start",
                    )
                if size == self._offset:
                    return nothing
                fh.seek(self._offset)
                self.more = size - self._offset > _MAX_READ
                return read(fh, min(size - self._offset, _MAX_READ))
        except FileNotFoundError as err:
            raise FormatError(
                f"'{self.path}' disappeared while being read", "Check the run folder"
            ) from err

    def _check_header(self, head: bytes) -> None:
        ident, magic, version = _FILE_HEAD.unpack(head)
        if ident != self._ident or magic != self._magic:
            raise FormatError(
                f"'{self.path.name}' does not start with the SwanLab file header "
                f"(got {head[:6]!r})",
                "Point at a run-*/ folder written by SwanLab",
            )
        if version not in self._versions:
            known = ", ".join(str(v) for v in sorted(self._versions))
            raise FormatError(
                f"'{self.path.name}' has file format version {version}, newer than this "
                f"reader knows (versions {known})",
                "Upgrade warmup-monitor (pip install -U warmup-monitor)",
            )
        self.version = version

    def _warn(self, text: str) -> None:
        self.warnings.append(f"{self.path.name}: {text}")

    def read(self) -> list[bytes]:
        """The records completed since the last call, in file order (empty when none)."""
        self.more = False
        buf = self._read_tail()
        if not buf:
            return []
        base = self._offset  # file offset of buf[0]
        pos = 0
        if self.version is None:
            if len(buf) < _FILE_HEADER:
                return []  # the writer has not written its header yet: "not started"
            self._check_header(buf[:_FILE_HEADER])
            pos = _FILE_HEADER
        records: list[bytes] = []
        end = len(buf)
        unpack = _HEAD.unpack_from
        crc32 = zlib.crc32
        pieces = self._pieces
        while True:
            left_in_block = _BLOCK - (base + pos) % _BLOCK
            if left_in_block < _CHUNK_HEADER:
                if end - pos < left_in_block:
                    break  # padding not fully on disk yet
                pos += left_in_block
                continue
            if end - pos < _CHUNK_HEADER:
                break
            crc, length, kind = unpack(buf, pos)
            start = pos + _CHUNK_HEADER
            stop = start + length
            if length > left_in_block - _CHUNK_HEADER or kind not in _SEED:
                if self._resync(buf, pos, base, left_in_block, "bad chunk header"):
                    pos += left_in_block
                    continue
                break
            if stop > end:
                break  # the chunk is still being written
            data = buf[start:stop]
            if crc32(data, _SEED[kind]) != crc:
                if self._resync(buf, pos, base, left_in_block, "checksum mismatch"):
                    pos += left_in_block
                    continue
                break
            pos = stop
            if kind == _FULL:
                if pieces:
                    self._drop_pieces("followed by a whole record")
                records.append(data)
            elif kind == _FIRST:
                if pieces:
                    self._drop_pieces("followed by another first piece")
                pieces.append(data)
                self._pieces_at = base + start - _CHUNK_HEADER
            elif not pieces:
                self._warn(
                    f"skipped an orphan record piece (type {kind}) at byte {base + start - 7}"
                )
            else:
                pieces.append(data)
                if kind == _LAST:
                    records.append(b"".join(pieces))
                    pieces.clear()
        self._offset = base + pos
        self._ahead = pos > end
        if self._ahead:
            self._tail = b""  # skipped past what is on disk: no bytes of ours to compare there
        elif pos:
            self._tail = buf[max(0, pos - 16) : pos]
        return records

    def read_batch(self, spare: np.ndarray | None = None) -> Batch:
        """What :meth:`read` returns, found for the whole read at once (see ``_leveldb_frames``).

        Falls back on :meth:`read` for anything unusual, so the records, warnings and resync
        points are exactly the sequential reader's. ``spare`` is the ``buf`` of an earlier
        batch the caller is done with: the bytes are read into it when they fit.
        """
        self._undo = None
        if self._ahead:
            return Batch.of(self.read())
        self.more = False
        base = self._offset
        undo = (base, self._tail, list(self._pieces), self._pieces_at, self.version)
        arr = self._read_tail_array(spare)
        if not len(arr):
            return Batch()
        pos = 0
        if self.version is None:
            if len(arr) < _FILE_HEADER:
                return Batch()
            self._check_header(bytes(arr[:_FILE_HEADER]))
            pos = _FILE_HEADER
        defer = self._deferred.get(self.version, 0) if self.version is not None else 0
        frames = frame(arr, base, pos, self._pieces, defer)
        if frames is None:
            if pos:  # the header was read just now: let read() start from it as it would
                self.version = None
            return Batch.of(self.read())
        self._offset = base + frames.stop
        if frames.stop:
            self._tail = bytes(arr[max(0, frames.stop - 16) : frames.stop])
        self._pieces = frames.pending
        if frames.pending and frames.pending_at >= 0:
            self._pieces_at = base + frames.pending_at
        if frames.deferred is not None:
            self._undo = undo
        return Batch(
            arr, frames.offsets, frames.lengths, frames.joined, frames.deferred, frames.stored
        )

    def reread(self) -> Batch:
        """The last :meth:`read_batch` again, every checksum checked by the sequential reader.

        For a consumer that found a deferred checksum failing: the sequential reader warns,
        skips and resynchronises exactly as it would have.
        """
        assert self._undo is not None, "reread() follows a read_batch() with deferred checks"
        base, self._tail, self._pieces, self._pieces_at, self.version = self._undo
        self._offset = base
        self._undo = None
        return Batch.of(self.read())

    def _resync(self, buf: bytes, pos: int, base: int, left_in_block: int, why: str) -> bool:
        """Skip the rest of a block after a corrupt chunk; False means "wait for more bytes".

        Bytes on disk never change in an append-only file, so a complete chunk with a bad
        checksum is damage, not a write in progress. The exception is zeros up to the end of what
        is on disk: a region reserved but not yet filled (some network file systems show them).
        """
        if not buf[pos:].strip(b"\x00"):
            return False
        self._warn(
            f"{why} at byte {base + pos}; skipped {left_in_block} bytes up to the next block"
        )
        if self._pieces:
            self._drop_pieces("cut by corrupted data")
        return True

    def _drop_pieces(self, why: str) -> None:
        size = sum(len(p) for p in self._pieces)
        self._warn(
            f"dropped an incomplete record ({size} bytes from byte {self._pieces_at}), {why}"
        )
        self._pieces.clear()
