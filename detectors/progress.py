"""Measures of training progress on a loss curve: how fast and how far it falls.

These are not detectors (they return numbers, not findings). They are what a comparison of
sibling runs is made of — "how many steps did this run need to reach the loss that one had at a
quarter of its run" — and the sweep corpus's labels and ``compare`` both use them, so a run is
measured the same way wherever it is measured.

A logged loss is noisy (per-step losses of small batches, or window means): every measure is
taken on :func:`smooth`, a trailing median over a window of logged points, so one lucky batch
does not count as "reached". The window is causal (only earlier points), so the step at which a
target is reached is never earlier than the data that shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import finite_series, quiet

__all__ = [
    "ProgressConfig",
    "area_under",
    "smooth",
    "smooth_window",
    "steps_to_target",
    "tail_mean",
    "value_at",
]


@dataclass(frozen=True)
class ProgressConfig:
    """How a loss curve is smoothed before it is measured.

    ``smooth_points``: the trailing median window in logged points; ``None`` picks
    :func:`smooth_window` (about 2% of the points, at least 1, at most ``max_points``).
    ``max_points``: the largest automatic window (points).
    """

    smooth_points: int | None = None
    max_points: int = 25

    def __post_init__(self) -> None:
        if self.smooth_points is not None and (
            isinstance(self.smooth_points, bool) or int(self.smooth_points) < 1
        ):
            raise ValueError(
                f"The 'smooth_points' parameter of ProgressConfig must be None or an int >= 1. "
                f"Got {self.smooth_points!r} instead."
            )
        if isinstance(self.max_points, bool) or int(self.max_points) < 1:
            raise ValueError(
                f"The 'max_points' parameter of ProgressConfig must be an int >= 1. "
                f"Got {self.max_points!r} instead."
            )


def smooth_window(n_points: int, config: ProgressConfig | None = None) -> int:
    """The trailing median window (in points) used for a curve of ``n_points`` points."""
    cfg = config or ProgressConfig()
    if cfg.smooth_points is not None:
        return int(cfg.smooth_points)
    return int(max(1, min(cfg.max_points, round(0.02 * n_points))))


@quiet
def smooth(
    steps: Any, values: Any, config: ProgressConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, smoothed)``: the finite points, each replaced by the median of its window.

    The window is trailing (the point and the ``k - 1`` before it); the first points use what
    exists so far.
    """
    s, v = finite_series(steps, values)
    if s.size == 0:
        return s, v.astype(np.float64)
    k = smooth_window(s.size, config)
    if k <= 1:
        return s, v.astype(np.float64)
    v = v.astype(np.float64)
    out = np.empty_like(v)
    # The first k-1 points have fewer predecessors: the median of what exists so far. Row i
    # holds points 0..i then +inf; once sorted, its median is the middle of its first i+1.
    head = min(k - 1, v.size)
    if head:
        j = np.arange(head)
        rows = np.sort(np.where(j[None, :] <= j[:, None], v[None, :head], np.inf), axis=1)
        out[:head] = (rows[j, j // 2] + rows[j, (j + 1) // 2]) / 2.0
    # Then full trailing windows as a strided view: row j holds points j..j+k-1. The values
    # are finite, so the plain median applies (nanmedian's masked path is ~100x slower).
    if v.size >= k:
        out[k - 1 :] = np.median(np.lib.stride_tricks.sliding_window_view(v, k), axis=1)
    return s, out


def steps_to_target(
    steps: Any, values: Any, target: float, config: ProgressConfig | None = None
) -> int | None:
    """The first logged step at which the smoothed loss is at or below ``target``.

    ``None`` when it never gets there (or ``target`` is not a finite number).
    """
    if target is None or not math.isfinite(float(target)):
        return None
    s, sm = smooth(steps, values, config)
    hit = np.flatnonzero(sm <= float(target))
    return int(s[hit[0]]) if hit.size else None


def value_at(steps: Any, values: Any, step: float, config: ProgressConfig | None = None) -> float:
    """The smoothed loss at ``step`` (linear between logged points; NaN outside the curve)."""
    s, sm = smooth(steps, values, config)
    if s.size == 0 or step < s[0] or step > s[-1]:
        return math.nan
    return float(np.interp(step, s, sm))


@quiet
def tail_mean(steps: Any, values: Any, share: float = 0.05) -> float:
    """Mean of the finite points in the last ``share`` of the logged steps (at least one)."""
    s, v = finite_series(steps, values)
    if s.size == 0:
        return math.nan
    share = min(max(float(share), 0.0), 1.0)
    start = s[-1] - share * (s[-1] - s[0])
    return float(np.mean(v[s >= start]))


@quiet
def area_under(steps: Any, values: Any, upto: float | None = None) -> float:
    """Mean height of the finite loss curve over its steps (trapezoids), up to ``upto``.

    The area divided by the span, so runs of different lengths compare on one scale. NaN with
    fewer than two points.
    """
    s, v = finite_series(steps, values)
    if upto is not None:
        keep = s <= upto
        s, v = s[keep], v[keep]
    if s.size < 2 or s[-1] == s[0]:
        return math.nan
    x = s.astype(np.float64)
    return float(np.sum((v[1:] + v[:-1]) * np.diff(x)) / 2.0 / (x[-1] - x[0]))
