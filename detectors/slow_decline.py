"""Slow decline: the loss barely moves at the start of the run, or falls much more slowly while
the LR warms up than once it has peaked.

A slow start is expected while the LR is tiny; what matters is how long the run spends there.
This detector measures it in training steps (``evidence["flat_until"]``) and leaves the
judgement "was the warmup too long" to the diagnosis, which knows the schedule.
"""

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
    robust_noise,
    to_scale,
    trailing_median,
)
from ._types import Finding, Severity

__all__ = ["FlatStart", "SlowDeclineConfig", "detect_slow_decline", "flat_start"]


@dataclass(frozen=True)
class SlowDeclineConfig:
    """Thresholds of the slow-decline rules.

    Attributes:
        min_drop: the loss has "started to move" once its smoothed value is this share below
            the starting level (0.03 = 3% lower), or ``noise_sigmas`` noise levels below it,
            whichever is larger. Default 0.03.
        noise_sigmas: see ``min_drop``. Default 3.0.
        smooth: trailing-median width, in logged points. Default 3.
        hold: logged points after the first clear drop during which the smoothed loss must not
            return to within half the threshold of its start (so a noisy dip does not count).
            Default 5.
        min_flat_share: a flat start is reported when it lasts at least this share of the
            logged span (training steps). Default 0.1.
        min_flat_points: ... and at least this many logged points. Default 3.
        rate_ratio: with ``warmup_end_step`` known, the loss falling this many times more
            slowly (per training step, log scale) during the warmup than in the same number of
            steps after it is reported. Default 3.0.
        min_points: series with fewer finite logged points give no finding. Default 5.
        warmup_end_step: the training step at which the LR peaks; ``None`` disables the rate
            comparison.
    """

    min_drop: float = 0.03
    noise_sigmas: float = 3.0
    smooth: int = 3
    hold: int = 5
    min_flat_share: float = 0.1
    min_flat_points: int = 3
    rate_ratio: float = 3.0
    min_points: int = 5
    warmup_end_step: int | None = None

    def __post_init__(self) -> None:
        owner = "SlowDeclineConfig"
        check_float(owner, "min_drop", self.min_drop, 0.0, 1.0, high_open=True)
        check_float(owner, "noise_sigmas", self.noise_sigmas, 0.0)
        check_int(owner, "smooth", self.smooth, 1)
        check_int(owner, "hold", self.hold, 0)
        check_float(owner, "min_flat_share", self.min_flat_share, 0.0, 1.0)
        check_int(owner, "min_flat_points", self.min_flat_points, 1)
        check_float(owner, "rate_ratio", self.rate_ratio, 1.0, low_open=True)
        check_int(owner, "min_points", self.min_points, 3)
        check_optional_int(owner, "warmup_end_step", self.warmup_end_step, 0)


@dataclass(frozen=True)
class FlatStart:
    """How long the loss stayed at its starting level.

    ``until`` is the first logged step at which the smoothed loss had clearly left the starting
    level (the last logged step when it never did: ``moved`` is then ``False``); ``points``
    the logged points before it; ``start_value`` the starting level; ``threshold`` the drop
    that counts as "moved" on the log scale.
    """

    first_step: int
    until: int
    points: int
    moved: bool
    start_value: float
    value_at_until: float
    threshold: float


@quiet
def flat_start(
    steps: Any, values: Any, config: SlowDeclineConfig | None = None
) -> FlatStart | None:
    """Measure the flat start of a positive loss; ``None`` for short or non-positive series."""
    s, v = finite_series(steps, values)
    return _flat_start(s, v, config or SlowDeclineConfig())


def _flat_start(s: np.ndarray, v: np.ndarray, cfg: SlowDeclineConfig) -> FlatStart | None:
    """:func:`flat_start` of an already cleaned series (finite values, sorted unique steps)."""
    if s.size < cfg.min_points:
        return None
    y, logged = to_scale(v)
    if not logged:
        return None
    # The starting level: the first point, or the median of the first three when that is
    # higher (a noisy low first point must not make the start look flat for longer).
    level0 = max(float(y[0]), float(np.median(y[: min(3, y.size)])))
    # Noise of the early part only: later, noisier stretches must not hide an early fall.
    sigma = robust_noise(y[: max(10, min(30, y.size // 5))])
    width = cfg.smooth
    sig_s = 1.25 * sigma / math.sqrt(width) if math.isfinite(sigma) else 0.0
    need = max(-math.log(1.0 - cfg.min_drop), cfg.noise_sigmas * sig_s)
    ys = trailing_median(y, width)
    below = ys <= level0 - need
    # Moved for good: below the threshold and not back above half of it for the next few
    # points (a noisy dip that returns to the starting level does not end the flat start).
    back = ys > level0 - need / 2
    moved = False
    i = s.size - 1
    for j in np.flatnonzero(below):
        if not back[j + 1 : j + 1 + cfg.hold].any():
            lo = max(0, j - width + 1)
            # The smoothed value lags by about half its width: the raw point that crossed first.
            raw = np.flatnonzero(y[lo : j + 1] <= level0 - need)
            i = lo + int(raw[0]) if raw.size else int(j)
            moved = True
            break
    return FlatStart(
        first_step=int(s[0]),
        until=int(s[i]),
        points=int(i),
        moved=moved,
        start_value=exp_(level0),
        value_at_until=float(v[i]),
        threshold=need,
    )


@quiet
def detect_slow_decline(
    steps: Any,
    values: Any,
    config: SlowDeclineConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """Findings ``kind="slow_decline"``: a long flat start and/or a slow warmup phase.

    ``evidence["rule"]`` is ``"flat_start"`` (loss at its starting level for at least
    ``min_flat_share`` of the logged span) or ``"slow_in_warmup"`` (loss falling
    ``rate_ratio`` times more slowly per step before ``warmup_end_step`` than after it).
    Both are warnings: whether they cost anything depends on the schedule.
    """
    cfg = config or SlowDeclineConfig()
    s, v = finite_series(steps, values)
    fs = _flat_start(s, v, cfg)
    if fs is None:
        return []
    out: list[Finding] = []
    span = float(s[-1] - s[0]) or 1.0
    origin = 0 if s[0] <= 2 * max(1, s[1] - s[0]) else int(s[0])
    flat_steps = fs.until - origin
    share = (fs.until - s[0]) / span
    if fs.points >= cfg.min_flat_points and share >= cfg.min_flat_share:
        state = (
            f"only starts to fall at step {fs.until} ({fmt(fs.value_at_until)})"
            if fs.moved
            else f"has not clearly fallen by the last logged step {fs.until}"
        )
        out.append(
            Finding(
                kind="slow_decline",
                severity=Severity.WARNING,
                metric=metric,
                step=int(s[0]),
                end_step=fs.until,
                message=(
                    f"{metric} stays near its starting level {fmt(fs.start_value)} and {state}: "
                    f"{flat_steps} steps, {100 * share:.0f}% of the logged steps "
                    f"(threshold {100 * cfg.min_flat_share:.0f}%)"
                ),
                evidence={
                    "rule": "flat_start",
                    "value": float(share),
                    "threshold": cfg.min_flat_share,
                    "baseline": fs.start_value,
                    "flat_until": fs.until,
                    "flat_steps": int(flat_steps),
                    "moved": fs.moved,
                },
            )
        )
    if cfg.warmup_end_step is not None:
        f = _slow_in_warmup(s, v, cfg, metric)
        if f is not None:
            out.append(f)
    out.sort(key=lambda f: (f.step, str(f.evidence.get("rule"))))
    return out


def _slow_in_warmup(
    s: np.ndarray, v: np.ndarray, cfg: SlowDeclineConfig, metric: str
) -> Finding | None:
    """Log-loss drop per step during the warmup vs. the same number of steps after it."""
    y, logged = to_scale(v)
    w_end = cfg.warmup_end_step
    if not logged or w_end is None or w_end <= s[0]:
        return None
    ys = trailing_median(y, cfg.smooth)
    dur = w_end - int(s[0])
    i_end = int(np.searchsorted(s, w_end, side="right")) - 1
    i_after = int(np.searchsorted(s, w_end + dur, side="right")) - 1
    if i_end < 2 or i_after - i_end < 2:
        return None
    rate_w = (float(ys[0]) - float(ys[i_end])) / max(1, s[i_end] - s[0])
    rate_a = (float(ys[i_end]) - float(ys[i_after])) / max(1, s[i_after] - s[i_end])
    if rate_a <= 0 or rate_w * cfg.rate_ratio > rate_a:
        return None
    ratio = rate_a / rate_w if rate_w > 0 else math.inf
    return Finding(
        kind="slow_decline",
        severity=Severity.WARNING,
        metric=metric,
        step=int(s[0]),
        end_step=int(s[i_end]),
        message=(
            f"{metric} falls {'x' + format(ratio, '.1f') if math.isfinite(ratio) else 'far'} "
            f"more slowly per step during the warmup (steps {int(s[0])}-{int(s[i_end])}) than "
            f"after it (steps {int(s[i_end])}-{int(s[i_after])}; threshold x{cfg.rate_ratio:g})"
        ),
        evidence={
            "rule": "slow_in_warmup",
            "value": ratio if math.isfinite(ratio) else None,
            "threshold": cfg.rate_ratio,
            "rate_warmup": rate_w,
            "rate_after": rate_a,
            "baseline": float(v[0]),
        },
    )
