"""Scalar records of a SwanLab ``*.swanlab`` file decoded column-wise with numpy.

SwanLab writes one ``Record`` per scalar; records of one length mostly share a byte layout
(where each field sits, how long each varint is). The first record of a layout is walked
field by field in Python; every other record of that length is compared with it under a mask
(structure bytes must be equal, varint bytes must have the same continuation bits, the double
is free) eight bytes at a time, and the step, value and timestamps of all matching records are
read at once. Records that match no layout — start, finish, column and log records, split or
unusual records — go to the exact protobuf path, so the result is what the parser gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._crc32c import crc32_fixed_rows

__all__: list[str] = []

_MAX_LAYOUTS = 16  # per record length; the rest of the length group goes the exact way
_MAX_MISSES = 64  # records of one length whose layout we do not take, before giving up
MAX_ROW = 512  # longer records are not scalars worth a layout
MAX_ROWS_BYTES = 1 << 24  # bytes gathered at once

# Record fields (see ``_swanlab_records``); the members of its oneof ``record_type``.
_REC_NUM, _REC_TIME, _REC_SCALAR = 1, 2, 13
_REC_ONEOF = frozenset({10, 11, 12, 13, 14, 16, 20})
_SC_KEY, _SC_STEP, _SC_TIME, _SC_VALUE = 1, 2, 4, 5
_FULL = 1  # the LevelDB chunk type of a whole record: the first byte its checksum covers


@dataclass(frozen=True)
class _Layout:
    mask: np.ndarray  # uint8 per byte: 0xFF structure, 0x80 varint byte, 0 free
    expect: np.ndarray  # the representative's bytes under ``mask``
    key: str
    step: tuple[int, int] | None  # (offset, bytes) of a varint; None: absent (0)
    value: int | None  # offset of the 8-byte double; None: absent (0.0)
    times: tuple[tuple[int, int] | None, ...]  # scalar seconds, nanos, record seconds, nanos


class _Builder:
    """Walks one record's bytes and records its layout (``None``: not a plain scalar)."""

    def __init__(self, row: bytes) -> None:
        self.row = row
        self.mask = np.full(len(row), 0xFF, dtype=np.uint8)
        self.ok = True

    def varint(self, p: int, end: int) -> tuple[int, int]:
        """(value, bytes) of the varint at ``p``; marks ``ok`` False when malformed."""
        result = shift = 0
        for k in range(10):
            if p + k >= end:
                break
            b = self.row[p + k]
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result, k + 1
        self.ok = False
        return 0, 0

    def fields(self, start: int, end: int) -> list[tuple[int, int, int, int]]:
        """``(field, wire type, data start, data end)`` of a message's fields."""
        out = []
        p = start
        while self.ok and p < end:
            tag = self.row[p]
            if tag & 0x80:
                self.ok = False  # field numbers above 15 are not in a scalar record
                break
            field, wire = tag >> 3, tag & 7
            p += 1
            if wire == 0:
                _, k = self.varint(p, end)
                out.append((field, 0, p, p + k))
                p += k
            elif wire == 2:
                n, k = self.varint(p, end)
                if p + k + n > end:
                    self.ok = False
                out.append((field, 2, p + k, p + k + n))
                p += k + n
            elif wire == 1:
                out.append((field, 1, p, p + 8))
                p += 8
            elif wire == 5:
                out.append((field, 5, p, p + 4))
                p += 4
            else:
                self.ok = False
        if p != end:
            self.ok = False
        return out

    def data_varint(self, start: int, end: int) -> tuple[int, int]:
        """A varint whose value varies between records: only its continuation bits count."""
        self.mask[start:end] = 0x80
        if end - start > 9:
            self.ok = False  # 10 bytes: a negative number; the exact path handles it
        return start, end - start

    def timestamp(self, start: int, end: int) -> tuple[tuple[int, int] | None, ...]:
        seconds = nanos = None
        for field, wire, a, b in self.fields(start, end):
            if field == 1 and wire == 0 and seconds is None:
                seconds = self.data_varint(a, b)
            elif field == 2 and wire == 0 and nanos is None:
                nanos = self.data_varint(a, b)
            elif field in (1, 2):
                self.ok = False  # repeated or of another wire type
        return seconds, nanos


def _layout(row: bytes) -> _Layout | None:
    b = _Builder(row)
    seen: set[int] = set()
    rec_time: tuple[tuple[int, int] | None, ...] = (None, None)
    scalar: tuple[int, int] | None = None
    for field, wire, start, end in b.fields(0, len(row)):
        if field in seen and field in (_REC_NUM, _REC_TIME, _REC_SCALAR):
            return None
        seen.add(field)
        if field == _REC_NUM and wire == 0:
            b.data_varint(start, end)
        elif field == _REC_TIME and wire == 2:
            rec_time = b.timestamp(start, end)
        elif field == _REC_SCALAR and wire == 2:
            scalar = (start, end)
        elif field in _REC_ONEOF or field in (_REC_NUM, _REC_TIME):
            return None  # another kind of record, two kinds at once, or an unexpected wire type
    if scalar is None or not b.ok:
        return None
    key: str | None = None
    step: tuple[int, int] | None = None
    value: int | None = None
    sc_time: tuple[tuple[int, int] | None, ...] = (None, None)
    sc_seen: set[int] = set()
    for field, wire, start, end in b.fields(*scalar):
        known = field in (_SC_KEY, _SC_STEP, _SC_TIME, _SC_VALUE)
        if known and field in sc_seen:
            return None
        sc_seen.add(field)
        if field == _SC_KEY and wire == 2:
            try:
                key = row[start:end].decode("utf-8")
            except UnicodeDecodeError:
                return None
        elif field == _SC_STEP and wire == 0:
            step = b.data_varint(start, end)
        elif field == _SC_TIME and wire == 2:
            sc_time = b.timestamp(start, end)
        elif field == _SC_VALUE and wire == 2:
            for vf, vw, a, z in b.fields(start, end):
                if vf == 1 and vw == 1 and value is None:
                    b.mask[a:z] = 0
                    value = a
                elif vf == 1:
                    return None
        elif known:
            return None
    if key is None or not b.ok:
        return None
    expect = np.frombuffer(row, dtype=np.uint8) & b.mask
    return _Layout(b.mask, expect, key, step, value, (*sc_time, *rec_time))


@dataclass
class ScalarColumns:
    """Scalars decoded here, one slot per record: ``codes[i]`` indexes ``keys`` for a record
    that gave a point (its step, value and wall time in the other columns), else -1.

    ``handled`` marks every record decoded here (system metrics included, which give no
    point); the others must go through the exact path.
    """

    handled: np.ndarray
    keys: list[str]
    codes: np.ndarray
    steps: np.ndarray
    values: np.ndarray
    times: np.ndarray
    damaged: bool = False  # a deferred checksum failed: nothing here may be used

    @staticmethod
    def empty(n: int, damaged: bool = False) -> ScalarColumns:
        """Nothing decoded out of ``n`` records."""
        return ScalarColumns(
            np.zeros(n, dtype=bool),
            [],
            np.full(n, -1, dtype=np.int32),
            np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.float64),
            np.empty(n, dtype=np.float64),
            damaged,
        )


def decode_columns(
    buf: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    skip_prefix: str,
    deferred: np.ndarray | None = None,
    stored: np.ndarray | None = None,
    pairs: dict[int, np.ndarray] | None = None,
) -> ScalarColumns:
    """Decode every record (``offsets``/``lengths`` into ``buf``; ``-1``: not in ``buf``) whose
    layout is a plain scalar record. Keys starting with ``skip_prefix`` are handled, no point.

    Records marked ``deferred`` are whole-record chunks whose checksum (``stored``) was left
    to this step: each one decoded here is checked, its layout's fixed bytes folded into one
    constant; a mismatch returns at once with ``damaged`` set. ``pairs`` keeps the byte-pair
    checksum tables this builds (256 KiB each) for the next call.
    """
    n = len(offsets)
    out = ScalarColumns.empty(n)
    keys: dict[str, int] = {}
    usable = np.flatnonzero((offsets >= 0) & (lengths <= MAX_ROW) & (lengths > 0))
    if not usable.size:
        return out
    # Lengths fit 16 bits (at most MAX_ROW): numpy sorts those with a linear radix sort.
    order = usable[np.argsort(lengths[usable].astype(np.uint16), kind="stable")]
    sorted_lens = lengths[order]
    # Rows are gathered eight bytes at a time: the last ones read past the buffer's end, so
    # they come from a zero-padded copy of its tail.
    tail_at = max(0, len(buf) - 2 * MAX_ROW)
    tail = np.concatenate((buf[tail_at:], np.zeros(8, dtype=np.uint8)))
    pairs = {} if pairs is None else pairs
    for group in np.split(order, np.flatnonzero(np.diff(sorted_lens)) + 1):
        length = int(lengths[group[0]])
        width = -(-length // 8) * 8
        step = max(1, MAX_ROWS_BYTES // width)
        for k in range(0, group.size, step):
            part = group[k : k + step]
            rows = _gather(buf, tail, tail_at, offsets[part], width)
            for rec, lay, hit in _match(rows, length):
                at = part[rec]
                if deferred is not None and stored is not None:
                    check = deferred[at]
                    if check.any():
                        fixed = lay.mask == 0xFF
                        crc = crc32_fixed_rows(hit, length, _FULL, fixed, lay.expect, pairs)
                        if not np.array_equal(crc[check], stored[at][check]):
                            return ScalarColumns.empty(n, damaged=True)
                out.handled[at] = True
                if not lay.key.startswith(skip_prefix):
                    # Each record's point goes straight to the record's slot: no pieces to
                    # join and put back in record order later.
                    out.codes[at] = keys.setdefault(lay.key, len(keys))
                    out.steps[at], out.values[at], out.times[at] = _extract(hit, lay)
    out.keys = list(keys)
    return out


def _gather(
    buf: np.ndarray, tail: np.ndarray, tail_at: int, at: np.ndarray, width: int
) -> np.ndarray:
    """Rows ``buf[a : a + width]`` for every ``a`` in ``at`` (ascending), zero past the end."""
    inside = int(np.searchsorted(at, len(buf) - width, side="right"))
    rows = np.lib.stride_tricks.sliding_window_view(buf, width)[at[:inside]]
    if inside < len(at):
        rest = np.lib.stride_tricks.sliding_window_view(tail, width)[at[inside:] - tail_at]
        rows = np.concatenate((rows, rest))
    return rows


def _match(rows: np.ndarray, length: int) -> list[tuple[np.ndarray, _Layout, np.ndarray]]:
    """Rows of one length sorted into layouts: ``(row indices, layout, their rows)``.

    A layout is tried first on the one word holding most of its fixed bytes, a strided column
    of every row, then in full, word by word, on the rows that pass; only those rows are
    copied (none when every row passes), so the other layouts of a length cost one word per
    row and no copy.
    """
    words = rows.view("<u8")
    n = len(rows)
    width = rows.shape[1]
    left = np.ones(n, dtype=bool)
    n_left = n
    first = 0
    out: list[tuple[np.ndarray, _Layout, np.ndarray]] = []
    layouts = misses = 0
    while n_left and layouts < _MAX_LAYOUTS and misses < _MAX_MISSES:
        first += int(np.argmax(left[first:]))  # the first row no layout has taken yet
        lay = _layout(rows[first, :length].tobytes())
        if lay is None:
            misses += 1
            left[first] = False  # the exact path takes it
            n_left -= 1
            continue
        layouts += 1
        mask = np.zeros(width, dtype=np.uint8)
        mask[:length] = lay.mask
        expect = np.zeros(width, dtype=np.uint8)
        expect[:length] = lay.expect
        mask64, expect64 = mask.view("<u8"), expect.view("<u8")
        best = int(np.argmax((mask.reshape(-1, 8) == 0xFF).sum(axis=1)))
        cand = (words[:, best] & mask64[best]) == expect64[best]
        cand &= left
        if n_left == n and cand.all():
            # Every row still a candidate (a length with one layout): checked in place.
            full = _words_match(words, mask64, expect64)
            hit = np.flatnonzero(full)
            hit_rows = rows if len(hit) == n else rows[hit]
        else:
            at = np.flatnonzero(cand)
            hit_rows = rows[at]
            full = _words_match(hit_rows.view("<u8"), mask64, expect64)
            hit = at[full]
            if len(hit) < len(at):
                hit_rows = hit_rows[full]
        left[hit] = False
        n_left -= len(hit)
        out.append((hit, lay, hit_rows))
    return out


def _words_match(words: np.ndarray, mask64: np.ndarray, expect64: np.ndarray) -> np.ndarray:
    """Rows whose every word equals ``expect64`` under ``mask64``, a word column at a time
    (a reduction along a row of a few words costs more than the words themselves)."""
    bad = np.zeros(len(words), dtype=np.uint64)
    tmp = np.empty(len(words), dtype=np.uint64)
    for j in np.flatnonzero(mask64).tolist():
        np.bitwise_and(words[:, j], mask64[j], out=tmp)
        tmp ^= expect64[j]
        bad |= tmp
    return bad == 0


def _word(rows: np.ndarray, start: int) -> np.ndarray | None:
    """The eight bytes at ``start`` of every row as one little-endian word (a strided view),
    or None when they would run past the row."""
    n, width = rows.shape
    if start + 8 > width or not rows.flags.c_contiguous:
        return None
    return np.ndarray((n,), dtype="<u8", buffer=rows, offset=start, strides=(width,))


def _varint(rows: np.ndarray, where: tuple[int, int] | None) -> np.ndarray:
    if where is None:
        return np.zeros(rows.shape[0], dtype=np.uint64)
    start, size = where
    word = _word(rows, start) if size <= 8 else None
    if word is None:
        out = np.zeros(rows.shape[0], dtype=np.uint64)
        for i in range(size):
            out |= (rows[:, start + i] & 0x7F).astype(np.uint64) << np.uint64(7 * i)
        return out
    # Byte i of the word holds bits 7i..7i+6 of the value in its low 7 bits: shifted right by
    # i they land in place. One contiguous copy of the word, then three operations a byte.
    word = word.copy()
    out = word & np.uint64(0x7F)
    tmp = np.empty_like(out)
    for i in range(1, size):
        np.right_shift(word, np.uint64(i), out=tmp)
        tmp &= np.uint64(0x7F << (7 * i))
        out |= tmp
    return out


def _extract(rows: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, values and wall times of rows matching ``lay``, as the exact path computes them."""
    n = rows.shape[0]
    steps = _varint(rows, lay.step).view(np.int64)
    if lay.value is None:
        values = np.zeros(n, dtype=np.float64)
    else:
        word = _word(rows, lay.value)
        if word is None:
            word = np.ascontiguousarray(rows[:, lay.value : lay.value + 8]).view("<u8").ravel()
        values = word.astype("<u8").view("<f8").astype(np.float64, copy=False)
    sc_at, sc_n_at, rec_at, rec_n_at = lay.times
    # int64 seconds (at most 9 varint bytes: never negative here), int32 nanos (truncated).
    seconds = _varint(rows, sc_at).view(np.int64)
    nanos = _int32(_varint(rows, sc_n_at))
    own = seconds != 0  # a scalar without a time of its own takes the record's
    if not own.all():
        rec_s = _varint(rows, rec_at).view(np.int64)
        rec_n = _int32(_varint(rows, rec_n_at))
        seconds = np.where(own, seconds, rec_s)
        nanos = np.where(own, nanos, rec_n)
    with np.errstate(invalid="ignore"):
        times = seconds.astype(np.float64)
        times += nanos.astype(np.float64) * 1e-9
    if not own.all():
        times[(seconds == 0) & (nanos == 0)] = np.nan
    return steps, values, times


def _int32(value: np.ndarray) -> np.ndarray:
    """The low 32 bits of uint64 varints as int32, as protobuf truncates an int32 field."""
    return (value & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
