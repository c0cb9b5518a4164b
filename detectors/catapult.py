"""Early climb ("catapult") of a window-averaged loss while the LR reaches its peak.

When the LR rises past what the model tolerates, the loss shoots up within a few steps and
usually comes back down (a catapult, Kalra & Barkeshli 2024). A trainer that logs the mean
loss over every ``logging_steps`` steps turns a several-fold per-step climb into a bump of one
or two logged points, often at the second or third point of the run, where the divergence
rule's smoothing and patience cannot see it yet. A mean over several steps is itself smoothed,
so this rule compares the logged values directly: a value at least ``ratio`` times the lowest
value logged before it, while the LR climbs or just after its peak (``until_step``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import (
    LOG_TIE,
    check_float,
    check_int,
    check_optional_int,
    exp_,
    finite_series,
    first_below,
    fmt,
    fmt_ratio,
    quiet,
    robust_noise,
    running_min_before,
    steps_per_value,
)
from ._types import Finding, Severity

__all__ = ["CatapultConfig", "detect_catapult"]


@dataclass(frozen=True)
class CatapultConfig:
    """Thresholds of the early-climb rule.

    Attributes:
        ratio: a logged value must reach this multiple of the lowest value logged before it.
            Default 1.2, the height at which a loss smoothed over five steps is usually called
            unstable at all; a mean over several steps already is that smooth.
        from_step: only values logged at or after this training step are judged (where the LR
            has come near its peak); earlier values still count as the best so far. ``None``
            (default): from the first value.
        until_step: only values logged at or before this training step are judged (the end of
            the LR's climb plus a few logged points). ``None`` (default): to the last value.
        averaged_over: training steps each logged value is the mean of (``logging_steps`` for
            a Trainer's loss). ``None`` (default) takes the median step spacing.
        min_averaged: the rule applies only to values averaged over at least this many steps:
            single-step losses are too noisy for a bare ratio (the divergence rule smooths
            them). Default 4.
        noise_sigmas: the climb, in log units, must also exceed this many standard deviations
            of the series' point-to-point noise, beyond the chance low of the earlier values'
            minimum. Default 4.0.
        min_rise: the climb must also be at least this share of the starting level (ignores
            tiny absolute wobbles of a loss near 0). Default 0.1.
        min_points: series with fewer finite positive logged values give no finding. Default 4.
        noise_points: the noise term needs at least this many values; with fewer, ``ratio``
            alone decides. Default 8.
    """

    ratio: float = 1.2
    from_step: int | None = None
    until_step: int | None = None
    averaged_over: int | None = None
    min_averaged: int = 4
    noise_sigmas: float = 4.0
    min_rise: float = 0.1
    min_points: int = 4
    noise_points: int = 8

    def __post_init__(self) -> None:
        owner = "CatapultConfig"
        check_float(owner, "ratio", self.ratio, 1.0, low_open=True)
        check_optional_int(owner, "from_step", self.from_step, 0)
        check_optional_int(owner, "until_step", self.until_step, 0)
        check_optional_int(owner, "averaged_over", self.averaged_over, 1)
        check_int(owner, "min_averaged", self.min_averaged, 1)
        check_float(owner, "noise_sigmas", self.noise_sigmas, 0.0)
        check_float(owner, "min_rise", self.min_rise, 0.0)
        check_int(owner, "min_points", self.min_points, 2)
        check_int(owner, "noise_points", self.noise_points, 4)


@quiet
def detect_catapult(
    steps: Any,
    values: Any,
    config: CatapultConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """The first early climb of a window-averaged ``metric`` (at most one finding).

    ``step`` is the first logged value between ``from_step`` and ``until_step`` at or above
    ``ratio`` times the lowest value logged before it, ``end_step`` the last value before the
    series came back below the midpoint of the climb (or the last logged value). Warning when
    it came back down, critical when it did not.
    Values that are not finite or not positive are left out (other rules report them).
    """
    cfg = config or CatapultConfig()
    s, v = finite_series(steps, values)
    keep = v > 0
    s, v = s[keep], v[keep]
    if s.size < cfg.min_points:
        return []
    averaged = steps_per_value(cfg.averaged_over, s)
    if averaged < cfg.min_averaged:
        return []
    y = np.log(v)
    # Below ``noise_points`` values the noise cannot be told from the climb itself (the first
    # few window means of a live run): the bare ratio decides.
    sigma = robust_noise(y) if y.size >= cfg.noise_points else math.nan
    # The climb must clear the noise: ``noise_sigmas`` of it, plus how far the lowest of the
    # ``i`` earlier values sits below their level by chance (about sqrt(2 ln i) sigmas).
    need = np.full(y.size, math.log(cfg.ratio))
    if math.isfinite(sigma):
        extreme = np.sqrt(2.0 * np.log(np.maximum(2.0, np.arange(y.size, dtype=np.float64))))
        need = np.maximum(need, (cfg.noise_sigmas + extreme) * sigma)
    prev_min = running_min_before(y)
    level0 = float(v[0])
    with np.errstate(over="ignore"):
        base_lin = np.exp(prev_min)
    with np.errstate(invalid="ignore", over="ignore"):
        hit = (y - prev_min >= need - LOG_TIE) & (
            v - base_lin >= cfg.min_rise * level0 * (1.0 - LOG_TIE)
        )
    if cfg.from_step is not None:
        hit &= s >= cfg.from_step
    if cfg.until_step is not None:
        hit &= s <= cfg.until_step
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return []
    i = int(idx[0])
    base = float(base_lin[i])
    # The climb lasts while the loss stays above the midpoint between its best and its peak.
    mid = float(prev_min[i]) + float(need[i]) / 2.0
    below = first_below(y, i + 1, mid - LOG_TIE)
    recovered = below is not None
    k = below - 1 if below is not None else s.size - 1
    peak_i = i + int(np.argmax(y[i : k + 1]))
    peak = float(v[peak_i])
    ratio = peak / base if base > 0 else math.inf
    tail = "came back down" if recovered else "has not come back down"
    threshold = exp_(float(need[i]))
    return [
        Finding(
            kind="catapult",
            severity=Severity.WARNING if recovered else Severity.CRITICAL,
            metric=metric,
            step=int(s[i]),
            end_step=int(s[k]),
            message=(
                f"{metric} (the mean of {int(averaged)} steps) climbs from its best "
                f"{fmt(base)} to {fmt(peak)} (x{fmt_ratio(ratio)}, threshold x{threshold:.3g}) "
                + (
                    f"at step {int(s[i])}"
                    if k == i
                    else f"from step {int(s[i])} to step {int(s[k])}"
                )
                + f" and {tail}"
            ),
            evidence={
                "rule": "catapult",
                "value": peak,
                "value_at_onset": float(v[i]),
                "peak_step": int(s[peak_i]),
                "baseline": base,
                "threshold": threshold,
                "ratio": ratio,
                "recovered": bool(recovered),
                "points": int(k - i + 1),
                "averaged_over": int(averaged),
                "detected_step": int(s[i]),
            },
        )
    ]
