"""Following live runs: file-system notifications hear real writes, a muted run and folders
without runs stay silent until they matter, lost events mean a full read; a watcher woken only
by notifications reads every point of busy runs, and a polling one reads each run once per
interval (plus just before a diagnosis) and every point too."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from warmup_monitor.diagnosis import diagnose
from warmup_monitor.discover import open_source
from warmup_monitor.run import Run
from warmup_monitor.watch import Watcher
from warmup_monitor.watch.notify import InotifyNotifier, Notifier, WatchdogNotifier

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def _log(path: Path, step: int, loss: float = 2.0) -> None:
    """One ``trainer_log.jsonl`` line the way LLaMA-Factory's LogCallback writes it: the file
    opened in append mode for each logging step."""
    record = {
        "current_steps": step,
        "total_steps": 10_000,
        "loss": loss,
        "lr": 2e-5 * min(1.0, step / 20),
        "epoch": round(step / 10_000, 4),
        "percentage": round(step / 100, 2),
        "elapsed_time": "0:00:10",
        "remaining_time": "0:10:00",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _runs(root: Path, names: str) -> dict[str, Path]:
    logs = {}
    for name in names:
        logs[name] = root / name / "trainer_log.jsonl"
        _log(logs[name], 1)
    return logs


def _heard(notifier: Notifier, timeout: float = 10.0) -> tuple[set[str], bool]:
    """What the next wake-up brings (nothing when none comes within ``timeout``)."""
    if not notifier.wait(timeout):
        return set(), False
    changed, structural = notifier.take()
    assert changed is not None
    return changed, structural


def _silent(notifier: Notifier) -> bool:
    """Nothing to hear: no wake-up for half a second, and nothing pending."""
    woken = notifier.wait(0.5)
    changed, structural = notifier.take()
    return not woken and not changed and not structural


def _watchdog(root: Path) -> WatchdogNotifier:
    pytest.importorskip("watchdog")  # installed where inotify is not (and with the dev extra)
    return WatchdogNotifier(root)


NOTIFIERS: list[Any] = [
    pytest.param(InotifyNotifier, marks=linux_only, id="inotify"),
    pytest.param(_watchdog, id="watchdog"),
]


# ---------------------------------------------------------------------------------- hearing
@pytest.mark.parametrize("kind", NOTIFIERS)
def test_writes_creations_and_moves_are_heard(tmp_path: Path, kind: Callable) -> None:
    """Both notifiers: an appended line names its file; a new run folder is structural and
    its writes are heard at once; a replaced and a removed file are structural."""
    logs = _runs(tmp_path, "a")
    notifier = kind(tmp_path)
    try:
        _log(logs["a"], 2)
        changed, structural = _heard(notifier)
        assert str(logs["a"]) in changed and not structural
        while notifier.wait(0.5):  # the rest of the write (watchdog may deliver it in parts)
            assert not notifier.take()[1]
        new = tmp_path / "b" / "trainer_log.jsonl"
        _log(new, 1)
        changed, structural = set(), False
        while not (structural and str(tmp_path / "b") in changed):
            more, moved = _heard(notifier)
            assert more, "the new run folder was not heard"
            changed, structural = changed | more, structural or moved
        while notifier.wait(0.5):  # the rest of the creation
            notifier.take()
        _log(new, 2)
        changed, _ = _heard(notifier)
        assert str(new) in changed
        tmp = logs["a"].with_suffix(".tmp")
        tmp.write_text(logs["a"].read_text())
        os.replace(tmp, logs["a"])
        changed, structural = set(), False
        while str(logs["a"]) not in changed:
            more, moved = _heard(notifier)
            assert more, "the replacement was not heard"
            changed |= more
            structural |= moved
        assert structural
        while notifier.wait(0.5):  # the rest of the replacement
            notifier.take()
        shutil.rmtree(tmp_path / "b")
        structural = False
        while not structural:
            more, structural = _heard(notifier)
            assert more or structural, "the removal was not heard"
    finally:
        notifier.stop()


@linux_only
def test_a_muted_run_is_silent_until_unmuted(tmp_path: Path) -> None:
    """A run whose read is scheduled anyway does not wake the watcher; another run still does,
    and so does a file created in the muted run; once unmuted its writes are heard again."""
    logs = _runs(tmp_path, "ab")
    notifier = InotifyNotifier(tmp_path)
    try:
        notifier.set_runs([str(tmp_path / "a"), str(tmp_path / "b")])
        notifier.mute(str(tmp_path / "a"))
        (tmp_path / "a" / "sub").mkdir()  # a folder made while muted is muted too
        assert _heard(notifier)[1]
        _log(logs["a"], 2)
        _log(tmp_path / "a" / "sub" / "more.jsonl", 2)
        assert _heard(notifier)[1]  # more.jsonl was created: that is heard
        _log(tmp_path / "a" / "sub" / "more.jsonl", 3)
        assert _silent(notifier)
        _log(logs["b"], 2)
        assert _heard(notifier) == ({str(logs["b"])}, False)
        notifier.unmute(str(tmp_path / "a"))
        _log(logs["a"], 3)
        _log(tmp_path / "a" / "sub" / "more.jsonl", 4)
        changed: set[str] = set()
        while len(changed) < 2:
            more, _ = _heard(notifier)
            assert more, f"only {changed} heard after unmuting"
            changed |= more
        assert changed == {str(logs["a"]), str(tmp_path / "a" / "sub" / "more.jsonl")}
    finally:
        notifier.stop()


@linux_only
def test_folders_without_runs_are_heard_only_when_entries_change(tmp_path: Path) -> None:
    """Writes in a folder that holds no run (the root of many runs) do not wake the watcher;
    a file or folder created there does (it may be a new run). A run that is a single file
    is heard through its folder."""
    logs = _runs(tmp_path, "a")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    notifier = InotifyNotifier(tmp_path)
    try:
        notifier.set_runs([str(tmp_path / "a")])
        with notes.open("a") as f:
            f.write("more")
        assert _silent(notifier)
        _log(tmp_path / "c" / "trainer_log.jsonl", 1)
        assert _heard(notifier)[1]
    finally:
        notifier.stop()
    single = InotifyNotifier(logs["a"])
    try:
        single.set_runs([str(logs["a"])])
        _log(logs["a"], 2)
        assert str(logs["a"]) in _heard(single)[0]
        single.mute(str(logs["a"]))
        _log(logs["a"], 3)
        assert _silent(single)
    finally:
        single.stop()


@linux_only
def test_a_removed_or_moved_root_is_no_longer_trusted(tmp_path: Path) -> None:
    """The watched folder removed or moved away: the notifier says so and gives up, so the
    watcher starts afresh on whatever is at the path later (or polls, or waits for it)."""
    for how in ("remove", "move"):
        root = tmp_path / how
        _runs(root, "a")
        notifier = InotifyNotifier(root)
        try:
            assert notifier.alive
            if how == "remove":
                shutil.rmtree(root)
            else:
                root.rename(tmp_path / "elsewhere")
            structural = _heard(notifier)[1]
            while notifier.alive and notifier.wait(1.0):
                notifier.take()
            assert structural and not notifier.alive
        finally:
            notifier.stop()


@linux_only
def test_lost_events_mean_everything_may_have_changed(tmp_path: Path) -> None:
    """When the kernel's event queue overflows (a watcher that fell far behind), the notifier
    says so, so the watcher reads every run instead of trusting what it heard, and folders made
    meanwhile are watched too."""
    logs = _runs(tmp_path, "ab")
    notifier = InotifyNotifier(tmp_path)
    try:
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        if limit > 200_000:
            pytest.skip("inotify queue too long to overflow quickly")
        # Alternating files: the kernel merges only repeats of the very last event.
        with logs["a"].open("a") as fa, logs["b"].open("a") as fb:
            for i in range(limit // 2 + 100):
                fa.write(f"{i}\n")
                fa.flush()
                fb.write(f"{i}\n")
                fb.flush()
        late = tmp_path / "c" / "trainer_log.jsonl"
        _log(late, 1)  # a new run whose creation is lost with the rest
        assert notifier.wait(10)
        changed, structural = notifier.take()
        assert changed is None and structural
        while notifier.wait(0.5):
            notifier.take()
        _log(late, 2)  # its folder is watched all the same
        assert str(late) in _heard(notifier)[0]
    finally:
        notifier.stop()


# ---------------------------------------------------------------------------------- the watcher
def _expected_points(root: Path, names: Any) -> int:
    total = 0
    for name in names:
        with open_source(root / name) as source:
            total += len(source.poll())
    return total


def _until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    pause = threading.Event()
    while not condition():
        assert timeout > 0, "timed out"
        pause.wait(0.05)
        timeout -= 0.05


def test_busy_runs_are_read_in_full_from_notifications_alone(tmp_path: Path) -> None:
    """Three runs logging as fast as they can, with a NaN each: a watcher with no timed fallback
    reads every point and alerts every NaN once, woken far less often than the writes land."""
    logs = _runs(tmp_path, "abc")
    watcher = Watcher(tmp_path, interval=3600.0, rescan_every=3600.0)
    events: list[Any] = []
    writes = 600
    nan_at = {"a": 150, "b": 333, "c": 598}

    def follow() -> None:
        events.extend(watcher.follow())

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        _until(lambda: watcher.notifying and len(watcher._runs) == 3)
        passes_before = watcher.health.passes

        def write(name: str) -> None:
            for step in range(2, writes + 2):
                _log(logs[name], step, math.nan if step == nan_at[name] else 2.0 - step / 1e4)

        writers = [threading.Thread(target=write, args=(name,)) for name in logs]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        expected = _expected_points(tmp_path, logs)
        _until(lambda: watcher.stats.points_read >= expected)
        passes = watcher.health.passes - passes_before
    finally:
        watcher.stop()
        thread.join(timeout=30)
        watcher.close()
    assert watcher.stats.points_read == expected
    nans = sorted(
        (e.run, e.step) for e in events if e.event == "finding" and e.detector == "non_finite"
    )
    assert nans == sorted(nan_at.items())
    assert passes < 3 * writes / 4  # woken per read, not per write


def test_polling_reads_each_run_once_per_interval_and_every_point(tmp_path: Path) -> None:
    """Without notifications, a follow loop woken for a diagnosis reads only the run it
    diagnoses; every run is read once per interval, and every point is read in the end."""
    logs = _runs(tmp_path, "abc")
    diagnoses: list[str] = []

    def counted(run: Run) -> Any:
        diagnoses.append(run.name)
        return diagnose(run)

    watcher = Watcher(tmp_path, notify=False, interval=0.5, diagnose=counted)
    thread = threading.Thread(target=lambda: list(watcher.follow()), daemon=True)
    thread.start()
    stop = threading.Event()

    def write() -> None:
        step = 2
        while not stop.wait(0.01):
            for log in logs.values():
                _log(log, step, 2.0 - step / 1e4)
            step += 1

    writer = threading.Thread(target=write)
    try:
        _until(lambda: len(watcher._runs) == 3)
        polls, diagnosed = watcher.health.polls, len(diagnoses)
        started = time.time()
        writer.start()
        stop.wait(3.0)
        stop.set()
        writer.join()
        polls = watcher.health.polls - polls
        diagnosed = len(diagnoses) - diagnosed
        intervals = (time.time() - started) / 0.5
        expected = _expected_points(tmp_path, logs)
        _until(lambda: watcher.stats.points_read >= expected)
    finally:
        stop.set()
        watcher.stop()
        thread.join(timeout=30)
        watcher.close()
    assert watcher.stats.points_read == expected
    assert diagnosed > 0
    # Three runs read per interval, and one more read per diagnosis at most.
    assert polls <= 3 * (intervals + 2) + diagnosed


def test_a_replaced_root_is_watched_again(tmp_path: Path) -> None:
    """The watched folder removed and made again: notifications start afresh on the new folder
    (within an interval of its appearing), its new run is found and its NaN alerted."""
    root = tmp_path / "runs"
    logs = _runs(root, "a")
    watcher = Watcher(root, interval=0.5, wait=True)
    events: list[Any] = []
    thread = threading.Thread(target=lambda: events.extend(watcher.follow()), daemon=True)
    thread.start()
    try:
        _until(lambda: watcher.notifying and len(watcher._runs) == 1)
        first = watcher._notifier
        shutil.rmtree(root)
        _until(lambda: not watcher._runs)
        new = root / "b" / "trainer_log.jsonl"
        _log(new, 1)
        _until(lambda: watcher.notifying and watcher._notifier is not first)
        _until(lambda: len(watcher._runs) == 1)
        for step in range(2, 6):
            _log(new, step, math.nan if step == 4 else 2.0)
        _until(lambda: any(e.event == "finding" and e.run == "b" for e in events))
    finally:
        watcher.stop()
        thread.join(timeout=30)
        watcher.close()
    assert not logs["a"].exists()
    nans = [(e.run, e.step) for e in events if e.event == "finding" and e.detector == "non_finite"]
    assert nans == [("b", 4)]
    assert [e.run for e in events if e.event == "run_removed"] == ["a"]
