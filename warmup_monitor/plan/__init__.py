"""``warmup-monitor plan``: a training config's warmup, checked before the run starts.

:mod:`.config` reads the config, :mod:`.checks` counts the steps as the HF Trainer will and
checks the warmup against the guide, :mod:`.model` holds the result. The renderers (text,
JSON, the LR plot) are in :mod:`warmup_monitor.render.plan`; the schedule formulas in
:mod:`detectors.schedules`.
"""

from __future__ import annotations

from .checks import LR_RANGE_FACTOR, plan
from .config import TrainingConfig, config_from_mapping, load_config, parse_model_size
from .model import (
    GuideCheck,
    PlanFinding,
    PlanResult,
    Recommendation,
    StepPlan,
    WarmupPlan,
)

__all__ = [
    "LR_RANGE_FACTOR",
    "GuideCheck",
    "PlanFinding",
    "PlanResult",
    "Recommendation",
    "StepPlan",
    "TrainingConfig",
    "WarmupPlan",
    "config_from_mapping",
    "load_config",
    "parse_model_size",
    "plan",
]
