"""Following live runs on disk: find runs as they appear, read what was appended.

The :class:`Watcher` keeps one :class:`~warmup_monitor.sources.Source` per run, polls the ones
that changed (woken by file-system notifications where available, by a timer otherwise) and
hands what is new to the run's :class:`~warmup_monitor.watch.engine.AlertEngine`, which decides
what to say. It adds the events of following itself: runs appearing and disappearing, reader
warnings, a run that finished or crashed. It only ever reads the watched folders.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from detectors._types import Severity

from ..discover import RunRef, find_runs, open_source
from ..errors import InputError, WarmupMonitorError
from ..sources import Source
from .engine import AlertEngine, DiagnoseFn, default_diagnose
from .events import WatchEvent, WatchStats
from .memory import AlertMemory
from .notify import Notifier, open_notifier

__all__ = ["RunSnapshot", "WatchHealth", "Watcher"]


# ---------------------------------------------------------------------------------- watcher
@dataclass
class _RunState:
    ref: RunRef
    source: Source
    engine: AlertEngine
    warnings_seen: int = 0
    status: str = "unknown"
    poll_failed: str | None = None
    next_read: float = 0.0  # time.time() before which a notification does not read it again
    changed: bool = False  # notified while a read was not due yet
    last_new_points: float | None = None  # when a poll last brought points (time.time())

    @property
    def dirty(self) -> bool:
        return self.engine.dirty


class Watcher:
    """Follows every run under ``path`` and yields :class:`WatchEvent` objects.

    ``interval`` is the polling period (with notifications: the fallback period, so that a
    missed notification costs at most one interval). ``diagnose_every`` is the shortest time
    between two diagnoses of one run (stretched to twice the last diagnosis time on slow
    machines, so diagnosis never takes more than about a third of a core). ``metrics``
    overrides the canonical-name mapping like ``report --metric``. ``wait`` waits for a
    missing path instead of raising :class:`InputError`. ``coalesce`` is how long to let a
    burst of notifications gather before reading (seconds); ``read_every`` is the shortest time
    between two notified reads of one run, however many writes land in between.
    ``diagnosis_share`` is the share of one core that the diagnoses of all runs together may
    use (timed by the clock, so less CPU on a busy machine): with many busy runs each is
    diagnosed less often (new NaNs are still alerted as soon as they are read, and a new loss
    high is diagnosed at once). At 2.5%, reading and diagnosing ten runs that log 100 steps a
    second stays within 5% of a core.

    ``diagnose``, ``find`` and ``opener`` default to the library's own functions.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metrics: Mapping[str, str] | None = None,
        interval: float = 1.0,
        notify: bool = True,
        wait: bool = False,
        diagnose_every: float = 0.2,
        rescan_every: float = 30.0,
        max_points_per_tag: int = 20_000,
        coalesce: float = 0.01,
        read_every: float = 0.2,
        diagnosis_share: float = 0.025,
        diagnose: DiagnoseFn | None = None,
        find: Callable[[Path], list[RunRef]] | None = None,
        opener: Callable[[RunRef], Source] | None = None,
    ) -> None:
        if interval <= 0:
            raise InputError(f"interval must be > 0 seconds, got {interval}", "Pass --interval 1")
        self.path = Path(path)
        self.metrics = dict(metrics or {})
        self.interval = float(interval)
        self.notify = notify
        self.wait_for_path = wait
        self.diagnose_every = float(diagnose_every)
        self.rescan_every = float(rescan_every)
        self.max_points_per_tag = max_points_per_tag
        self.coalesce = float(coalesce)
        self.read_every = float(read_every)
        self.diagnosis_share = float(diagnosis_share)
        self.stats = WatchStats()
        self._diagnose = diagnose if diagnose is not None else default_diagnose
        self._find = find if find is not None else find_runs
        self._open = opener if opener is not None else _open_ref
        self._runs: dict[Path, _RunState] = {}
        self._memory: dict[str, AlertMemory] = {}
        self._known: set[Path] = set()
        self._gone: set[Path] = set()
        self._notifier: Notifier | None = None
        self._stop = threading.Event()
        self._dir_mtimes: dict[str, float] = {}
        self._next_rescan = 0.0
        self._followup = math.inf
        self._next_full_poll = 0.0
        self._next_mtime_check = 0.0
        self._need_rescan = True
        self._following = False  # inside follow(): polls are timed, not one per step()
        self._root_state = "unknown"  # "ok" | "missing" | "empty"
        # Held while the watch loop changes its state, so that another thread (the metrics
        # exporter) reads a consistent snapshot.
        self.lock = threading.RLock()
        self.health = WatchHealth()

    # -------------------------------------------------------------- public
    @property
    def notifying(self) -> bool:
        """True when file-system notifications are active (else the watcher polls)."""
        return self._notifier is not None and self._notifier.alive

    def check(self) -> None:
        """Raise :class:`InputError` for a path that is missing (unless waiting) or unreadable."""
        if not self.path.exists():
            if self.wait_for_path:
                return
            raise InputError(
                f"path '{self.path}' does not exist",
                "Check the path, or pass --wait to wait for it to appear",
            )
        if not os.access(self.path, os.R_OK) or (
            self.path.is_dir() and not os.access(self.path, os.X_OK)
        ):
            raise InputError(f"path '{self.path}' is not readable", "Check its permissions")
        if self.path.is_dir():
            # os.access trusts the permission bits; listing is the real test (e.g. for root
            # squash on network mounts, ACLs).
            try:
                with os.scandir(self.path) as it:
                    next(it, None)
            except PermissionError as err:
                raise InputError(
                    f"path '{self.path}' is not readable", "Check its permissions"
                ) from err

    def once(self) -> list[WatchEvent]:
        """One pass over what exists now: read everything, diagnose every run, return events.

        Raises :class:`InputError` when there is no run to read.
        """
        self.check()
        if not self.path.exists():
            raise InputError(f"path '{self.path}' does not exist", "Check the path")
        with self.lock:
            started = time.time()
            refs = self._find(self.path)  # raises InputError when nothing is there
            events = self._sync_runs(refs, time.time())
            for state in list(self._runs.values()):
                events.extend(self._poll(state, time.time()))
            for state in list(self._runs.values()):
                events.extend(self._run_diagnosis(state, time.time()))
            self.health.passed(started, time.time())
        return events

    def follow(self) -> Iterator[WatchEvent]:
        """Watch until :meth:`stop` is called (or the consumer stops iterating)."""
        self.check()
        self._following = True
        try:
            while not self._stop.is_set():
                yield from self.step()
                self._sleep(self._timeout())
        finally:
            self._following = False

    def step(self) -> list[WatchEvent]:
        """One pass of the live loop: rediscover runs if needed, poll, diagnose what is due.

        Without notifications a step reads every run; within :meth:`follow` every run is read
        once per ``interval`` (and a run whose diagnosis falls due in between, just before it).
        """
        with self.lock:
            started = time.time()
            events = self._step()
            self.health.passed(started, time.time())
        return events

    def snapshot(self) -> list[RunSnapshot]:
        """What is known of each run now (safe to call from another thread)."""
        with self.lock:
            return [_snapshot(state, self._memory) for state in self._runs.values()]

    def _step(self) -> list[WatchEvent]:
        now = time.time()
        events: list[WatchEvent] = []
        changed: set[str] | None = None
        lost = False  # notifications may have missed changes: read every run
        if self._notifier is not None:
            changed, structural = self._notifier.take()
            lost = changed is None
            if structural:
                self._need_rescan = True
                # A folder's files can be created before its watch is in place: look again
                # one interval later.
                self._followup = now + self.interval
            if not self._notifier.alive:
                # Started again at the next pass (or polling, if that fails); this pass
                # reads every run, since changes may have gone unheard.
                self._notifier.stop()
                self._notifier = None
                lost = True
        elif self.notify and self.path.exists():
            self._start_notifier()
            lost = True
        if now >= self._next_mtime_check and self._notifier is None:
            self._next_mtime_check = now + self.interval
            if self._dirs_changed():
                self._need_rescan = True
        if self._need_rescan or now >= min(self._next_rescan, self._followup):
            if now >= self._followup:
                self._followup = math.inf
            events.extend(self._rescan(now))
        notifier = self._notifier
        # Polling, the follow loop reads every run once per interval; a pass that only wakes
        # for a diagnosis reads just the run about to be diagnosed.
        full = lost or now >= self._next_full_poll or (notifier is None and not self._following)
        if full:
            self._next_full_poll = now + self.interval
        for state in list(self._runs.values()):
            if full or (changed and _touches(state.ref.path, changed)):
                state.changed = True
            # A notified run is read at most every ``read_every``: a writer flushing every
            # step costs one read per interval, not one per write.
            if state.changed and (full or now >= state.next_read):
                state.changed = False
                state.next_read = now + self.read_every
                if notifier is not None:
                    # Before reading: a write from now on wakes us again.
                    notifier.unmute(str(state.ref.path))
                events.extend(self._poll(state, now))
            elif state.changed and notifier is not None:
                # Its read is already scheduled: until then its writes need not wake us.
                notifier.mute(str(state.ref.path))
            elif notifier is None and state.engine.due(now):
                events.extend(self._poll(state, now))  # the diagnosis sees what is on disk
        now = time.time()
        for state in list(self._runs.values()):
            if state.engine.due(now):
                events.extend(self._run_diagnosis(state, now))
        return events

    def stop(self) -> None:
        """Ask :meth:`follow` to return (safe from another thread or a signal handler)."""
        self._stop.set()
        if self._notifier is not None:
            self._notifier.interrupt()

    def summary(self) -> WatchEvent:
        verdicts = {name: mem.verdict for name, mem in sorted(self._memory.items())}
        return self.stats.summary(verdicts)

    def close(self) -> None:
        """Stop notifications and close every source."""
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        for state in self._runs.values():
            _close_quietly(state.source)
        self._runs.clear()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- waiting
    def _start_notifier(self) -> None:
        try:
            self._notifier = open_notifier(self.path)
            # Whatever appeared before the notifications started must be found by a scan.
            self._need_rescan = True
        except (OSError, ImportError, RuntimeError):
            # inotify limits reached, unsupported file system …: polling still works.
            self._notifier = None
            self.notify = False

    def _timeout(self) -> float:
        now = time.time()
        due = [s.engine.next_diagnosis - now for s in self._runs.values() if s.dirty]
        due += [s.next_read - now for s in self._runs.values() if s.changed]
        return max(0.0, min([self.interval, self._next_full_poll - now, *due]))

    def _sleep(self, timeout: float) -> None:
        if self._notifier is not None:
            if self._notifier.wait(timeout) and self.coalesce > 0:
                # A writer flushing every step wakes us thousands of times a second: let a
                # burst gather for a few milliseconds and read it in one go.
                self._stop.wait(self.coalesce)
        else:
            self._stop.wait(timeout)

    def _dirs_changed(self) -> bool:
        """Cheap check for polling mode: did a known folder's mtime change (a file or folder
        was created, removed or renamed in it)?"""
        for d, mtime in self._dir_mtimes.items():
            try:
                if os.stat(d).st_mtime != mtime:
                    return True
            except OSError:
                return True
        return not self._dir_mtimes

    def _snapshot_dirs(self) -> None:
        mtimes: dict[str, float] = {}
        if not self.path.is_dir():
            # A single file: its folder changes when the file is replaced or removed.
            with contextlib.suppress(OSError):
                mtimes[str(self.path.parent)] = os.stat(self.path.parent).st_mtime
            self._dir_mtimes = mtimes
            return
        for dirpath, dirnames, _ in os.walk(self.path):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            try:
                mtimes[dirpath] = os.stat(dirpath).st_mtime
            except OSError:
                continue
            if len(mtimes) > 10_000:  # huge trees: rely on the slow timer
                break
        self._dir_mtimes = mtimes

    # -------------------------------------------------------------- discovery
    def _rescan(self, now: float) -> list[WatchEvent]:
        self._need_rescan = False
        self._next_rescan = now + self.rescan_every
        if self._notifier is None:
            self._snapshot_dirs()
        try:
            refs = self._find(self.path)
        except InputError as err:
            if not self.path.exists():
                state, message = "missing", f"'{self.path}' does not exist (yet); waiting for it"
            else:
                state, message = "empty", f"no runs under '{self.path}' yet ({err}); waiting"
            events = []
            if state != self._root_state:
                events.append(WatchEvent("notice", "", now, message=message, path=str(self.path)))
            self._root_state = state
            if state == "missing" and self._notifier is not None:
                self._notifier.stop()
                self._notifier = None
            # The runs we had are gone with the root (or moved): say so once each.
            events.extend(self._sync_runs([], now))
            return events
        self._root_state = "ok"
        events = self._sync_runs(refs, now)
        if self._notifier is not None:
            # Writes outside every run need not wake us (new files and folders still do).
            self._notifier.set_runs(str(path) for path in self._runs)
        return events

    def _sync_runs(self, refs: list[RunRef], now: float) -> list[WatchEvent]:
        events: list[WatchEvent] = []
        current = {ref.path: ref for ref in refs}
        for path in list(self._runs):
            if path not in current and not path.exists():
                events.append(self._remove(path, now))
        for path, ref in current.items():
            if path in self._runs:
                continue
            try:
                source = self._open(ref)
            except (WarmupMonitorError, OSError) as err:
                if path not in self._gone:
                    self._gone.add(path)
                    events.append(
                        WatchEvent(
                            "notice",
                            ref.name,
                            now,
                            message=f"cannot open run '{ref.name}': {err}",
                            severity=Severity.WARNING,
                            path=str(path),
                        )
                    )
                continue
            self._gone.discard(path)
            engine = AlertEngine(
                ref.name,
                path=ref.path,
                source=ref.format,
                metrics=self.metrics,
                # Looked up at each diagnosis: a replaced diagnose function applies at once.
                diagnose=lambda run: self._diagnose(run),
                diagnose_every=self.diagnose_every,
                max_points_per_tag=self.max_points_per_tag,
                memory=self._memory.setdefault(ref.name, AlertMemory()),
                stats=self.stats,
            )
            # Read at the next pass, whatever was written before notifications reached it.
            self._runs[path] = _RunState(ref, source, engine, changed=True)
            if path not in self._known:
                self._known.add(path)
                self.stats.runs_watched += 1
            detail = f" ({source.display_name})" if source.display_name else ""
            also = f"; also found {', '.join(ref.also)}" if ref.also else ""
            events.append(
                WatchEvent(
                    "run_added",
                    ref.name,
                    now,
                    message=f"watching {ref.format} run '{ref.name}'{detail}{also}",
                    path=str(path),
                )
            )
        return events

    def _remove(self, path: Path, now: float) -> WatchEvent:
        state = self._runs.pop(path)
        _close_quietly(state.source)
        others = len(self._runs)
        return WatchEvent(
            "run_removed",
            state.ref.name,
            now,
            message=(
                f"run '{state.ref.name}' disappeared ({path}); "
                f"still watching {others} other run{'s' if others != 1 else ''}"
            ),
            path=str(path),
        )

    # -------------------------------------------------------------- reading
    def _poll(self, state: _RunState, now: float) -> list[WatchEvent]:
        name = state.ref.name
        self.health.polls += 1
        try:
            batch = state.source.poll()
        except (WarmupMonitorError, OSError) as err:
            self.health.poll_errors += 1
            if not state.ref.path.exists():
                return [self._remove(state.ref.path, now)]
            message = f"cannot read run '{name}': {err}"
            kind = type(err).__name__  # said once per kind: offsets in messages change
            if kind == state.poll_failed:
                return []
            state.poll_failed = kind
            return [WatchEvent("notice", name, now, message=message, severity=Severity.WARNING)]
        state.poll_failed = None
        if len(batch):
            state.last_new_points = now
        events = self._source_notices(state, now)
        events.extend(state.engine.add(batch, now))
        return events

    def _source_notices(self, state: _RunState, now: float) -> list[WatchEvent]:
        events = []
        source = state.source
        warnings = source.warnings
        for text in warnings[state.warnings_seen :]:
            events.append(WatchEvent("notice", state.ref.name, now, message=text))
        state.warnings_seen = len(warnings)
        if source.status != state.status:
            if source.status in ("finished", "crashed", "aborted"):
                severity = Severity.WARNING if source.status != "finished" else None
                events.append(
                    WatchEvent(
                        "notice",
                        state.ref.name,
                        now,
                        message=f"run '{state.ref.name}' {source.status}",
                        severity=severity,
                    )
                )
            state.status = source.status
        return events

    # -------------------------------------------------------------- diagnosis
    def _run_diagnosis(self, state: _RunState, now: float) -> list[WatchEvent]:
        source, engine = state.source, state.engine
        engine.config, engine.status = source.config, source.status
        engine.warnings = source.warnings
        started = time.perf_counter()
        events = engine.diagnose(now)
        took = time.perf_counter() - started
        # All runs' diagnoses share ``diagnosis_share`` of a core: with n busy runs, each
        # waits n times its own diagnosis time over that share before the next one.
        if self.diagnosis_share > 0:
            wait = took * max(1, len(self._runs)) / self.diagnosis_share
            engine.next_diagnosis = max(engine.next_diagnosis, time.time() + wait)
        return events


# ---------------------------------------------------------------------------------- snapshots
@dataclass
class WatchHealth:
    """The watch loop's own health: passes, polls and failed polls, and timing."""

    passes: int = 0
    polls: int = 0
    poll_errors: int = 0
    last_pass: float | None = None  # time.time() at the end of the last pass
    last_pass_seconds: float = 0.0

    def passed(self, started: float, ended: float) -> None:
        self.passes += 1
        self.last_pass = ended
        self.last_pass_seconds = max(0.0, ended - started)


@dataclass(frozen=True)
class RunSnapshot:
    """One watched run as the exporter shows it. Values are ``None`` when not logged yet;
    ``findings`` counts the distinct findings said, by ``(kind, severity)``."""

    name: str
    path: str
    format: str
    status: str
    verdict: str
    last_step: int | None
    last: Mapping[str, float]  # canonical metric -> newest value (NaN/±Inf kept)
    last_point_time: float | None  # wall time of the newest point (or when it was read)
    findings: Mapping[tuple[str, str], int]
    non_finite: tuple[str, ...]  # metrics whose newest value is NaN/±Inf
    read_error: bool


# The metrics whose newest value is exported.
_EXPORTED_METRICS = ("loss", "learning_rate", "grad_norm")


def _snapshot(state: _RunState, memories: Mapping[str, AlertMemory]) -> RunSnapshot:
    from ..metrics import resolve_metrics

    engine = state.engine
    buffer = engine.buffer
    mapping = resolve_metrics(buffer.tags, engine.metrics)
    last: dict[str, float] = {}
    last_step: int | None = None
    last_time: float | None = None
    for tag in buffer.tags:
        steps, values, walls = buffer.series(tag)
        if len(steps) == 0:
            continue
        last_step = max(int(steps.max()), last_step if last_step is not None else -(2**62))
        wall = float(walls[-1])
        if math.isfinite(wall):
            last_time = wall if last_time is None else max(last_time, wall)
    for metric in _EXPORTED_METRICS:
        tag = mapping.get(metric)
        if tag is not None:
            _, values, _ = buffer.series(tag)
            if len(values):
                last[metric] = float(values[-1])
    if last_time is None:
        last_time = state.last_new_points
    memory = memories.get(state.ref.name, engine.memory)
    findings: dict[tuple[str, str], int] = {}
    for (kind, _metric, _step), severity in memory.emitted.items():
        key = (kind, severity.value)
        findings[key] = findings.get(key, 0) + 1
    return RunSnapshot(
        name=state.ref.name,
        path=str(state.ref.path),
        format=state.ref.format,
        status=state.status,
        verdict=memory.verdict,
        last_step=last_step,
        last=last,
        last_point_time=last_time,
        findings=findings,
        non_finite=tuple(sorted(memory.in_non_finite)),
        read_error=state.poll_failed is not None,
    )


# ---------------------------------------------------------------------------------- internals
def _open_ref(ref: RunRef) -> Source:
    return open_source(ref.path, format=ref.format)


def _close_quietly(source: Source) -> None:
    # Closing a vanished file must not stop the watch.
    with contextlib.suppress(Exception):
        source.close()


def _touches(run_path: Path, changed: set[str]) -> bool:
    """True when a changed path is the run path or lies inside it."""
    if not changed:
        return False
    base = os.path.abspath(run_path)
    prefix = base.rstrip(os.sep) + os.sep
    return any(p == base or p.startswith(prefix) for p in changed)
