"""The learning-rate schedule, in one place (numpy/scipy only).

* :mod:`.hf` — the HF Trainer's schedules as formulas (``lr_schedule``), what ``plan`` draws
  and checks a config with;
* :mod:`.infer` — the schedule behind a logged LR trace (``infer_lr_schedule``) and the
  ``schedule`` detector;
* :mod:`.compare` — the logged LR against the configured schedule (``compare_schedule``);
* :mod:`.phase` — where a step sits in the schedule (``lr_phase``), the one rule the
  diagnosis and the watcher share.
"""

from __future__ import annotations

from .compare import ScheduleComparison, compare_schedule
from .hf import (
    SCHEDULE_KINDS,
    ScheduleKwargsError,
    lr_schedule,
    optimizer_warmup,
    schedule_kwargs,
)
from .infer import ScheduleConfig, detect_schedule, infer_lr_schedule, schedule_findings
from .phase import NEAR_PEAK, Phase, lr_at, lr_phase

__all__ = [
    "NEAR_PEAK",
    "SCHEDULE_KINDS",
    "Phase",
    "ScheduleComparison",
    "ScheduleConfig",
    "ScheduleKwargsError",
    "compare_schedule",
    "detect_schedule",
    "infer_lr_schedule",
    "lr_at",
    "lr_phase",
    "lr_schedule",
    "optimizer_warmup",
    "schedule_findings",
    "schedule_kwargs",
]
