"""Spikes: single points far above the recent level, by a robust z-score on a log scale.

``z = (y - median of the last points) / noise`` where the noise is the MAD of point-to-point
differences over a longer trailing window (differencing removes the slow downward trend of a
falling loss). On a log scale a constant factor on the loss cancels, so findings do not change
when the loss is scaled. A logged HF loss is a mean over ``logging_steps`` training steps: a
one-step spike of factor ``r`` moves that mean by only ``(r - 1) / k``, so the minimum jump
shrinks with the averaging while the z-score adapts to the (smaller) noise on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import (
    LOG_TIE,
    MAD_TO_SIGMA,
    check_float,
    check_int,
    check_optional_int,
    exp_,
    finite_series,
    first_below,
    fmt,
    fmt_ratio,
    median_spacing,
    preceding_median,
    quiet,
    to_scale,
    true_runs,
)
from ._types import Finding, Severity

__all__ = ["SpikeConfig", "detect_spikes"]


@dataclass(frozen=True)
class SpikeConfig:
    """Thresholds of the spike rule.

    Attributes:
        z: robust z-score at or above which a point is a spike (OLMo/Levanter use 6-7 on
            per-step values). Default 6.0.
        window: trailing window for the noise estimate, in logged points. Default 50.
        baseline: trailing window for the reference level (median), in logged points. Default 8.
        min_history: logged points needed before the first point can be judged. Default 8.
        min_ratio: smallest jump factor over the reference level for a per-step value (LLM
            Foundry uses 2). For a value averaged over ``k`` training steps the factor is
            ``1 + (min_ratio - 1) / sqrt(k)``, floored at ``min_ratio_floor``. Default 2.0.
        min_ratio_floor: smallest jump factor at any averaging. Default 1.15.
        recovery: logged points after a spike within which the metric must come back below
            the midpoint of the jump for the spike to count as transient (info); one that
            comes back later is a warning, one that never does is critical. Default 5.
        min_rise_share: the jump must also be at least this share of the series' starting
            level (median of its first 3 points), which ignores wobbles of a loss that has
            converged near 0. Default 0.02.
        averaged_over: training steps each logged value averages (``logging_steps`` for an HF
            loss; 1 for a grad norm, which is the last step's). ``None`` (default) uses the
            median step spacing for a loss and 1 for any other metric.
        noise_floor: smallest noise (robust sigma) the z-score divides by, as a share of the
            level (log units when the series is judged on a log scale). A perfectly flat
            history would otherwise make any jump infinitely unusual. Default 0.01.
        complete: the series will get no more points (a finished run). A spike within the
            last ``recovery`` points that has not come back is then critical: the run ended
            before it came back; unless it is the last point alone and below the series'
            starting level, which stays a warning (one value: a blip or a blow-up).
            Otherwise (default False) it is a warning, too recent to tell.
    """

    z: float = 6.0
    window: int = 50
    baseline: int = 8
    min_history: int = 8
    min_ratio: float = 2.0
    min_ratio_floor: float = 1.15
    recovery: int = 5
    min_rise_share: float = 0.02
    averaged_over: int | None = None
    noise_floor: float = 0.01
    complete: bool = False

    def __post_init__(self) -> None:
        owner = "SpikeConfig"
        check_float(owner, "z", self.z, 0.0, low_open=True)
        check_int(owner, "window", self.window, 3)
        check_int(owner, "baseline", self.baseline, 1)
        check_int(owner, "min_history", self.min_history, 3)
        check_float(owner, "min_ratio", self.min_ratio, 1.0)
        check_float(owner, "min_ratio_floor", self.min_ratio_floor, 1.0)
        check_int(owner, "recovery", self.recovery, 1)
        check_float(owner, "min_rise_share", self.min_rise_share, 0.0)
        check_optional_int(owner, "averaged_over", self.averaged_over, 1)
        check_float(owner, "noise_floor", self.noise_floor, 0.0, low_open=True)


def _noise_before(dy: np.ndarray, i: int, w: int) -> float:
    """Robust sigma of the ``w`` point-to-point differences before point ``i``."""
    part = dy[max(0, i - 1 - w) : i - 1]
    if part.size < 2:
        return math.nan
    mad = float(np.median(np.abs(part - np.median(part))))
    return MAD_TO_SIGMA * mad / math.sqrt(2.0)


@quiet
def detect_spikes(
    steps: Any,
    values: Any,
    config: SpikeConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """Points whose robust z-score against the trailing window is at least ``z``.

    Consecutive spike points form one finding. Severity: info when the metric came back
    within ``recovery`` points (transient), warning when it came back only later or the
    series ends before that can be told, critical when it has not come back.
    """
    cfg = config or SpikeConfig()
    s, v = finite_series(steps, values)
    if s.size <= cfg.min_history:
        return []
    y, logged = to_scale(v)
    n = y.size
    k = cfg.averaged_over
    if k is None:
        k = max(1, round(median_spacing(s))) if metric.lower().endswith("loss") else 1
    factor = max(cfg.min_ratio_floor, 1.0 + (cfg.min_ratio - 1.0) / math.sqrt(k))

    base = preceding_median(y, cfg.baseline)
    count = np.arange(n)  # points of history before each point
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if logged:
            jump_ok = (y - base) >= math.log(factor) - LOG_TIE
        else:
            jump_ok = (y - base) >= (factor - 1.0) * np.abs(base)
        level0 = float(np.median(v[: min(3, n)]))
        jump_ok &= (v - (np.exp(base) if logged else base)) >= (
            cfg.min_rise_share * abs(level0) * (1.0 - LOG_TIE)
        )
    # The z-score needs a median of the trailing window; computing it only where the cheap
    # jump rule already holds keeps a 5,000-point series at a fraction of a millisecond.
    z = np.zeros(n)
    dy = np.diff(y)
    for i in np.flatnonzero(jump_ok & (count >= cfg.min_history)):
        sigma = _noise_before(dy, int(i), cfg.window)
        floor = cfg.noise_floor * (1.0 if logged else abs(float(base[i])))
        if not sigma >= floor:  # also NaN: too little history for a spread
            sigma = floor
        if sigma > 0:
            z[i] = (y[i] - base[i]) / sigma
        elif y[i] > base[i]:
            z[i] = math.inf  # a flat history at level 0 on a linear scale
    flag = (count >= cfg.min_history) & jump_ok & (z >= cfg.z - (LOG_TIE if logged else 0.0))
    out: list[Finding] = []
    suffix_min = np.minimum.accumulate(y[::-1])[::-1] if flag.any() else y
    for a, b in true_runs(flag):
        ref = float(base[a])
        top = a + int(np.argmax(y[a : b + 1]))
        mid = ref + (float(y[top]) - ref) / 2.0
        bar = mid - (LOG_TIE if logged else 0.0)
        # Points until it came back below the midpoint (None: never); a series that never
        # does is told by its suffix minimum without a search.
        below = first_below(y, b + 1, bar) if b + 1 < n and suffix_min[b + 1] < bar else None
        back = None if below is None else below - b
        if back is not None and back <= cfg.recovery:
            sev, recovered = Severity.INFO, True
        elif back is not None:
            # Back, but only after the recovery window: a stretch, not a blip; a warning that
            # says so rather than "did not come back" (the climb rules judge the stretch).
            sev, recovered = Severity.WARNING, True
        elif n - 1 - b >= cfg.recovery or (cfg.complete and (a < n - 1 or float(v[top]) > level0)):
            # A finished run that ended inside a spike of two or more points ended in it; a
            # spike on its very last point alone is one value, as likely a blip as a blow-up,
            # unless it is back above where the series started (all it learned is lost).
            sev, recovered = Severity.CRITICAL, False
        else:
            sev, recovered = Severity.WARNING, None
        ref_val = exp_(ref) if logged else ref
        val = float(v[top])
        ratio = val / ref_val if ref_val > 0 else math.inf
        state = {True: "came back", False: "did not come back", None: "too recent to tell"}
        tail = state[recovered]
        if recovered is False and n - 1 - b < cfg.recovery:
            tail = "the run ended before it came back"
        elif recovered and back is not None and back > cfg.recovery:
            tail = f"came back after {back} logged points (at step {int(s[b + back])})"
        out.append(
            Finding(
                kind="spike",
                severity=sev,
                metric=metric,
                step=int(s[a]),
                end_step=int(s[b]),
                message=(
                    f"{metric} spikes to {fmt(val)} at step {int(s[top])} (x{fmt_ratio(ratio)} its "
                    f"recent median {fmt(ref_val)}, robust z {float(z[top]):.1f} >= {cfg.z:g}); "
                    f"{tail}"
                ),
                evidence={
                    "value": val,
                    "baseline": ref_val,
                    "threshold": cfg.z,
                    "z": float(z[top]) if math.isfinite(float(z[top])) else None,
                    "ratio": ratio,
                    "min_ratio": factor,
                    "averaged_over": int(k),
                    "recovered": recovered,
                    "recovered_after": back,
                    "peak_step": int(s[top]),
                },
            )
        )
    return out
