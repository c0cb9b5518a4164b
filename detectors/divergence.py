"""Divergence: the loss climbs well above its best level so far and stays there.

Compared on a log scale (ratios) when the loss is positive, so the rule does not depend on the
loss's units. The loss is smoothed by a trailing median whose width grows with the
point-to-point noise, so per-step noisy losses need a longer climb than window-averaged ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    to_scale,
    trailing_median,
    true_runs,
)
from ._types import Finding, Severity

__all__ = ["DivergenceConfig", "detect_divergence"]


@dataclass(frozen=True)
class DivergenceConfig:
    """Thresholds of the divergence rule.

    Attributes:
        ratio: the smoothed loss must reach this multiple of its running minimum. Default 1.5.
        min_rise: the climb must also be at least this share of the starting loss level
            (ignores tiny absolute wobbles of a loss that has converged near 0), and a loss
            "above its starting level" must stand this share above it (a loss still flat at
            its start wobbles around it). Default 0.1.
        smooth: smallest trailing-median width, in logged points. Default 3.
        max_smooth: largest trailing-median width for very noisy (per-step) losses, in logged
            points. Default 51.
        noise_sigmas: the climb must exceed this many standard deviations of the smoothed
            noise. Default 4.0.
        patience: logged points in a row the smoothed loss must stay above the threshold.
            Default 2.
        sustain: a climb that later comes back down is a warning when it lasted at least this
            many training steps or peaked at ``ratio**2`` times the best or more, otherwise
            info; a rise above the starting level is judged the same way. A logged point
            counts for the training steps it stands for (see ``averaged_over``). Default 5.
        min_points: series with fewer finite logged points give no finding. Default 4.
        after_step: training step after which a loss above its starting level is also
            reported (usually the end of the warmup); ``None`` (default) disables that rule.
        averaged_over: training steps each logged value stands for (``logging_steps`` for a
            Trainer's window mean); a rise above the starting level is long when its points
            cover ``sustain`` training steps. ``None`` (default) takes the median step spacing.
    """

    ratio: float = 1.5
    min_rise: float = 0.1
    smooth: int = 3
    max_smooth: int = 51
    noise_sigmas: float = 4.0
    patience: int = 2
    sustain: int = 5
    min_points: int = 4
    after_step: int | None = None
    averaged_over: int | None = None

    def __post_init__(self) -> None:
        owner = "DivergenceConfig"
        check_float(owner, "ratio", self.ratio, 1.0, low_open=True)
        check_float(owner, "min_rise", self.min_rise, 0.0)
        check_int(owner, "smooth", self.smooth, 1)
        check_int(owner, "max_smooth", self.max_smooth, 1)
        if self.max_smooth < self.smooth:
            raise ValueError(
                "The 'max_smooth' parameter of DivergenceConfig must be an int in the range "
                f"[{self.smooth}, inf). Got {self.max_smooth!r} instead."
            )
        check_float(owner, "noise_sigmas", self.noise_sigmas, 0.0)
        check_int(owner, "patience", self.patience, 1)
        check_int(owner, "sustain", self.sustain, 1)
        check_int(owner, "min_points", self.min_points, 2)
        check_optional_int(owner, "after_step", self.after_step, 0)
        check_optional_int(owner, "averaged_over", self.averaged_over, 1)


def smoothing_width(
    y: np.ndarray, rise: float, cfg: DivergenceConfig, *, sigma: float | None = None
) -> int:
    """Trailing-median width so that a climb of ``rise`` stands clear of the noise.

    The median of ``w`` points has a standard deviation of about ``1.25 * sigma / sqrt(w)``.
    The current median must stand ``noise_sigmas`` of those above the running minimum, and the
    running minimum of ``m`` medians sits about ``sqrt(2 ln m)`` of them below the true level
    (the extreme of many noisy values), hence the second term. Short series are capped at a
    quarter of their length; the noise bands of :func:`detect_divergence` guard them.
    ``sigma`` is ``robust_noise(y)`` when the caller already has it.
    """
    if sigma is None:
        sigma = robust_noise(y)
    if not math.isfinite(sigma) or sigma <= 0 or rise <= 0:
        return cfg.smooth
    extreme = math.sqrt(2.0 * math.log(max(2.0, y.size / cfg.smooth)))
    ratio = min(1e3, (cfg.noise_sigmas + extreme) * 1.25 * sigma / rise)
    need = ratio**2
    cap = max(cfg.smooth, min(cfg.max_smooth, y.size // 4))
    return int(min(cap, max(cfg.smooth, math.ceil(need))))


@quiet
def detect_divergence(
    steps: Any,
    values: Any,
    config: DivergenceConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """Stretches where the smoothed ``metric`` stays ``ratio`` times above its running minimum.

    ``step`` is the first logged point of the climb that is above the threshold, ``end_step``
    the last point before it came back down (or the last logged point). Critical when the loss
    has not come back by the last logged point, warning when it came back after ``sustain``
    training steps or more or after peaking at ``ratio**2`` times the best, info for shorter
    climbs.
    With ``after_step`` set, a smoothed loss above the starting level after that step is
    reported too (``evidence["rule"] == "above_start"``).
    """
    cfg = config or DivergenceConfig()
    s, v = finite_series(steps, values)
    if s.size < cfg.min_points:
        return []
    y, logged = to_scale(v)
    if logged:
        rise_needed = math.log(cfg.ratio)
    else:
        # Linear scale (zeros or negative values): express the ratio against the start level.
        scale = float(np.median(np.abs(y[: min(3, y.size)]))) or float(np.max(np.abs(y))) or 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            y = y / scale
        rise_needed = cfg.ratio - 1.0
    sigma = robust_noise(y)
    width = smoothing_width(y, rise_needed, cfg, sigma=sigma)
    ys = trailing_median(y, width)
    level0 = float(np.median(v[: min(3, v.size)]))
    out: list[Finding] = []
    n = ys.size
    # Running minimum of the smoothed curve *before* each point. Early points are medians of
    # fewer values and noisier: a climb must also clear both medians' noise bands, so a lucky
    # low first point of a noisy per-step loss does not become the "best".
    band = cfg.noise_sigmas * 1.25 * (sigma if math.isfinite(sigma) else 0.0) / math.sqrt(2.0)
    n_used = np.minimum(np.arange(n) + 1, width).astype(np.float64)
    upper = ys + band / np.sqrt(n_used)
    lower = ys - band / np.sqrt(n_used)
    prev_min = running_min_before(ys)
    prev_upper = running_min_before(upper)
    base_lin = np.exp(prev_min) if logged else prev_min
    cur_lin = np.exp(ys) if logged else ys
    min_abs = cfg.min_rise * abs(level0) if logged else cfg.min_rise
    with np.errstate(invalid="ignore", over="ignore"):
        above = (
            (ys - prev_min >= rise_needed - LOG_TIE)
            & (lower >= prev_upper - LOG_TIE)
            & (cur_lin - base_lin >= min_abs * (1.0 - LOG_TIE))
        )
    # Index of the best smoothed point before each climb (the first minimum, as argmin).
    best_before = _running_argmin(ys)
    each = steps_per_value(cfg.averaged_over, s)
    for i, _, k in _climbs(above, ys, prev_min, rise_needed / 2, cfg.patience):
        base = float(prev_min[i])
        # Onset: the first raw point of the smoothing window that is above the threshold and
        # after the best point so far.
        best_i = best_before(i)
        lo = max(best_i + 1, i - width + 1)
        raw_above = np.flatnonzero(y[lo : i + 1] - base >= rise_needed - LOG_TIE)
        onset = lo + int(raw_above[0]) if raw_above.size else i
        recovered = k < n - 1
        length = k - onset + 1
        peak_i = onset + int(np.argmax(y[onset : k + 1]))
        base_val = exp_(base) if logged else base * scale
        peak_val = float(v[peak_i])
        ratio = peak_val / base_val if base_val > 0 else math.inf
        if not recovered:
            sev = Severity.CRITICAL
        elif length * each >= cfg.sustain or ratio >= cfg.ratio**2:
            # Long, or brief but far above the threshold (a blow-up that training survived).
            # Long is counted in training steps, as for a rise above the start.
            sev = Severity.WARNING
        else:
            sev = Severity.INFO
        tail = "came back down" if recovered else "has not come back down"
        out.append(
            Finding(
                kind="divergence",
                severity=sev,
                metric=metric,
                step=int(s[onset]),
                end_step=int(s[k]),
                message=(
                    f"{metric} climbs from its best {fmt(base_val)} to {fmt(peak_val)} "
                    f"(x{fmt_ratio(ratio)}, threshold x{cfg.ratio:g}) from step {int(s[onset])} to "
                    f"step {int(s[k])} and {tail}"
                ),
                evidence={
                    "rule": "above_min",
                    "value": peak_val,
                    "value_at_onset": float(v[onset]),
                    "peak_step": int(s[peak_i]),
                    "baseline": base_val,
                    "threshold": cfg.ratio,
                    "ratio": ratio,
                    "recovered": bool(recovered),
                    "points": int(length),
                    "smoothing": int(width),
                    "detected_step": int(s[min(i + cfg.patience - 1, n - 1)]),
                },
            )
        )
    if cfg.after_step is not None:
        out.extend(_above_start(s, v, y, ys, logged, level0, width, cfg, metric, out))
    out.sort(key=lambda f: (f.step, f.kind))
    return out


def _climbs(
    above: np.ndarray, ys: np.ndarray, prev_min: np.ndarray, half: float, patience: int
) -> list[tuple[int, int, int]]:
    """``(first, last_above, end)`` indices of each climb, in order.

    A climb is a stretch of at least ``patience`` consecutive ``above`` points (a shorter one at
    the very end is too early to tell and ends the search); it lasts until the smoothed value
    ``ys`` falls back below ``half`` the threshold above the best before the climb, and the
    next climb is looked for after it. Found stretch by stretch, never point by point.
    """
    n = above.size
    out: list[tuple[int, int, int]] = []
    i = 0
    for a, j in true_runs(above):
        if j < i:
            continue  # inside the previous climb
        a = max(a, i)
        if j - a + 1 < patience:
            if j < n - 1:
                continue
            break
        k = _last_of_stretch(ys, j, float(prev_min[a]), half)
        out.append((a, j, k))
        i = k + 1
    return out


def _running_argmin(ys: np.ndarray) -> Callable[[int], int]:
    """``i -> np.argmin(ys[:i])`` (0 for ``i == 0``) without rescanning the prefix each time.

    The first minimum is kept, as ``np.argmin`` does: an index counts when it is strictly below
    everything before it. With NaN in ``ys`` (``np.argmin`` then picks the first NaN) each
    prefix is scanned.
    """
    if ys.size == 0 or np.isnan(ys).any():
        return lambda i: int(np.argmin(ys[:i])) if i > 0 else 0
    before = np.minimum.accumulate(ys)[:-1]
    records = np.flatnonzero(np.concatenate(([True], ys[1:] < before)))

    def best(i: int) -> int:
        return 0 if i <= 0 else int(records[np.searchsorted(records, i - 1, side="right") - 1])

    return best


def _last_of_stretch(ys: np.ndarray, j: int, base: float, half: float) -> int:
    """The last index ``k >= j`` such that ``ys[j+1 : k+1] - base >= half`` holds throughout."""
    below = first_below(ys, j + 1, half - LOG_TIE, offset=base)
    return ys.size - 1 if below is None else below - 1


def _above_start(
    s: np.ndarray,
    v: np.ndarray,
    y: np.ndarray,
    ys: np.ndarray,
    logged: bool,
    level0: float,
    width: int,
    cfg: DivergenceConfig,
    metric: str,
    found: list[Finding],
) -> list[Finding]:
    """The smoothed loss above its starting level after ``cfg.after_step`` (not already found).

    ``y`` is ``v`` on the log scale (``to_scale``) and ``ys`` its trailing median.
    """
    if not logged or level0 <= 0:
        return []
    start = math.log(level0)
    # Above by ``min_rise`` of the starting level, as for a climb: a loss still flat at its
    # start (a small LR, or no warmup and the first steps) wobbles around it by noise alone.
    bar = start + math.log1p(cfg.min_rise)
    # The points that define the starting level (the first three) are never "above" it.
    after = (s > (cfg.after_step or 0)) & (np.arange(s.size) >= min(3, s.size))
    gt = ys > bar + LOG_TIE
    idx = np.flatnonzero(after & gt)
    if idx.size < cfg.patience:
        return []
    # First stretch of ``patience`` consecutive points (the first one after ``after_step``).
    p = cfg.patience
    if s.size < p:
        return []
    stretch = np.lib.stride_tricks.sliding_window_view(gt, p).all(axis=1)
    firsts = idx[idx <= s.size - p]
    firsts = firsts[stretch[firsts]]
    if firsts.size == 0:
        return []
    a = int(firsts[0])
    # Onset, as for a climb: the first raw point of the smoothing window that is above the bar
    # (the trailing median lags the raw values by up to half its width).
    lo = max(int(np.flatnonzero(after)[0]), a - width + 1)
    raw_above = np.flatnonzero(y[lo : a + 1] > bar + LOG_TIE)
    onset = lo + int(raw_above[0]) if raw_above.size else a
    step = int(s[onset])
    if any(f.step <= step <= (f.end_step or f.step) for f in found):
        return []  # inside a climb already reported
    rest = ys[a:] > start + LOG_TIE
    recovered = not bool(rest[-1])
    if recovered:
        # As for a climb: a brief, moderate rise that came back is info; a long one, or one
        # far above the start (a blow-up the run survived), is a warning. Long is counted in
        # training steps: three window means of 10 steps are 30 steps above the start.
        points = int(np.argmin(rest))
        each = steps_per_value(cfg.averaged_over, s)
        top = exp_(float(ys[a : a + points].max()) - start)
        long_or_high = points * each >= cfg.sustain or top >= cfg.ratio**2
        sev = Severity.WARNING if long_or_high else Severity.INFO
        end = int(s[a + points - 1])
        tail = f"until step {end} and came back down"
    else:
        sev = Severity.CRITICAL
        end = int(s[-1])
        tail = "and has not come back down"
    return [
        Finding(
            kind="divergence",
            severity=sev,
            metric=metric,
            step=step,
            end_step=end,
            message=(
                f"{metric} {fmt(float(v[onset]))} at step {step} is above its starting level "
                f"{fmt(level0)} (threshold +{100 * cfg.min_rise:g}%) after step {cfg.after_step} "
                f"{tail}"
            ),
            evidence={
                "rule": "above_start",
                "value": float(v[onset]),
                "baseline": level0,
                "threshold": level0 * (1.0 + cfg.min_rise),
                "after_step": cfg.after_step,
                "recovered": recovered,
                "smoothing": int(width),
            },
        )
    ]
