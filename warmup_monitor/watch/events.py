"""What the watcher says: one :class:`WatchEvent` per finding, verdict change, run or notice."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors._types import Severity

from ..jsonvalues import JsonConverter

__all__ = ["EVENT_TYPES", "NON_FINITE_KIND", "WatchEvent", "WatchStats", "fmt_value"]

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

        Non-finite numbers become ``None`` (JSON ``null``) and are listed in ``non_finite``
        (``{"evidence.value": "nan"}``), as in the report's JSON; the caller serialises.
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
        conv = JsonConverter()
        data = conv(out, "")
        data["non_finite"] = conv.non_finite
        return data


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

    def summary(self, verdicts: Mapping[str, str] | None = None) -> WatchEvent:
        """The closing ``summary`` event; ``verdicts`` is each run's last verdict."""
        stats = self.as_dict()
        stats["verdicts"] = dict(verdicts or {})
        plural = "s" if self.runs_watched != 1 else ""
        message = (
            f"watched {self.runs_watched} run{plural}, read {self.points_read} points, "
            f"{self.findings} finding{'s' if self.findings != 1 else ''}"
        )
        if self.by_severity:
            counts = sorted(self.by_severity.items(), key=lambda kv: -Severity(kv[0]).rank)
            message += " (" + ", ".join(f"{n} {k}" for k, n in counts) + ")"
        message += f", {self.alerts} alert{'s' if self.alerts != 1 else ''}"
        return WatchEvent("summary", "", time.time(), message=message, stats=stats)


def fmt_value(value: float | None) -> str:
    """A value in watch messages and alert lines: NaN/+Inf/-Inf spelled out, else 4 digits."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.4g}"
