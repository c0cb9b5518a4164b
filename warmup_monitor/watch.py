"""Following live runs: find runs as they appear, read what was appended, report new findings.

The :class:`Watcher` keeps one :class:`~warmup_monitor.sources.Source` per run, polls the ones
that changed (woken by file-system notifications where available, by a timer otherwise),
keeps a bounded copy of every point read (:class:`PointBuffer`), and turns what is new into
:class:`WatchEvent` objects: findings (each emitted once), verdict changes, runs appearing and
disappearing. It only ever reads the watched folders.

Non-finite ``loss``/``grad_norm`` values are reported straight from the new batch, before the
(throttled) diagnosis runs, so the first NaN alert is never delayed by it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors._types import Finding, ScheduleFit, Severity

from .discover import RunRef, find_runs, open_source
from .errors import InputError, MetricNotFoundError, WarmupMonitorError
from .metrics import resolve_metrics
from .points import Points
from .run import Run
from .sources import Source

__all__ = [
    "EVENT_TYPES",
    "NON_FINITE_KIND",
    "PointBuffer",
    "WatchEvent",
    "WatchStats",
    "Watcher",
    "lr_phase",
]

#: Every value of :attr:`WatchEvent.event`.
EVENT_TYPES: tuple[str, ...] = (
    "finding",
    "verdict",
    "run_added",
    "run_removed",
    "notice",
    "summary",
)

#: ``kind`` of the findings raised directly from a batch holding a NaN/±Inf loss or grad norm.
NON_FINITE_KIND = "non_finite"

# Verdicts that are not problems: a change to one of these is reported but is not an alert.
_QUIET_VERDICTS = frozenset({"healthy", "insufficient_data"})

# Metrics whose non-finite values are alerted straight from the batch. The HF Trainer hides a
# NaN loss behind a window average by default, so grad_norm is often the only NaN in the log.
_IMMEDIATE_METRICS: tuple[str, ...] = ("loss", "grad_norm")

# Words in a detector's finding kind that mark it as the non-finite detector confirming an
# immediate alert (its key may differ from ours, the alert must still not be repeated).
_NON_FINITE_WORDS = ("nan", "finite", "inf")


# ---------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class WatchEvent:
    """One thing the watcher has to say.

    ``event`` is one of :data:`EVENT_TYPES`. Findings carry ``detector`` (the finding kind),
    ``severity``, ``metric``, ``step``, ``end_step``, ``message`` and ``evidence`` exactly as
    the diagnosis reported them, plus ``value`` (the metric at ``step``), ``lr``/``lr_phase``
    and ``point_time`` (the wall time the point was logged, when the format records it).
    Verdict events add ``verdict``, ``confidence`` and ``advice``. ``time`` is when the
    watcher noticed (seconds since the epoch).
    """

    event: str
    run: str
    time: float
    message: str = ""
    severity: Severity | None = None
    detector: str | None = None
    metric: str | None = None
    step: int | None = None
    end_step: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    value: float | None = None
    lr: float | None = None
    lr_phase: str | None = None
    point_time: float | None = None
    verdict: str | None = None
    confidence: float | None = None
    advice: tuple[Mapping[str, Any], ...] = ()
    path: str | None = None
    stats: Mapping[str, Any] | None = None

    @property
    def lag(self) -> float | None:
        """Seconds between the point being logged and the watcher noticing it, when known."""
        if self.point_time is None or not math.isfinite(self.point_time):
            return None
        return max(0.0, self.time - self.point_time)

    @property
    def is_alert(self) -> bool:
        """Findings of warning or critical severity, and changes to a problem verdict."""
        if self.event == "finding":
            return self.severity is not None and self.severity >= Severity.WARNING
        if self.event == "verdict":
            return self.verdict not in _QUIET_VERDICTS
        return False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the report's finding schema plus ``event``, ``run`` and ``time``.

        Non-finite numbers become ``None`` (JSON ``null``); the caller serialises.
        """
        out: dict[str, Any] = {"event": self.event, "run": self.run, "time": self.time}
        if self.event in ("finding", "verdict"):
            out.update(
                detector=self.detector,
                severity=self.severity.value if self.severity is not None else None,
                metric=self.metric,
                step=self.step,
                end_step=self.end_step,
                message=self.message,
                evidence=dict(self.evidence),
                value=self.value,
                lr=self.lr,
                lr_phase=self.lr_phase,
                point_time=self.point_time,
                lag=self.lag,
            )
            out["verdict"] = self.verdict
            if self.event == "verdict" or self.advice:
                out["advice"] = [dict(a) for a in self.advice]
            if self.event == "verdict":
                out["confidence"] = self.confidence
        else:
            out["message"] = self.message
            if self.severity is not None:
                out["severity"] = self.severity.value
            if self.path is not None:
                out["path"] = self.path
            if self.stats is not None:
                out.update(self.stats)
        return _json_safe(out)


def _json_safe(obj: Any) -> Any:
    """Recursively replace NaN/±Inf by ``None`` and numpy scalars/enums by plain values."""
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, Severity):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [_json_safe(v) for v in obj]
    if obj is None or isinstance(obj, str):
        return obj
    value = getattr(obj, "value", None)  # other enums (Verdict)
    if isinstance(value, str):
        return value
    return str(obj)


@dataclass
class WatchStats:
    """Counters for the closing summary."""

    runs_watched: int = 0
    points_read: int = 0
    findings: int = 0
    alerts: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs_watched": self.runs_watched,
            "points_read": self.points_read,
            "findings": self.findings,
            "alerts": self.alerts,
            "by_severity": dict(self.by_severity),
            "elapsed": round(time.time() - self.started, 3),
        }


# ---------------------------------------------------------------------------------- buffer
class _TagStore:
    """Points of one tag in write order: appended chunks, concatenated lazily."""

    __slots__ = ("chunks", "count")

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self.chunks) != 1:
            if not self.chunks:
                empty_f = np.empty(0, np.float64)
                return np.empty(0, np.int64), empty_f, empty_f
            merged = tuple(np.concatenate(parts) for parts in zip(*self.chunks, strict=True))
            self.chunks = [merged]  # type: ignore[list-item]
        return self.chunks[0]


class PointBuffer:
    """Every point read so far, with memory bounded per tag.

    Up to ``max_points_per_tag`` points of a tag are kept as written. Beyond that the older
    half is thinned: it is cut into buckets of consecutive points and each bucket keeps its
    lowest and highest finite value and its first non-finite one, so spikes, the first NaN and
    the shape of the curve survive while memory stays flat however long the run is.
    """

    def __init__(self, max_points_per_tag: int = 20_000) -> None:
        if max_points_per_tag < 64:
            raise ValueError(f"max_points_per_tag must be >= 64, got {max_points_per_tag}")
        self.max_points_per_tag = max_points_per_tag
        self._stores: dict[str, _TagStore] = {}
        self.total_added = 0

    def __len__(self) -> int:
        return sum(s.count for s in self._stores.values())

    @property
    def tags(self) -> list[str]:
        return list(self._stores)

    def add(self, points: Points) -> None:
        """Append a batch (in write order)."""
        n = len(points)
        if n == 0:
            return
        self.total_added += n
        codes = points.tag_codes
        if len(points.tags) == 1:
            groups = [(0, slice(None))]
        else:
            order = np.argsort(codes, kind="stable")
            sorted_codes = codes[order]
            bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
            starts = np.concatenate(([0], bounds))
            ends = np.concatenate((bounds, [n]))
            groups = [(int(sorted_codes[s]), order[s:e]) for s, e in zip(starts, ends, strict=True)]
        for code, sel in groups:
            tag = points.tags[code]
            store = self._stores.get(tag)
            if store is None:
                store = self._stores[tag] = _TagStore()
            chunk = (points.steps[sel], points.values[sel], points.wall_times[sel])
            store.chunks.append(chunk)
            store.count += len(chunk[0])
            if store.count > self.max_points_per_tag:
                self._thin(store)

    def _thin(self, store: _TagStore) -> None:
        steps, values, walls = store.arrays()
        n = len(steps)
        recent = self.max_points_per_tag // 2
        old = n - recent
        keep = _extremes(steps[:old], values[:old], max(8, self.max_points_per_tag // 8))
        idx = np.concatenate((keep, np.arange(old, n)))
        store.chunks = [(steps[idx], values[idx], walls[idx])]
        store.count = len(idx)

    def series(self, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, values, wall_times)`` of ``tag`` in write order (empty when absent)."""
        store = self._stores.get(tag)
        if store is None:
            return _TagStore().arrays()
        return store.arrays()

    def lookup(self, tag: str, step: int) -> tuple[float, float] | None:
        """``(value, wall_time)`` last written for ``tag`` at ``step``, or ``None``."""
        steps, values, walls = self.series(tag)
        hits = np.flatnonzero(steps == step)
        if len(hits) == 0:
            return None
        i = int(hits[-1])
        return float(values[i]), float(walls[i])

    def to_points(self) -> Points:
        """Everything kept, as one batch (each tag's points in write order)."""
        if not self._stores:
            return Points.empty()
        tags = tuple(self._stores)
        arrays = [self._stores[t].arrays() for t in tags]
        return Points(
            tags=tags,
            tag_codes=np.concatenate(
                [np.full(len(a[0]), i, dtype=np.int32) for i, a in enumerate(arrays)]
            ),
            steps=np.concatenate([a[0] for a in arrays]),
            values=np.concatenate([a[1] for a in arrays]),
            wall_times=np.concatenate([a[2] for a in arrays]),
        )


def _extremes(steps: np.ndarray, values: np.ndarray, buckets: int) -> np.ndarray:
    """Indices (in write order) keeping, for each of ``buckets`` equal step ranges, the first
    lowest and highest finite value and the first non-finite one, plus the first and last point.

    Buckets span equal *step* ranges of the whole thinned stretch, so thinning it again later
    keeps the same resolution over the whole history instead of eroding the oldest points.
    """
    n = len(values)
    if n <= 3 * buckets:
        return np.arange(n)
    lo, hi = int(steps.min()), int(steps.max())
    if hi > lo:
        bucket = ((steps - lo) * buckets // (hi - lo + 1)).astype(np.int64)
    else:  # every point at one step (unusual): fall back to buckets of consecutive points
        bucket = np.arange(n) * buckets // n
    finite = np.isfinite(values)
    low = np.where(finite, values, np.inf)
    high = np.where(finite, values, -np.inf)
    bmin = np.full(buckets, np.inf)
    bmax = np.full(buckets, -np.inf)
    np.minimum.at(bmin, bucket, low)
    np.maximum.at(bmax, bucket, high)
    picked = [np.array([0, n - 1])]
    for mask in (finite & (low == bmin[bucket]), finite & (high == bmax[bucket]), ~finite):
        where = np.flatnonzero(mask)
        _, first = np.unique(bucket[where], return_index=True)
        picked.append(where[first])
    return np.unique(np.concatenate(picked))


# ---------------------------------------------------------------------------------- LR phase
def lr_phase(
    lr_steps: np.ndarray,
    lr_values: np.ndarray,
    step: int,
    schedule: ScheduleFit | None = None,
) -> tuple[float | None, str]:
    """The learning rate at ``step`` and the phase it was in: ``"warmup"``, ``"peak"``,
    ``"constant"`` (the flat part of a constant schedule), ``"decay"``, ``"zero"`` or
    ``"unknown"``.

    Uses the fitted schedule when the diagnosis has one; otherwise the LR logged so far
    (a value below 98 % of the highest LR seen, before that highest point, is warmup).
    """
    finite = np.isfinite(lr_values)
    steps, values = lr_steps[finite], lr_values[finite]
    if len(steps) == 0:
        return None, "unknown"
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    i = int(np.searchsorted(steps, step, side="right")) - 1
    lr = float(values[max(i, 0)])
    if schedule is not None and schedule.warmup_steps is not None and not schedule.lr_never_moves:
        if step < min(schedule.first_step + schedule.warmup_steps, schedule.peak_step):
            return lr, "warmup"
        if schedule.decay == "none" or step <= schedule.peak_step:
            return lr, "peak"
        if schedule.decay == "constant":
            return lr, "constant"
        return lr, "decay"
    peak = float(values.max())
    if peak <= 0.0:
        return lr, "zero"
    rising = i >= 1 and values[i] > values[i - 1] * 1.001
    if rising and i == len(values) - 1:
        return lr, "warmup"  # still climbing at the newest point: the peak is not known yet
    if lr >= 0.98 * peak:
        return lr, "peak"
    peak_step = int(steps[int(np.argmax(values))])
    if step < peak_step or rising:
        return lr, "warmup"
    return lr, "decay"


# ---------------------------------------------------------------------------------- watcher
@dataclass
class _RunState:
    ref: RunRef
    source: Source
    buffer: PointBuffer
    warnings_seen: int = 0
    status: str = "unknown"
    dirty: bool = False
    next_diagnosis: float = 0.0
    last_diagnosis: Any = None  # Diagnosis
    diagnosis_failed: str | None = None
    poll_failed: str | None = None


@dataclass
class _Memory:
    """What was already said about a run; kept across a run folder disappearing and coming back."""

    emitted: dict[tuple[str, str, int], Severity] = field(default_factory=dict)
    immediate: dict[tuple[str, int], Severity] = field(default_factory=dict)
    in_non_finite: set[str] = field(default_factory=set)
    verdict: str = "insufficient_data"


DiagnoseFn = Callable[[Run], Any]


class _Notifier:
    """Wakes the watch loop on file-system changes (inotify via watchdog) and remembers which
    paths changed. Only writes, creations, deletions and moves are listened to: our own reads
    must not wake us."""

    def __init__(self, root: Path) -> None:
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._structural = False
        notifier = self
        structural_types = (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileMovedEvent,
        )

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                with notifier._lock:
                    notifier._changed.add(os.fsdecode(event.src_path))
                    if isinstance(event, structural_types):
                        notifier._structural = True
                        dest = getattr(event, "dest_path", "")
                        if dest:
                            notifier._changed.add(os.fsdecode(dest))
                notifier.wake.set()

        # watchdog logs a warning when stopped while events are queued; a shutdown is not news.
        logging.getLogger("watchdog").setLevel(logging.ERROR)
        self._observer = Observer()
        target = root if root.is_dir() else root.parent
        self._observer.schedule(
            _Handler(),
            os.path.abspath(target),
            recursive=root.is_dir(),
            event_filter=[
                FileCreatedEvent,
                FileModifiedEvent,
                FileDeletedEvent,
                FileMovedEvent,
                FileClosedEvent,
                DirCreatedEvent,
                DirDeletedEvent,
                DirMovedEvent,
            ],
        )
        self._observer.daemon = True
        self._observer.start()

    def take(self) -> tuple[set[str], bool]:
        """The paths changed since the last call and whether folders/files came or went."""
        with self._lock:
            changed, structural = self._changed, self._structural
            self._changed, self._structural = set(), False
        return changed, structural

    @property
    def alive(self) -> bool:
        return self._observer.is_alive()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=2)


class Watcher:
    """Follows every run under ``path`` and yields :class:`WatchEvent` objects.

    ``interval`` is the polling period (with notifications: the fallback period, so that a
    missed notification costs at most one interval). ``diagnose_every`` is the shortest time
    between two diagnoses of one run (stretched to twice the last diagnosis time on slow
    machines, so diagnosis never takes more than about a third of a core). ``metrics``
    overrides the canonical-name mapping like ``report --metric``. ``wait`` waits for a
    missing path instead of raising :class:`InputError`. ``coalesce`` is how long to let a
    burst of notifications gather before reading (seconds).

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
        self.stats = WatchStats()
        self._diagnose = diagnose if diagnose is not None else _default_diagnose
        self._find = find if find is not None else find_runs
        self._open = opener if opener is not None else _open_ref
        self._runs: dict[Path, _RunState] = {}
        self._memory: dict[str, _Memory] = {}
        self._known: set[Path] = set()
        self._gone: set[Path] = set()
        self._notifier: _Notifier | None = None
        self._stop = threading.Event()
        self._dir_mtimes: dict[str, float] = {}
        self._next_rescan = 0.0
        self._followup = math.inf
        self._next_full_poll = 0.0
        self._next_mtime_check = 0.0
        self._need_rescan = True
        self._root_state = "unknown"  # "ok" | "missing" | "empty"

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
        refs = self._find(self.path)  # raises InputError when nothing is there
        events = self._sync_runs(refs, time.time())
        for state in list(self._runs.values()):
            events.extend(self._poll(state, time.time()))
        for state in list(self._runs.values()):
            events.extend(self._run_diagnosis(state, time.time()))
        return events

    def follow(self) -> Iterator[WatchEvent]:
        """Watch until :meth:`stop` is called (or the consumer stops iterating)."""
        self.check()
        while not self._stop.is_set():
            yield from self.step()
            self._sleep(self._timeout())

    def step(self) -> list[WatchEvent]:
        """One pass of the live loop: rediscover runs if needed, poll, diagnose what is due."""
        now = time.time()
        events: list[WatchEvent] = []
        changed: set[str] | None = None
        if self._notifier is not None:
            # Cleared before taking the changes: a write after this point wakes us again.
            self._notifier.wake.clear()
            changed, structural = self._notifier.take()
            if structural:
                self._need_rescan = True
                # A folder's files can be created before its watch is in place: look again
                # one interval later.
                self._followup = now + self.interval
            if not self._notifier.alive:
                self._notifier = None
        elif self.notify and self.path.exists():
            self._start_notifier()
        if now >= self._next_mtime_check and self._notifier is None:
            self._next_mtime_check = now + self.interval
            if self._dirs_changed():
                self._need_rescan = True
        if self._need_rescan or now >= min(self._next_rescan, self._followup):
            if now >= self._followup:
                self._followup = math.inf
            events.extend(self._rescan(now))
        full = changed is None or now >= self._next_full_poll
        if full:
            self._next_full_poll = now + self.interval
        for state in list(self._runs.values()):
            if full or _touches(state.ref.path, changed or set()):
                events.extend(self._poll(state, now))
        now = time.time()
        for state in list(self._runs.values()):
            if state.dirty and now >= state.next_diagnosis:
                events.extend(self._run_diagnosis(state, now))
        return events

    def stop(self) -> None:
        """Ask :meth:`follow` to return (safe from another thread or a signal handler)."""
        self._stop.set()
        if self._notifier is not None:
            self._notifier.wake.set()

    def summary(self) -> WatchEvent:
        s = self.stats
        verdicts = {name: mem.verdict for name, mem in sorted(self._memory.items())}
        stats = s.as_dict()
        stats["verdicts"] = verdicts
        plural = "s" if s.runs_watched != 1 else ""
        message = (
            f"watched {s.runs_watched} run{plural}, read {s.points_read} points, "
            f"{s.findings} finding{'s' if s.findings != 1 else ''}"
        )
        if s.by_severity:
            counts = sorted(s.by_severity.items(), key=lambda kv: -Severity(kv[0]).rank)
            message += " (" + ", ".join(f"{n} {k}" for k, n in counts) + ")"
        message += f", {s.alerts} alert{'s' if s.alerts != 1 else ''}"
        return WatchEvent("summary", "", time.time(), message=message, stats=stats)

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
            self._notifier = _Notifier(self.path)
            # Whatever appeared before the notifications started must be found by a scan.
            self._need_rescan = True
        except (OSError, ImportError, RuntimeError):
            # inotify limits reached, unsupported file system …: polling still works.
            self._notifier = None
            self.notify = False

    def _timeout(self) -> float:
        now = time.time()
        due = [s.next_diagnosis - now for s in self._runs.values() if s.dirty]
        return max(0.0, min([self.interval, *due]))

    def _sleep(self, timeout: float) -> None:
        if self._notifier is not None:
            if self._notifier.wake.wait(timeout) and self.coalesce > 0:
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
        return self._sync_runs(refs, now)

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
            self._runs[path] = _RunState(ref, source, PointBuffer(self.max_points_per_tag))
            self._memory.setdefault(ref.name, _Memory())
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
        try:
            batch = state.source.poll()
        except (WarmupMonitorError, OSError) as err:
            if not state.ref.path.exists():
                return [self._remove(state.ref.path, now)]
            message = f"cannot read run '{name}': {err}"
            kind = type(err).__name__  # said once per kind: offsets in messages change
            if kind == state.poll_failed:
                return []
            state.poll_failed = kind
            return [WatchEvent("notice", name, now, message=message, severity=Severity.WARNING)]
        state.poll_failed = None
        events = self._source_notices(state, now)
        if len(batch) == 0:
            return events
        self.stats.points_read += len(batch)
        state.buffer.add(batch)
        state.dirty = True
        events.extend(self._immediate(state, batch, now))
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

    def _immediate(self, state: _RunState, batch: Points, now: float) -> list[WatchEvent]:
        """Alert on the first NaN/±Inf loss or grad norm of the batch without waiting for the
        diagnosis (which confirms it later without repeating it)."""
        memory = self._memory[state.ref.name]
        mapping = resolve_metrics(state.buffer.tags, self.metrics)
        events = []
        for metric in _IMMEDIATE_METRICS:
            tag = mapping.get(metric)
            if tag is None or tag not in batch.tags:
                continue
            code = batch.tags.index(tag)
            mask = batch.tag_codes == code
            values = batch.values[mask]
            bad = ~np.isfinite(values)
            was_bad = metric in memory.in_non_finite
            if bad[-1]:
                memory.in_non_finite.add(metric)
            else:
                memory.in_non_finite.discard(metric)
            # A stretch of NaNs is alerted once, at its first point; one that began in an
            # earlier batch was alerted then.
            before = np.concatenate(([was_bad], bad[:-1]))
            starts = np.flatnonzero(bad & ~before)
            if len(starts) == 0:
                continue
            first = int(starts[0])
            steps = batch.steps[mask]
            walls = batch.wall_times[mask]
            step, value = int(steps[first]), float(values[first])
            key = (metric, step)
            if key in memory.immediate or (NON_FINITE_KIND, metric, step) in memory.emitted:
                continue
            memory.immediate[key] = Severity.CRITICAL
            memory.emitted[(NON_FINITE_KIND, metric, step)] = Severity.CRITICAL
            lr, phase = self._lr_at(state, mapping, step)
            message = (
                f"{metric} is {_fmt_value(value)} at step {step} (tag '{tag}'), "
                "expected a finite value"
            )
            evidence = {"value": value, "tag": tag, "lr": lr, "lr_phase": phase}
            events.append(
                self._finding_event(
                    state,
                    now,
                    kind=NON_FINITE_KIND,
                    severity=Severity.CRITICAL,
                    metric=metric,
                    step=step,
                    end_step=None,
                    message=message,
                    evidence=evidence,
                    value=value,
                    lr=lr,
                    phase=phase,
                    point_time=float(walls[first]),
                )
            )
        return events

    def _lr_at(
        self, state: _RunState, mapping: Mapping[str, str], step: int
    ) -> tuple[float | None, str]:
        tag = mapping.get("learning_rate")
        if tag is None:
            return None, "unknown"
        steps, values, _ = state.buffer.series(tag)
        schedule = getattr(state.last_diagnosis, "schedule", None)
        return lr_phase(steps, values, step, schedule)

    # -------------------------------------------------------------- diagnosis
    def _build_run(self, state: _RunState) -> Run:
        source = state.source
        return Run.from_points(
            state.buffer.to_points(),
            name=state.ref.name,
            path=state.ref.path,
            source=state.ref.format,
            metrics=self.metrics,
            config=source.config,
            status=source.status,
            warnings=source.warnings,
        )

    def _run_diagnosis(self, state: _RunState, now: float) -> list[WatchEvent]:
        state.dirty = False
        if len(state.buffer) == 0:
            return []
        started = time.perf_counter()
        name = state.ref.name
        try:
            run = self._build_run(state)
            diagnosis = self._diagnose(run)
        except MetricNotFoundError as err:
            # A --metric tag that has not been written yet: retry when more points arrive.
            return self._diagnosis_failed(state, now, f"{err}", "MetricNotFoundError")
        except Exception as err:  # one bad run must not stop the watch
            kind = type(err).__name__
            message = f"diagnosis of run '{name}' failed: {kind}: {err}"
            return self._diagnosis_failed(state, now, message, kind)
        finally:
            took = time.perf_counter() - started
            state.next_diagnosis = time.time() + max(self.diagnose_every, 2.0 * took)
        state.diagnosis_failed = None
        state.last_diagnosis = diagnosis
        return self._diagnosis_events(state, run, diagnosis, time.time())

    def _diagnosis_failed(
        self, state: _RunState, now: float, message: str, kind: str
    ) -> list[WatchEvent]:
        # Said once per kind of failure: the message may change with every new point.
        if kind == state.diagnosis_failed:
            return []
        state.diagnosis_failed = kind
        return [
            WatchEvent("notice", state.ref.name, now, message=message, severity=Severity.WARNING)
        ]

    def _diagnosis_events(
        self, state: _RunState, run: Run, diagnosis: Any, now: float
    ) -> list[WatchEvent]:
        memory = self._memory[state.ref.name]
        advice = tuple(_advice_dict(a) for a in getattr(diagnosis, "advice", ()) or ())
        events = []
        for finding in getattr(diagnosis, "findings", ()) or ():
            if not self._is_new(memory, finding):
                continue
            value, point_time = self._value_at(
                state, run, finding.metric, finding.step, finding.evidence
            )
            lr, phase = self._lr_at(state, run.metric_map, finding.step)
            phase = str(finding.evidence.get("lr_phase", phase))
            events.append(
                self._finding_event(
                    state,
                    now,
                    kind=finding.kind,
                    severity=finding.severity,
                    metric=finding.metric,
                    step=finding.step,
                    end_step=finding.end_step,
                    message=finding.message,
                    evidence=finding.evidence,
                    value=value,
                    lr=lr,
                    phase=phase,
                    point_time=point_time,
                    advice=advice,
                )
            )
        verdict = _enum_value(getattr(diagnosis, "verdict", None))
        if verdict and verdict != memory.verdict:
            memory.verdict = verdict
            event = self._verdict_event(state, run, diagnosis, verdict, advice, now)
            if event.is_alert:
                self.stats.alerts += 1
            events.append(event)
        return events

    def _is_new(self, memory: _Memory, finding: Finding) -> bool:
        """Dedup on (kind, metric, step); a finding that got more severe is new again. A
        non-finite finding at a step already alerted from the raw batch only confirms it."""
        key = (finding.kind, finding.metric, int(finding.step))
        before = memory.emitted.get(key)
        if before is not None and finding.severity <= before:
            return False
        if before is None and _looks_non_finite(finding):
            end = finding.end_step if finding.end_step is not None else finding.step
            for (metric, step), severity in memory.immediate.items():
                if (
                    metric == finding.metric
                    and finding.step <= step <= end
                    and finding.severity <= severity
                ):
                    memory.emitted[key] = severity
                    return False
        memory.emitted[key] = finding.severity
        return True

    def _value_at(
        self,
        state: _RunState,
        run: Run,
        metric: str,
        step: int | None,
        evidence: Mapping[str, Any],
    ) -> tuple[float | None, float]:
        """The metric's logged value at ``step`` (the evidence's own ``value`` when the step is
        not a logged point of that metric) and the point's wall time."""
        if step is not None:
            hit = state.buffer.lookup(run.metric_map.get(metric, metric), int(step))
            if hit is not None:
                return hit
        fallback = evidence.get("value")
        return (float(fallback) if _is_number(fallback) else None), math.nan

    def _verdict_event(
        self,
        state: _RunState,
        run: Run,
        diagnosis: Any,
        verdict: str,
        advice: tuple[Mapping[str, Any], ...],
        now: float,
    ) -> WatchEvent:
        evidence = dict(getattr(diagnosis, "evidence", {}) or {})
        step = getattr(diagnosis, "first_problem_step", None)
        if step is None:
            step = run.last_step
        # The same level as report --fail-on: a problem verdict is at least a warning.
        worst = diagnosis.level
        metric = str(evidence.get("metric") or "loss")
        value, point_time = self._value_at(state, run, metric, step, evidence)
        lr, phase = (None, "unknown") if step is None else self._lr_at(state, run.metric_map, step)
        if _is_number(evidence.get("lr")):
            lr = float(evidence["lr"])
        phase = str(evidence.get("lr_phase") or phase)
        confidence = getattr(diagnosis, "confidence", None)
        return WatchEvent(
            "verdict",
            state.ref.name,
            now,
            message=str(getattr(diagnosis, "summary", "")),
            severity=worst,
            detector="verdict",
            metric=metric,
            step=None if step is None else int(step),
            evidence=evidence,
            value=value,
            lr=lr,
            lr_phase=phase,
            point_time=point_time,
            verdict=verdict,
            confidence=None if confidence is None else float(confidence),
            advice=advice,
        )

    def _finding_event(
        self,
        state: _RunState,
        now: float,
        *,
        kind: str,
        severity: Severity,
        metric: str,
        step: int,
        end_step: int | None,
        message: str,
        evidence: Mapping[str, Any],
        value: float | None,
        lr: float | None,
        phase: str,
        point_time: float,
        advice: tuple[Mapping[str, Any], ...] = (),
    ) -> WatchEvent:
        self.stats.findings += 1
        if severity >= Severity.WARNING:
            self.stats.alerts += 1
        self.stats.by_severity[severity.value] = self.stats.by_severity.get(severity.value, 0) + 1
        return WatchEvent(
            "finding",
            state.ref.name,
            now,
            message=message,
            severity=severity,
            detector=kind,
            metric=metric,
            step=int(step),
            end_step=None if end_step is None else int(end_step),
            evidence=dict(evidence),
            value=value,
            lr=lr,
            lr_phase=phase,
            point_time=point_time,
            verdict=self._memory[state.ref.name].verdict,
            advice=advice,
        )


# ---------------------------------------------------------------------------------- internals
def _default_diagnose(run: Run) -> Any:
    from .diagnosis import diagnose

    return diagnose(run)


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _looks_non_finite(finding: Finding) -> bool:
    kind = finding.kind.lower()
    if any(word in kind for word in _NON_FINITE_WORDS):
        return True
    value = finding.evidence.get("value")
    return isinstance(value, float) and not math.isfinite(value)


def _enum_value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _advice_dict(advice: Any) -> dict[str, Any]:
    if isinstance(advice, Mapping):
        return dict(advice)
    return {
        "text": getattr(advice, "text", str(advice)),
        "parameter": getattr(advice, "parameter", None),
        "current": getattr(advice, "current", None),
        "suggested": getattr(advice, "suggested", None),
        "reason": getattr(advice, "reason", ""),
    }


def _fmt_value(value: float | None) -> str:
    """A value in watch messages and alert lines: NaN/+Inf/-Inf spelled out, else 4 digits."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"
