"""Deciding what to alert, from points as they arrive: no files, no threads.

:class:`AlertEngine` is fed a run's points batch by batch (by the file-following
:class:`~warmup_monitor.watch.Watcher`, or point by point by an in-process training callback).
It keeps them in a bounded :class:`PointBuffer`, alerts on the first NaN/±Inf ``loss`` or
``grad_norm`` of a stretch straight from the new data, re-diagnoses the run at most every
``diagnose_every`` seconds (at once when the loss reaches a new high: see
:meth:`AlertEngine.due`), and turns new findings and verdict changes into
:class:`WatchEvent` objects, each said once (:class:`AlertMemory`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from detectors._types import ScheduleFit, Severity
from detectors.schedules import infer_lr_schedule, lr_at, lr_phase

from ..diagnosis import applied_lr
from ..errors import MetricNotFoundError
from ..metrics import resolve_metrics
from ..points import Points
from ..run import Run
from .buffer import PointBuffer
from .events import NON_FINITE_KIND, WatchEvent, WatchStats, fmt_value
from .memory import AlertMemory

__all__ = ["AlertEngine", "DiagnoseFn", "default_diagnose"]

DiagnoseFn = Callable[[Run], Any]

# Metrics whose non-finite values are alerted straight from the batch. The HF Trainer hides a
# NaN loss behind a window average by default, so grad_norm is often the only NaN in the log.
_IMMEDIATE_METRICS: tuple[str, ...] = ("loss", "grad_norm")

#: Batches with a loss diagnosed without waiting for the throttle after a new loss high.
URGENT_AFTER_HIGH = 3


class AlertEngine:
    """The alerting of one run, fed with :class:`~warmup_monitor.points.Points`.

    ``name``, ``path`` and ``source`` describe the run in events and in the :class:`Run` handed
    to ``diagnose`` (default: :func:`warmup_monitor.diagnosis.diagnose`); ``metrics`` overrides
    the canonical-name mapping like ``report --metric``; ``config``, ``status`` and
    ``warnings`` are what is known of the run (a follower updates them as it reads).
    ``diagnose_every`` is the shortest time between two diagnoses, stretched so that
    diagnosing takes at most ``diagnose_share`` of the time (a third by default: the pause is
    twice the last diagnosis time; an in-process callback, which holds up the training while
    it diagnoses, asks for less).
    ``memory`` (what was already said) and ``stats`` (summary counters) may be shared.
    """

    def __init__(
        self,
        name: str,
        *,
        path: str | Path = ".",
        source: str = "live",
        metrics: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        diagnose: DiagnoseFn | None = None,
        diagnose_every: float = 0.2,
        diagnose_share: float = 1 / 3,
        max_points_per_tag: int = 20_000,
        memory: AlertMemory | None = None,
        stats: WatchStats | None = None,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.source = source
        self.metrics = dict(metrics or {})
        self.config: Mapping[str, Any] = dict(config or {})
        self.status = "unknown"
        self.warnings: list[str] = []
        self.diagnose_every = float(diagnose_every)
        if not 0 < diagnose_share <= 1:
            raise ValueError(f"diagnose_share must be in (0, 1], got {diagnose_share}")
        self.diagnose_share = float(diagnose_share)
        self.buffer = PointBuffer(max_points_per_tag)
        self.memory = memory if memory is not None else AlertMemory()
        self.stats = stats if stats is not None else WatchStats()
        self.dirty = False  # points arrived since the last diagnosis
        self.next_diagnosis = 0.0  # time.time() before which no diagnosis runs
        self.last_diagnosis: Any = None
        self._diagnose = diagnose if diagnose is not None else default_diagnose
        self._diagnosis_failed: str | None = None
        # Highest finite loss so far, and how many more batches are diagnosed at once since a
        # later one went above it (see ``due``).
        self._loss_high = -math.inf
        self._loss_points = 0
        self._urgent_left = 0
        self.urgent = False

    # -------------------------------------------------------------- feeding
    def feed(self, points: Points, now: float | None = None) -> list[WatchEvent]:
        """Take a batch and return what to say: immediate NaN alerts, then the diagnosis's
        new findings and verdict change when a diagnosis is due."""
        events = self.add(points, now)
        if self.due():
            events += self.diagnose()
        return events

    def log(
        self,
        step: int,
        values: Mapping[str, float],
        wall_time: float | None = None,
    ) -> list[WatchEvent]:
        """:meth:`feed` one logging step, ``{tag: value}`` (e.g. a Trainer's ``logs`` dict)."""
        t = time.time() if wall_time is None else float(wall_time)
        rows = [(str(tag), int(step), _as_float(v), t) for tag, v in values.items()]
        return self.feed(Points.from_rows((tag, s, v, t) for tag, s, v, t in rows if v is not None))

    def add(self, points: Points, now: float | None = None) -> list[WatchEvent]:
        """Buffer a batch; alert on its non-finite ``loss``/``grad_norm`` right away."""
        if len(points) == 0:
            return []
        now = time.time() if now is None else now
        self.stats.points_read += len(points)
        self.buffer.add(points)
        self.dirty = True
        mapping = resolve_metrics(self.buffer.tags, self.metrics)
        events = self._immediate(points, now, mapping)
        self._screen_loss(points, mapping.get("loss"))
        return events

    def due(self, now: float | None = None) -> bool:
        """True when points arrived and the diagnosis throttle allows a diagnosis, or at once
        when the loss reached a new high since the last diagnosis.

        A training loss normally starts at its highest value; a later point above every earlier
        one is how a divergence or a spike begins, so waiting for the throttle would hold back
        the alert by as many logging steps as fit in ``diagnose_every``. The detectors need a
        point or two after the high to tell a spike from a climb, so the next
        ``URGENT_AFTER_HIGH`` batches with a loss are diagnosed at once too. Only new highs
        do this, so a run that keeps diverging soon runs out of them.
        """
        if not self.dirty:
            return False
        return self.urgent or (time.time() if now is None else now) >= self.next_diagnosis

    def _screen_loss(self, batch: Points, tag: str | None) -> None:
        if tag is None or tag not in batch.tags:
            return
        values = batch.values[batch.tag_codes == batch.tags.index(tag)]
        values = values[np.isfinite(values)]
        if len(values) == 0:
            return
        high = float(values.max())
        # The first points set the level; a new high only counts once there is one to beat.
        if self._loss_points >= 2 and high > self._loss_high:
            self._urgent_left = 1 + URGENT_AFTER_HIGH
        if self._urgent_left > 0:
            self._urgent_left -= 1
            self.urgent = True
        self._loss_points += len(values)
        self._loss_high = max(self._loss_high, high)

    # -------------------------------------------------------------- immediate alerts
    def _immediate(self, batch: Points, now: float, mapping: Mapping[str, str]) -> list[WatchEvent]:
        """Alert on the first NaN/±Inf loss or grad norm of the batch without waiting for the
        diagnosis (which confirms it later without repeating it)."""
        memory = self.memory
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
            steps, walls = batch.steps[mask], batch.wall_times[mask]
            # Every stretch that starts in this batch, not only the first: what is alerted at
            # once must not depend on how many writes one read happened to catch.
            for first in starts.tolist():
                step, value = int(steps[first]), float(values[first])
                if memory.claim_immediate(NON_FINITE_KIND, metric, step):
                    events.append(
                        self._non_finite_event(
                            now, metric, tag, step, value, float(walls[first]), mapping
                        )
                    )
        return events

    def _non_finite_event(
        self,
        now: float,
        metric: str,
        tag: str,
        step: int,
        value: float,
        point_time: float,
        mapping: Mapping[str, str],
    ) -> WatchEvent:
        lr, phase = self._lr_at(mapping, step)
        message = (
            f"{metric} is {fmt_value(value)} at step {step} (tag '{tag}'), expected a finite value"
        )
        return self._finding_event(
            now,
            kind=NON_FINITE_KIND,
            severity=Severity.CRITICAL,
            metric=metric,
            step=step,
            end_step=None,
            message=message,
            evidence={"value": value, "tag": tag, "lr": lr, "lr_phase": phase},
            value=value,
            lr=lr,
            phase=phase,
            point_time=point_time,
        )

    def _lr_at(
        self, mapping: Mapping[str, str], step: int, fit: ScheduleFit | None = None
    ) -> tuple[float | None, str]:
        """The LR at ``step`` and its phase, by the diagnosis's own rule
        (:func:`detectors.schedules.lr_phase`); the schedule is fitted to the LR read so far
        when no ``fit`` is given."""
        tag = mapping.get("learning_rate")
        if tag is None:
            return None, "unknown"
        steps, values, _ = self.buffer.series(tag)
        values = applied_lr(steps, values, self.config)
        lr = lr_at(steps, values, step)
        if lr is None:
            return None, "unknown"
        if fit is None:
            fit = infer_lr_schedule(steps, values)
        return lr, lr_phase(fit, step, lr) or "unknown"

    # -------------------------------------------------------------- diagnosis
    def run(self) -> Run:
        """The run as read so far (every buffered point)."""
        return Run.from_points(
            self.buffer.to_points(),
            name=self.name,
            path=self.path,
            source=self.source,
            metrics=self.metrics,
            config=self.config,
            status=self.status,
            warnings=self.warnings,
        )

    def diagnose(self, now: float | None = None) -> list[WatchEvent]:
        """Diagnose what was read so far and return the new findings and a verdict change."""
        now = time.time() if now is None else now
        self.dirty = False
        self.urgent = False
        if len(self.buffer) == 0:
            return []
        started = time.perf_counter()
        try:
            run = self.run()
            diagnosis = self._diagnose(run)
        except MetricNotFoundError as err:
            # A --metric tag that has not been written yet: retry when more points arrive.
            return self._failed(now, f"{err}", "MetricNotFoundError")
        except Exception as err:  # one bad run must not stop the watch
            kind = type(err).__name__
            return self._failed(now, f"diagnosis of run '{self.name}' failed: {kind}: {err}", kind)
        finally:
            took = time.perf_counter() - started
            # Diagnosing at most ``diagnose_share`` of the time: a diagnosis that took ``took``
            # is followed by took * (1 / share - 1) without one (twice ``took`` at a third).
            pause = took * (1.0 / self.diagnose_share - 1.0)
            self.next_diagnosis = time.time() + max(self.diagnose_every, pause)
        self._diagnosis_failed = None
        self.last_diagnosis = diagnosis
        return self._diagnosis_events(run, diagnosis, time.time())

    def _failed(self, now: float, message: str, kind: str) -> list[WatchEvent]:
        # Said once per kind of failure: the message may change with every new point.
        if kind == self._diagnosis_failed:
            return []
        self._diagnosis_failed = kind
        return [WatchEvent("notice", self.name, now, message=message, severity=Severity.WARNING)]

    def _diagnosis_events(self, run: Run, diagnosis: Any, now: float) -> list[WatchEvent]:
        advice = tuple(_advice_dict(a) for a in getattr(diagnosis, "advice", ()) or ())
        fit = getattr(diagnosis, "schedule", None)
        events = []
        for finding in getattr(diagnosis, "findings", ()) or ():
            if not self.memory.is_new(finding):
                continue
            value, point_time = self._value_at(run, finding.metric, finding.step, finding.evidence)
            lr, phase = self._lr_at(run.metric_map, finding.step, fit)
            phase = str(finding.evidence.get("lr_phase", phase))
            events.append(
                self._finding_event(
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
        if verdict and self.memory.verdict_changed(verdict):
            event = self._verdict_event(run, diagnosis, verdict, advice, now)
            if event.is_alert:
                self.stats.alerts += 1
            events.append(event)
        return events

    def _value_at(
        self, run: Run, metric: str, step: int | None, evidence: Mapping[str, Any]
    ) -> tuple[float | None, float]:
        """The metric's logged value at ``step`` (the evidence's own ``value`` when the step is
        not a logged point of that metric) and the point's wall time."""
        if step is not None:
            hit = self.buffer.lookup(run.metric_map.get(metric, metric), int(step))
            if hit is not None:
                return hit
        fallback = evidence.get("value")
        return (float(fallback) if _is_number(fallback) else None), math.nan

    def _verdict_event(
        self,
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
        value, point_time = self._value_at(run, metric, step, evidence)
        fit = getattr(diagnosis, "schedule", None)
        lr, phase = (None, "unknown") if step is None else self._lr_at(run.metric_map, step, fit)
        if _is_number(evidence.get("lr")):
            lr = float(evidence["lr"])
        phase = str(evidence.get("lr_phase") or phase)
        confidence = getattr(diagnosis, "confidence", None)
        return WatchEvent(
            "verdict",
            self.name,
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
            self.name,
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
            verdict=self.memory.verdict,
            advice=advice,
        )


def default_diagnose(run: Run) -> Any:
    """:func:`warmup_monitor.diagnosis.diagnose`, imported when first needed."""
    from ..diagnosis import diagnose

    return diagnose(run)


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # a string or a tensor-like a callback logs next to the scalars


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


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
