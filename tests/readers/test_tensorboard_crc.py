"""The vectorised CRC32C and framing helpers agree with TensorBoard's reference code."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as reference_crc
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (
    masked_crc32c as reference_masked,
)
from tensorboard.summary.writer.record_writer import RecordWriter

from warmup_monitor.readers._crc32c import crc32c, crc32c_rows, masked_crc32c
from warmup_monitor.readers._tfrecord import frame


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=3000))
def test_crc32c_matches_reference(data: bytes) -> None:
    """Short (byte loop) and long (row-parallel) messages give the reference CRC."""
    assert crc32c(data) == reference_crc(data)
    assert masked_crc32c(data) == reference_masked(data)


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
    framing = frame(buf, 0, len(buf))
    assert framing.lengths.tolist() == sizes
    starts = np.cumsum([0] + [n + 16 for n in sizes[:-1]]) + 12
    assert framing.offsets.tolist() == starts.tolist()
    assert framing.stop == len(buf)
