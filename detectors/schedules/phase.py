"""Where a training step sits in the LR schedule: one rule for the diagnosis and the watcher."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._common import as_series
from .._types import ScheduleFit

__all__ = ["NEAR_PEAK", "Phase", "lr_at", "lr_phase"]

Phase = Literal["warmup", "peak", "decay", "constant"]

#: An LR at least this share of its peak is "at the peak" (absorbs rounding and a cosine's
#: slow start).
NEAR_PEAK = 0.95


def lr_at(steps: Any, lrs: Any, step: int) -> float | None:
    """The LR at training step ``step`` from a logged trace (``None`` without a finite point).

    Interpolated between logged steps (in any order; the last write of a step wins); before
    the first log of a rising LR the warmup ramp is followed back towards 0, as an HF warmup
    starts from 0.
    """
    xs, ys = as_series(steps, lrs)
    ok = np.isfinite(ys)
    if not ok.any():
        return None
    xs, ys = xs[ok], ys[ok]
    if step < xs[0] and xs.size >= 2 and ys[1] > ys[0] and xs[1] > xs[0]:
        slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        return float(max(0.0, ys[0] - slope * (xs[0] - step)))
    return float(np.interp(step, xs, ys))


def lr_phase(
    fit: ScheduleFit | None,
    step: int,
    lr: float | None = None,
    *,
    warmup_end: int | None = None,
) -> Phase | None:
    """The phase of the schedule at ``step``: ``"warmup"``, ``"peak"``, ``"decay"`` or
    ``"constant"``; ``None`` when nothing is known.

    With a fitted schedule ``fit`` and the LR ``lr`` at that step (see :func:`lr_at`): an LR
    that never moves is ``constant``; while the LR is still rising at the last logged step
    every step is ``warmup`` (the peak is not known yet); an LR within
    :data:`NEAR_PEAK` of the peak is ``peak`` (``constant`` after the peak of a schedule that
    stays there); below it, ``warmup`` before the peak step and ``decay`` after. Without a fit,
    a known ``warmup_end`` (e.g. the configured warmup) splits ``warmup`` from ``peak``.
    """
    if fit is not None:
        if fit.lr_never_moves:
            return "constant"
        if lr is not None and fit.peak_lr > 0:
            if not fit.reached_peak:
                return "warmup"
            if lr >= NEAR_PEAK * fit.peak_lr:
                return "constant" if fit.decay == "constant" and step > fit.peak_step else "peak"
            return "warmup" if step < fit.peak_step else "decay"
    if warmup_end is not None:
        return "warmup" if step < warmup_end else "peak"
    return None
