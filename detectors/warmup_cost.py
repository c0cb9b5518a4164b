"""What a long warmup costs, estimated from the run itself.

A long warmup keeps the learning rate small for many steps. Whether that costs anything depends
on the regime: when progress is limited by the LR (each step's progress tracks the LR), the run
needs more steps to reach a given loss than it would with a usual warmup; when progress is
limited by something else (the loss falls fast even at a small LR), the warmup is harmless.

The estimate has two parts:

* **the schedule's cost**: under the LR-limited model, the loss is a function of the cumulative
  LR ``sum(lr)``. The reference schedule (same peak, same decay, the usual warmup) reaches the
  cumulative LR it has at a quarter of the run at step ``t_ref``; the logged schedule reaches
  the same cumulative LR at step ``t_run``. ``slowdown = t_run / t_ref`` and
  ``steps_lost = t_run - t_ref``. A warmup longer than the run can leave the cumulative LR short
  of the mark: then the slowdown is infinite.
* **whether the run is LR-limited**: during the warmup the LR of the second half is about three
  times that of the first half (linear ramp). If progress tracks the LR, the loss falls at
  least as much in the second half as in the first (``tracking = drop2 / drop1 >= 1``); a loss
  that made most of its progress at the smallest LRs and then slowed down was not held back by
  them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import check_float, finite_series, quiet
from .progress import ProgressConfig, smooth
from .schedules.hf import lr_schedule

__all__ = ["WarmupCost", "WarmupCostConfig", "estimate_warmup_cost"]


@dataclass(frozen=True)
class WarmupCostConfig:
    """Where the cost is measured.

    Attributes:
        at_share: the reference's step at which the cumulative LR is matched, as a share of the
            run (0.25: a quarter of the run, where sibling runs are compared). Default 0.25.
        min_warmup_points: the logged loss needs at least this many points inside the warmup to
            judge whether it tracks the LR. Default 6.
        early_lr_share: ``early_progress`` is measured where the LR first reaches this share of
            its peak. Default 1/3.
    """

    at_share: float = 0.25
    min_warmup_points: int = 6
    early_lr_share: float = 1.0 / 3.0

    def __post_init__(self) -> None:
        check_float("WarmupCostConfig", "at_share", self.at_share, 0.0, 1.0, low_open=True)
        if isinstance(self.min_warmup_points, bool) or int(self.min_warmup_points) < 2:
            raise ValueError(
                "The 'min_warmup_points' parameter of WarmupCostConfig must be an int >= 2. "
                f"Got {self.min_warmup_points!r} instead."
            )


@dataclass(frozen=True)
class WarmupCost:
    """The estimate (all steps are training steps).

    ``slowdown``/``steps_lost``: the schedule's cost (see the module docstring); ``inf``/``None``
    when the logged schedule never reaches the reference's cumulative LR. ``t_ref``/``t_run``:
    the two steps compared. ``tracking``: loss drop in the second half of the warmup over the
    drop in the first half (``None`` when the loss has too few points there). ``lr_limited``:
    ``tracking >= 1``. ``early_progress``: the share of the run's loss drop (first smoothed
    point to the mean of the last 10%) made by the time the LR first reached
    ``config.early_lr_share`` of its peak (``None`` without enough points): a run held back by
    its small LRs has made little of its progress by then.
    """

    slowdown: float
    steps_lost: int | None
    t_ref: int
    t_run: int | None
    tracking: float | None
    lr_limited: bool | None
    reference_warmup: int
    early_progress: float | None = None

    def as_evidence(self) -> dict[str, Any]:
        return {
            "slowdown": self.slowdown if math.isfinite(self.slowdown) else None,
            "steps_lost": self.steps_lost,
            "t_ref": self.t_ref,
            "t_run": self.t_run,
            "tracking": self.tracking,
            "lr_limited": self.lr_limited,
            "reference_warmup": self.reference_warmup,
            "early_progress": self.early_progress,
        }


@quiet
def estimate_warmup_cost(
    loss_steps: Any,
    loss_values: Any,
    lr_steps: Any,
    lr_values: Any,
    *,
    warmup_end: int,
    total_steps: int,
    reference_warmup: int,
    decay: str = "linear",
    peak_lr: float | None = None,
    config: WarmupCostConfig | None = None,
) -> WarmupCost | None:
    """Estimate what a warmup ending at ``warmup_end`` costs against ``reference_warmup``.

    ``warmup_end`` is the step at which the LR reaches its peak (the last step when it is still
    rising); ``total_steps`` the planned run length. The logged LR is followed where it was
    logged; beyond the last logged step the ramp is continued to ``warmup_end`` and the LR then
    held at its peak. ``peak_lr``: the peak the schedule is heading for when the logged LR has
    not reached it yet (from the config); by default the largest logged LR. ``None`` when there
    is no usable LR trace.
    """
    cfg = config or WarmupCostConfig()
    ls, lv = finite_series(lr_steps, lr_values)
    if ls.size < 2 or total_steps <= 0 or reference_warmup < 0:
        return None
    peak = float(np.max(lv))
    if peak_lr is not None and math.isfinite(peak_lr) and peak_lr > peak:
        peak = float(peak_lr)
    if not (peak > 0):
        return None
    total = int(total_steps)
    horizon = max(total, int(ls[-1]), int(warmup_end)) * 4  # room for a warmup past the run
    grid = np.arange(1, horizon + 1, dtype=np.float64)
    lr = np.interp(grid, ls.astype(np.float64), lv, left=np.nan, right=np.nan)
    first = int(ls[0])
    if first > 1:
        # Before the first log: follow the ramp back towards 0 (an HF warmup starts at 0).
        slope = max(0.0, (lv[1] - lv[0]) / max(float(ls[1] - ls[0]), 1.0))
        lr[: first - 1] = np.maximum(0.0, lv[0] - slope * (first - grid[: first - 1]))
    last = int(ls[-1])
    if last < horizon:
        tail = grid[last:]
        if warmup_end > last and lv[-1] < peak * 1.0000001 and ls.size >= 2:
            # Still rising at the last log: continue the ramp to its planned end, then hold.
            slope = (lv[-1] - lv[max(0, lv.size - 4)]) / max(
                float(ls[-1] - ls[max(0, ls.size - 4)]), 1.0
            )
            target = lv[-1] + slope * (warmup_end - last)
            ramp = lv[-1] + slope * (tail - last)
            lr[last:] = np.where(tail <= warmup_end, ramp, max(target, lv[-1]))
        else:
            lr[last:] = lv[-1]
    lr = np.nan_to_num(lr, nan=0.0)
    run_cum = np.cumsum(lr)
    # The reference: the same peak and decay with the usual warmup (the HF formulas; a decay
    # the formulas do not name is held at the peak). Only steps up to ``total`` are used.
    kind = decay if decay in ("linear", "cosine") else "constant_with_warmup"
    ref_cum = np.cumsum(lr_schedule(kind, grid, peak, reference_warmup, total))
    t_ref = max(1, round(cfg.at_share * total))
    mark = ref_cum[t_ref - 1]
    reach = np.flatnonzero(run_cum[:total] >= mark)
    if reach.size:
        t_run: int | None = int(reach[0]) + 1
        slowdown = t_run / t_ref
        lost: int | None = t_run - t_ref
    else:
        t_run, slowdown, lost = None, math.inf, None
    tracking = _tracking(loss_steps, loss_values, min(int(warmup_end), last), cfg)
    return WarmupCost(
        slowdown=float(slowdown),
        steps_lost=lost,
        t_ref=t_ref,
        t_run=t_run,
        tracking=tracking,
        lr_limited=None if tracking is None else tracking >= 1.0,
        reference_warmup=int(reference_warmup),
        early_progress=_early_progress(loss_steps, loss_values, ls, lv, peak, cfg),
    )


def _early_progress(
    loss_steps: Any,
    loss_values: Any,
    ls: np.ndarray,
    lv: np.ndarray,
    peak: float,
    cfg: WarmupCostConfig,
) -> float | None:
    """Share of the run's loss drop made by the time the LR reached ``early_lr_share`` of peak."""
    s, v = finite_series(loss_steps, loss_values)
    if s.size < cfg.min_warmup_points:
        return None
    reach = np.flatnonzero(lv >= cfg.early_lr_share * peak)
    if reach.size == 0:
        return None
    t = float(ls[reach[0]])
    s, sm = smooth(s, v, ProgressConfig(smooth_points=3))
    if t < s[0]:
        return None
    start = float(sm[0])
    final = float(np.mean(sm[s >= s[-1] - 0.1 * (s[-1] - s[0])]))
    if not start > final:
        return None
    return float((start - np.interp(t, s, sm)) / (start - final))


def _tracking(
    loss_steps: Any, loss_values: Any, warmup_end: int, cfg: WarmupCostConfig
) -> float | None:
    """Loss drop over the second half of the warmup / drop over the first half (smoothed)."""
    s, v = finite_series(loss_steps, loss_values)
    inside = s <= warmup_end
    if int(inside.sum()) < cfg.min_warmup_points or warmup_end <= 0:
        return None
    s, sm = smooth(s[inside], v[inside], ProgressConfig(smooth_points=3))
    start = float(sm[0])
    mid = float(np.interp(warmup_end / 2.0, s, sm))
    end = float(sm[-1])
    drop1, drop2 = start - mid, mid - end
    if drop1 <= 0:
        return math.inf if drop2 > 0 else None
    return drop2 / drop1
