"""Sustained rise: the loss climbs above its best and never comes back.

Divergence asks for a large climb (x1.5 the best by default). A smaller climb that does not
recover matters more than its height: a loss that goes from its best 2.40 to 3.17 while the LR
warms up and stays there has lost everything it learned since, even though it never "blew up".
This rule asks for a modest rise (default +20%) that holds to the end of the series, for a good
part of it, and stands clear of the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import (
    check_float,
    check_int,
    exp_,
    finite_series,
    fmt,
    quiet,
    robust_noise,
    to_scale,
    trailing_median,
)
from ._types import Finding, Severity

__all__ = ["RiseConfig", "detect_sustained_rise"]


@dataclass(frozen=True)
class RiseConfig:
    """Thresholds of the sustained-rise rule.

    Attributes:
        min_rise: the smoothed loss must stay at least this share above its best (0.2 = 20%).
            Default 0.2.
        min_share: the rise must have held for at least this share of the logged steps (from
            the best point to the last point). Default 0.2.
        min_points: ... and for at least this many logged points. Default 8.
        noise_sigmas: the rise must exceed this many standard errors of the tail's median
            (point-to-point noise of the log loss). Default 4.0.
        smooth: trailing-median width, in logged points, at least. Default 3.
        min_share_of_start: the rise must also be at least this share of the starting loss
            level (the median of the first three values), as a climb must: a loss that has
            converged near 0 wobbles by tiny amounts that are large ratios. Default 0.1.
    """

    min_rise: float = 0.2
    min_share: float = 0.2
    min_points: int = 8
    noise_sigmas: float = 4.0
    smooth: int = 3
    min_share_of_start: float = 0.1

    def __post_init__(self) -> None:
        owner = "RiseConfig"
        check_float(owner, "min_rise", self.min_rise, 0.0, low_open=True)
        check_float(owner, "min_share", self.min_share, 0.0, 1.0)
        check_int(owner, "min_points", self.min_points, 2)
        check_float(owner, "noise_sigmas", self.noise_sigmas, 0.0)
        check_int(owner, "smooth", self.smooth, 1)
        check_float(owner, "min_share_of_start", self.min_share_of_start, 0.0)


@quiet
def detect_sustained_rise(
    steps: Any,
    values: Any,
    config: RiseConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """One critical finding when the loss rose above its best and has stayed up since.

    ``step`` is the first logged point after the best at which the smoothed loss is
    ``min_rise`` above it, ``end_step`` the last logged point. Only positive losses are judged.
    """
    cfg = config or RiseConfig()
    s, v = finite_series(steps, values)
    if s.size < cfg.min_points + 2:
        return []
    y, logged = to_scale(v)
    if not logged:
        return []
    sigma = robust_noise(y)
    sigma = sigma if math.isfinite(sigma) else 0.0
    rise = math.log1p(cfg.min_rise)
    # A median of w points has a standard error of ~1.25 sigma / sqrt(w): widen the window
    # until the rise stands out of the noise (at most a quarter of the series).
    need = (cfg.noise_sigmas * 1.25 * sigma / rise) ** 2 if rise > 0 else 1.0
    width = int(min(max(cfg.smooth, math.ceil(need)), max(cfg.smooth, y.size // 4)))
    ys = trailing_median(y, width)
    best_i = int(np.argmin(ys))
    # The lowest of many noisy medians sits below the true level (an extreme value, about
    # sqrt(2 ln m) standard errors for m windows): judge the rise from that corrected level,
    # so a lucky low stretch of a noisy per-step loss is not taken for the best.
    se_w = 1.25 * sigma / math.sqrt(width)
    extreme = math.sqrt(2.0 * math.log(max(2.0, y.size / width)))
    best = float(ys[best_i]) + extreme * se_w
    after = ys[best_i + 1 :]
    if after.size < cfg.min_points:
        return []
    span = float(s[-1] - s[0])
    if span <= 0 or (s[-1] - s[best_i]) < cfg.min_share * span:
        return []
    # Up by ``min_rise`` from some point on, and never back below half of it since.
    up = np.flatnonzero(after - best >= rise)
    if up.size == 0:
        return []
    first = best_i + 1 + int(up[0])
    if np.any(ys[first:] - best < rise / 2):
        return []
    held = ys.size - first
    if held < cfg.min_points // 2 or (s[-1] - s[first]) < 0.5 * cfg.min_share * span:
        return []
    # The raw tail must stand clear of the noise too: its median against the best.
    tail = y[first:]
    tail_med = float(np.median(tail))
    se = 1.25 * sigma / math.sqrt(tail.size)
    if tail_med - best < max(rise / 2, cfg.noise_sigmas * se):
        return []
    # ... and be a real share of where the loss started, not a tiny wobble near 0.
    level0 = float(np.median(v[: min(3, v.size)]))
    if exp_(tail_med) - exp_(best) < cfg.min_share_of_start * level0:
        return []
    best_val, now_val = exp_(float(ys[best_i])), exp_(float(ys[-1]))
    ratio = now_val / best_val if best_val > 0 else math.inf
    return [
        Finding(
            kind="sustained_rise",
            severity=Severity.CRITICAL,
            metric=metric,
            step=int(s[first]),
            end_step=int(s[-1]),
            message=(
                f"{metric} rose from its best {fmt(best_val)} (step {int(s[best_i])}) to "
                f"{fmt(now_val)} (+{100 * (ratio - 1):.0f}%, threshold +{100 * cfg.min_rise:.0f}%) "
                f"from step {int(s[first])} and has not come back down by step {int(s[-1])}"
            ),
            evidence={
                "value": now_val,
                "value_at_onset": float(v[first]),
                "baseline": best_val,
                "best_step": int(s[best_i]),
                "threshold": cfg.min_rise,
                "ratio": ratio,
                "recovered": False,
                "points": int(held),
                "smoothing": width,
            },
        )
    ]
