"""No progress: the loss stops improving early while it is still close to where it started."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import (
    check_float,
    check_int,
    check_optional_int,
    exp_,
    finite_series,
    fmt,
    quiet,
    steps_per_value,
    to_scale,
    trailing_median,
)
from ._types import Finding, Severity

__all__ = ["CollapseConfig", "detect_no_progress"]


@dataclass(frozen=True)
class CollapseConfig:
    """Thresholds of the no-progress rule.

    Attributes:
        max_drop: the run "made little progress" while its best smoothed loss is at most this
            share below the starting level (0.1 = 10% lower). Default 0.1.
        stall_share: the best level must be older than this share of the logged span (in
            training steps) for the loss to count as stalled. Default 0.5.
        improve_tol: a new minimum counts as an improvement when it is at least this share
            below the previous one. Default 0.01.
        smooth: trailing-median width, in logged points. Default 5.
        min_points: series with fewer finite logged points give no finding. Default 10.
        start_steps: the starting level is the median of the first logged values that cover
            this many training steps (three single-step losses; one value that is already the
            mean of three or more steps: the next ones were logged after the loss moved on).
            Default 3.
        averaged_over: training steps each logged value is the mean of (``logging_steps`` for a
            Trainer's loss). ``None`` (default) takes the median step spacing.
        planned_last_step: the training step the run is planned to end at, when known. While
            the series stops short of it (a run still in progress) the stall's share is taken
            of the planned span, so a plateau early in a run is not read as most of it.
            ``None`` (default): the logged span.
    """

    max_drop: float = 0.1
    stall_share: float = 0.5
    improve_tol: float = 0.01
    smooth: int = 5
    min_points: int = 10
    start_steps: int = 3
    averaged_over: int | None = None
    planned_last_step: int | None = None

    def __post_init__(self) -> None:
        owner = "CollapseConfig"
        check_float(owner, "max_drop", self.max_drop, 0.0, 1.0, high_open=True)
        check_float(owner, "stall_share", self.stall_share, 0.0, 1.0, low_open=True)
        check_float(owner, "improve_tol", self.improve_tol, 0.0, 1.0, high_open=True)
        check_int(owner, "smooth", self.smooth, 1)
        check_int(owner, "min_points", self.min_points, 3)
        check_int(owner, "start_steps", self.start_steps, 1)
        check_optional_int(owner, "averaged_over", self.averaged_over, 1)
        check_optional_int(owner, "planned_last_step", self.planned_last_step, 1)


@quiet
def detect_no_progress(
    steps: Any,
    values: Any,
    config: CollapseConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """One warning when the loss stalled near its starting level for a large share of the run.

    ``step`` is the step of the last real improvement (where the stall begins), ``end_step``
    the last logged step. Only positive losses are judged (the rule is a ratio).
    """
    cfg = config or CollapseConfig()
    s, v = finite_series(steps, values)
    if s.size < cfg.min_points:
        return []
    y, logged = to_scale(v)
    if not logged:
        return []
    ys = trailing_median(y, cfg.smooth)
    first = max(1, math.ceil(cfg.start_steps / max(1.0, steps_per_value(cfg.averaged_over, s))))
    level0 = float(np.median(y[: min(first, y.size)]))
    tol = -math.log(1.0 - cfg.improve_tol)
    # The stall starts where the smoothed loss first came within ``improve_tol`` of its best.
    best = float(ys.min())
    j = int(np.argmax(ys <= best + tol))
    # The smoothed curve lags: the first raw point of its window that is as low.
    lo = max(0, j - cfg.smooth + 1)
    raw = np.flatnonzero(y[lo : j + 1] <= best + tol)
    best_i = lo + int(raw[0]) if raw.size else j
    drop = 1.0 - exp_(best - level0)
    end = float(s[-1])
    planned = cfg.planned_last_step is not None and cfg.planned_last_step > end
    planned_end = float(cfg.planned_last_step) if planned else end  # a Python int of any size
    span = planned_end - float(s[0])
    stalled = span > 0 and (s[-1] - s[best_i]) >= cfg.stall_share * span
    if not stalled or drop > cfg.max_drop:
        return []
    start_val = exp_(level0)
    best_val = exp_(best)
    share = float((s[-1] - s[best_i]) / span)
    of = "the planned run" if planned else "the logged steps"
    return [
        Finding(
            kind="no_progress",
            severity=Severity.WARNING,
            metric=metric,
            step=int(s[best_i]),
            end_step=int(s[-1]),
            message=(
                f"{metric} has not improved since step {int(s[best_i])} ({100 * share:.0f}% of "
                f"{of}): best {fmt(best_val)} is only {100 * max(drop, 0):.1f}% below "
                f"the starting {fmt(start_val)} (threshold {100 * cfg.max_drop:.0f}%)"
            ),
            evidence={
                "value": best_val,
                "baseline": start_val,
                "threshold": cfg.max_drop,
                "drop": drop,
                "stall_share": share,
            },
        )
    ]
