"""Decoding scalar points from framed ``Event`` records, vectorised where the layout allows.

Records of one length written by one writer share a byte layout: ``wall_time``, ``step`` and one
summary value holding a tag and either a ``simple_value`` or a rank-0 tensor (fixed-width or
varint-packed, with or without metadata). We parse the first record of such a group with a small
protobuf walker, compare the layout bytes of every other record with one masked compare per
8-byte word, and read the data columns of all matching records at once. Every record that does
not match a layout we understand goes to the real protobuf parser, so the result is exactly
what ``event_pb2.Event`` would give. Payload CRCs are checked for every record that is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._crc32c import crc32c, crc32c_free, mask, masked_crc32c

__all__ = ["Decoded", "decode"]

# TensorProto dtype enum -> numpy dtype, for scalars stored as fixed-width bytes.
_CONTENT_DTYPES = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}
_MAX_ROW_BYTES = 1 << 24  # rows gathered per block: bounds the temporary copy
_MAX_VECTOR_LEN = 2048  # longer records (images, histograms) go one by one


@dataclass
class Decoded:
    """Points decoded from one batch of records, plus what the reader must know about it."""

    records: int = 0  # records in the batch
    rec: list[np.ndarray] = field(default_factory=list)  # record index of each point
    tags: list[list[str]] = field(default_factory=list)  # per part: tag of each code
    codes: list[np.ndarray] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    times: list[np.ndarray] = field(default_factory=list)
    tensor: list[bool] = field(default_factory=list)  # part needs the tag's plugin to be scalars
    metadata: list[tuple[int, str, str]] = field(default_factory=list)  # (record, tag, plugin)
    bad_crc: list[int] = field(default_factory=list)  # record indices
    undecodable: list[int] = field(default_factory=list)
    restarts: list[tuple[int, int]] = field(default_factory=list)  # (record, step)

    def add(
        self,
        rec: np.ndarray,
        tags: list[str],
        codes: np.ndarray,
        steps: np.ndarray,
        values: np.ndarray,
        times: np.ndarray,
        tensor: bool,
    ) -> None:
        self.rec.append(rec)
        self.tags.append(tags)
        self.codes.append(codes)
        self.steps.append(steps)
        self.values.append(values)
        self.times.append(times)
        self.tensor.append(tensor)


# ---------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class _Layout:
    fixed: np.ndarray  # column indices whose bytes must equal ``expect``
    expect: np.ndarray
    free: np.ndarray  # the other columns: the data, which differs between records
    wall_time: int
    step: tuple[int, int] | None
    tag: tuple[int, int]
    value: int
    value_end: int
    dtype: np.dtype
    varint: bool  # the value is a varint (int_val, int64_val, half_val) read as ``dtype``
    tensor: bool
    plugin: str | None  # plugin named by metadata carried in every record of this layout
    # What a row must hold to have this layout, as one masked compare: per 8-byte word of a
    # row padded to ``(length + 4 + 7) & ~7`` bytes (``used``: the words with a mask), and
    # over the payload as one integer, to test a single row.
    word_mask: np.ndarray
    word_want: np.ndarray
    used: np.ndarray
    row_mask: int
    row_want: int
    crc_base: int  # CRC32C of a payload with zeros in the ``free`` columns
    tag_free: np.ndarray  # where the tag's columns are in ``free``


def _varint(row: bytes, p: int, end: int) -> tuple[int, int] | None:
    result = shift = 0
    while p < end and shift < 70:
        b = row[p]
        result |= (b & 0x7F) << shift
        p += 1
        if not b & 0x80:
            return result, p
        shift += 7
    return None


def _submessage(row: bytes, p: int, end: int) -> tuple[int, int] | None:
    """``(start, end)`` of a length-delimited field whose length varint starts at ``p``."""
    got = _varint(row, p, end)
    if got is None:
        return None
    n, start = got
    if start + n > end:
        return None
    return start, start + n


def _layout(row: bytes) -> _Layout | None:
    """The layout of a one-value scalar event, or None for anything else."""
    n = len(row)
    p = 0
    wall_time = -1
    step: tuple[int, int] | None = None
    summary: tuple[int, int] | None = None
    while p < n:
        key = row[p]
        if key == 0x09 and wall_time < 0 and p + 9 <= n:
            wall_time = p + 1
            p += 9
        elif key == 0x10 and step is None:
            got = _varint(row, p + 1, n)
            if got is None:
                return None
            step = (p + 1, got[1])
            p = got[1]
        elif key == 0x2A and summary is None:
            summary = _submessage(row, p + 1, n)
            if summary is None:
                return None
            p = summary[1]
        else:
            return None
    if wall_time < 0 or summary is None or summary[0] >= summary[1]:
        return None
    s0, s1 = summary
    if row[s0] != 0x0A:
        return None
    value = _submessage(row, s0 + 1, s1)
    if value is None or value[1] != s1:
        return None  # several values in one summary: the protobuf parser handles it
    v0, v1 = value
    if v0 >= v1 or row[v0] != 0x0A:
        return None
    tag = _submessage(row, v0 + 1, v1)
    if tag is None:
        return None
    p = tag[1]
    data = data_end = -1
    varint = False
    dtype: np.dtype | None = None
    tensor = False
    plugin: str | None = None
    while p < v1:
        key = row[p]
        if key == 0x15 and data < 0 and p + 5 <= v1:  # simple_value
            data, data_end, dtype, varint = p + 1, p + 5, np.dtype("<f4"), False
            p += 5
        elif key == 0x42 and data < 0:  # tensor
            span = _submessage(row, p + 1, v1)
            if span is None:
                return None
            got = _scalar_tensor(row, *span)
            if got is None:
                return None
            data, data_end, dtype, varint = got
            tensor = True
            p = span[1]
        elif key == 0x4A and plugin is None:  # metadata, the same bytes in every record
            span = _submessage(row, p + 1, v1)
            if span is None:
                return None
            plugin = _plugin_name(row[span[0] : span[1]])
            if plugin is None:
                return None
            p = span[1]
        else:
            return None
    if data < 0 or dtype is None:
        return None
    free = np.zeros(n, dtype=bool)
    free[wall_time : wall_time + 8] = True
    if step is not None:
        free[step[0] : step[1]] = True
    free[tag[0] : tag[1]] = True
    free[data:data_end] = True
    fixed = np.flatnonzero(~free)
    expect = np.frombuffer(row, dtype=np.uint8)[fixed].copy()
    # Every layout byte, and the varints' continuation bits (set on all but the last byte).
    width = (n + 4 + 7) & ~7
    byte_mask = np.zeros(width, dtype=np.uint8)
    byte_want = np.zeros(width, dtype=np.uint8)
    byte_mask[fixed] = 0xFF
    byte_want[fixed] = expect
    varints = [step] if step is not None else []
    if varint:
        varints.append((data, data_end))
    for a, b in varints:
        byte_mask[a:b] = 0x80
        byte_want[a : b - 1] = 0x80
    word_mask = byte_mask.view("<u8")
    used = np.flatnonzero(word_mask)
    free_cols = np.flatnonzero(free)
    return _Layout(
        fixed,
        expect,
        free_cols,
        wall_time,
        step,
        tag,
        data,
        data_end,
        dtype,
        varint,
        tensor,
        plugin,
        word_mask[used],
        byte_want.view("<u8")[used],
        used,
        int.from_bytes(byte_mask[:n].tobytes(), "little"),
        int.from_bytes(byte_want[:n].tobytes(), "little"),
        crc32c(bytes(np.where(free, 0, np.frombuffer(row, dtype=np.uint8)).astype(np.uint8))),
        np.flatnonzero((free_cols >= tag[0]) & (free_cols < tag[1])),
    )


# Layouts seen lately, by record length. The runs of a sweep share their writer and tags, so
# a file's layouts were mostly met in the files read before it. A row matching a layout's
# bytes and continuation bits is parsed into that very layout (the parse reads nothing else),
# so a cached layout is exactly what parsing the row would give.
_LAYOUTS: dict[int, list[_Layout]] = {}
_CACHED_PER_LENGTH = 8
_CACHED_LENGTHS = 512


def _known_layout(row: bytes) -> _Layout | None:
    """``_layout(row)``, taken from the layouts seen lately when one matches."""
    cached = _LAYOUTS.get(len(row))
    if cached:
        value = int.from_bytes(row, "little")
        for layout in cached:
            if value & layout.row_mask == layout.row_want:
                return layout
    layout = _layout(row)
    if layout is not None:
        if cached is None:
            if len(_LAYOUTS) >= _CACHED_LENGTHS:
                _LAYOUTS.clear()
            cached = _LAYOUTS.setdefault(len(row), [])
        cached.insert(0, layout)
        del cached[_CACHED_PER_LENGTH:]
    return layout


# Packed repeated varint fields of TensorProto and the dtypes they may hold.
_VARINT_FIELDS = {
    0x3A: {3: "<i4", 5: "<i2", 6: "i1", 4: "u1", 17: "<u2"},  # int_val
    0x52: {9: "<i8"},  # int64_val
    0x6A: {19: "<f2"},  # half_val: the float16 bits
}


def _scalar_tensor(row: bytes, t0: int, t1: int) -> tuple[int, int, np.dtype, bool] | None:
    """Where a rank-0 tensor keeps its one value: ``(start, end, dtype, is_varint)``."""
    p = t0
    dtype_enum = -1
    data = data_end = -1
    field = -1
    while p < t1:
        key = row[p]
        if key == 0x08 and dtype_enum < 0 and p + 2 <= t1 and row[p + 1] < 0x80:
            dtype_enum = row[p + 1]
            p += 2
        elif key == 0x12 and p + 2 <= t1 and row[p + 1] == 0:  # empty shape: rank 0
            p += 2
        elif data < 0 and p + 2 <= t1 and row[p + 1] < 0x80 and p + 2 + row[p + 1] <= t1:
            field, data, data_end = key, p + 2, p + 2 + row[p + 1]
            p = data_end
        else:
            return None
    if data < 0 or dtype_enum < 0:
        return None
    if field in _VARINT_FIELDS:
        name = _VARINT_FIELDS[field].get(dtype_enum)
        got = _varint(row, data, data_end)
        if name is None or got is None or got[1] != data_end:
            return None  # not exactly one varint of a matching dtype
        return data, data_end, np.dtype(name), True
    # float_val / double_val must agree with the dtype; tensor_content is read in the dtype.
    dtype = _CONTENT_DTYPES.get(dtype_enum)
    fixed_fields = {0x2A: np.dtype("<f4"), 0x32: np.dtype("<f8")}
    if dtype is None or data_end - data != dtype.itemsize:
        return None
    if field != 0x22 and fixed_fields.get(field) != dtype:
        return None
    return data, data_end, dtype, False


def _plugin_name(metadata: bytes) -> str | None:
    from tensorboard.compat.proto.summary_pb2 import SummaryMetadata

    try:
        return SummaryMetadata.FromString(metadata).plugin_data.plugin_name
    except Exception:  # any decode problem means "not this layout"
        return None


# ---------------------------------------------------------------------------- batch decode
def decode(buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> Decoded:
    """Decode the records at ``offsets``/``lengths`` (payloads in ``buf``)."""
    n = len(offsets)
    out = Decoded(records=n)
    if n == 0:
        return out
    fallback: list[np.ndarray] = []
    # Group records by length; small lengths sort with numpy's radix sort.
    keys = lengths.astype(np.int16) if lengths.max() < (1 << 15) else lengths
    order = np.argsort(keys, kind="stable")
    cuts = np.flatnonzero(np.diff(keys[order])) + 1
    for idx in np.split(order, cuts):
        length = int(lengths[idx[0]])
        if length == 0 or length > _MAX_VECTOR_LEN:
            fallback.append(idx)
            continue
        # Element i of this view is the W bytes from byte i: the payload, its stored CRC and
        # padding to a multiple of 8 bytes, so that rows can be compared word by word.
        width = (length + 4 + 7) & ~7
        if len(buf) < width:
            fallback.append(idx)
            continue
        records = np.ndarray((len(buf) - width + 1,), dtype=f"V{width}", buffer=buf, strides=(1,))
        last = len(buf) - width
        block = max(1, _MAX_ROW_BYTES // width)
        for b0 in range(0, len(idx), block):
            part = idx[b0 : b0 + block]
            offs = offsets[part]
            if offs[-1] > last:  # the padding would run past the buffer: a few end records
                cut = int(np.searchsorted(offs, last, side="right"))
                fallback.append(part[cut:])
                part, offs = part[:cut], offs[:cut]
                if not len(part):
                    continue
            rows = records[offs].view(np.uint8).reshape(len(part), width)
            rest = _decode_rows(rows, length, part, out)
            if len(rest):
                fallback.append(rest)
    if fallback:
        _decode_slow(buf, offsets, lengths, np.sort(np.concatenate(fallback)), out)
    return out


def _decode_rows(rows: np.ndarray, length: int, rec: np.ndarray, out: Decoded) -> np.ndarray:
    """Decode rows (payload, stored CRC, padding) that match known layouts.

    Returns the record indices left for the protobuf parser.
    """
    words = rows.view("<u8")
    remaining: np.ndarray | None = None  # None: every row
    slow: list[int] = []
    # Each layout tried costs a pass over the remaining rows; a row without one costs a parse
    # of that row only. Both are bounded; whatever is left goes to the protobuf parser.
    layouts = misses = 0
    while layouts < 32 and misses < 256:
        count = len(rows) if remaining is None else len(remaining)
        if not count:
            break
        first = 0 if remaining is None else int(remaining[0])
        layout = _known_layout(rows[first, :length].tobytes())
        if layout is None:
            misses += 1
            slow.append(first)
            remaining = (np.arange(len(rows)) if remaining is None else remaining)[1:]
            continue
        layouts += 1
        # One masked compare per 8-byte word checks every layout byte of every row.
        used = layout.used
        sub = words if remaining is None else words[remaining]
        match = ((sub[:, used] & layout.word_mask) == layout.word_want).all(axis=1)
        if remaining is None:
            if match.all():
                hit, hit_rec = rows, rec
            else:
                hit, hit_rec = rows[match], rec[match]
            remaining = np.flatnonzero(~match)
        else:
            hit, hit_rec = rows[remaining[match]], rec[remaining[match]]
            remaining = remaining[~match]
        if not len(hit):
            continue
        # Same layout, so the layout bytes add one known constant to every CRC, and so do
        # the data bytes equal in every row: only the others cost a lookup per row.
        crc, same = crc32c_free(hit[:, layout.free], layout.free, length, layout.crc_base)
        stored = np.ascontiguousarray(hit[:, length : length + 4]).view("<u4").ravel()
        ok = mask(crc) == stored
        if not ok.all():
            out.bad_crc.extend(hit_rec[~ok].tolist())
            hit, hit_rec = hit[ok], hit_rec[ok]
        _extract(hit, hit_rec, layout, out, one_tag=bool(same[layout.tag_free].all()))
    rest = np.asarray(slow, dtype=np.int64)
    if remaining is None:
        remaining = np.arange(len(rows))
    rest = np.concatenate([rest, remaining])
    return np.sort(rec[rest])


_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)


def _varints(rows: np.ndarray, a: int, b: int) -> np.ndarray:
    """The varints in columns ``a:b`` of every row (same width in every row), as uint64.

    The rows matched a layout, so each varint's last byte has its continuation bit clear.
    """
    if b - a == 1:
        return rows[:, a].astype(np.uint64)
    if b - a <= 4 and len(rows) <= 4096:  # few rows: fewer calls beat a column loop
        parts = (rows[:, a:b] & 0x7F).astype(np.uint64) << _SHIFTS[: b - a]
        return np.bitwise_or.reduce(parts, axis=1)
    acc = np.zeros(len(rows), dtype=np.uint64)
    for k, col in enumerate(range(a, b)):
        acc |= (rows[:, col] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    return acc


def _extract(
    rows: np.ndarray, rec: np.ndarray, layout: _Layout, out: Decoded, *, one_tag: bool
) -> None:
    """Append the points of ``rows`` (``one_tag``: their tag bytes are known to be equal)."""
    if not len(rows):
        return
    w = layout.wall_time
    times = np.ascontiguousarray(rows[:, w : w + 8]).view("<f8").ravel()
    if layout.step is None:
        steps = np.zeros(len(rows), dtype=np.int64)
    else:
        steps = _varints(rows, *layout.step).view(np.int64)
    v, v_end = layout.value, layout.value_end
    if not layout.varint:
        raw = np.ascontiguousarray(rows[:, v:v_end]).view(layout.dtype).ravel()
    elif layout.dtype.kind == "f":  # half_val holds the float16 bits
        raw = _varints(rows, v, v_end).astype(np.uint16).view(layout.dtype)
    else:  # int_val / int64_val: two's complement, then the tensor's own width
        raw = _varints(rows, v, v_end).view(np.int64).astype(layout.dtype)
    values = raw.astype(np.float64)
    t0, t1 = layout.tag
    tag_cols = rows[:, t0:t1]
    if one_tag or t1 == t0 or (tag_cols == tag_cols[0]).all():
        names = [tag_cols[0].tobytes()]
        codes = np.zeros(len(rows), dtype=np.int32)
    else:
        keys = np.ascontiguousarray(tag_cols).view(f"V{t1 - t0}").ravel()
        uniq, codes = np.unique(keys, return_inverse=True)
        codes = codes.astype(np.int32).ravel()
        names = [u.tobytes() for u in uniq]
    tags = []
    for raw in names:
        try:
            tags.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            tags.append(raw.decode("utf-8", "replace"))
    if layout.plugin is not None:
        _, first = np.unique(codes, return_index=True)
        for code, i in enumerate(first.tolist()):
            out.metadata.append((int(rec[i]), tags[code], layout.plugin))
    out.add(rec, tags, codes, steps, values, times, layout.tensor)


def _decode_slow(
    buf: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    recs: np.ndarray,
    out: Decoded,
) -> None:
    """The exact path: the real protobuf parser, one record at a time."""
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    rec_out: list[int] = []
    tag_out: list[str] = []
    step_out: list[int] = []
    value_out: list[float] = []
    time_out: list[float] = []
    tensor_out: list[bool] = []
    for r in recs.tolist():
        off, length = int(offsets[r]), int(lengths[r])
        payload = buf[off : off + length].tobytes()
        stored = int.from_bytes(buf[off + length : off + length + 4].tobytes(), "little")
        try:
            event = Event.FromString(payload)
        except Exception:  # protobuf raises its own DecodeError types
            if masked_crc32c(payload) != stored:
                out.bad_crc.append(r)
            else:
                out.undecodable.append(r)
            continue
        # Checked before deciding what to keep: a flipped bit in a field number can turn a
        # scalar into a record that would be skipped, and its point would vanish unnoticed.
        if masked_crc32c(payload) != stored:
            out.bad_crc.append(r)
            continue
        kind = event.WhichOneof("what")
        wanted = []
        if kind == "summary":
            for value in event.summary.value:
                which = value.WhichOneof("value")
                has_meta = value.HasField("metadata")
                if which in ("simple_value", "tensor") or has_meta:
                    wanted.append((value, which, has_meta))
        elif kind == "session_log" and event.session_log.status == SessionLog.START:
            wanted.append((None, "restart", False))
        if not wanted:
            continue  # file version, graphs, images …: nothing to keep
        for value, which, has_meta in wanted:
            if which == "restart":
                out.restarts.append((r, int(event.step)))
                continue
            if has_meta:
                out.metadata.append((r, value.tag, value.metadata.plugin_data.plugin_name))
            if which == "simple_value":
                number = float(value.simple_value)
                tensor = False
            elif which == "tensor":
                number = _tensor_scalar(value.tensor)
                if number is None:
                    continue
                tensor = True
            else:
                continue
            rec_out.append(r)
            tag_out.append(value.tag)
            step_out.append(int(event.step))
            value_out.append(number)
            time_out.append(float(event.wall_time))
            tensor_out.append(tensor)
    if not rec_out:
        return
    flags = np.asarray(tensor_out)
    for want_tensor in (False, True):
        sel = np.flatnonzero(flags == want_tensor)
        if not len(sel):
            continue
        names: dict[str, int] = {}
        codes = np.empty(len(sel), dtype=np.int32)
        for i, j in enumerate(sel.tolist()):
            codes[i] = names.setdefault(tag_out[j], len(names))
        out.add(
            np.asarray(rec_out, dtype=np.int64)[sel],
            list(names),
            codes,
            np.asarray(step_out, dtype=np.int64)[sel],
            np.asarray(value_out, dtype=np.float64)[sel],
            np.asarray(time_out, dtype=np.float64)[sel],
            want_tensor,
        )


def _tensor_scalar(tensor: object) -> float | None:
    """The value of a one-element numeric tensor, or None (strings, bigger tensors …)."""
    from tensorboard.util import tensor_util

    try:
        array = tensor_util.make_ndarray(tensor)
    except Exception:  # unsupported dtypes or malformed content
        return None
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(()))
