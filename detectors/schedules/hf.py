"""The HF Trainer's learning-rate schedules, as formulas over steps (numpy only).

Learning-rate schedules (:func:`lr_schedule`) are the ``transformers.optimization`` lambdas,
vectorised. ``s`` is the scheduler step (the Trainer's ``global_step``: the value the Trainer logs
at step ``s`` and applies to update ``s + 1``), ``W`` the warmup steps, ``T`` the total steps,
``p = (s - W) / max(1, T - W)`` the decay progress::

    warmup (all but constant)  s < W:  s / max(1, W)
    linear                     max(0, (T - s) / max(1, T - W))
    cosine                     max(0, 0.5 * (1 + cos(pi * 2 * num_cycles * p)))    num_cycles=0.5
    cosine_with_restarts       0 if p >= 1 else 0.5 * (1 + cos(pi * ((num_cycles * p) % 1)))
    cosine_with_min_lr         cosine * (1 - r) + r,  r = min_lr_rate or min_lr / peak
    cosine_warmup_with_min_lr  warmup (s + 1) / max(1, W); p = (s - W + 1) / max(1, T - W)
    polynomial                 ((peak - lr_end) * (1 - p) ** power + lr_end) / peak; lr_end after T
    constant                   1 (no warmup phase at all: warmup_steps is ignored)
    constant_with_warmup       1 after the warmup
    inverse_sqrt               1 / sqrt((s + timescale - W) / timescale), timescale = W or 10,000
    warmup_stable_decay        warmup (linear / cosine / 1-sqrt), flat for num_stable_steps,
                               then a linear / cosine / 1-sqrt decay over num_decay_steps down
                               to min_lr_ratio

Some optimizers warm up by themselves (:func:`optimizer_warmup`): the schedule-free ones take
the Trainer's ``warmup_steps`` and scale the scheduler's LR by ``min(1, (s + 1) / W)``, which the
logged LR never shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "SCHEDULE_KINDS",
    "ScheduleKwargsError",
    "lr_schedule",
    "optimizer_warmup",
    "schedule_kwargs",
]


class ScheduleKwargsError(ValueError):
    """A schedule the Trainer would refuse: ``problem`` says what, ``fix`` what to change."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}. {fix}")


# The lr_scheduler_kwargs each schedule accepts, with transformers' defaults.
_KWARG_DEFAULTS: dict[str, dict[str, Any]] = {
    "linear": {},
    "cosine": {"num_cycles": 0.5},
    "cosine_with_restarts": {"num_cycles": 1},
    "polynomial": {"lr_end": 1e-7, "power": 1.0},
    "constant": {},
    "constant_with_warmup": {},
    "inverse_sqrt": {"timescale": None},
    "cosine_with_min_lr": {"num_cycles": 0.5, "min_lr": None, "min_lr_rate": None},
    "cosine_warmup_with_min_lr": {
        "num_cycles": 0.5,
        "min_lr": None,
        "min_lr_rate": None,
        "warmup_lr_rate": None,
    },
    "warmup_stable_decay": {
        "num_decay_steps": None,
        "num_stable_steps": None,
        "warmup_type": "linear",
        "decay_type": "cosine",
        "min_lr_ratio": 0.0,
        "num_cycles": 0.5,
    },
}
SCHEDULE_KINDS: tuple[str, ...] = tuple(_KWARG_DEFAULTS)


def schedule_kwargs(kind: str, kwargs: Mapping[str, Any], peak_lr: float) -> dict[str, Any]:
    """Defaults filled in and validated the way ``transformers.get_scheduler`` would."""
    if kind not in _KWARG_DEFAULTS:
        raise ScheduleKwargsError(
            f"lr_scheduler_type '{kind}' has no schedule formula here",
            f"Use one of {', '.join(SCHEDULE_KINDS)}",
        )
    allowed = _KWARG_DEFAULTS[kind]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ScheduleKwargsError(
            f"lr_scheduler_kwargs {unknown} do not apply to '{kind}' (the Trainer fails on them)",
            f"Use only {sorted(allowed) or 'no kwargs'}",
        )
    out = {**allowed, **kwargs}
    for key, value in out.items():
        if key in ("warmup_type", "decay_type") or (value is None and allowed[key] is None):
            continue  # None where transformers' own default is None means "unset"
        if not _finite_number(value):
            raise ScheduleKwargsError(
                f"lr_scheduler_kwargs {key}={repr(value)[:40]} is not a finite number "
                "(the Trainer fails on it)",
                f"Give {key} as a number",
            )
    if kind == "inverse_sqrt" and out["timescale"] is not None and out["timescale"] <= 0:
        raise ScheduleKwargsError(
            f"inverse_sqrt timescale {out['timescale']:g} is not positive "
            "(the Trainer fails on it)",
            "Give a positive timescale, or none (the warmup length, or 10,000 without one)",
        )
    if kind in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        if out["min_lr"] is not None and out["min_lr_rate"] is not None:
            raise ScheduleKwargsError(
                f"'{kind}' got both min_lr and min_lr_rate", "Set only one in lr_scheduler_kwargs"
            )
        if out["min_lr"] is None and out["min_lr_rate"] is None:
            raise ScheduleKwargsError(
                f"'{kind}' needs min_lr or min_lr_rate (the Trainer refuses to start without it)",
                "Add one to lr_scheduler_kwargs, e.g. min_lr_rate: 0.1",
            )
    if kind == "polynomial" and not peak_lr > float(out["lr_end"]):
        raise ScheduleKwargsError(
            f"polynomial lr_end {float(out['lr_end']):g} is not below the learning rate "
            f"{peak_lr:g} (the Trainer refuses it)",
            "Lower lr_end in lr_scheduler_kwargs",
        )
    if kind == "warmup_stable_decay":
        if out["num_decay_steps"] is None:
            raise ScheduleKwargsError(
                "'warmup_stable_decay' needs num_decay_steps (the Trainer refuses to start)",
                "Add num_decay_steps to lr_scheduler_kwargs",
            )
        for key in ("warmup_type", "decay_type"):
            if out[key] not in ("linear", "cosine", "1-sqrt"):
                raise ScheduleKwargsError(
                    f"warmup_stable_decay {key} '{out[key]}' is unknown",
                    "Use linear, cosine or 1-sqrt",
                )
    return out


def lr_schedule(
    kind: str,
    steps: np.ndarray | Sequence[int],
    peak_lr: float,
    warmup_steps: int,
    total_steps: int,
    **kwargs: Any,
) -> np.ndarray:
    """Learning rate at each scheduler step, as ``transformers.get_scheduler(kind, …)`` computes it.

    ``steps`` are scheduler steps (the Trainer's ``global_step``); ``kwargs`` are the
    ``lr_scheduler_kwargs``. See the module docstring for the formulas.
    """
    opts = schedule_kwargs(kind, kwargs, peak_lr)
    # Extreme (untrusted) settings overflow to inf or 0 rather than warn: the comparison
    # reads the result as a schedule the log does not follow.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
        return _lr_schedule(kind, opts, steps, peak_lr, warmup_steps, total_steps)


def _lr_schedule(
    kind: str,
    opts: Mapping[str, Any],
    steps: np.ndarray | Sequence[int],
    peak_lr: float,
    warmup_steps: int,
    total_steps: int,
) -> np.ndarray:
    s = np.asarray(steps, dtype=np.float64)
    w = float(warmup_steps)
    t = float(total_steps)
    warm = s / max(1.0, w)
    in_warmup = s < w
    progress = (s - w) / max(1.0, t - w)

    if kind == "constant":
        factor = np.ones_like(s)
    elif kind == "constant_with_warmup":
        factor = np.where(in_warmup, warm, 1.0)
    elif kind == "linear":
        factor = np.where(in_warmup, warm, np.maximum(0.0, (t - s) / max(1.0, t - w)))
    elif kind == "cosine":
        cos = 0.5 * (1.0 + np.cos(np.pi * float(opts["num_cycles"]) * 2.0 * progress))
        factor = np.where(in_warmup, warm, np.maximum(0.0, cos))
    elif kind == "cosine_with_restarts":
        cos = 0.5 * (1.0 + np.cos(np.pi * np.mod(float(opts["num_cycles"]) * progress, 1.0)))
        factor = np.where(in_warmup, warm, np.where(progress >= 1.0, 0.0, np.maximum(0.0, cos)))
    elif kind == "cosine_with_min_lr":
        rate = _min_rate(opts, peak_lr)
        cos = 0.5 * (1.0 + np.cos(np.pi * float(opts["num_cycles"]) * 2.0 * progress))
        factor = np.where(in_warmup, warm, np.maximum(0.0, cos * (1 - rate) + rate))
    elif kind == "cosine_warmup_with_min_lr":
        rate = _min_rate(opts, peak_lr)
        if opts["warmup_lr_rate"] is None:
            warm = (s + 1.0) / max(1.0, w)
        else:
            r0 = float(opts["warmup_lr_rate"])
            warm = r0 + (1.0 - r0) * s / max(1.0, w - 1.0)
        shifted = (s - w + 1.0) / max(1.0, t - w)
        cos = 0.5 * (1.0 + np.cos(np.pi * float(opts["num_cycles"]) * 2.0 * shifted))
        factor = np.where(in_warmup, warm, np.maximum(0.0, cos * (1 - rate) + rate))
    elif kind == "polynomial":
        lr_end, power = float(opts["lr_end"]), float(opts["power"])
        decay_steps = t - w
        # transformers divides by zero here when warmup == total; the LR is then lr_end.
        remaining = 1.0 - (s - w) / decay_steps if decay_steps > 0 else np.zeros_like(s)
        remaining = np.clip(remaining, 0.0, None)
        decay = ((peak_lr - lr_end) * remaining**power + lr_end) / peak_lr
        factor = np.where(in_warmup, warm, np.where(s > t, lr_end / peak_lr, decay))
    elif kind == "inverse_sqrt":
        timescale = opts["timescale"]
        if timescale is None:
            timescale = warmup_steps or 10_000
        shift = float(timescale) - w
        with np.errstate(divide="ignore", invalid="ignore"):
            decay = 1.0 / np.sqrt(np.maximum(s + shift, 1e-300) / float(timescale))
        factor = np.where(in_warmup, warm, decay)
    else:  # warmup_stable_decay
        factor = _wsd(s, w, t, opts)
    return peak_lr * factor


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer of hundreds of digits
        return False


def _min_rate(opts: Mapping[str, Any], peak_lr: float) -> float:
    if opts["min_lr"] is not None:
        return float(opts["min_lr"]) / peak_lr
    return float(opts["min_lr_rate"])


def _shape(kind: str, x: np.ndarray, rising: bool, num_cycles: float) -> np.ndarray:
    if kind == "linear":
        return x if rising else 1.0 - x
    if kind == "cosine":
        if rising:
            return 0.5 * (1.0 - np.cos(np.pi * x))
        return 0.5 * (1.0 + np.cos(np.pi * num_cycles * 2.0 * x))
    # "1-sqrt"
    return 1.0 - np.sqrt(np.clip(1.0 - x, 0.0, None)) if rising else 1.0 - np.sqrt(x)


def _wsd(s: np.ndarray, w: float, t: float, opts: Mapping[str, Any]) -> np.ndarray:
    decay_n = float(opts["num_decay_steps"])
    stable = opts["num_stable_steps"]
    stable_n = t - w - decay_n if stable is None else float(stable)
    floor = float(opts["min_lr_ratio"])
    cycles = float(opts["num_cycles"])
    up = _shape(opts["warmup_type"], np.clip(s / max(1.0, w), 0.0, 1.0), True, cycles)
    down_x = np.clip((s - w - stable_n) / max(1.0, decay_n), 0.0, 1.0)
    down = _shape(opts["decay_type"], down_x, False, cycles)
    return np.where(
        s < w,
        np.maximum(0.0, up * (1.0 - floor) + floor),
        np.where(
            s < w + stable_n,
            1.0,
            np.where(
                s < w + stable_n + decay_n, np.maximum(0.0, down * (1.0 - floor) + floor), floor
            ),
        ),
    )


def optimizer_warmup(steps: Any, warmup_steps: int) -> np.ndarray:
    """The factor an optimizer's own linear warmup puts on the scheduler's LR at ``steps``.

    Schedule-free AdamW and SGD (``schedulefree``; the Trainer's ``schedule_free_adamw`` and
    ``schedule_free_sgd`` pass it ``warmup_steps``) scale update ``k`` (from 0) by
    ``(k + 1) / W`` while ``k < W``; the LR the Trainer logs at step ``s`` applies to update
    ``s + 1`` (``k = s``), so the factor there is ``min(1, (s + 1) / W)``. ``W < 1``: none.
    """
    s = np.asarray(steps, dtype=np.float64)
    if warmup_steps < 1:
        return np.ones_like(s)
    return np.minimum(1.0, (s + 1.0) / float(warmup_steps))
