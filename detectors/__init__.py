"""Pure analysis of training curves (numpy/scipy only).

Every detector has the same shape: a frozen ``*Config`` dataclass with documented defaults and
``detect_*(steps, values, config=None, *, metric=...) -> list[Finding]`` taking the logged steps
and values together and returning findings sorted by step, whose ``step``/``end_step`` are
input steps. :data:`REGISTRY` lists them for code that loops over every detector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._common import median_spacing, shared_work
from ._types import Finding, ScheduleFit, Severity
from .catapult import CatapultConfig, detect_catapult
from .clip_rate import ClipRateConfig, detect_clip_rate
from .collapse import CollapseConfig, detect_no_progress
from .divergence import DivergenceConfig, detect_divergence
from .nonfinite import (
    NonFiniteConfig,
    ScalerSkipConfig,
    ZeroedLossConfig,
    detect_hidden_nan,
    detect_nonfinite,
    detect_scaler_skips,
    detect_zeroed_loss,
)
from .progress import (
    ProgressConfig,
    area_under,
    smooth,
    smooth_window,
    steps_to_target,
    tail_mean,
    value_at,
)
from .rise import RiseConfig, detect_sustained_rise
from .schedules import (
    SCHEDULE_KINDS,
    ScheduleComparison,
    ScheduleConfig,
    ScheduleKwargsError,
    compare_schedule,
    detect_schedule,
    infer_lr_schedule,
    lr_at,
    lr_phase,
    lr_schedule,
    optimizer_warmup,
    schedule_findings,
)
from .slow_decline import FlatStart, SlowDeclineConfig, detect_slow_decline, flat_start
from .spikes import SpikeConfig, detect_spikes

__all__ = [
    "REGISTRY",
    "SCHEDULE_KINDS",
    "CatapultConfig",
    "ClipRateConfig",
    "CollapseConfig",
    "Detector",
    "DivergenceConfig",
    "Finding",
    "FlatStart",
    "NonFiniteConfig",
    "ProgressConfig",
    "RiseConfig",
    "ScalerSkipConfig",
    "ScheduleComparison",
    "ScheduleConfig",
    "ScheduleFit",
    "ScheduleKwargsError",
    "Severity",
    "SlowDeclineConfig",
    "SpikeConfig",
    "ZeroedLossConfig",
    "all_detectors",
    "area_under",
    "compare_schedule",
    "detect_catapult",
    "detect_clip_rate",
    "detect_divergence",
    "detect_hidden_nan",
    "detect_no_progress",
    "detect_nonfinite",
    "detect_scaler_skips",
    "detect_schedule",
    "detect_slow_decline",
    "detect_spikes",
    "detect_sustained_rise",
    "detect_zeroed_loss",
    "flat_start",
    "infer_lr_schedule",
    "lr_at",
    "lr_phase",
    "lr_schedule",
    "median_spacing",
    "optimizer_warmup",
    "schedule_findings",
    "shared_work",
    "smooth",
    "smooth_window",
    "steps_to_target",
    "tail_mean",
    "value_at",
]


@dataclass(frozen=True)
class Detector:
    """One registered detector: the finding ``kind`` it emits, its function and config class.

    ``metrics`` are the canonical metrics it is meant for (the first is its default).
    """

    kind: str
    detect: Callable[..., list[Finding]]
    config: type
    metrics: tuple[str, ...]
    description: str

    def __call__(self, steps: Any, values: Any, config: Any = None, **kw: Any) -> list[Finding]:
        return self.detect(steps, values, config, **kw)


REGISTRY: dict[str, Detector] = {
    d.kind: d
    for d in (
        Detector(
            "non_finite",
            detect_nonfinite,
            NonFiniteConfig,
            ("loss", "grad_norm", "eval_loss"),
            "NaN/Inf values",
        ),
        Detector(
            "divergence",
            detect_divergence,
            DivergenceConfig,
            ("loss", "eval_loss"),
            "loss climbs well above its best and stays there",
        ),
        Detector(
            "catapult",
            detect_catapult,
            CatapultConfig,
            ("loss",),
            "window-averaged loss shoots up as the LR reaches its peak",
        ),
        Detector(
            "sustained_rise",
            detect_sustained_rise,
            RiseConfig,
            ("loss", "eval_loss"),
            "loss rises above its best by a modest share and never comes back",
        ),
        Detector(
            "spike",
            detect_spikes,
            SpikeConfig,
            ("loss", "grad_norm"),
            "single points far above the recent level (robust z-score)",
        ),
        Detector(
            "no_progress",
            detect_no_progress,
            CollapseConfig,
            ("loss",),
            "loss stalls close to its starting level",
        ),
        Detector(
            "slow_decline",
            detect_slow_decline,
            SlowDeclineConfig,
            ("loss",),
            "loss flat at the start / slower during warmup than after",
        ),
        Detector(
            "clip_rate",
            detect_clip_rate,
            ClipRateConfig,
            ("grad_norm",),
            "share of steps whose grad norm exceeds max_grad_norm",
        ),
        Detector(
            "schedule",
            detect_schedule,
            ScheduleConfig,
            ("learning_rate",),
            "LR never moves, never reaches its peak, or warms up for long",
        ),
    )
}


def all_detectors() -> list[Detector]:
    """Every registered detector, in a fixed order."""
    return list(REGISTRY.values())
