"""CRC32C (Castagnoli) for TFRecord framing, and zlib's CRC-32, vectorised with numpy.

No C extension is needed: CRC is affine over GF(2), so the CRC of a message is the XOR of the
contributions of its bytes, each looked up in a table for its distance from the message end,
plus a constant that depends only on the length. That turns "the CRC of 200,000 equal-length
records" into a handful of table gathers over byte columns, and bytes that are equal in every
record (tags, field keys) fold into one constant.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "crc32_ending_at",
    "crc32_fixed_rows",
    "crc32_rows",
    "crc32c",
    "crc32c_free",
    "crc32c_rows",
    "mask",
    "masked_crc32c",
    "masked_crc32c_u64",
]

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_ONE_GATHER = 1 << 16  # table lookups done in one temporary array; more go column by column


class _Tables:
    """Lookup tables of one reflected CRC-32 polynomial (init and final xor 0xFFFFFFFF).

    ``pos[k][b]``: CRC (zero init, no final xor) of byte ``b`` followed by ``k`` zero bytes;
    ``zeros[n]``: the full CRC of ``n`` zero bytes. Both grow on demand.
    """

    def __init__(self, poly: int) -> None:
        table = np.arange(256, dtype=np.uint32)
        for _ in range(8):
            table = np.where(table & 1, (table >> 1) ^ np.uint32(poly), table >> 1).astype(
                np.uint32
            )
        self.table = table
        self.table_list = [int(x) for x in table]
        self.pos = table[None, :].copy()
        self.zeros = np.zeros(1, dtype=np.uint32)

    def grow(self, n: int) -> None:
        """Extend the position tables to cover messages of ``n`` bytes."""
        have = self.pos.shape[0]
        if have >= n:
            return
        want = max(n, have * 2, 64)
        pos = np.empty((want, 256), dtype=np.uint32)
        pos[:have] = self.pos
        row = self.pos[have - 1]
        for k in range(have, want):
            row = self.table[row & 0xFF] ^ (row >> 8)
            pos[k] = row
        zeros = np.empty(want + 1, dtype=np.uint32)
        state = 0xFFFFFFFF
        for k in range(want + 1):
            zeros[k] = state ^ 0xFFFFFFFF
            state = self.table_list[state & 0xFF] ^ (state >> 8)
        self.pos, self.zeros = pos, zeros

    def rows(
        self, rows: np.ndarray, length: int | None = None, may_vary: np.ndarray | None = None
    ) -> np.ndarray:
        """The CRC of the first ``length`` bytes of every row (see :func:`crc32c_rows`)."""
        n, width = rows.shape
        length = width if length is None else length
        if n == 0:
            return np.empty(0, dtype=np.uint32)
        self.grow(length + 1)
        if may_vary is not None:
            cols = may_vary[may_vary < length]
        elif width % 8 == 0 and rows.flags.c_contiguous:
            words = rows.view("<u8")
            varying_words = np.flatnonzero(~(words == words[0]).all(axis=0))
            cols = (varying_words[:, None] * 8 + np.arange(8)).ravel()
            cols = cols[cols < length]
        else:
            cols = np.arange(length)
        same = np.ones(length, dtype=bool)
        if len(cols):
            sub = rows[:, cols]
            same[cols] = (sub == sub[0]).all(axis=0)
        return self.fold(rows[:, :length], np.arange(length), length, int(self.zeros[length]), same)

    def fold(
        self, sub: np.ndarray, cols: np.ndarray, length: int, const: int, same: np.ndarray
    ) -> np.ndarray:
        """``const`` xor what the bytes ``sub[:, k]``, at column ``cols[k]`` of ``length``-byte
        messages, add to each message's CRC. The columns ``same`` hold one byte in every row:
        they fold into the constant; the others cost a lookup per row."""
        if same.any():
            const ^= int(np.bitwise_xor.reduce(self.pos[length - 1 - cols[same], sub[0, same]]))
        vary = np.flatnonzero(~same)
        if len(sub) * len(vary) <= _ONE_GATHER:  # few rows: one gather for every column at once
            out = np.bitwise_xor.reduce(self.pos[length - 1 - cols[vary], sub[:, vary]], axis=1)
            out ^= np.uint32(const)
            return out
        out = np.full(len(sub), const, dtype=np.uint32)
        for j in vary.tolist():
            out ^= self.pos[length - 1 - int(cols[j])][sub[:, j]]
        return out


_C = _Tables(_POLY)
# zlib's CRC-32 (LevelDB-log chunks of SwanLab's record files).
_ZLIB = _Tables(0xEDB88320)


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC32C of ``data``; long buffers are split into rows that are hashed in parallel."""
    n = len(data)
    if n <= 256:
        crc = 0xFFFFFFFF
        table = _C.table_list
        for b in bytes(data):
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    # Lay the message out as k rows of w bytes (left-padded with zeros, which leave a zero-init
    # CRC unchanged), hash every row at once, then combine the row CRCs by shifting each one
    # over the w bytes that follow it.
    w = 512
    k = -(-n // w)
    buf = np.zeros(k * w, dtype=np.uint8)
    buf[k * w - n :] = np.frombuffer(bytes(data), dtype=np.uint8)
    rows = buf.reshape(k, w)
    _C.grow(w)
    lin = np.zeros(k, dtype=np.uint32)
    for j in range(w):
        lin ^= _C.pos[w - 1 - j][rows[:, j]]
    s0, s1, s2, s3 = _shift_tables(w)
    acc = 0
    for v in lin.tolist():
        acc = s0[acc & 0xFF] ^ s1[(acc >> 8) & 0xFF] ^ s2[(acc >> 16) & 0xFF] ^ s3[acc >> 24]
        acc ^= v
    # The initial 0xFFFFFFFF and the final xor: the same as the CRC of n zero bytes.
    return acc ^ _zeros_crc(n)


_SHIFT: dict[int, list[list[int]]] = {}


def _shift_tables(w: int) -> list[list[int]]:
    """Byte-sliced tables of the linear map "append w zero bytes" on a zero-init CRC."""
    tables = _SHIFT.get(w)
    if tables is None:
        tables = []
        for i in range(4):
            vals = np.arange(256, dtype=np.uint32) << np.uint32(8 * i)
            for _ in range(w):
                vals = _C.table[vals & 0xFF] ^ (vals >> 8)
            tables.append([int(x) for x in vals])
        _SHIFT[w] = tables
    return tables


def _zeros_crc(n: int) -> int:
    if n < _C.zeros.shape[0]:
        return int(_C.zeros[n])
    state = 0xFFFFFFFF
    table = _C.table_list
    for _ in range(n):
        state = table[state & 0xFF] ^ (state >> 8)
    return state ^ 0xFFFFFFFF


def crc32c_rows(
    rows: np.ndarray, length: int | None = None, may_vary: np.ndarray | None = None
) -> np.ndarray:
    """CRC32C of the first ``length`` bytes of every row of a 2-D ``uint8`` array.

    Only byte columns that differ between rows cost a table gather per row; the others fold
    into one constant. ``may_vary`` lists the only columns that can differ, when the caller
    knows (rows already matched to one layout); otherwise they are found by comparison.
    """
    return _C.rows(rows, length, may_vary)


def crc32c_free(
    sub: np.ndarray, free: np.ndarray, length: int, base: int
) -> tuple[np.ndarray, np.ndarray]:
    """CRC32C of ``length``-byte messages that differ only in the columns ``free``.

    ``sub[:, k]`` holds every message's byte at column ``free[k]``; ``base`` is the CRC32C of
    a message with zeros there (what the other bytes add). Returns the CRCs and which of the
    ``free`` columns hold the same byte in every message (those fold into one constant).
    """
    _C.grow(length)
    same = (sub == sub[0]).all(axis=0)
    return _C.fold(sub, free, length, base, same), same


def crc32_rows(rows: np.ndarray) -> np.ndarray:
    """zlib's CRC-32 of every row of a 2-D ``uint8`` array, as :func:`crc32c_rows` does it."""
    return _ZLIB.rows(rows)


def crc32_ending_at(
    buf: np.ndarray, ends: np.ndarray, length: int, pairs: dict[int, np.ndarray]
) -> np.ndarray:
    """zlib's CRC-32 of ``buf[e - length : e]`` for every ``e`` in ``ends`` (all ``>= length + 1``).

    For many rows of one length: the rows are gathered once, end-aligned on an even width, and
    read two bytes at a time, each byte pair looked up in a 65,536-entry table of its distance
    from the end (built into ``pairs`` on first use, which the caller keeps for one read).
    Half the gathers of a byte-wise lookup, each over one contiguous column.
    """
    width = length + (length & 1)
    _ZLIB.grow(width + 1)
    rows = np.lib.stride_tricks.sliding_window_view(buf, width)[ends - width]
    if width > length:
        rows[:, 0] = 0  # a leading zero byte leaves a zero-init CRC unchanged
    cols = np.ascontiguousarray(rows.view("<u2").T)
    del rows
    n = len(ends)
    out = np.full(n, _ZLIB.zeros[length], dtype=np.uint32)
    tmp = np.empty(n, dtype=np.uint32)
    for k in range(width // 2):
        d = width - 2 - 2 * k  # distance from the end of the pair's second byte
        np.take(_pair_table(pairs, d), cols[k], out=tmp)
        out ^= tmp
    return out


def _pair_table(pairs: dict[int, np.ndarray], d: int) -> np.ndarray:
    """CRC contribution of a little-endian byte pair ``lo | hi << 8`` whose ``hi`` byte is
    ``d`` bytes from the message end (``lo`` is ``d + 1`` bytes from it)."""
    table = pairs.get(d)
    if table is None:
        table = pairs[d] = np.bitwise_xor.outer(_ZLIB.pos[d], _ZLIB.pos[d + 1]).ravel()
    return table


def crc32_fixed_rows(
    rows: np.ndarray,
    length: int,
    first: int,
    fixed: np.ndarray,
    expect: np.ndarray,
    pairs: dict[int, np.ndarray],
) -> np.ndarray:
    """zlib's CRC-32 of the byte ``first`` followed by the first ``length`` bytes of each row.

    ``rows`` is C-contiguous ``uint8`` of an even width; every row holds ``expect[j]`` at each
    ``j`` where ``fixed[j]`` (the caller has checked it), so those bytes fold into a constant
    and only the pairs holding a varying byte cost a table lookup per row.
    """
    _ZLIB.grow(length + 2)
    pos = _ZLIB.pos
    const = int(_ZLIB.zeros[length + 1]) ^ int(pos[length][first])
    words = rows.view("<u2")
    out = np.zeros(len(rows), dtype=np.uint32)
    tmp = np.empty(len(rows), dtype=np.uint32)
    for j in range(0, length, 2):
        if j + 1 == length:  # the last byte of an odd length
            if fixed[j]:
                const ^= int(pos[0][expect[j]])
            else:
                np.take(pos[0], rows[:, j], out=tmp)
                out ^= tmp
            break
        d = length - 2 - j
        if fixed[j] and fixed[j + 1]:
            const ^= int(pos[d + 1][expect[j]]) ^ int(pos[d][expect[j + 1]])
            continue
        np.take(_pair_table(pairs, d), words[:, j // 2], out=tmp)
        out ^= tmp
    out ^= np.uint32(const)
    return out


def mask(crc: np.ndarray | int) -> np.ndarray | int:
    """TFRecord's masked CRC: rotate right by 15 bits and add a constant."""
    if isinstance(crc, np.ndarray):
        c = crc.astype(np.uint32)
        return ((c >> np.uint32(15)) | (c << np.uint32(17))) + np.uint32(_MASK_DELTA)
    c = int(crc) & 0xFFFFFFFF
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


_SHORT: list[np.ndarray] = []  # masked_crc32c_u64 of every value below 2**16, built on first use


def masked_crc32c_u64(values: np.ndarray) -> np.ndarray:
    """The masked CRC32C of every value's 8 little-endian bytes (TFRecord's length checksum)."""
    if len(values) and int(values.min()) >= 0 and int(values.max()) < 1 << 16:
        if not _SHORT:
            _SHORT.append(_masked_crc32c_u64(np.arange(1 << 16, dtype=np.uint64)))
        return _SHORT[0][values]
    return _masked_crc32c_u64(values)


def _masked_crc32c_u64(values: np.ndarray) -> np.ndarray:
    _C.grow(8)
    v = values.astype(np.uint64)
    out = np.full(len(v), _C.zeros[8], dtype=np.uint32)
    top = int(v.max()) if len(v) else 0
    for j in range(8):
        if not top >> (8 * j):
            break  # zero bytes from here on add nothing to a zero-init CRC
        byte = ((v >> np.uint64(8 * j)) & np.uint64(0xFF)).astype(np.intp)
        out ^= _C.pos[7 - j][byte]
    return mask(out)


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """The masked CRC32C that TFRecord stores after the length and after the payload."""
    return int(mask(crc32c(data)))
