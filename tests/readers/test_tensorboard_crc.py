"""The vectorised CRC32C and framing helpers agree with TensorBoard's reference code."""

from __future__ import annotations

import io
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as reference_crc
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (
    masked_crc32c as reference_masked,
)
from tensorboard.summary.writer.record_writer import RecordWriter

from warmup_monitor.readers import _tfrecord
from warmup_monitor.readers._crc32c import crc32c, crc32c_rows, masked_crc32c, masked_crc32c_u64
from warmup_monitor.readers._tfrecord import frame


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=3000))
def test_crc32c_matches_reference(data: bytes) -> None:
    """Short (byte loop) and long (row-parallel) messages give the reference CRC."""
    assert crc32c(data) == reference_crc(data)
    assert masked_crc32c(data) == reference_masked(data)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 2**16 + 5), max_size=20))
def test_length_checksums_match_reference(lengths: list[int]) -> None:
    """The checksum of a record's 8 length bytes, short lengths (a table) and long ones alike."""
    got = masked_crc32c_u64(np.array(lengths, dtype=np.uint64)).tolist()
    assert got == [reference_masked(struct.pack("<Q", n)) for n in lengths]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 40),
    width=st.integers(1, 70),
    pad=st.integers(0, 9),
    constant=st.sets(st.integers(0, 69), max_size=40),
    seed=st.integers(0, 2**32 - 1),
)
def test_crc32c_rows_matches_reference(
    rows: int, width: int, pad: int, constant: set[int], seed: int
) -> None:
    """Row CRCs are right whatever mix of constant and varying columns the rows have."""
    rng = np.random.default_rng(seed)
    total = width + pad
    total += (-total) % 8 if pad % 2 else 0  # both the word-wise and the byte-wise paths
    data = rng.integers(0, 256, size=(rows, total), dtype=np.uint8)
    for c in constant:
        if c < total:
            data[:, c] = data[0, c]
    got = crc32c_rows(np.ascontiguousarray(data), width).tolist()
    assert got == [reference_crc(bytes(r[:width])) for r in data]


@given(
    st.lists(
        st.sampled_from([b"", b"a" * 7, b"b" * 30, b"c" * 31]) | st.binary(max_size=60), max_size=60
    ),
    st.integers(0, 3),
)
def test_frame_finds_every_record(payloads: list[bytes], cut: int) -> None:
    """Framing (TensorBoard's own RecordWriter) returns each complete record, not a cut one."""
    out = io.BytesIO()
    writer = RecordWriter(out)
    for p in payloads:
        writer.write(p)
    blob = out.getvalue()
    end = len(blob) - cut
    buf = np.frombuffer(blob, dtype=np.uint8)
    framing = frame(buf, 0, end)
    got = [blob[o : o + n] for o, n in zip(framing.offsets, framing.lengths, strict=True)]
    keep = len(payloads) - (1 if cut and payloads else 0)
    assert got == payloads[:keep]
    assert framing.error is None


@settings(max_examples=40, deadline=None)
@given(
    pattern=st.lists(st.integers(0, 40), min_size=1, max_size=6),
    repeats=st.integers(1, 3000),
    breaks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 90)), max_size=4),
)
def test_frame_predicts_repeating_sizes(
    pattern: list[int], repeats: int, breaks: list[tuple[int, int]]
) -> None:
    """Long runs of repeating record sizes, broken here and there, frame exactly."""
    sizes = pattern * repeats
    for where, size in breaks:
        sizes.insert(where % (len(sizes) + 1), size)
    payloads = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    out = io.BytesIO()
    writer = RecordWriter(out)
    for p in payloads:
        writer.write(p)
    buf = np.frombuffer(out.getvalue(), dtype=np.uint8)
    starts = np.cumsum([0] + [n + 16 for n in sizes[:-1]]) + 12
    # Small buffers are framed in one pass; the predicting walk frames big ones.
    for framing in (frame(buf, 0, len(buf)), _tfrecord._frame_walk(buf, 0, len(buf))):
        assert framing.lengths.tolist() == sizes
        assert framing.offsets.tolist() == starts.tolist()
        assert framing.stop == len(buf)


def _records(payloads: list[bytes]) -> bytes:
    out = io.BytesIO()
    writer = RecordWriter(out)
    for p in payloads:
        writer.write(p)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(
        st.binary(max_size=40) | st.sampled_from([b"x" * 9, b"\0" * 20]), max_size=30
    ),
    nested=st.integers(0, 30),
    damage=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 20),
    start=st.integers(0, 40),
)
def test_one_pass_framing_matches_the_walk(
    payloads: list[bytes], nested: int, damage: list[tuple[int, int]], cut: int, start: int
) -> None:
    """Framing a small window in one pass finds the walk's chain, stop and error exactly,
    whatever the damage, or leaves the window to the walk (a record inside a payload)."""
    if payloads:  # a payload that is itself a record file: valid-looking headers inside
        at = nested % len(payloads)
        payloads[at] = _records(payloads[: at % 4 + 1])
    blob = bytearray(_records(payloads))
    for where, byte in damage:
        if blob:
            blob[where % len(blob)] = byte
    buf = np.frombuffer(bytes(blob), dtype=np.uint8)
    end = max(0, len(buf) - cut)
    start = min(start, end)
    walk = _tfrecord._frame_walk(buf, start, end)
    whole = _tfrecord._frame_whole(buf, start, end)
    if whole is None:
        return
    assert whole.offsets.tolist() == walk.offsets.tolist()
    assert whole.lengths.tolist() == walk.lengths.tolist()
    assert (whole.stop, whole.error) == (walk.stop, walk.error)
    assert whole.offsets.dtype == walk.offsets.dtype == np.int64
