"""TensorBoard reader against random and mutated bytes: only FormatError, never a hang."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmup_monitor import FormatError
from warmup_monitor.points import Points
from warmup_monitor.readers.tensorboard import open_source

NAME = "events.out.tfevents.1700000000.host.1.0"
FUZZ = settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def real_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real torch event file with scalars, a histogram and tensor scalars."""
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    logdir = tmp_path_factory.mktemp("fuzz_src")
    w = SummaryWriter(str(logdir))
    for step in range(40):
        w.add_scalar("train/loss", 1.0 / (step + 1), step)
        w.add_scalar("lr", 1e-4 * step, step, new_style=True)
        if step % 10 == 0:
            w.add_histogram("w", torch.arange(8.0), step)
    w.close()
    (path,) = logdir.iterdir()
    return path.read_bytes()


def as_set(points: Points) -> set[tuple[str, int, float]]:
    return {
        (points.tags[c], s, v)
        for c, s, v in zip(
            points.tag_codes.tolist(), points.steps.tolist(), points.values.tolist(), strict=True
        )
    }


def read_bytes(data: bytes, chunks: int = 1) -> tuple[Points | None, list[str]]:
    """Read ``data`` as an event file, appended in ``chunks`` pieces; None on FormatError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / NAME
        path.write_bytes(b"")
        source = open_source(Path(folder))
        parts = []
        step = max(1, -(-len(data) // chunks))
        try:
            for a in range(0, max(len(data), 1), step):
                with open(path, "ab") as fh:
                    fh.write(data[a : a + step])
                parts.append(source.poll())
        except FormatError:
            return None, source.warnings
        return Points.concat(parts), source.warnings


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes_never_crash(data: bytes) -> None:
    """Random bytes give points, nothing, or a FormatError; never another exception."""
    read_bytes(data)


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "truncate"]),
            st.floats(0, 1, exclude_max=True),
            st.integers(1, 255),
        ),
        min_size=1,
        max_size=4,
    ),
    chunks=st.integers(1, 5),
)
def test_mutated_real_file_yields_only_true_points(real_bytes: bytes, edits, chunks: int) -> None:
    """Whatever is damaged, every point returned is one the writer really wrote."""
    data = bytearray(real_bytes)
    for kind, where, byte in edits:
        if not data:
            break
        i = int(where * len(data))
        if kind == "flip":
            data[i] ^= byte
        elif kind == "insert":
            data[i:i] = bytes([byte]) * (byte % 7 + 1)
        elif kind == "delete":
            del data[i : i + byte % 13 + 1]
        else:
            del data[i:]
    truth = as_set(read_bytes(real_bytes)[0] or Points.empty())
    points, _ = read_bytes(bytes(data), chunks)
    if points is not None:
        assert as_set(points) <= truth


@FUZZ
@given(chunks=st.integers(1, 40))
def test_any_split_gives_the_whole_file(real_bytes: bytes, chunks: int) -> None:
    """Polling a file while it is appended in pieces returns every point exactly once."""
    whole, _ = read_bytes(real_bytes)
    split, warnings = read_bytes(real_bytes, chunks)
    assert whole is not None and split is not None
    assert len(split) == len(whole) == 80
    assert as_set(split) == as_set(whole)
    assert warnings == []
