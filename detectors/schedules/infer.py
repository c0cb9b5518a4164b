"""Infer the learning-rate schedule (warmup length and shape, peak, decay, implied run length).

Works on the logged LR trace alone: logged every k training steps, rounded (LLaMA-Factory
writes a few significant digits), or resumed (the run model keeps the last write of a step).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._common import as_series, check_float, check_int, median_spacing
from .._types import Finding, ScheduleFit, Severity

__all__ = ["ScheduleConfig", "detect_schedule", "infer_lr_schedule", "schedule_findings"]


@dataclass(frozen=True)
class ScheduleConfig:
    """Tolerances of the schedule fit.

    Attributes:
        peak_tolerance: relative distance from the maximum LR still counted as "at the peak"
            (absorbs rounding of the logged LR). Default 0.01 (1%).
        fit_tolerance: largest RMS error, relative to the peak LR, for a decay or warmup shape
            to be called linear/cosine/…; worse fits are ``"other"``/``"unknown"``. Default 0.03.
        min_points: fewer logged LR points than this give no fit (``None``). Default 3.
        long_warmup_share: warmup share of the run above which :func:`detect_schedule` reports
            a long warmup. The usual share is ~0.1; default 0.2 (the upper end of common advice).
    """

    peak_tolerance: float = 0.01
    fit_tolerance: float = 0.03
    min_points: int = 3
    long_warmup_share: float = 0.2

    def __post_init__(self) -> None:
        check_float("ScheduleConfig", "peak_tolerance", self.peak_tolerance, 0.0, 0.5)
        check_float("ScheduleConfig", "fit_tolerance", self.fit_tolerance, 0.0, 1.0, low_open=True)
        check_int("ScheduleConfig", "min_points", self.min_points, 2)
        check_float(
            "ScheduleConfig", "long_warmup_share", self.long_warmup_share, 0.0, 1.0, low_open=True
        )


def infer_lr_schedule(
    steps: Any, lrs: Any, config: ScheduleConfig | None = None
) -> ScheduleFit | None:
    """Fit the schedule behind a logged LR trace; ``None`` when there are too few finite points.

    Step values in the result are training steps from ``steps``. ``warmup_steps`` counts from
    training step 0 when the warmup line extrapolates back to it (an HF-style ramp from 0),
    otherwise from the first logged step.
    """
    cfg = config or ScheduleConfig()
    # Absurd traces (huge or denormal values) may overflow inside the fits; they then simply
    # fit nothing well, which the tolerances already handle.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        return _infer(steps, lrs, cfg)


def _infer(steps: Any, lrs: Any, cfg: ScheduleConfig) -> ScheduleFit | None:
    s, v = as_series(steps, lrs)
    ok = np.isfinite(v) & (v >= 0)
    s, v = s[ok], v[ok]
    if s.size < cfg.min_points:
        return None
    first, last = int(s[0]), int(s[-1])
    peak = float(v.max())
    notes: list[str] = []
    if peak <= 0.0:
        return ScheduleFit(
            first,
            last,
            0,
            "none",
            0.0,
            first,
            "constant",
            None,
            True,
            True,
            False,
            ("the learning rate is 0 at every logged step",),
        )
    # Rounded logs (a few significant digits) make neighbouring values tie; widen the
    # tolerance to the quantisation step seen in the trace.
    uniq = np.unique(v)
    quantum = float(np.min(np.diff(uniq))) if uniq.size > 1 else 0.0
    tol = max(cfg.peak_tolerance, min(0.05, quantum / peak if uniq.size <= 16 else 0.0))
    fit_tol = max(cfg.fit_tolerance, 2 * quantum / peak if uniq.size <= 16 else 0.0)
    if (peak - float(v.min())) <= tol * peak:
        return ScheduleFit(
            first,
            last,
            0,
            "none",
            peak,
            first,
            "constant",
            None,
            True,
            True,
            False,
            (f"the learning rate stays at {peak:.3g} from step {first} to step {last}",),
        )

    near = v >= peak * (1.0 - tol)
    i_peak = int(np.argmax(near))
    if i_peak > 0:
        # A warmup is the rise before the LR first falls. An LR that falls before it first comes
        # near its maximum has that maximum from a later cycle (a cosine with restarts whose
        # first logged point lies just past the top of its first cycle): the top before the
        # first fall ends the warmup.
        falls = np.flatnonzero(np.diff(v[: i_peak + 1]) < -tol * peak)
        if falls.size:
            i_peak = int(falls[0])
    peak_step = int(s[i_peak])
    spacing = median_spacing(s)

    # --- warmup --------------------------------------------------------------------------
    origin = 0.0 if first <= 2 * spacing else float(first)
    warmup_end = float(peak_step)
    ramp_start = 0
    if i_peak == 0:
        shape = "none"
        warmup_steps: int | None = 0
        if first > 1:
            notes.append(
                f"the LR is already at its peak {peak:.3g} at the first logged step {first}; "
                f"any warmup took at most {first} steps"
            )
    else:
        rs, rv = s[: i_peak + 1].astype(np.float64), v[: i_peak + 1]
        shape, s0, slope = _fit_warmup(rs, rv, peak, fit_tol)
        if shape == "linear" and slope > 0:
            # Linear ramp from LR 0 at ``s0``: where it meets the peak (between two logs).
            origin = min(max(s0, 0.0), float(first)) if s0 > -spacing else origin
            lo = float(s[i_peak - 1])
            warmup_end = min(max(s0 + peak / slope, lo), float(peak_step))
            if origin > 2 * spacing and s0 > 2 * spacing:
                # The ramp leaves 0 well after step 0 (from 0 within the first two logging
                # intervals is a ramp from step 0): a log that begins mid-training.
                ramp_start = round(origin)
        warmup_steps = max(0, round(warmup_end - origin))

    reached = i_peak < s.size - 1
    if reached and i_peak > 0 and np.all(np.diff(v[i_peak:]) > 0):
        # Within the peak tolerance but still climbing to the last point (a ramp logged every
        # step ends with points closer together than the tolerance): not a peak yet.
        reached = False
    if not reached and i_peak > 0:
        # The maximum is the last point and the LR was still climbing to it.
        notes.append(
            f"the LR is still rising at the last logged step {last} "
            f"({float(v[-1]):.3g}); the warmup is at least {last - round(origin)} steps"
        )
        return ScheduleFit(
            first,
            last,
            None,
            shape,
            peak,
            peak_step,
            "none",
            None,
            False,
            False,
            True,
            tuple(notes),
            warmup_start=ramp_start,
        )
    if i_peak == s.size - 1 and i_peak == 0:
        reached = True

    # --- decay ---------------------------------------------------------------------------
    post_s = s[i_peak:].astype(np.float64)
    post_v = v[i_peak:]
    decay, total, decay_start, floor = _fit_decay(
        post_s, post_v, peak, warmup_end, tol, fit_tol, spacing, notes
    )
    return ScheduleFit(
        first_step=first,
        last_step=last,
        warmup_steps=warmup_steps,
        warmup_shape=shape,
        peak_lr=peak,
        peak_step=peak_step,
        decay=decay,
        total_steps=total,
        reached_peak=reached,
        lr_never_moves=False,
        warmup_longer_than_run=False,
        notes=tuple(notes),
        decay_start=decay_start,
        decay_floor=floor,
        warmup_start=ramp_start,
    )


def _fit_warmup(
    rs: np.ndarray, rv: np.ndarray, peak: float, fit_tol: float
) -> tuple[str, float, float]:
    """Shape of the rising part: ``("linear", s0, slope)`` for ``lr = slope * (step - s0)``."""
    rising = rv < peak * 0.999
    xs, ys = rs[rising], rv[rising]
    if xs.size == 0:
        return "none", 0.0, 0.0
    if xs.size == 1:
        # One point below the peak: assume a ramp from 0 at step 0 (the HF default), unless
        # such a ramp would still be short of its peak a logging interval after the step the
        # peak is logged at: then it started later (a log that starts mid-training with a
        # warmup of its own), and the line from that point to the logged peak is the ramp.
        x, y, at_peak = float(xs[0]), float(ys[0]), float(rs[-1])
        if x <= 0 or y <= 0:
            return "unknown", 0.0, 0.0
        if x * peak / y <= at_peak + (at_peak - x) or at_peak <= x:
            return "linear", 0.0, y / x
        slope = (peak - y) / (at_peak - x)
        return "linear", x - y / slope, slope
    slope, intercept = np.polyfit(xs, ys, 1)
    if slope <= 0:
        return "unknown", 0.0, 0.0
    resid = ys - (slope * xs + intercept)
    rms = float(np.sqrt(np.mean(resid**2))) / peak
    if rms <= fit_tol:
        return "linear", float(-intercept / slope), float(slope)
    pos = ys > 0
    if pos.sum() >= 3:
        b, _ = np.polyfit(xs[pos], np.log(ys[pos]), 1)
        lin_log = np.polyval(np.polyfit(xs[pos], np.log(ys[pos]), 1), xs[pos])
        if b > 0 and float(np.sqrt(np.mean((np.exp(lin_log) - ys[pos]) ** 2))) / peak <= fit_tol:
            return "exponential", 0.0, 0.0
    return "unknown", 0.0, 0.0


def _fit_decay(
    ps: np.ndarray,
    pv: np.ndarray,
    peak: float,
    warmup_end: float,
    tol: float,
    fit_tol: float,
    spacing: float,
    notes: list[str],
) -> tuple[str, int | None, int | None, float | None]:
    """Decay kind after the peak, the run length it implies (where the LR reaches its floor),
    the step the decay starts at when the LR first stays at its peak (``None`` otherwise) and
    the floor as a share of the peak (``None`` for a decay to 0)."""
    if ps.size < 2:
        return "none", None, None, None
    y = pv / peak
    if np.all(y >= 1.0 - tol):
        if ps[-1] - ps[0] >= 2 * spacing or ps.size >= 3:
            return "constant", None, None, None
        return "none", None, None, None
    if ps.size > 400:
        # A few hundred points pin the decay down; thinning keeps the fit cheap for live use.
        keep = np.unique(np.linspace(0, ps.size - 1, 400).astype(np.int64))
        ps, pv, y = ps[keep], pv[keep], y[keep]
    # The decay starts at the end of the warmup, or after a stable phase at the peak
    # (warmup-stable-decay schedules): try both origins, keep the better fit.
    origins = [warmup_end]
    plateau = np.flatnonzero(y < 1.0 - tol)
    if plateau.size and plateau[0] >= 2:
        origins.append(float(ps[plateau[0] - 1]))
    best: tuple[str, float, float | None, float, float] | None = None
    from_peak = math.inf  # the best error of a decay that starts at the end of the warmup
    for origin in origins:
        for kind, err, d, floor in _decay_fits(ps, y, origin, warmup_end):
            if origin == warmup_end:
                from_peak = min(from_peak, err)
            if best is None or err < best[1] - 1e-12:
                best = (kind, err, d, floor, origin)
    if best is None:
        return "other", None, None, None
    kind, err, d, floor, origin = best
    if err > fit_tol:
        return "other", None, None, None
    start = None
    # A decay leaves the peak's tolerance only after a few steps (a cosine after ~6% of its
    # length): a stable phase is named only when a decay from the warmup's end fits clearly
    # worse, as it does for a warmup-stable-decay schedule.
    if origin > warmup_end and from_peak > max(2.0 * err, fit_tol / 3.0):
        start = round(origin)
        notes.append(f"the LR stays at its peak until step {start} before it decays")
    total = None
    if d is not None and kind in ("linear", "cosine"):
        total = round(origin + d)
        if floor:
            notes.append(
                f"the LR decays to a floor of {100 * floor:.3g}% of its peak (at step {total})"
            )
        if 1.0 - float(y.min()) < ROUGH_DROP:
            notes.append(
                f"the LR has decayed only {100 * (1 - float(y.min())):.0f}% from its peak; "
                f"the implied run length of {total} steps is a rough extrapolation"
            )
        if total < float(ps[-1]) - spacing:
            # Logged well past the end of its decay: the run was planned longer (a cooldown at
            # the floor, or a step decay the fit reads as a smooth one); no length is implied.
            notes.append(
                f"the decay reaches its end at step {total}, but the LR is logged to step "
                f"{round(float(ps[-1]))}: no run length is implied"
            )
            total = None
    return kind, total, start, (floor or None)


def _decay_fits(
    ps: np.ndarray, y: np.ndarray, origin: float, warmup_end: float
) -> list[tuple[str, float, float | None, float]]:
    """``(kind, rms error, D, floor)`` for decays starting at ``origin`` that reach their floor
    (a share of the peak, 0 for most schedules) at origin + D."""
    x = np.maximum(ps - origin, 0.0)
    span = float(x.max())
    if span <= 0:
        return []
    fits: list[tuple[str, float, float | None, float]] = []
    # Linear: closed-form least squares for 1/D.
    den = float(np.sum(x * x))
    inv_d = float(np.sum(x * (1.0 - y)) / den) if den > 0 else 0.0
    if inv_d > 0:
        d_lin = 1.0 / inv_d
        fits.append(("linear", _rms(y - np.clip(1.0 - x / d_lin, 0.0, None)), d_lin, 0.0))

    from scipy.optimize import minimize_scalar  # slow to import: only when fitting

    def search(err: Any) -> Any:
        return minimize_scalar(
            err,
            bounds=(span * 0.5, span * 1000.0),
            method="bounded",
            options={"xatol": max(1.0, span * 1e-3)},
        )

    def cosine(d: float) -> np.ndarray:
        return 0.5 * (1.0 + np.cos(np.pi * np.minimum(x / d, 1.0)))

    def line(d: float) -> np.ndarray:
        return np.clip(1.0 - x / d, 0.0, None)

    # Cosine to 0 (half period D): a bounded 1-D search.
    res = search(lambda d: _rms(y - cosine(d)))
    fits.append(("cosine", float(res.fun), float(res.x), 0.0))
    # The same shapes down to a floor above 0 (cosine_with_min_lr, a WSD min_lr_ratio, the
    # "decay to 10% of the peak" of most pretraining recipes): for each D the floor that fits
    # best is closed-form. Kept only when it clearly beats the decay to 0 (below).
    # A floor shows only where the LR levels off above it: the last tenth of the decay falls
    # at most a quarter as fast as the decay on average (a decay cut short is still steep).
    tail = x >= 0.9 * span
    drop = 1.0 - float(y[-1])  # y is the LR over its peak
    tail_drop = float(y[tail].max()) - float(y[-1])
    # A drop too small to pin the run length down cannot show a floor either.
    flattens = float(y.min()) >= MIN_FLOOR and drop >= ROUGH_DROP and tail_drop <= 0.25 * 0.1 * drop
    for kind, shape in (("linear", line), ("cosine", cosine)):
        to_zero = min((e for k, e, _, _ in fits if k == kind), default=math.inf)
        if not flattens or to_zero < FLOOR_SEARCH_ERROR:
            continue  # no floor shows, or the decay to 0 already fits
        res = search(lambda d, f=shape: _rms(y - _with_floor(y, f(d))))
        d = float(res.x)
        floor = _floor(y, shape(d))
        if floor >= MIN_FLOOR and float(res.fun) < FLOOR_GAIN * to_zero:
            fits.append((kind, float(res.fun), d, floor))
    if warmup_end > 0 and origin == warmup_end:
        fits.append(
            ("inverse_sqrt", _rms(y - np.sqrt(warmup_end / np.maximum(ps, warmup_end))), None, 0.0)
        )
    return fits


# A decay that has taken the LR less than this share below its peak implies a run length only
# roughly (its note says so), and shows no floor.
ROUGH_DROP = 0.1
# A decay floor counts when it is at least this share of the peak (below it, rounding of the
# logged LR and a decay to 0 cannot be told apart) and its fit has at most FLOOR_GAIN times the
# error of the same shape decaying to 0.
MIN_FLOOR = 0.02
FLOOR_GAIN = 0.5
# A decay to 0 that fits within this RMS share of the peak leaves nothing for a floor to explain
# (the search is skipped: most decays end near 0).
FLOOR_SEARCH_ERROR = 1e-3


def _floor(y: np.ndarray, f: np.ndarray) -> float:
    """The floor r (0 to 0.95) that fits ``y = r + (1 - r) f`` best, in closed form."""
    a = 1.0 - f
    den = float(np.sum(a * a))
    r = float(np.sum(a * (y - f)) / den) if den > 0 else 0.0
    return min(0.95, max(0.0, r))


def _with_floor(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    r = _floor(y, f)
    return r + (1.0 - r) * f


def _rms(r: np.ndarray) -> float:
    return float(np.sqrt(np.mean(r * r))) if r.size else math.inf


def detect_schedule(
    steps: Any,
    lrs: Any,
    config: ScheduleConfig | None = None,
    *,
    metric: str = "learning_rate",
) -> list[Finding]:
    """Findings about the LR schedule itself: never moves, never reaches its peak, long warmup.

    A long warmup is reported when the inferred warmup exceeds ``long_warmup_share`` of the
    run length implied by the decay (or of the logged steps when no decay is seen).
    """
    cfg = config or ScheduleConfig()
    fit = infer_lr_schedule(steps, lrs, cfg)
    if fit is None:
        return []
    return schedule_findings(fit, cfg, metric=metric)


def schedule_findings(
    fit: ScheduleFit, config: ScheduleConfig | None = None, *, metric: str = "learning_rate"
) -> list[Finding]:
    """The findings of :func:`detect_schedule` for an already inferred ``fit``."""
    cfg = config or ScheduleConfig()
    out: list[Finding] = []
    if fit.lr_never_moves:
        out.append(
            Finding(
                "schedule",
                Severity.INFO,
                metric,
                fit.first_step,
                fit.last_step,
                f"{metric} never moves: {fit.peak_lr:.3g} from step {fit.first_step} "
                f"to step {fit.last_step} (no warmup, no decay)",
                {"value": fit.peak_lr, "problem": "lr_never_moves", "threshold": None},
            )
        )
    elif not fit.reached_peak:
        out.append(
            Finding(
                "schedule",
                Severity.WARNING,
                metric,
                fit.first_step,
                fit.last_step,
                f"{metric} is still rising at the last logged step {fit.last_step} "
                f"({fit.peak_lr:.3g}): the warmup has not ended",
                {"value": fit.peak_lr, "problem": "still_rising", "threshold": None},
            )
        )
    else:
        share = fit.warmup_fraction
        if share is not None and share > cfg.long_warmup_share:
            total = fit.span
            out.append(
                Finding(
                    "schedule",
                    Severity.INFO,
                    metric,
                    fit.first_step,
                    fit.peak_step,
                    f"{metric} warms up for {fit.warmup_steps} steps, {100 * share:.0f}% of "
                    f"{total} steps (above {100 * cfg.long_warmup_share:.0f}%)",
                    {
                        "value": share,
                        "threshold": cfg.long_warmup_share,
                        "warmup_steps": fit.warmup_steps,
                        "total_steps": total,
                        "problem": "long_warmup",
                    },
                )
            )
    return out
