"""LevelDB-log chunks found for a whole buffer at once, every chunk's CRC-32 checked with numpy.

Chunks never cross a 32 KiB block, and every block starts with a chunk, so the chunk chains of
all blocks are walked side by side: one numpy step moves every block to its next chunk, and a
70 MB file takes a few hundred steps instead of a million Python iterations. The checksums
are computed per chunk length with :func:`~._crc32c.crc32_rows`. Anything unusual (a bad
header, a bad checksum, a record split in an unexpected way) returns ``None``: the caller then
reads that stretch with the exact sequential reader, which warns and resynchronises as LevelDB
does.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ._crc32c import crc32_ending_at, crc32_rows

__all__: list[str] = []

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_MAX_ROWS_BYTES = 1 << 24  # bytes gathered at once to check checksums
# Chunks of one length checked with byte-pair tables (256 KiB each, built per read): worth it
# from this many chunks, up to this many bytes (scalar records are well under it).
_PAIRS_MIN_ROWS = 2048
_PAIRS_MAX_WIDTH = 160
_ZLIB_MAX_ROWS = 32  # chunks of one length up to this many are checked one by one with zlib


@dataclass
class Frames:
    """Records found in a buffer, in file order.

    ``offsets``/``lengths`` locate each record's bytes in the buffer; a record that was split
    into pieces has offset ``-1`` and its joined bytes in ``joined`` under its index. ``stop``
    is the buffer offset where reading stopped (the rest is not complete on disk yet);
    ``pending`` holds the pieces of a record whose last piece is not on disk yet, and
    ``pending_at`` the buffer offset of its first chunk (``-1``: before this buffer).
    """

    offsets: np.ndarray
    lengths: np.ndarray
    joined: dict[int, bytes]
    stop: int
    pending: list[bytes]
    pending_at: int
    #: Per record: the stored checksum of a whole-record chunk left to the caller to check
    #: (see ``defer_upto``); meaningful only where ``deferred`` is True.
    deferred: np.ndarray | None = None
    stored: np.ndarray | None = None


def frame(
    buf: np.ndarray,
    base: int,
    pos: int,
    pending: list[bytes] | None = None,
    defer_upto: int = 0,
) -> Frames | None:
    """The records of ``buf[pos:]`` (``buf[0]`` is file byte ``base``), or ``None``.

    ``pos`` must be a chunk boundary; ``pending`` are the pieces of a record begun before it.
    The checksums of whole-record chunks of at most ``defer_upto`` bytes are not checked here
    but returned (``deferred``/``stored``): a caller that gathers those records anyway checks
    them more cheaply, and must check every one of them before using any record.
    """
    end = len(buf)
    offs, lens, kinds, stop = _walk(buf, base, pos, end)
    if offs is None:
        return None
    deferred = stored = None
    if defer_upto:
        defer = (kinds == FULL) & (lens <= defer_upto)
        if defer.any():
            stored = _stored(buf, offs)
            deferred = defer
            if not checksums_ok(buf, offs[~defer], lens[~defer]):
                return None
        elif not checksums_ok(buf, offs, lens):
            return None
    elif not checksums_ok(buf, offs, lens):
        return None
    split = np.flatnonzero(kinds != FULL)
    if not split.size and not pending:
        offs += HEADER  # the records' bytes (the chunk offsets are ours: no copy)
        return Frames(offs, lens, {}, stop, [], 0, deferred, stored)
    # Split records: FIRST, MIDDLE…, LAST on consecutive chunks; a FIRST… at the very end is
    # a record still being written. Anything else goes to the exact reader.
    keep = np.ones(len(offs), dtype=bool)
    joined_at: dict[int, int] = {}  # chunk index of a LAST -> index of its FIRST
    pending_from = -1
    # A record begun before ``pos`` continues with the first chunks (virtual first index -1).
    run_start = -2 if pending else -1
    expected_next = 0 if pending else -1
    for i in split.tolist():
        kind = int(kinds[i])
        if kind == FIRST:
            if run_start != -1:
                return None
            run_start, expected_next = i, i + 1
            continue
        if run_start == -1 or i != expected_next:
            return None
        if kind == MIDDLE:
            expected_next = i + 1
        else:
            joined_at[i] = run_start
            run_start = -1
    if run_start != -1:
        if expected_next != len(offs):
            return None
        pending_from = run_start
    raw = buf.data

    def piece(k: int) -> bytes:
        at = int(offs[k]) + HEADER
        return bytes(raw[at : at + int(lens[k])])

    earlier = list(pending or [])
    # The joined record takes the place of its LAST chunk: its index, less the chunks dropped
    # before it (every piece but the last of this record and of the ones before).
    joined: dict[int, bytes] = {}
    dropped = 0
    for last, first in joined_at.items():
        head = earlier if first == -2 else []
        first = max(first, 0)
        dropped += last - first
        joined[last - dropped] = b"".join([*head, *(piece(k) for k in range(first, last + 1))])
        keep[first:last] = False
    still: list[bytes] = []
    still_at = -1  # -1: the pending record began in an earlier read
    if pending_from != -1:
        first = max(pending_from, 0)
        head = earlier if pending_from == -2 else []
        still = head + [piece(k) for k in range(first, len(offs))]
        still_at = int(offs[pending_from]) if pending_from >= 0 else -1
        keep[first:] = False
    offs += HEADER
    offs[split] = -1  # not one piece of the buffer: a joined record (or dropped)
    return Frames(
        offs[keep],
        lens[keep],
        joined,
        stop,
        still,
        still_at,
        None if deferred is None else deferred[keep],
        None if stored is None else stored[keep],
    )


def _walk(
    buf: np.ndarray, base: int, pos: int, end: int
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, int]:
    """Chunk offsets, lengths and types of every block, walked side by side.

    Returns ``None`` offsets for a header no writer makes (a length past its block, an unknown
    type). ``stop`` is where a sequential reader stops: before an incomplete chunk, header or
    block padding at the end of the buffer.
    """
    none = np.empty(0, dtype=np.int64)
    first_boundary = pos + (-(base + pos)) % BLOCK
    if first_boundary == pos:
        starts = np.arange(pos, end, BLOCK, dtype=np.int64)
    else:
        starts = np.concatenate(
            ([pos], np.arange(first_boundary, end, BLOCK, dtype=np.int64))
        ).astype(np.int64)
    if not starts.size:
        return none, none, none, pos
    block_end = (starts - (base + starts) % BLOCK) + BLOCK  # buffer offset of each block's end
    last = starts.size - 1
    open_end = bool(block_end[last] > end)  # the last block is not all on disk
    # Each live block (lane) carries its position, its block's end and the last place a chunk
    # header can start (in its block, and for the last block in the buffer); a lane leaves
    # past that place. A step only reads each lane's length and moves on; a length that ran
    # past its block shows when the lane leaves, and the types are checked after the walk.
    lanes = np.arange(starts.size)
    c = starts.copy()
    bend = block_end.copy()
    limit = block_end - HEADER
    limit[last] = min(int(block_end[last]), end) - HEADER
    # Lengths and types read in place: 4 and 6 bytes into each header (a buffer too short for
    # a header ends every lane before any is read).
    u16 = np.ndarray((max(0, end - 5),), dtype="<u2", buffer=buf, offset=min(4, end), strides=(1,))
    found_offs: list[np.ndarray] = []
    found_lanes: list[np.ndarray] = []
    stop = -1  # set when the last block stops early
    while True:
        done = c > limit
        if done.any():
            if (c[done] > bend[done]).any():
                return None, none, none, pos  # a chunk ran past its block
            if done[-1] and open_end and lanes[-1] == last:
                stop = int(c[-1])  # a header or padding not fully on disk yet
            live = ~done
            lanes, c, bend, limit = lanes[live], c[live], bend[live], limit[live]
            if not lanes.size:
                break
        nxt = c + u16[c]
        nxt += HEADER
        if int(nxt[-1]) > end:  # the last chunk is still being written, or its header is bad
            at = int(c[-1])
            if nxt[-1] > bend[-1] or not FULL <= buf[at + 6] <= LAST:
                return None, none, none, pos
            stop = at
            lanes, c, nxt, bend, limit = lanes[:-1], c[:-1], nxt[:-1], bend[:-1], limit[:-1]
            if not lanes.size:
                break
        found_offs.append(c)
        found_lanes.append(lanes)
        c = nxt
    if not found_offs:
        return none, none, none, (min(int(block_end[-1]), end) if stop < 0 else stop)
    # A block finds its k-th chunk at step k: a (step, block) table read block by block gives
    # the chunks in file order, without sorting.
    table = np.full((len(found_offs), starts.size), -1, dtype=np.int64)
    for k, (at_k, lanes_k) in enumerate(zip(found_offs, found_lanes, strict=True)):
        table[k, lanes_k] = at_k
    del found_offs, found_lanes
    by_block = table.T
    offs = by_block[by_block >= 0]
    del table, by_block
    kinds = buf[6:][offs]
    # kind - 1 wraps around for 0: one comparison rejects every type but 1-4.
    if (kinds - np.uint8(FULL) > LAST - FULL).any():
        return None, none, none, pos
    if stop < 0:
        # Every block ran to its end: stop at the end of the last one (or the buffer's end).
        stop = min(int(block_end[-1]), end)
    return offs, u16[offs].astype(np.int64), kinds, stop


def _stored(buf: np.ndarray, offs: np.ndarray) -> np.ndarray:
    """The CRC-32 stored in the header of each chunk at ``offs``."""
    u32 = np.ndarray((max(0, len(buf) - 3),), dtype="<u4", buffer=buf, strides=(1,))
    return u32[offs]


def checksums_ok(buf: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> bool:
    """Every chunk's stored CRC-32 equals the CRC of its type byte and data."""
    if not offs.size:
        return True
    stored = _stored(buf, offs)
    order = np.argsort(lens.astype(np.uint16), kind="stable")  # 16-bit keys: a radix sort
    sorted_lens = lens[order]
    bounds = np.flatnonzero(np.diff(sorted_lens)) + 1
    pairs: dict[int, np.ndarray] = {}  # byte-pair tables, built once for this buffer
    raw = buf.data
    for group in np.split(order, bounds):
        width = int(lens[group[0]]) + 1  # the type byte, then the data
        step = max(1, _MAX_ROWS_BYTES // width)
        if group.size >= _PAIRS_MIN_ROWS and width <= _PAIRS_MAX_WIDTH:
            ends = offs[group] + (width + 6)
            for k in range(0, group.size, step):
                got = crc32_ending_at(buf, ends[k : k + step], width, pairs)
                if not np.array_equal(got, stored[group[k : k + step]]):
                    return False
            continue
        if group.size <= _ZLIB_MAX_ROWS:
            # A few chunks of this length (the two pieces of a record split across blocks):
            # zlib checks each one for less than numpy's cost of starting on a group.
            for at, crc in zip((offs[group] + 6).tolist(), stored[group].tolist(), strict=True):
                if zlib.crc32(raw[at : at + width]) != crc:
                    return False
            continue
        view = np.lib.stride_tricks.sliding_window_view(buf, width)
        for k in range(0, group.size, step):
            part = group[k : k + step]
            if not np.array_equal(crc32_rows(view[offs[part] + 6]), stored[part]):
                return False
    return True
