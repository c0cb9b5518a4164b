"""TFRecord framing: find the records of an event file fast, checking every length CRC.

A record is ``uint64le length, uint32le masked-crc32c(length), payload, uint32le
masked-crc32c(payload)``. Walking that chain is inherently sequential, but training loops log
the same tags every step, so record sizes repeat with a short period: we predict thousands of
record offsets with a cumulative sum and verify the whole predicted chain with one vectorised
gather of the headers. Where the prediction breaks we walk a few records in a plain loop and
predict again, so the result is always exactly the chain a sequential reader would find.

A small window (a short run's whole file) is framed in one pass instead: every byte offset is
checked as a header at once, and the valid headers found must chain from the start. That costs a
few array operations whatever the record sizes, where prediction pays a plain loop at every
change of size (a step counter growing a byte, a new tag).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._crc32c import masked_crc32c, masked_crc32c_u64

__all__ = ["MAX_RECORD", "Framing", "frame"]

_HEADER = 12
# Protobuf cannot parse a message of 2 GiB or more, so no Event record is that long: a length
# beyond it (with a valid length checksum) is damage, not a record still being written.
MAX_RECORD = (1 << 31) - 1
_OVERHEAD = 16
_MAX_PERIOD = 128  # tags logged per step that can be predicted
_RECENT = 2 * _MAX_PERIOD
_SMALL = 1 << 20  # windows up to this many bytes are framed in one pass over every offset
# (below 16 MiB, so that a record's length has its bytes 3 to 7 zero)
_unpack_header = struct.Struct("<QI").unpack_from


@dataclass
class Framing:
    """Records found in ``buf[start:end]``.

    ``offsets``/``lengths`` give each payload (offsets into ``buf``); ``stop`` is where reading
    stopped: the end, the start of a half-written record (read it again later) or, when
    ``error`` is set, a corrupted record header (nothing after it can be framed) at ``stop``.
    """

    offsets: np.ndarray
    lengths: np.ndarray
    stop: int
    error: str | None = None


class _LengthCrcs(dict):
    """Masked CRC of the 8 length bytes, per length value (a few distinct values per file)."""

    def __missing__(self, length: int) -> int:
        value = masked_crc32c(struct.pack("<Q", length))
        self[length] = value
        return value


_LENGTH_CRCS = _LengthCrcs()


def _period(sizes: list[int]) -> int:
    """The period with which the recent record sizes repeat, or 0.

    Prefer the smallest period that explains the whole window (a step's tags can hold shorter
    runs that look periodic); just after a break, a period seen in the latest records only.
    """
    n = len(sizes)
    for p in range(1, min(_MAX_PERIOD, n // 2) + 1):
        if sizes[p:] == sizes[:-p]:
            return p
    for p in range(1, min(_MAX_PERIOD, n // 2) + 1):
        k = max(2 * p, 16)
        if k <= n and sizes[n - k + p :] == sizes[n - k : n - p]:
            return p
    return 0


def frame(buf: np.ndarray, start: int, end: int) -> Framing:
    """Frame the complete records in ``buf[start:end]`` (``buf`` is a ``uint8`` array)."""
    if end - start <= _SMALL:
        whole = _frame_whole(buf, start, end)
        if whole is not None:
            return whole
    return _frame_walk(buf, start, end)


def _frame_walk(buf: np.ndarray, start: int, end: int) -> Framing:
    """Frame by walking the chain, predicting runs of repeating record sizes."""
    raw = memoryview(buf)
    offs_parts: list[np.ndarray] = []
    lens_parts: list[np.ndarray] = []
    loop_offs: list[int] = []
    loop_lens: list[int] = []
    recent: list[int] = []  # sizes of the last records, to detect a period
    pos = start
    chunk = 1024
    error: str | None = None
    # Unaligned views: element i is the uint64 (uint32) starting at byte i, so one fancy index
    # reads every predicted header at once.
    u64 = u32 = None
    if len(buf) >= _HEADER:
        u64 = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
        u32 = np.ndarray((len(buf) - 3,), dtype="<u4", buffer=buf, strides=(1,))

    def flush_loop() -> None:
        if loop_offs:
            offs_parts.append(np.asarray(loop_offs, dtype=np.int64))
            lens_parts.append(np.asarray(loop_lens, dtype=np.int64))
            loop_offs.clear()
            loop_lens.clear()

    def accept(sizes: np.ndarray, ends: np.ndarray, good: int) -> None:
        nonlocal pos, recent
        flush_loop()
        offs_parts.append(ends[:good] - sizes[:good] + _HEADER)
        lens_parts.append(sizes[:good] - _OVERHEAD)
        pos = int(ends[good - 1])
        recent = sizes[max(0, good - _RECENT) : good].tolist()

    pattern: np.ndarray | None = None  # the last period that predicted well
    while pos < end:
        p = _period(recent) if len(recent) >= 16 else 0
        if p and u64 is not None and u32 is not None:
            guess = np.asarray(recent[-p:], dtype=np.int64)
            sizes, ends, good = _predict(u64, u32, guess, pos, end, chunk)
            if good:
                accept(sizes, ends, good)
            if good >= max(4 * p, 64):
                pattern = guess
            if len(sizes) and good == len(sizes):
                chunk = min(chunk * 2, 1 << 16)
                continue
            chunk = max(chunk // 4, 256)
        # A plain loop over a few records: past the break in the pattern, or to learn one.
        # After 1, 2, 4 … records, try the last pattern again at every phase that fits the
        # next record: a log line written between two steps only shifts the pattern.
        stop = False
        retry = 1
        for done in range(1, 65):
            if end - pos < _HEADER:
                stop = True
                break
            length, crc = _unpack_header(raw, pos)
            error = _header_error(length, crc)
            if error is not None:
                stop = True
                break
            if end - pos - _OVERHEAD < length:
                stop = True  # half-written: read it on a later poll
                break
            loop_offs.append(pos + _HEADER)
            loop_lens.append(length)
            recent.append(length + _OVERHEAD)
            pos += length + _OVERHEAD
            if pattern is not None and done == retry and u64 is not None and u32 is not None:
                retry *= 2
                if _realign(u64, u32, pattern, pos, end, accept):
                    break
        if len(recent) > _RECENT:
            del recent[:-_RECENT]
        if stop:
            break
    flush_loop()
    if offs_parts:
        offsets = np.concatenate(offs_parts)
        lengths = np.concatenate(lens_parts)
    else:
        offsets = np.empty(0, dtype=np.int64)
        lengths = np.empty(0, dtype=np.int64)
    return Framing(offsets, lengths, pos, error)


def _frame_whole(buf: np.ndarray, start: int, end: int) -> Framing | None:
    """Frame a small window by checking every offset as a header, or None when that is not
    conclusive (a valid-looking header inside a record's payload), for the walk to decide."""
    last = end - _OVERHEAD  # the last offset where a complete record can start
    nodes = length = np.empty(0, dtype=np.int64)
    if last >= start:
        # A record fitting a window below 16 MiB has a length whose bytes 3 to 7 are zero:
        # five zero bytes in a row are rare in event data, so few offsets pass this test, and
        # only those get the exact checks.
        zero = buf[start:end] == 0
        run = zero[:-1] & zero[1:]
        run = run[:-2] & run[2:]
        run = run[:-1] & run[1:]  # bytes i to i + 4 are zero
        cand = np.flatnonzero(run[3 : last - start + 4]) + start
        if len(cand):
            u64 = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
            u32 = np.ndarray((len(buf) - 3,), dtype="<u4", buffer=buf, strides=(1,))
            length = u64[cand].astype(np.int64)
            fits = length <= last - cand
            cand, length = cand[fits], length[fits]
            ok = u32[cand + 8] == masked_crc32c_u64(length)
            nodes, length = cand[ok], length[ok]
    pos = start
    offsets = lengths = np.empty(0, dtype=np.int64)
    if len(nodes) and nodes[0] == start:
        ends = nodes + length + _OVERHEAD
        gaps = np.flatnonzero(ends[:-1] != nodes[1:])
        count = len(nodes)
        if len(gaps):
            count = int(gaps[0]) + 1
            if ends[count - 1] > nodes[count]:
                return None  # a header-like spot inside a record: not one of the chain
        offsets, lengths = nodes[:count] + _HEADER, length[:count]
        pos = int(ends[count - 1])
    # The chain ends at ``pos``, where no complete record with valid checksums starts: say
    # why, as the walk would.
    error: str | None = None
    if end - pos >= _HEADER:
        error = _header_error(*_unpack_header(memoryview(buf), pos))
    return Framing(offsets, lengths, pos, error)


def _predict(
    u64: np.ndarray, u32: np.ndarray, pattern: np.ndarray, pos: int, end: int, count: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Record sizes predicted from ``pos`` by repeating ``pattern``, their ends, and how many
    of them the headers confirm (lengths and length checksums)."""
    p = len(pattern)
    sizes = np.tile(pattern, -(-count // p))[:count]
    ends = pos + np.cumsum(sizes)
    fit = int(np.searchsorted(ends, end, side="right"))
    if not fit:
        return sizes[:0], ends[:0], 0
    sizes, ends = sizes[:fit], ends[:fit]
    starts = ends - sizes
    want = np.array([_LENGTH_CRCS[int(v) - _OVERHEAD] for v in pattern], dtype=np.uint32)
    ok = (u64[starts] == (sizes - _OVERHEAD).astype(np.uint64)) & (
        u32[starts + 8] == np.tile(want, -(-fit // p))[:fit]
    )
    good = fit if ok.all() else int(np.argmin(ok))
    return sizes, ends, good


def _realign(
    u64: np.ndarray,
    u32: np.ndarray,
    pattern: np.ndarray,
    pos: int,
    end: int,
    accept: Callable[[np.ndarray, np.ndarray, int], None],
) -> bool:
    """Resume ``pattern`` at ``pos`` at a phase that a short probe confirms."""
    if end - pos < _HEADER:
        return False
    size = int(u64[pos]) + _OVERHEAD
    probe = max(2 * len(pattern), 16)
    for phase in np.flatnonzero(pattern == size)[:4].tolist():
        shifted = np.roll(pattern, -phase)
        sizes, ends, good = _predict(u64, u32, shifted, pos, end, probe)
        if good == probe:
            accept(sizes, ends, good)
            return True
    return False


def _header_error(length: int, crc: int) -> str | None:
    """Why a record header (its length and the length's masked CRC) cannot start a record,
    or None when it can."""
    if crc != _expected_length_crc(length):
        return "length checksum mismatch"
    if length > MAX_RECORD:
        return f"a record length of {length} bytes, beyond any real record"
    return None


def _expected_length_crc(length: int) -> int:
    if len(_LENGTH_CRCS) > 4096:  # garbage lengths from a corrupted file must not pile up
        _LENGTH_CRCS.clear()
    return _LENGTH_CRCS[length]
