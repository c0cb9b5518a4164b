"""TensorBoard reader on live folders: growing, new, shrunk and replaced event files."""

from __future__ import annotations

import itertools
import os
import struct
import time
from pathlib import Path

import pytest

from warmup_monitor.points import Points
from warmup_monitor.readers.tensorboard import open_source


def event_file(logdir: Path) -> Path:
    (path,) = [p for p in logdir.iterdir() if "tfevents" in p.name]
    return path


def record_ends(data: bytes) -> list[int]:
    """Byte offset just past each record of a real event file."""
    ends, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        pos += length + 16
        ends.append(pos)
    return ends


def as_rows(points: Points) -> list[tuple[str, int, float]]:
    return [
        (points.tags[c], s, v)
        for c, s, v in zip(
            points.tag_codes.tolist(), points.steps.tolist(), points.values.tolist(), strict=True
        )
    ]


@pytest.fixture
def real_file(tmp_path: Path, torch_writer) -> Path:
    """A real torch event file: 2 tags x 30 steps."""
    w = torch_writer(tmp_path / "src")
    for step in range(30):
        w.add_scalar("train/loss", 1.0 / (step + 1), step)
        w.add_scalar("train/learning_rate", 1e-5 * step, step)
    w.close()
    return event_file(tmp_path / "src")


def test_file_written_byte_by_byte(tmp_path: Path, real_file: Path) -> None:
    """Partial records yield nothing; each record appears exactly once, when it completes."""
    data = real_file.read_bytes()
    whole = as_rows(open_source(real_file.parent).poll())
    ends = record_ends(data)
    point_at = dict(zip(ends[1:], whole, strict=True))  # record 0 is the file version
    live = tmp_path / "live"
    live.mkdir()
    dest = live / real_file.name
    dest.write_bytes(b"")
    source = open_source(live)
    seen: list[tuple[str, int, float]] = []
    with open(dest, "ab") as out:
        for a in range(0, len(data), 3):
            out.write(data[a : a + 3])
            out.flush()
            size = min(a + 3, len(data))
            got = as_rows(source.poll())
            assert got == [point_at[e] for e in ends[1:] if a < e <= size]
            seen.extend(got)
    assert seen == whole
    assert source.warnings == []
    assert len(source.poll()) == 0


def test_split_polls_equal_one_read(tmp_path: Path, real_file: Path) -> None:
    """Appending the file in uneven pieces gives the same points as one read."""
    data = real_file.read_bytes()
    whole = as_rows(open_source(real_file.parent).poll())
    dest = tmp_path / "live" / real_file.name
    dest.parent.mkdir()
    source = open_source(dest.parent)
    seen: list[tuple[str, int, float]] = []
    cuts = [0, 5, 12, 13, 200, 201, 777, 1500, len(data)]
    for a, b in itertools.pairwise(cuts):
        with open(dest, "ab") as out:
            out.write(data[a:b])
        seen.extend(as_rows(source.poll()))
    assert seen == whole


def test_new_files_are_picked_up(tmp_path: Path, torch_writer) -> None:
    """A second writer starting later is followed too, and only new points come back."""
    w = torch_writer(tmp_path)
    w.add_scalar("train/loss", 1.0, 1)
    w.flush()
    source = open_source(tmp_path)
    assert as_rows(source.poll()) == [("train/loss", 1, 1.0)]
    assert len(source.poll()) == 0
    w.add_scalar("train/loss", 0.5, 2)
    w.flush()
    assert as_rows(source.poll()) == [("train/loss", 2, 0.5)]
    w2 = torch_writer(tmp_path)
    w2.add_scalar("eval/loss", 2.0, 2)
    w2.flush()
    assert as_rows(source.poll()) == [("eval/loss", 2, 2.0)]
    assert source.warnings == []


def test_idle_poll_is_cheap(tmp_path: Path, real_file: Path) -> None:
    """A poll that finds nothing new only stats the folder and files."""
    source = open_source(real_file.parent)
    assert len(source.poll()) == 60
    os.utime(real_file.parent, (time.time() - 60, time.time() - 60))
    times = []
    for _ in range(300):
        t = time.perf_counter()
        assert len(source.poll()) == 0
        times.append(time.perf_counter() - t)
    times.sort()
    assert times[len(times) // 2] < 0.001  # ~10 µs on a quiet machine; generous for shared CI


def test_shrunk_file_is_read_again(tmp_path: Path, real_file: Path) -> None:
    """A file rewritten shorter is read again from the start, with a warning."""
    data = real_file.read_bytes()
    ends = record_ends(data)
    dest = tmp_path / "live" / real_file.name
    dest.parent.mkdir()
    dest.write_bytes(data)
    source = open_source(dest.parent)
    assert len(source.poll()) == 60
    with open(dest, "r+b") as fh:  # same inode, fewer bytes
        fh.truncate(ends[10])
    again = as_rows(source.poll())
    assert [r[1] for r in again] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert any("shrank" in w and "again from the start" in w for w in source.warnings)


def test_replaced_by_longer_copy_continues(tmp_path: Path, real_file: Path) -> None:
    """A file replaced by a longer copy of itself (object stores do this) is not re-read."""
    data = real_file.read_bytes()
    ends = record_ends(data)
    dest = tmp_path / "live" / real_file.name
    dest.parent.mkdir()
    dest.write_bytes(data[: ends[20] + 7])
    source = open_source(dest.parent)
    first = as_rows(source.poll())
    tmp = dest.with_name("upload.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)  # new inode, same start
    rest = as_rows(source.poll())
    assert first + rest == as_rows(open_source(real_file.parent).poll())
    assert source.warnings == []


def test_replaced_by_other_content_is_read_again(
    tmp_path: Path, real_file: Path, torch_writer
) -> None:
    """A file replaced by different content is read from the start, with a warning."""
    dest = tmp_path / "live" / real_file.name
    dest.parent.mkdir()
    dest.write_bytes(real_file.read_bytes())
    source = open_source(dest.parent)
    assert len(source.poll()) == 60
    w = torch_writer(tmp_path / "other")
    for step in range(100):
        w.add_scalar("train/loss", 9.0, step)
    w.close()
    tmp = dest.with_name("upload.tmp")
    tmp.write_bytes(event_file(tmp_path / "other").read_bytes())
    os.replace(tmp, dest)
    again = as_rows(source.poll())
    assert len(again) == 100 and {r[2] for r in again} == {9.0}
    assert any("was replaced" in w for w in source.warnings)


def test_removed_file_is_reported_once(tmp_path: Path, real_file: Path) -> None:
    """A deleted event file gives one warning and no error."""
    dest = tmp_path / "live" / real_file.name
    dest.parent.mkdir()
    dest.write_bytes(real_file.read_bytes())
    source = open_source(dest.parent)
    source.poll()
    dest.unlink()
    assert len(source.poll()) == 0
    assert len(source.poll()) == 0
    assert sum("disappeared" in w for w in source.warnings) == 1


def test_torn_header_is_retried_when_the_file_changes(tmp_path: Path, real_file: Path) -> None:
    """A header caught mid-write stops the file once; when it is whole, reading goes on."""
    data = real_file.read_bytes()
    ends = record_ends(data)
    dest = tmp_path / "live" / real_file.name
    dest.parent.mkdir()
    torn = bytearray(data[: ends[20] + 12])
    torn[ends[20] + 9] ^= 0xFF  # the length checksum of record 21 is not there yet
    dest.write_bytes(bytes(torn))
    source = open_source(dest.parent)
    assert len(source.poll()) == 20
    assert len(source.poll()) == 0
    assert sum("corrupted record header" in w for w in source.warnings) == 1
    with open(dest, "r+b") as fh:  # the writer finishes: same inode, the right bytes
        fh.write(data)
    assert len(source.poll()) == 40
    assert sum("corrupted record header" in w for w in source.warnings) == 1
