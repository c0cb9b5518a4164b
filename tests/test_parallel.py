"""Many runs read in worker processes: the same runs, in the same order, as a serial read."""

from __future__ import annotations

import gzip
import multiprocessing
import pickle
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

import warmup_monitor as wm
from warmup_monitor import _parallel
from warmup_monitor.errors import FormatError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"


def _event_runs(tmp_path: Path, copies: int) -> Path:
    """A folder of TensorBoard runs: the sample runs' own event files (torch SummaryWriter)."""
    sources = sorted(p.parent for p in SAMPLES.glob("*/runs/*tfevents*"))
    assert len(sources) >= 8
    root = tmp_path / "sweep"
    for i in range(copies):
        src = sources[i % len(sources)]
        shutil.copytree(src, root / f"run_{i:03d}_{src.parent.name}")
    return root


def _same_runs(a: list[wm.Run], b: list[wm.Run]) -> None:
    assert [r.name for r in a] == [r.name for r in b]
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.scalars, y.scalars)
        assert (x.path, x.source, x.metric_map, x.config, x.status) == (
            y.path,
            y.source,
            y.metric_map,
            y.config,
            y.status,
        )
        assert (x.resumes, x.warnings, x.notes, x.tags) == (y.resumes, y.warnings, y.notes, y.tags)


def test_read_runs_in_workers_equals_serial(tmp_path: Path) -> None:
    """Forked workers return every run, in find order, equal to reading them one by one."""
    root = _event_runs(tmp_path, 24)
    assert _parallel.worker_count(24, 2) == 2
    serial = wm.read_runs(root, workers=1)
    parallel = wm.read_runs(root, workers=2)
    assert len(serial) == 24
    _same_runs(parallel, serial)
    _same_runs(serial, [wm.read_run(ref) for ref in wm.find_runs(root)])


def test_an_unreadable_run_raises_as_a_serial_read_would(tmp_path: Path) -> None:
    """The first unreadable run's own error reaches the caller, also from a worker."""
    root = _event_runs(tmp_path, 20)
    broken = sorted(root.iterdir())[13]
    for event_file in broken.iterdir():
        data = event_file.read_bytes()
        event_file.write_bytes(gzip.compress(data))
    with pytest.raises(FormatError) as serial:
        wm.read_runs(root, workers=1)
    with pytest.raises(FormatError) as parallel:
        wm.read_runs(root, workers=2)
    assert str(parallel.value) == str(serial.value)
    assert "gzip" in str(parallel.value)


def test_workers_are_not_forked_where_it_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few items, a worker of our own, a daemonic process or other threads: no fork."""
    assert _parallel.worker_count(15) == 1
    assert _parallel.worker_count(100, 1) == 1
    assert _parallel.worker_count(12, 8) == 1  # below MIN_ITEMS
    assert _parallel.worker_count(20, 8) == 5  # at least four items per worker
    with pytest.raises(ValueError, match="at least 1"):
        _parallel.worker_count(100, 0)
    monkeypatch.setattr(_parallel, "_in_worker", True)
    assert _parallel.worker_count(100, 4) == 1
    monkeypatch.setattr(_parallel, "_in_worker", False)
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert _parallel.worker_count(100, 4) == 1
    monkeypatch.undo()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        # Another thread: not by default, only when asked for.
        assert _parallel.worker_count(100) == 1
        assert _parallel.worker_count(100, 2) == 2
    finally:
        stop.set()
        thread.join()


def _square_in_worker(x: int) -> tuple[int, bool]:
    return x * x, _parallel._in_worker


def test_ordered_map_keeps_order_and_never_nests() -> None:
    """Results come back in input order; the work is done in workers, which would not fork."""
    out = list(_parallel.ordered_map(_square_in_worker, list(range(40)), workers=2))
    assert [v for v, _ in out] == [x * x for x in range(40)]
    assert not out[0][1] and all(inside for _, inside in out[1:])


def test_a_run_pickles_as_its_columns() -> None:
    """A run sent between processes carries its columns; the frame is built again on arrival."""
    run = wm.read_run(SAMPLES / "healthy_resumed")
    frame = run.scalars
    state = run.__getstate__()
    assert state["_frame"] is None and state["_columns"] is not None
    copy = pickle.loads(pickle.dumps(run))
    pd.testing.assert_frame_equal(copy.scalars, frame)
    assert copy.resumes == run.resumes and copy.tags == run.tags
    for tag in run.tags:
        assert [a.tolist() for a in copy.series(tag)] == [a.tolist() for a in run.series(tag)]
