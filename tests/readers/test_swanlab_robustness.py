"""The SwanLab reader on damaged, odd and random files.

Files here are written with SwanLab's own ``DataStoreWriter`` and protobuf classes (the code
``swanlab.log`` ends in), so the framing is SwanLab's, while the record sequence can hold what
the public API never writes: system metrics, repeated steps, records past the finish record.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmup_monitor.errors import FormatError
from warmup_monitor.points import Points
from warmup_monitor.readers import swanlab as reader

store = pytest.importorskip("swanlab.sdk.internal.core_python.store")
record_pb2 = pytest.importorskip("swanlab.proto.swanlab.record.v1.record_pb2")
data_pb2 = pytest.importorskip("swanlab.proto.swanlab.metric.data.v1.data_pb2")
run_pb2 = pytest.importorskip("swanlab.proto.swanlab.run.v1.run_pb2")

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "swanlab_old"


def _scalar(num: int, key: str, step: int, value: float) -> bytes:
    rec = record_pb2.Record(
        num=num,
        scalar=data_pb2.ScalarRecord(key=key, step=step, value=data_pb2.ScalarValue(number=value)),
    )
    return rec.SerializeToString()


def _start(name: str) -> bytes:
    return record_pb2.Record(
        num=-1, start=run_pb2.StartRecord(project="p", name=name, id="abc")
    ).SerializeToString()


def _finish(state: int = 1, error: str = "") -> bytes:
    return record_pb2.Record(
        num=-2, finish=run_pb2.FinishRecord(state=state, error=error)
    ).SerializeToString()


def _write(path: Path, records: list[bytes]) -> Path:
    writer = store.DataStoreWriter()
    writer.open(path)
    for rec in records:
        writer.write(rec)
    writer.close()
    return path


def _base_records() -> list[bytes]:
    recs = [_start("fuzz")]
    for step in range(300):
        recs.append(_scalar(step + 1, "train/loss", step, 1.0 / (step + 1)))
    # A record longer than two blocks: first, middle and last pieces.
    recs.append(_scalar(999, "train/" + "k" * 70000, 0, 1.0))
    recs.append(_finish())
    return recs


@pytest.fixture(scope="module")
def base_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A SwanLab record file spanning several blocks, as bytes."""
    path = tmp_path_factory.mktemp("base") / "run-abc.swanlab"
    return _write(path, _base_records()).read_bytes()


def test_system_metrics_are_skipped(tmp_path: Path) -> None:
    """Keys under SwanLab's __swanlab__. prefix (hardware monitor) are not training metrics."""
    path = _write(
        tmp_path / "run-abc.swanlab",
        [
            _start("sys"),
            _scalar(1, "__swanlab__.cpu.pct", 0, 40.0),
            _scalar(2, "train/loss", 0, 1.0),
            _finish(),
        ],
    )
    points = reader.open_source(path).poll()
    assert points.tags == ("train/loss",)
    assert len(points) == 1


def test_repeated_step_keeps_first_value_with_a_warning(tmp_path: Path) -> None:
    """A (key, step) written twice keeps the first value, as SwanLab shows it, and says so."""
    path = tmp_path / "run-abc.swanlab"
    _write(
        path,
        [_scalar(1, "train/loss", 3, 1.0), _scalar(2, "train/loss", 3, 2.0), _finish()],
    )
    src = reader.open_source(path)
    points = src.poll()
    assert points.values.tolist() == [1.0]
    assert any("train/loss at step 3" in w and "first value" in w for w in src.warnings)


def test_repeat_across_polls_is_dropped_too(tmp_path: Path) -> None:
    """A repeat arriving in a later poll is dropped as well."""
    path = tmp_path / "run-abc.swanlab"
    first = _scalar(1, "train/loss", 3, 1.0)
    _write(path, [first])
    src = reader.open_source(path)
    assert src.poll().values.tolist() == [1.0]
    _write(path.with_name("tmp.swanlab"), [first, _scalar(2, "train/loss", 3, 2.0)])
    path.write_bytes(path.with_name("tmp.swanlab").read_bytes())
    assert len(src.poll()) == 0


def test_records_after_the_finish_record_are_ignored(tmp_path: Path) -> None:
    """The finish record ends the run; later bytes are not read."""
    path = _write(
        tmp_path / "run-abc.swanlab",
        [_scalar(1, "a", 0, 1.0), _finish(2, "boom"), _scalar(2, "a", 1, 2.0)],
    )
    src = reader.open_source(path)
    assert src.poll().steps.tolist() == [0]
    assert src.status == "crashed"
    assert "run crashed: boom" in src.warnings


def test_record_spanning_three_blocks_waits_for_its_last_piece(
    base_file: bytes, tmp_path: Path
) -> None:
    """A record split in first/middle/last pieces appears only once its last piece is on disk."""
    path = tmp_path / "run-abc.swanlab"
    path.write_bytes(b"")
    src = reader.open_source(path)
    seen = 0
    long_key_seen_at = None
    for size in [*range(0, len(base_file), 4093), len(base_file)]:
        path.write_bytes(base_file[:size])
        points = src.poll()
        seen += len(points)
        if any(len(t) > 1000 for t in points.tags):
            long_key_seen_at = size
    assert seen == 301
    # The long record ends just before the finish record, in the last block.
    assert long_key_seen_at is not None and long_key_seen_at > 2 * 32768
    assert src.status == "finished"


def test_truncated_run_keeps_whole_records_only(base_file: bytes, tmp_path: Path) -> None:
    """A file cut anywhere yields a prefix of the points, never a damaged value."""
    path = tmp_path / "run-abc.swanlab"
    for cut in (7, 8, 20, 1000, 32768, 32770, 50000):
        path.write_bytes(base_file[:cut])
        points = reader.open_source(path).poll()
        n = len(points)
        assert points.steps.tolist() == list(range(n))
        assert points.values.tolist() == [1.0 / (s + 1) for s in range(n)]


_HEADERS = st.sampled_from([b"", b":SWL\xd6\xe1\x02", b":SWL\xd6\xe1\x00", b":SWL\xd6\xe1\x01"])


@settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(header=_HEADERS, body=st.binary(max_size=3000))
def test_random_bytes_raise_only_format_error(header: bytes, body: bytes) -> None:
    """Random bytes (with or without a valid header) never raise anything but FormatError."""
    _poll_twice(header + body)


@settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=8),
    cut=st.integers(0, 10**6),
    insert_at=st.integers(0, 10**6),
    insert=st.binary(max_size=40),
    old=st.booleans(),
)
def test_mutated_real_files_raise_only_format_error(
    base_file: bytes,
    flips: list[tuple[int, int]],
    cut: int,
    insert_at: int,
    insert: bytes,
    old: bool,
) -> None:
    """Flipped, inserted and cut bytes: FormatError, or points that were in the original file.

    Every chunk carries a CRC-32, so damage can lose records but never invent or alter one.
    """
    original = _old_file() if old else base_file
    data = bytearray(original)
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    at = insert_at % (len(data) + 1)
    data[at:at] = insert
    rows = _poll_twice(bytes(data[: cut % (len(data) + 1)]))
    if rows is not None:
        assert set(rows) <= set(_poll_twice(original) or [])


_OLD: list[bytes] = []


def _old_file() -> bytes:
    if not _OLD:
        _OLD.append(next(FIXTURES.glob("v0_6/swanlog/run-*/backup.swanlab")).read_bytes())
    return _OLD[0]


def _poll_twice(data: bytes) -> list[tuple[str, int, bytes]] | None:
    """(tag, step, value bytes) polled twice from a file holding ``data``; None on FormatError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run-abc.swanlab"
        path.write_bytes(data)
        try:
            src = reader.open_source(path)
            parts = [src.poll(), src.poll()]
        except FormatError:
            return None
        assert src.status in ("running", "finished", "crashed", "aborted", "unknown")
        assert all(isinstance(w, str) and "\n" not in w for w in src.warnings)
    return [
        (p.tags[c], int(step), value.tobytes())
        for p in parts
        for c, step, value in zip(p.tag_codes, p.steps, p.values, strict=True)
    ]


def test_steps_out_of_order_are_kept_unless_repeated(tmp_path: Path) -> None:
    """Unique steps logged out of order are all kept; only a true repeat is dropped."""
    path = tmp_path / "run-abc.swanlab"
    _write(
        path,
        [
            _scalar(1, "a", 5, 1.0),
            _scalar(2, "b", 5, 9.0),
            _scalar(3, "a", 3, 2.0),
            _scalar(4, "a", 5, 3.0),
            _scalar(5, "a", 4, 4.0),
        ],
    )
    points = reader.open_source(path).poll()
    rows = [
        (points.tags[c], int(s), float(v))
        for c, s, v in zip(points.tag_codes, points.steps, points.values, strict=True)
    ]
    assert rows == [("a", 5, 1.0), ("b", 5, 9.0), ("a", 3, 2.0), ("a", 4, 4.0)]


def test_a_skipped_damaged_block_is_not_taken_for_a_rewritten_file(
    base_file: bytes, tmp_path: Path
) -> None:
    """After a damaged block is skipped, the file growing on is read on, not read again."""
    data = bytearray(base_file)
    data[200] ^= 0x40  # a record of the first block
    path = tmp_path / "run-abc.swanlab"
    path.write_bytes(bytes(data[:120]))  # the first records, before the damage
    src = reader.open_source(path)
    first = src.poll()
    path.write_bytes(bytes(data[:1000]))  # the damage is on disk, the rest of the block is not
    first = Points.concat([first, src.poll()])
    assert any("checksum mismatch" in w for w in src.warnings)
    path.write_bytes(bytes(data))
    rest = src.poll()
    assert not any("rewritten" in w for w in src.warnings), src.warnings
    steps = [int(s) for p in (first, rest) for s in p.steps]
    assert len(steps) == len(set(steps))  # nothing read twice
