"""The bulk SwanLab path (framing and scalar columns with numpy) against the exact path.

Files are written with SwanLab's own ``DataStoreWriter`` and protobuf classes. The exact path
is the sequential LevelDB reader and one protobuf parse per record; the bulk path must give the
same points, warnings and status on any file, damaged or cut, read whole or as it grows.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmup_monitor.errors import FormatError
from warmup_monitor.readers import _leveldb_frames, _leveldb_log, _swanlab_records
from warmup_monitor.readers import swanlab as reader
from warmup_monitor.readers._swanlab_columns import ScalarColumns

store = pytest.importorskip("swanlab.sdk.internal.core_python.store")
record_pb2 = pytest.importorskip("swanlab.proto.swanlab.record.v1.record_pb2")
data_pb2 = pytest.importorskip("swanlab.proto.swanlab.metric.data.v1.data_pb2")
run_pb2 = pytest.importorskip("swanlab.proto.swanlab.run.v1.run_pb2")
terminal_pb2 = pytest.importorskip("swanlab.proto.swanlab.terminal.v1.log_pb2")

KEYS = ["train/loss", "train/lr", "eval/loss", "__swanlab__.cpu", "k" * 40, "é/ü"]
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1.0]),
)


@st.composite
def records(draw: st.DrawFn) -> list[bytes]:
    out = [
        record_pb2.Record(
            num=-1, start=run_pb2.StartRecord(project="p", name="bulk", id="abc")
        ).SerializeToString()
    ]
    for num in range(draw(st.integers(0, 400))):
        kind = draw(st.sampled_from(["scalar"] * 8 + ["log", "long", "bare"]))
        rec = record_pb2.Record(num=draw(st.sampled_from([num, num * 1000, 0])))
        if draw(st.booleans()):
            rec.timestamp.seconds = draw(st.sampled_from([0, 1_765_000_000]))
            rec.timestamp.nanos = draw(st.integers(0, 999_999_999))
        if kind == "log":
            rec.log.CopyFrom(terminal_pb2.LogRecord(line="epoch done"))
        elif kind == "bare":
            pass  # a record with no oneof member
        else:
            key = "x" * 40_000 if kind == "long" else draw(st.sampled_from(KEYS))
            scalar = data_pb2.ScalarRecord(key=key, step=draw(st.integers(0, 2**40)))
            value = draw(VALUES)
            if value != 0.0 or math.copysign(1.0, value) < 0:
                scalar.value.number = value
            elif draw(st.booleans()):
                scalar.value.SetInParent()  # an empty value message: 0.0
            if draw(st.booleans()):
                scalar.timestamp.seconds = draw(st.sampled_from([0, 1_765_000_001]))
                scalar.timestamp.nanos = draw(st.integers(0, 999_999_999))
            rec.scalar.CopyFrom(scalar)
        out.append(rec.SerializeToString())
    if draw(st.booleans()):
        out.append(
            record_pb2.Record(num=-2, finish=run_pb2.FinishRecord(state=1)).SerializeToString()
        )
    return out


def _file(recs: list[bytes], folder: Path) -> bytes:
    path = folder / "run-abc.swanlab"
    writer = store.DataStoreWriter()
    writer.open(path)
    for rec in recs:
        writer.write(rec)
    writer.close()
    return path.read_bytes()


def _exact_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every record through the sequential framing and one protobuf parse each."""
    monkeypatch.setattr(_leveldb_log, "frame", lambda *args: None)

    def nothing(buf, offsets, lengths, *rest):  # type: ignore[no-untyped-def]
        return ScalarColumns.empty(len(offsets))

    monkeypatch.setattr(_swanlab_records, "decode_columns", nothing)


def _read(data: bytes, cuts: list[int]) -> object:
    """Everything the reader says about ``data`` polled at each cut, or the error."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run-abc.swanlab"
        path.write_bytes(b"")
        try:
            src = reader.open_source(path)
            out: list[object] = []
            for cut in [*cuts, len(data)]:
                path.write_bytes(data[:cut])
                p = src.poll()
                out.append(
                    (
                        p.tags,
                        p.tag_codes.tolist(),
                        p.steps.tolist(),
                        p.values.tobytes(),
                        p.wall_times.tobytes(),
                    )
                )
        except FormatError as err:
            return str(err)
        return out, list(src.warnings), src.status, src.display_name


@settings(
    max_examples=int(os.environ.get("BULK_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    recs=records(),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=2),
    cuts=st.lists(st.integers(0, 10**6), max_size=3),
)
def test_bulk_path_equals_the_exact_path(
    recs: list[bytes], flips: list[tuple[int, int]], cuts: list[int]
) -> None:
    """Same points, order, warnings and status, whole or grown piece by piece, damaged or not."""
    with tempfile.TemporaryDirectory() as tmp:
        data = bytearray(_file(recs, Path(tmp)))
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    sizes = sorted(c % (len(data) + 1) for c in cuts)
    bulk = _read(bytes(data), sizes)
    with pytest.MonkeyPatch.context() as mp:
        # Checksums of every chunk length by byte pairs (the path of big files), the longer
        # chunks by numpy byte columns, none by zlib one at a time.
        mp.setattr(_leveldb_frames, "_PAIRS_MIN_ROWS", 1)
        mp.setattr(_leveldb_frames, "_ZLIB_MAX_ROWS", 0)
        pairs = _read(bytes(data), sizes)
    with pytest.MonkeyPatch.context() as mp:
        _exact_only(mp)
        exact = _read(bytes(data), sizes)
    assert bulk == exact
    assert pairs == exact
