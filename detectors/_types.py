"""Types shared by every detector: findings, severities and the fitted LR schedule."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "ScheduleFit", "Severity"]


class Severity(str, enum.Enum):
    """How bad a finding is. Ordered: ``INFO < WARNING < CRITICAL``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class Finding:
    """One anomaly found in one metric.

    ``step`` and ``end_step`` are training steps taken from the input ``steps`` array, never
    array indices. ``evidence`` holds the numbers behind ``message`` (JSON-serialisable
    scalars, lists and strings: ``value``, ``threshold``, ``baseline`` …); renderers read it
    and never parse ``message``.
    """

    kind: str
    severity: Severity
    metric: str
    step: int
    end_step: int | None
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduleFit:
    """The learning-rate schedule inferred from a logged LR trace.

    All step values are training steps.

    ``warmup_steps`` is the step at which the LR first reaches (close to) its peak, counted from
    the start of the ramp (training step 0 when the logged ramp extrapolates back to it, as an
    HF warmup does, else the first logged step); ``None`` when the trace is too short to tell
    or the LR is still rising. ``warmup_shape`` is one
    of ``"linear"``, ``"cosine"``, ``"exponential"``, ``"none"`` (starts at the peak),
    ``"unknown"``. ``decay`` is one of ``"linear"``, ``"cosine"``, ``"constant"``,
    ``"inverse_sqrt"``, ``"other"``, ``"none"`` (run ended before any decay was seen).
    ``total_steps`` is the run length the decay implies (where the LR would reach its floor),
    or ``None`` when it cannot be told. ``last_step`` is the last logged step.
    ``decay_start`` is the step where the decay begins after the LR stayed at its peak for a
    while (a warmup-stable-decay schedule), ``None`` when the decay starts at the peak.
    ``decay_floor`` is the share of the peak the decay ends at (``cosine_with_min_lr``'s
    ``min_lr_rate``, a pretraining recipe's 10%), ``None`` for a decay to 0.
    ``warmup_start`` is the step a linear ramp starts from LR 0 at: 0 for an HF warmup, later
    for a log that starts mid-training with a warmup of its own (0 when there is no such ramp).
    """

    first_step: int
    last_step: int
    warmup_steps: int | None
    warmup_shape: str
    peak_lr: float
    peak_step: int
    decay: str
    total_steps: int | None
    reached_peak: bool
    lr_never_moves: bool
    warmup_longer_than_run: bool
    notes: tuple[str, ...] = ()
    decay_start: int | None = None
    decay_floor: float | None = None
    warmup_start: int = 0

    @property
    def span(self) -> int:
        """The run's (implied or observed) steps counted from ``warmup_start``."""
        return (self.total_steps or self.last_step) - self.warmup_start

    @property
    def warmup_fraction(self) -> float | None:
        """Warmup steps as a share of :attr:`span`."""
        if self.warmup_steps is None or self.span <= 0:
            return None
        return self.warmup_steps / self.span
