"""The logged LR against the schedule the config asked for."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from .._common import as_series, median_spacing
from .._types import ScheduleFit
from .hf import SCHEDULE_KINDS, ScheduleKwargsError, lr_schedule
from .infer import infer_lr_schedule

__all__ = ["ScheduleComparison", "compare_schedule"]

Agreement = Literal["follows", "warmup_missing", "warmup_differs", "peak_differs", "shape_differs"]

#: Largest distance between the logged and the configured LR, as a share of the configured
#: peak, still counted as "follows" (absorbs LRs logged with a few significant digits).
TOLERANCE = 0.05


@dataclass(frozen=True)
class ScheduleComparison:
    """How the logged LR relates to the configured schedule.

    ``agreement`` is ``"follows"`` or what differs first: ``"warmup_missing"`` (the config
    asks for a warmup, the log starts at the peak), ``"warmup_differs"``, ``"peak_differs"``
    or ``"shape_differs"``. ``max_error`` is the largest distance between the logged LR and
    the formula over the logged steps, as a share of the configured peak; ``offset`` is the
    step offset that matched best (0: the LR logged at step s is the one set after s scheduler
    steps, as transformers < 4.47 logs it; 1: the one used for update s, as later versions do).
    ``tolerance`` is the ``max_error`` still counted as following. ``message`` says it in one
    sentence, with the numbers.
    """

    agreement: Agreement
    kind: str
    configured_warmup: int
    logged_warmup: int | None
    configured_peak: float
    logged_peak: float
    total_steps: int
    max_error: float
    worst_step: int
    offset: int
    points: int
    tolerance: float
    message: str

    @property
    def follows(self) -> bool:
        return self.agreement == "follows"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_schedule(
    steps: Any,
    lrs: Any,
    *,
    kind: str,
    peak_lr: float,
    warmup_steps: int,
    total_steps: int,
    kwargs: dict[str, Any] | None = None,
    warmup_setting: str = "warmup_steps",
    fit: ScheduleFit | None = None,
    tolerance: float = TOLERANCE,
) -> ScheduleComparison | None:
    """Compare a logged LR trace with ``lr_schedule(kind, …)`` over the logged steps.

    ``None`` when there is nothing to compare: a schedule without a formula here, kwargs the
    Trainer would refuse, no positive peak or total, or fewer than 3 finite logged points.
    ``warmup_setting`` is the config key the warmup came from, named in the message when the
    log shows no warmup (``warmup_ratio`` is ignored by transformers 5). ``fit`` is the
    inferred schedule of the same trace, when already computed.
    """
    s, v = as_series(steps, lrs)
    ok = np.isfinite(v) & (s >= 0)
    s, v = s[ok], v[ok]
    if kind not in SCHEDULE_KINDS or s.size < 3 or not peak_lr > 0 or not total_steps > 0:
        return None
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    for offset in (0, 1):
        try:
            expected = lr_schedule(
                kind,
                np.maximum(s - offset, 0),
                peak_lr,
                warmup_steps,
                total_steps,
                **(kwargs or {}),
            )
        except ScheduleKwargsError:
            return None
        err = np.abs(v - expected) / peak_lr
        worst = float(err.max())
        if best is None or worst < best[0]:
            best = (worst, offset, err, expected)
    assert best is not None
    max_error, offset, err, expected = best
    i_worst = int(np.argmax(err))
    worst_step = int(s[i_worst])
    fit = fit if fit is not None else infer_lr_schedule(s, v)
    logged_warmup = None if fit is None else fit.warmup_steps
    logged_peak = float(v.max())
    spacing = median_spacing(s)
    common = {
        "kind": kind,
        "configured_warmup": int(warmup_steps),
        "logged_warmup": logged_warmup,
        "configured_peak": float(peak_lr),
        "logged_peak": logged_peak,
        "total_steps": int(total_steps),
        "max_error": max_error,
        "worst_step": worst_step,
        "offset": offset,
        "points": int(s.size),
        "tolerance": tolerance,
    }
    asked = f"{warmup_steps} warmup steps"
    if max_error <= tolerance:
        return ScheduleComparison(
            agreement="follows",
            message=f"the logged LR follows {kind} with {asked} as configured (peak "
            f"{_g(peak_lr)}, {s.size} logged points within {max_error:.1%} of the peak)",
            **common,
        )
    where = (
        f"at step {worst_step} the log has {_g(float(v[i_worst]))}, the formula "
        f"{_g(float(expected[i_worst]))}"
    )
    if warmup_steps > 0 and logged_warmup == 0 and int(s[0]) < warmup_steps:
        hint = (
            "was warmup_ratio ignored (transformers 5 removed it)?"
            if warmup_setting == "warmup_ratio"
            else f"was {warmup_setting} ignored, or is this config not the one that ran?"
        )
        return ScheduleComparison(
            agreement="warmup_missing",
            message=f"the config asks for {asked} ({warmup_setting}), the log shows none: the "
            f"LR is already at its peak {_g(logged_peak)} at step {int(s[0])}; {hint}",
            **common,
        )
    if (
        fit is not None
        and fit.reached_peak
        and logged_warmup is not None
        and abs(logged_warmup - warmup_steps) > max(2 * spacing, 0.1 * warmup_steps)
    ):
        return ScheduleComparison(
            agreement="warmup_differs",
            message=f"the config asks for {asked}, the log shows about {logged_warmup} "
            f"(the LR peaks at step {fit.peak_step})",
            **common,
        )
    if abs(logged_peak - peak_lr) > tolerance * peak_lr:
        return ScheduleComparison(
            agreement="peak_differs",
            message=f"the config's learning_rate is {_g(peak_lr)}, the logged LR peaks at "
            f"{_g(logged_peak)} (x{logged_peak / peak_lr:.3g})",
            **common,
        )
    shape = f" (the log looks {fit.decay})" if fit is not None and fit.decay != "none" else ""
    return ScheduleComparison(
        agreement="shape_differs",
        message=f"the logged LR departs from the configured {kind} schedule by up to "
        f"{max_error:.0%} of the peak{shape}: {where}",
        **common,
    )


def _g(x: float) -> str:
    return f"{x:.3g}"
