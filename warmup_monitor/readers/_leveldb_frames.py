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
    body = offs + HEADER
    split = np.flatnonzero(kinds != FULL)
    if not split.size and not pending:
        return Frames(body, lens, {}, stop, [], 0, deferred, stored)
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
        return bytes(raw[body[k] : body[k] + lens[k]])

    earlier = list(pending or [])
    joined: dict[int, bytes] = {}
    for last, first in joined_at.items():
        head = earlier if first == -2 else []
        first = max(first, 0)
        joined[last] = b"".join([*head, *(piece(k) for k in range(first, last + 1))])
        keep[first:last] = False
    still: list[bytes] = []
    still_at = -1  # -1: the pending record began in an earlier read
    if pending_from != -1:
        first = max(pending_from, 0)
        head = earlier if pending_from == -2 else []
        still = head + [piece(k) for k in range(first, len(offs))]
        still_at = int(offs[pending_from]) if pending_from >= 0 else -1
        keep[first:] = False
    # Renumber: the joined record takes the place of its LAST chunk.
    index = np.cumsum(keep) - 1
    kept_offs = np.where(kinds == FULL, body, -1)[keep]
    kept_lens = lens[keep]
    return Frames(
        kept_offs,
        kept_lens,
        {int(index[last]): data for last, data in joined.items()},
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
    # Each live block (lane) carries its position and its block's end; a lane leaves when its
    # block is done. Only the last block can run out of bytes, so that is a scalar check.
    lanes = np.arange(starts.size)
    c = starts.copy()
    bend = block_end.copy()
    u16 = np.ndarray((max(0, end - 1),), dtype="<u2", buffer=buf, strides=(1,))
    found_offs: list[np.ndarray] = []
    found_lanes: list[np.ndarray] = []
    found_lens: list[np.ndarray] = []
    found_kinds: list[np.ndarray] = []
    stop = -1  # set when the last block stops early
    last = starts.size - 1
    while lanes.size:
        room = bend - c
        done = room < HEADER  # the block's end or its zero padding
        if done.any():
            if done[-1] and lanes[-1] == last and block_end[last] > end:
                stop = int(c[-1])  # padding not fully on disk yet
            live = ~done
            lanes, c, bend, room = lanes[live], c[live], bend[live], room[live]
            if not lanes.size:
                break
        if end - int(c[-1]) < HEADER:
            stop = int(c[-1])
            lanes, c, bend, room = lanes[:-1], c[:-1], bend[:-1], room[:-1]
            if not lanes.size:
                break
        length = u16[c + 4].astype(np.int64)
        kind = buf[c + 6]
        # kind - 1 wraps around for 0: one comparison rejects every type but 1-4.
        if ((length > room - HEADER) | (kind - np.uint8(FULL) > LAST - FULL)).any():
            return None, none, none, pos
        nxt = c + (length + HEADER)
        if nxt[-1] > end:  # the last chunk is still being written
            stop = int(c[-1])
            lanes, c, bend, length, kind, nxt = (
                lanes[:-1],
                c[:-1],
                bend[:-1],
                length[:-1],
                kind[:-1],
                nxt[:-1],
            )
            if not lanes.size:
                break
        found_offs.append(c)
        found_lanes.append(lanes)
        found_lens.append(length)
        found_kinds.append(kind)
        c = nxt
    if not found_offs:
        return none, none, none, (min(int(block_end[-1]), end) if stop < 0 else stop)
    # A block finds its k-th chunk at step k: its chunks' places in file order follow from
    # the number each block found, without sorting.
    lane_of = np.concatenate(found_lanes)
    step_of = np.repeat(np.arange(len(found_lanes)), [len(x) for x in found_lanes])
    per_lane = np.bincount(lane_of, minlength=starts.size)
    first_of_lane = np.cumsum(per_lane) - per_lane
    place = first_of_lane[lane_of] + step_of
    offs = np.empty(place.size, dtype=np.int64)
    lens = np.empty(place.size, dtype=np.int64)
    kinds = np.empty(place.size, dtype=np.uint8)
    offs[place] = np.concatenate(found_offs)
    lens[place] = np.concatenate(found_lens)
    kinds[place] = np.concatenate(found_kinds)
    if stop < 0:
        # Every block ran to its end: stop at the end of the last one (or the buffer's end).
        stop = min(int(block_end[-1]), end)
    return offs, lens, kinds, stop


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
        view = np.lib.stride_tricks.sliding_window_view(buf, width)
        for k in range(0, group.size, step):
            part = group[k : k + step]
            if not np.array_equal(crc32_rows(view[offs[part] + 6]), stored[part]):
                return False
    return True
