"""The warmup rules of thumb and their step arithmetic, shared by the diagnosis and ``plan``.

The rules: warm up for about 10% of the total optimizer steps, at least ~50 steps, at most ~20%
of the run; typical ranges by dataset size, model size and fine-tuning method (LoRA, QLoRA, full).
Every recommendation comes with a ``reason`` saying which rule produced the number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DATASET_RANGES",
    "GUIDE_DEFAULT_RATIO",
    "GUIDE_MAX_RATIO",
    "GUIDE_MIN_STEPS",
    "METHOD_RANGES",
    "MODEL_RANGES",
    "GuideRange",
    "WarmupRule",
    "batches_per_epoch",
    "configured_warmup",
    "lower_learning_rate",
    "method_key",
    "model_size_from_name",
    "nice_number",
    "optimizer_warmup_steps",
    "planned_total_steps",
    "range_for",
    "recommended_warmup",
    "steps_per_epoch",
    "total_steps",
    "warms_up_by_itself",
    "warmup_rule",
]

GUIDE_DEFAULT_RATIO = 0.1  # warm up for 10% of the total optimizer steps
GUIDE_MAX_RATIO = 0.2  # more than this spends too much of the budget at a small LR
GUIDE_MIN_STEPS = 50  # fewer steps leave Adam's second-moment estimate noisy


@dataclass(frozen=True)
class GuideRange:
    """A typical warmup range in optimizer steps (and a typical peak LR when the guide gives one).

    ``upper`` bounds the quantity the row applies to (samples or billions of parameters);
    rows are ordered, the first with ``value <= upper`` applies.
    """

    label: str
    low_steps: int
    high_steps: int
    learning_rate: float | None = None
    upper: float = math.inf


DATASET_RANGES: tuple[GuideRange, ...] = (
    GuideRange("< 1,000 samples", 10, 50, upper=999),
    GuideRange("1,000-10,000 samples", 50, 200, upper=10_000),
    GuideRange("> 10,000 samples", 200, 1000),
)
MODEL_RANGES: tuple[GuideRange, ...] = (
    GuideRange("< 1B parameters", 50, 100, 1e-4, upper=0.999_999),
    GuideRange("1-10B parameters", 100, 500, 5e-5, upper=10.0),
    GuideRange("> 10B parameters", 500, 1000, 1e-5),
)
METHOD_RANGES: dict[str, GuideRange] = {
    "lora": GuideRange("LoRA", 50, 200, 1e-4),
    "qlora": GuideRange("QLoRA", 100, 300, 2e-4),
    "full": GuideRange("full fine-tuning", 200, 1000, 5e-6),
}


def range_for(rows: Sequence[GuideRange], value: float | None) -> GuideRange | None:
    """The row of an ordered guide table that applies to ``value`` (``None`` when unknown)."""
    if value is None:
        return None
    return next((r for r in rows if value <= r.upper), rows[-1])


def method_key(finetuning_type: str | None, quantization_bit: int | None = None) -> str | None:
    """``"lora"``, ``"qlora"`` or ``"full"`` for a LLaMA-Factory/PEFT method name, else ``None``."""
    if not finetuning_type:
        return None
    kind = str(finetuning_type).strip().lower().replace("-", "").replace("_", "")
    if "qlora" in kind or (kind == "lora" and quantization_bit):
        return "qlora"
    if "lora" in kind:
        return "lora"
    if kind in ("full", "fullft", "fullfinetuning", "fromscratch"):
        return "full"
    return None


def _typical_ranges(finetuning_type: str | None, model_size_b: float | None) -> list[GuideRange]:
    """The method's and the model size's guide rows, those that are known."""
    method = METHOD_RANGES.get(method_key(finetuning_type) or "")
    return [r for r in (method, range_for(MODEL_RANGES, model_size_b)) if r is not None]


_SIZE = re.compile(r"(?<![0-9a-z.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", re.IGNORECASE)
_KNOWN_SIZES = {  # billions of parameters of common checkpoints without a size in the name
    "gpt2-xl": 1.5,
    "gpt2-large": 0.774,
    "gpt2-medium": 0.355,
    "gpt2": 0.124,
    "distil": 0.08,
    "bert-large": 0.34,
    "roberta-large": 0.355,
    "bert-base": 0.11,
    "roberta-base": 0.125,
    "bert-tiny": 0.004,
    "bert-mini": 0.011,
    "whisper-tiny": 0.039,
    "whisper-large": 1.55,
    "t5-small": 0.06,
    "t5-base": 0.22,
}


def model_size_from_name(model_name_or_path: str | None) -> float | None:
    """Billions of parameters read from a model name (``Qwen2.5-7B`` -> 7.0), else ``None``."""
    if not model_name_or_path:
        return None
    name = str(model_name_or_path).replace("\\", "/").rstrip("/").split("/")[-1].lower()
    sizes = [
        float(num) / (1000.0 if unit.lower() == "m" else 1.0) for num, unit in _SIZE.findall(name)
    ]
    if sizes:
        return max(sizes)
    for key, size in _KNOWN_SIZES.items():
        if key in name:
            return size
    return None


def batches_per_epoch(
    num_samples: int,
    per_device_train_batch_size: int,
    num_devices: int = 1,
    *,
    drop_last: bool = False,
) -> int:
    """Batches each device draws per epoch: the last partial batch is kept (dropped with
    ``drop_last``, which may leave 0)."""
    per_step = max(1, per_device_train_batch_size * num_devices)
    return num_samples // per_step if drop_last else math.ceil(num_samples / per_step)


def steps_per_epoch(
    num_samples: int,
    per_device_train_batch_size: int,
    gradient_accumulation_steps: int = 1,
    num_devices: int = 1,
    *,
    drop_last: bool = False,
    rounding: str = "ceil",
) -> int:
    """Optimizer steps per epoch as the HF Trainer counts them (at least 1).

    Batches per device are rounded up (the last partial batch is kept; down with
    ``drop_last``). transformers >= 4.52 then counts the last partial accumulation window as a
    step (``rounding="ceil"``); older releases dropped it (``"floor"``). The guide's example,
    10,000 samples, batch 8, 2 devices, accumulation 4: 625 batches -> 157 steps (156 with
    ``"floor"``).
    """
    if rounding not in ("ceil", "floor"):
        raise ValueError(f"rounding must be 'ceil' or 'floor', got {rounding!r}")
    batches = batches_per_epoch(
        num_samples, per_device_train_batch_size, num_devices, drop_last=drop_last
    )
    accum = max(1, gradient_accumulation_steps)
    spe = math.ceil(batches / accum) if rounding == "ceil" else batches // accum
    return max(1, spe)


def total_steps(
    num_samples: int,
    per_device_train_batch_size: int,
    gradient_accumulation_steps: int = 1,
    num_train_epochs: float = 1.0,
    num_devices: int = 1,
    *,
    rounding: str = "ceil",
) -> int:
    """Total optimizer steps of a run: ``ceil(epochs * steps_per_epoch)`` (471 in the example,
    468 with ``rounding="floor"``)."""
    spe = steps_per_epoch(
        num_samples,
        per_device_train_batch_size,
        gradient_accumulation_steps,
        num_devices,
        rounding=rounding,
    )
    return max(1, math.ceil(num_train_epochs * spe))


def planned_total_steps(config: Mapping[str, Any]) -> int | None:
    """The planned total steps a config states (``max_steps`` > 0), else ``None``."""
    value = config.get("max_steps")
    try:
        steps = int(value) if value is not None else 0
    except (TypeError, ValueError, OverflowError):  # OverflowError: max_steps = inf
        return None
    return steps if steps > 0 else None


def configured_warmup(config: Mapping[str, Any], total: int | None) -> int | None:
    """Warmup steps a config asks for, as the HF Trainer resolves them.

    ``warmup_steps`` > 0 wins (a value below 1 is a ratio, as transformers 5 reads it); else
    ``ceil(warmup_ratio * total)``; ``0`` when both are 0; ``None`` when unknown.
    """
    ws = config.get("warmup_steps")
    wr = config.get("warmup_ratio")
    try:
        if ws is not None and float(ws) >= 1:
            return int(float(ws))
        if ws is not None and 0 < float(ws) < 1:
            return math.ceil(float(ws) * total) if total else None
        if wr is not None and float(wr) > 0:
            return math.ceil(float(wr) * total) if total else None
        if ws is not None or wr is not None:
            return 0
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite step count
        return None
    return None


# Optimizers that warm up by themselves: the Trainer passes them ``warmup_steps`` (the raw
# setting, never ``warmup_ratio``) and they scale the scheduler's LR, which is all it logs.
# schedule_free_radam needs no warmup and gets none.
SELF_WARMING_OPTIMIZERS = ("schedule_free_adamw", "schedule_free_sgd")


def warms_up_by_itself(optim: Any) -> bool:
    """Whether the optimizer named ``optim`` (the Trainer's ``optim``) does its own warmup."""
    return str(optim or "").strip().lower() in SELF_WARMING_OPTIMIZERS


def optimizer_warmup_steps(config: Mapping[str, Any]) -> int | None:
    """The warmup a config's optimizer does itself, in steps (``None``: none).

    The optimizer reads ``warmup_steps`` as a step count: a ratio below 1 is none.
    """
    if not warms_up_by_itself(config.get("optim")):
        return None
    try:
        ws = float(config.get("warmup_steps") or 0)
    except (TypeError, ValueError):
        return None
    return int(ws) if math.isfinite(ws) and ws >= 1 else None


@dataclass(frozen=True)
class WarmupRule:
    """The guide's warmup for a run of a known length: 10% of the run, at least
    :data:`GUIDE_MIN_STEPS` steps, at most :data:`GUIDE_MAX_RATIO` of the run.

    ``steps`` is the recommendation, ``low``/``high`` the fewest and most steps the rule
    accepts, ``limit`` which part of the rule decided (``"default"``, ``"minimum"`` or
    ``"maximum"``) and ``text`` says it with the numbers.
    """

    steps: int
    low: int
    high: int
    limit: str
    text: str


def warmup_rule(total_steps: int) -> WarmupRule:
    """The guide's warmup for ``total_steps`` optimizer steps (see :class:`WarmupRule`).

    10% is rounded up, as the Trainer turns ``warmup_steps: 0.1`` into steps; 20% is rounded
    down. When 20% of the run is fewer than the minimum, the maximum wins.
    """
    default = math.ceil(GUIDE_DEFAULT_RATIO * total_steps)
    high = math.floor(GUIDE_MAX_RATIO * total_steps)
    low = min(GUIDE_MIN_STEPS, high)
    ten = f"{GUIDE_DEFAULT_RATIO:.0%} of {total_steps} steps"
    if default >= low:
        steps = min(default, high) if high else default
        return WarmupRule(steps, low, high, "default", f"{ten}, the guide's default")
    if low == GUIDE_MIN_STEPS:
        text = f"{ten} is {default}, raised to the guide's minimum of {GUIDE_MIN_STEPS} steps"
        return WarmupRule(low, low, high, "minimum", text)
    text = (
        f"{ten} is {default}; the guide's minimum of {GUIDE_MIN_STEPS} steps is more than its "
        f"maximum of {GUIDE_MAX_RATIO:.0%} of the run, so {high}"
    )
    return WarmupRule(high, low, high, "maximum", text)


def recommended_warmup(
    total_steps: int,
    *,
    finetuning_type: str | None = None,
    model_size_b: float | None = None,
) -> tuple[int, str]:
    """Recommended warmup steps for a run of ``total_steps`` optimizer steps, with the reason.

    10% of the run, raised to ``GUIDE_MIN_STEPS`` and to the low end of the method's or model
    size's typical range, lowered to their high end, and never above ``GUIDE_MAX_RATIO`` of the
    run (the cap wins for short runs).
    """
    total = max(1, int(total_steps))
    target = round(GUIDE_DEFAULT_RATIO * total)
    reason = f"10% of {total} total steps"
    cap = max(1, math.floor(GUIDE_MAX_RATIO * total))
    low, high = GUIDE_MIN_STEPS, math.inf
    low_why = f"the usual minimum of {GUIDE_MIN_STEPS} steps"
    high_why = ""
    for r in _typical_ranges(finetuning_type, model_size_b):
        if r.low_steps > low:
            low, low_why = r.low_steps, f"the low end of the {r.label} range ({r.low_steps}-"
            low_why += f"{r.high_steps} steps)"
        if r.high_steps < high:
            high, high_why = r.high_steps, f"the high end of the {r.label} range ({r.low_steps}-"
            high_why += f"{r.high_steps} steps)"
    steps = target
    if steps < low:
        steps, reason = low, f"{reason} is {target}, raised to {low_why}"
    elif steps > high:
        steps, reason = int(high), f"{reason} is {target}, lowered to {high_why}"
    if steps > cap:
        steps = cap
        reason = f"{reason}; capped at 20% of the run ({cap} steps)"
    return max(1, int(steps)), reason


def nice_number(x: float) -> float:
    """Round down to a round number: 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten
    (``3.7e-4 -> 3e-4``, ``0.4 -> 0.4``, ``0.0167 -> 0.015``): at most 25% below ``x``."""
    if not (x > 0) or not math.isfinite(x):
        return x
    exp = math.floor(math.log10(x))
    mant = x / 10**exp
    for m in (8.0, 6.0, 5.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0):
        if mant >= m - 1e-9:
            return float(f"{m * 10**exp:.3g}")
    return float(f"{10**exp:.3g}")


def lower_learning_rate(
    current: float,
    *,
    finetuning_type: str | None = None,
    model_size_b: float | None = None,
    optimizer: str | None = None,
) -> tuple[float, str]:
    """A lower peak LR to try after instability: a third of ``current``, rounded down to a
    round number; the reason says the factor that results (``0.3 x 0.05``).

    A third is a step large enough to matter and small enough to keep training fast; the
    reason also quotes the guide's typical LR for the method or model size when ``current``
    is far above it (the user may want to go further). Those typical LRs are AdamW's: they are
    not quoted for an ``optimizer`` (the Trainer's ``optim``) outside the Adam family, whose
    LRs live on other scales (SGD's are far higher, Lion's lower).
    """
    third = current / 3.0
    lower = nice_number(third)
    if abs(lower - third) <= 0.01 * third:
        reason = f"a third of {current:.3g}"
    else:
        # Say the factor really used: a third, rounded down to a round number.
        reason = (
            f"{lower / current:.2g} x {current:.3g}: a third ({third:.3g}) rounded down to a "
            "round number"
        )
    adam_like = optimizer is None or "adam" in str(optimizer).lower()
    typical = _typical_ranges(finetuning_type, model_size_b) if adam_like else []
    far = [r for r in typical if r.learning_rate is not None and current > 3 * r.learning_rate]
    if far:
        r = min(far, key=lambda r: r.learning_rate or 0.0)
        reason += f"; {r.label} typically uses about {r.learning_rate:.0e}"
    return lower, reason
