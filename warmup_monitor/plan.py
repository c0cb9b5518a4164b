"""Check a training config's warmup before the run starts.

Reads a LLaMA-Factory YAML or an HF ``TrainingArguments`` JSON, counts the optimizer steps the
way the HF Trainer does, and puts the warmup against the warmup guide's rules of thumb.

Step arithmetic (HF Trainer, ``Trainer.set_initial_training_values``)::

    batches per device = ceil(samples / (per_device * gpus))   # floor with dataloader_drop_last
    steps per epoch    = max(ceil(batches / grad_accum), 1)     # transformers >= 4.52, 5.x
                       = max(batches // grad_accum, 1)          # older transformers ("floor")
    total steps        = max_steps if max_steps > 0 else ceil(num_train_epochs * steps per epoch)
    warmup steps       = int(warmup_steps)            if warmup_steps >= 1
                       = ceil(total * warmup_steps)   if 0 < warmup_steps < 1  (transformers 5.x)
                       = ceil(total * warmup_ratio)   if warmup_steps == 0     (transformers 4.x)

The batch count per device is accelerate's ``BatchSamplerShard`` length with ``even_batches``:
``ceil(ceil(samples / per_device) / gpus)``, which equals ``ceil(samples / (per_device * gpus))``.

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
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from .errors import ConfigError
from .guide import (
    DATASET_RANGES,
    GUIDE_DEFAULT_RATIO,
    GUIDE_MAX_RATIO,
    GUIDE_MIN_STEPS,
    METHOD_RANGES,
    MODEL_RANGES,
    GuideRange,
    batches_per_epoch,
    method_key,
    model_size_from_name,
    range_for,
    steps_per_epoch,
)

__all__ = [
    "LR_RANGE_FACTOR",
    "SCHEDULE_KINDS",
    "GuideCheck",
    "PlanFinding",
    "PlanResult",
    "Recommendation",
    "StepPlan",
    "TrainingConfig",
    "WarmupPlan",
    "load_config",
    "lr_schedule",
    "parse_model_size",
    "plan",
    "plot_schedule",
    "render_json",
    "render_text",
]

Severity = Literal["error", "warning", "info"]
Rounding = Literal["ceil", "floor"]

# An LR more than this factor from the guide's value for the method is outside the usual range.
LR_RANGE_FACTOR = 10.0

# HF TrainingArguments defaults for the keys the plan reads.
_HF_DEFAULTS: dict[str, Any] = {
    "learning_rate": 5e-5,
    "num_train_epochs": 3.0,
    "max_steps": -1,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "warmup_steps": 0.0,
    "warmup_ratio": 0.0,
    "lr_scheduler_type": "linear",
    "adam_beta2": 0.999,
    "dataloader_drop_last": False,
    "optim": "adamw_torch",
}
# Keys only LLaMA-Factory configs carry; any of them marks a file as a LLaMA-Factory config.
_LF_KEYS = frozenset(
    {"stage", "finetuning_type", "template", "dataset", "cutoff_len", "model_name_or_path"}
)
_NO_WARMUP_SCHEDULES = frozenset({"constant", "reduce_lr_on_plateau", "greedy"})


# --- Config --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingConfig:
    """The training settings the plan needs, with HF defaults filled in for absent keys."""

    path: str
    source_format: Literal["llamafactory", "training_args"]
    learning_rate: float
    num_train_epochs: float
    max_steps: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    warmup_steps: float
    warmup_ratio: float
    lr_scheduler_type: str
    lr_scheduler_kwargs: Mapping[str, Any]
    adam_beta2: float | None
    dataloader_drop_last: bool
    optim: str
    finetuning_type: str | None
    quantization_bit: int | None
    max_samples: int | None
    val_size: float | None
    datasets: int
    model_name_or_path: str | None

    @property
    def method(self) -> str | None:
        """``lora``, ``qlora`` or ``full`` (the methods the guide covers), else None."""
        return method_key(self.finetuning_type, self.quantization_bit)


def load_config(path: str | Path) -> TrainingConfig:
    """Read a LLaMA-Factory YAML/JSON or an HF ``TrainingArguments`` JSON file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(
            f"'{p}' has extension '{p.suffix or '(none)'}', not a training config this tool reads",
            "Give a LLaMA-Factory .yaml/.yml file or a TrainingArguments .json file",
        )
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"'{p}' does not exist", "Check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"'{p}' is a directory", "Give the config file itself") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read '{p}': {_one_line(err)}", "Check the file") from None
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        kind = "JSON" if suffix == ".json" else "YAML"
        raise ConfigError(
            f"'{p}' is not valid {kind}: {_one_line(err)}", "Fix the syntax"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"'{p}' holds a {type(data).__name__}, not a mapping of training arguments",
            "Give a file of 'key: value' training arguments",
        )
    return _config_from_mapping(data, str(p))


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _config_from_mapping(data: Mapping[str, Any], path: str) -> TrainingConfig:
    is_lf = bool(_LF_KEYS & data.keys())

    def get(key: str) -> Any:
        value = data.get(key)
        return _HF_DEFAULTS.get(key) if value is None else value

    kwargs = data.get("lr_scheduler_kwargs") or {}
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError:
            raise ConfigError(
                f"lr_scheduler_kwargs '{kwargs}' is not a JSON object", "Write it as a mapping"
            ) from None
    if not isinstance(kwargs, dict):
        raise ConfigError(
            f"lr_scheduler_kwargs is {kwargs!r}, not a mapping", "Write it as a mapping"
        )

    finetuning = data.get("finetuning_type")
    if finetuning is None and is_lf:
        finetuning = "lora"  # LLaMA-Factory's default finetuning_type
    dataset = data.get("dataset")
    n_datasets = len([d for d in str(dataset).split(",") if d.strip()]) if dataset else 1
    quant = data.get("quantization_bit")
    max_samples = data.get("max_samples")
    val_size = data.get("val_size")
    beta2 = data.get("adam_beta2")
    optim = str(get("optim"))
    if beta2 is None and "adam" in optim.lower():
        beta2 = _HF_DEFAULTS["adam_beta2"]
    return TrainingConfig(
        path=path,
        source_format="llamafactory" if is_lf else "training_args",
        learning_rate=_num(get("learning_rate"), "learning_rate", positive=True),
        num_train_epochs=_num(get("num_train_epochs"), "num_train_epochs"),
        max_steps=_int(get("max_steps"), "max_steps"),
        per_device_train_batch_size=_int(
            get("per_device_train_batch_size"), "per_device_train_batch_size", minimum=1
        ),
        gradient_accumulation_steps=_int(
            get("gradient_accumulation_steps"), "gradient_accumulation_steps", minimum=1
        ),
        warmup_steps=_num(get("warmup_steps"), "warmup_steps"),
        warmup_ratio=_num(get("warmup_ratio"), "warmup_ratio"),
        lr_scheduler_type=_scheduler_name(get("lr_scheduler_type")),
        lr_scheduler_kwargs=dict(kwargs),
        adam_beta2=None if beta2 is None else _num(beta2, "adam_beta2"),
        dataloader_drop_last=_bool(get("dataloader_drop_last"), "dataloader_drop_last"),
        optim=optim,
        finetuning_type=None if finetuning is None else str(finetuning),
        quantization_bit=None if quant is None else _int(quant, "quantization_bit"),
        max_samples=None if max_samples is None else _int(max_samples, "max_samples", minimum=1),
        val_size=None if val_size is None else _num(val_size, "val_size"),
        datasets=max(n_datasets, 1),
        model_name_or_path=None
        if data.get("model_name_or_path") is None
        else str(data["model_name_or_path"]),
    )


def _scheduler_name(value: Any) -> str:
    # TrainingArguments JSON may hold the enum's repr ("SchedulerType.COSINE") from older versions.
    name = str(value).strip()
    if name.startswith("SchedulerType."):
        name = name.split(".", 1)[1].lower()
    return name


def _num(value: Any, key: str, *, positive: bool = False) -> float:
    # PyYAML reads "5e-5" (no dot) as a string, as YAML 1.1 requires; the Trainer accepts it.
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} is {value!r}, not a number", f"Set {key} to a number") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise ConfigError(f"{key} is {value!r}", f"Set {key} to a finite number >= 0")
    if positive and number == 0:
        raise ConfigError(f"{key} is 0", f"Set {key} to a positive number")
    return number


def _int(value: Any, key: str, *, minimum: int | None = None) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{key} is {value!r}, not an integer", f"Set {key} to an integer"
        ) from None
    if isinstance(value, bool) or not number.is_integer():
        raise ConfigError(f"{key} is {value!r}, not an integer", f"Set {key} to an integer")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{key} is {value!r}", f"Set {key} to an integer >= {minimum}")
    return int(number)


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key} is {value!r}, not true/false", f"Set {key} to true or false")


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bBmMtT])\s*$")


def parse_model_size(text: str) -> float:
    """Parse ``7B``, ``0.5B``, ``70b``, ``350M`` into billions of parameters."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ConfigError(
            f"model size '{text}' is not a size like 7B, 0.5B, 70b or 350M",
            "Give --model-size as a number followed by B or M",
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    size = number * {"b": 1.0, "m": 1e-3, "t": 1e3}[unit]
    if size <= 0:
        raise ConfigError(f"model size '{text}' is not positive", "Give a positive --model-size")
    return size


# --- Result types --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepPlan:
    """Batch and step counts, each with the rule that produced it."""

    effective_batch_size: int
    batches_per_epoch: int | None
    steps_per_epoch: int | None
    total_steps: int | None
    batches_rule: str
    steps_per_epoch_rule: str
    total_steps_rule: str
    guide_steps_per_epoch: float | None  # samples / effective batch, the guide's estimate
    epochs_run: int | None  # epochs the Trainer will iterate (max_steps may cut or extend them)
    formula: str  # total steps as a function of the sample count N


@dataclass(frozen=True)
class WarmupPlan:
    """Warmup length the Trainer will use, its share of the run and the rule that applied."""

    steps: int | None
    share: float | None
    rule: str
    setting: str  # the config key that decided it ("warmup_steps", "warmup_ratio" or "none")


@dataclass(frozen=True)
class GuideCheck:
    """Where the warmup sits in one guide table row."""

    basis: str  # "share", "dataset", "model", "method", "adam"
    label: str
    value: float | None
    low: float | None
    high: float | None
    placement: Literal["below", "within", "above", "unknown"]
    note: str = ""


@dataclass(frozen=True)
class PlanFinding:
    """One problem or remark about the config."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Recommendation:
    """A concrete change: the parameter, its current and suggested value, and why."""

    parameter: str
    current: Any
    suggested: Any
    reason: str

    @property
    def text(self) -> str:
        if self.suggested is None:
            return f"remove {self.parameter}: {self.reason}"
        return f"{self.parameter} {_fmt(self.current)} -> {_fmt(self.suggested)}: {self.reason}"


@dataclass(frozen=True)
class PlanResult:
    """Everything ``warmup-monitor plan`` prints."""

    config: TrainingConfig
    samples: int | None
    samples_source: str
    gpus: int
    rounding: Rounding
    model_size_b: float | None
    model_size_source: str
    steps: StepPlan
    warmup: WarmupPlan
    checks: tuple[GuideCheck, ...]
    findings: tuple[PlanFinding, ...]
    recommendations: tuple[Recommendation, ...]

    @property
    def exit_code(self) -> int:
        """1 when any finding is an error, else 0."""
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable keys (see ``render_json``)."""
        cfg = self.config
        return {
            "schema": "warmup-monitor/plan@1",
            "config": {
                "path": cfg.path,
                "format": cfg.source_format,
                "model_name_or_path": cfg.model_name_or_path,
                "finetuning_type": cfg.finetuning_type,
                "method": cfg.method,
                "learning_rate": cfg.learning_rate,
                "lr_scheduler_type": cfg.lr_scheduler_type,
                "lr_scheduler_kwargs": dict(cfg.lr_scheduler_kwargs),
                "per_device_train_batch_size": cfg.per_device_train_batch_size,
                "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
                "num_train_epochs": cfg.num_train_epochs,
                "max_steps": cfg.max_steps,
                "warmup_steps": cfg.warmup_steps,
                "warmup_ratio": cfg.warmup_ratio,
                "adam_beta2": cfg.adam_beta2,
                "dataloader_drop_last": cfg.dataloader_drop_last,
            },
            "inputs": {
                "samples": self.samples,
                "samples_source": self.samples_source,
                "gpus": self.gpus,
                "rounding": self.rounding,
                "model_size_b": self.model_size_b,
                "model_size_source": self.model_size_source,
            },
            "steps": {
                "effective_batch_size": self.steps.effective_batch_size,
                "batches_per_epoch": self.steps.batches_per_epoch,
                "steps_per_epoch": self.steps.steps_per_epoch,
                "total_steps": self.steps.total_steps,
                "epochs_run": self.steps.epochs_run,
                "guide_steps_per_epoch": self.steps.guide_steps_per_epoch,
                "batches_rule": self.steps.batches_rule,
                "steps_per_epoch_rule": self.steps.steps_per_epoch_rule,
                "total_steps_rule": self.steps.total_steps_rule,
                "formula": self.steps.formula,
            },
            "warmup": {
                "steps": self.warmup.steps,
                "share": self.warmup.share,
                "rule": self.warmup.rule,
                "setting": self.warmup.setting,
            },
            "guide": [
                {
                    "basis": c.basis,
                    "label": c.label,
                    "value": c.value,
                    "low": c.low,
                    "high": c.high,
                    "placement": c.placement,
                    "note": c.note,
                }
                for c in self.checks
            ],
            "findings": [
                {"code": f.code, "severity": f.severity, "message": f.message}
                for f in self.findings
            ],
            "recommendations": [
                {
                    "parameter": r.parameter,
                    "current": r.current,
                    "suggested": r.suggested,
                    "reason": r.reason,
                }
                for r in self.recommendations
            ],
            "exit_code": self.exit_code,
        }


# --- The plan -----------------------------------------------------------------------------------
def plan(
    config: TrainingConfig,
    *,
    samples: int | None = None,
    gpus: int = 1,
    model_size: float | None = None,
    rounding: Rounding = "ceil",
) -> PlanResult:
    """Count the steps of ``config`` as the HF Trainer will and check its warmup against the guide.

    ``samples`` is the dataset size (``max_samples`` caps it; without it ``max_samples`` stands
    in). ``model_size`` is in billions of parameters (else read from the model name).
    ``rounding`` is how the Trainer rounds a partial gradient-accumulation window at the end of
    an epoch: ``"ceil"`` (transformers >= 4.52, 5.x) or ``"floor"`` (older versions).
    """
    if gpus < 1:
        raise ConfigError(f"--gpus is {gpus}", "Give at least 1 GPU")
    if samples is not None and samples < 1:
        raise ConfigError(f"--samples is {samples}", "Give the number of training samples (>= 1)")
    n, n_source = _resolve_samples(config, samples)
    if model_size is not None:
        size, size_source = model_size, "--model-size"
    else:
        size = model_size_from_name(config.model_name_or_path)
        size_source = "model name" if size is not None else "unknown"

    findings: list[PlanFinding] = []
    recs: list[Recommendation] = []
    steps = _count_steps(config, n, gpus, rounding)
    warmup = _warmup(config, steps.total_steps, findings, recs)
    if config.lr_scheduler_type in _NO_WARMUP_SCHEDULES and warmup.setting != "none":
        # get_scheduler passes no warmup to these schedules: the LR starts at its peak. From
        # here on every schedule without a warmup phase plans 0 warmup steps.
        warmup = WarmupPlan(
            steps=0,
            share=0.0,
            rule=f"lr_scheduler_type '{config.lr_scheduler_type}' has no warmup phase, so "
            f"{warmup.setting} is ignored (it would have given: {warmup.rule})",
            setting=warmup.setting,
        )
    if steps.total_steps == 0:
        why = (
            f"{n} samples with dataloader_drop_last fill no batch of "
            f"{config.per_device_train_batch_size} x {gpus} GPUs"
            if steps.batches_per_epoch == 0
            else f"num_train_epochs {_fmt(config.num_train_epochs)} gives no step"
        )
        findings.append(
            PlanFinding("no_training_steps", "error", f"{why}: the Trainer refuses to train")
        )
    elif steps.total_steps is None:
        findings.append(
            PlanFinding(
                "total_steps_unknown",
                "warning",
                "total steps cannot be computed without the dataset size: give --samples N "
                f"(or max_steps in the config). Total steps = {steps.formula}",
            )
        )
    _check_warmup_length(config, warmup, steps.total_steps, findings, recs)
    _check_schedule(config, warmup, findings, recs)
    _check_lr(config, size, findings, recs)
    checks = _guide_checks(config, warmup, n, size, steps.total_steps)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return PlanResult(
        config=config,
        samples=n,
        samples_source=n_source,
        gpus=gpus,
        rounding=rounding,
        model_size_b=size,
        model_size_source=size_source,
        steps=steps,
        warmup=warmup,
        checks=tuple(checks),
        findings=tuple(findings),
        recommendations=tuple(recs),
    )


def _resolve_samples(config: TrainingConfig, samples: int | None) -> tuple[int | None, str]:
    cap = None if config.max_samples is None else config.max_samples * config.datasets
    if samples is not None:
        n, source = samples, "--samples"
        if cap is not None and cap < samples:
            n, source = cap, "max_samples, which caps --samples"
    elif cap is not None:
        n, source = cap, "max_samples; assumes the dataset holds at least that many"
    else:
        return None, "unknown"
    # LLaMA-Factory holds val_size out of the training split, as datasets.train_test_split does.
    val = config.val_size
    if val and config.source_format == "llamafactory":
        held = math.ceil(val * n) if val < 1 else int(val)
        n = max(n - held, 0)
        source += f", minus val_size {_fmt(val)}"
    return n, source


def _count_steps(config: TrainingConfig, n: int | None, gpus: int, rounding: Rounding) -> StepPlan:
    b = config.per_device_train_batch_size
    ga = config.gradient_accumulation_steps
    effective = b * ga * gpus
    drop = config.dataloader_drop_last
    per_n = f"N / ({b} x {gpus})" if gpus > 1 else f"N / {b}"
    batch_expr = f"floor({per_n})" if drop else f"ceil({per_n})"
    spe_expr = f"ceil({batch_expr} / {ga})" if rounding == "ceil" else f"floor({batch_expr} / {ga})"
    epochs = config.num_train_epochs
    formula = f"ceil({_fmt(epochs)} x {spe_expr}) ~= {_fmt(epochs)} x N / {effective}"
    version = "transformers >= 4.52" if rounding == "ceil" else "transformers < 4.52"

    batches = spe = None
    guide_spe = None
    if n is not None:
        batches = batches_per_epoch(n, b, gpus, drop_last=drop)
        spe = steps_per_epoch(n, b, ga, gpus, drop_last=drop, rounding=rounding)
        guide_spe = n / effective
        batches_rule = f"{batches} per device = {batch_expr.replace('N', str(n))}"
        spe_rule = f"{spe} = {rounding}({batches} / {ga} accumulation) ({version})"
    else:
        batches_rule = f"{batch_expr} per device; needs the sample count N"
        spe_rule = f"{spe_expr} ({version}); needs the sample count N"

    if config.max_steps > 0:
        total: int | None = config.max_steps
        total_rule = f"max_steps {config.max_steps} > 0 overrides num_train_epochs {_fmt(epochs)}"
        formula = f"{config.max_steps} (max_steps)"
    elif spe is not None and batches:
        total = math.ceil(epochs * spe)
        unit = "epoch" if epochs == 1 else "epochs"
        total_rule = f"{total} = ceil({_fmt(epochs)} {unit} x {spe} steps per epoch)"
    elif batches == 0:
        total = 0
        total_rule = "no full batch: dataloader_drop_last drops every sample"
    else:
        total = None
        total_rule = f"unknown: total steps = {formula}"
    epochs_run = None
    if spe and total:
        epochs_run = math.ceil(total / spe) if config.max_steps > 0 else math.ceil(epochs)
    return StepPlan(
        effective_batch_size=effective,
        batches_per_epoch=batches,
        steps_per_epoch=spe,
        batches_rule=batches_rule,
        total_steps=total,
        steps_per_epoch_rule=spe_rule,
        total_steps_rule=total_rule,
        guide_steps_per_epoch=guide_spe,
        epochs_run=epochs_run,
        formula=formula,
    )


def _ratio_steps(total: int | None, ratio: float) -> int | None:
    return None if total is None else math.ceil(total * ratio)


def _warmup(
    config: TrainingConfig,
    total: int | None,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> WarmupPlan:
    ws, wr = config.warmup_steps, config.warmup_ratio
    if ws > 0 and wr > 0:
        findings.append(
            PlanFinding(
                "warmup_both_set",
                "error",
                f"warmup_steps {_fmt(ws)} and warmup_ratio {_fmt(wr)} are both set: the Trainer "
                "uses warmup_steps (transformers 4.x ignores warmup_ratio when warmup_steps > 0; "
                "transformers 5.x no longer accepts warmup_ratio)",
            )
        )
        recs.append(
            Recommendation(
                "warmup_ratio",
                wr,
                None,
                "remove it: warmup_steps decides the warmup, and a second setting only misleads",
            )
        )
    if ws >= 1:
        steps = int(ws)
        rule = f"warmup_steps {_fmt(ws)} >= 1 is a step count: int({_fmt(ws)}) = {steps}"
        if not float(ws).is_integer():
            findings.append(
                PlanFinding(
                    "warmup_steps_truncated",
                    "info",
                    f"warmup_steps {_fmt(ws)} is not whole: the Trainer truncates it to {steps}",
                )
            )
        setting = "warmup_steps"
    elif ws > 0:
        steps = _ratio_steps(total, ws)
        shown = "N" if total is None else str(total)
        rule = (
            f"warmup_steps {_fmt(ws)} < 1 is a ratio of the run (transformers 5.x): "
            f"ceil({_fmt(ws)} x {shown})" + ("" if steps is None else f" = {steps}")
        )
        setting = "warmup_steps"
    elif wr > 0:
        steps = _ratio_steps(total, wr)
        shown = "N" if total is None else str(total)
        rule = f"warmup_ratio {_fmt(wr)}: ceil({_fmt(wr)} x {shown})" + (
            "" if steps is None else f" = {steps}"
        )
        findings.append(
            PlanFinding(
                "warmup_ratio_removed",
                "info",
                "warmup_ratio is a transformers 4.x argument; transformers 5.x removed it and "
                f"reads warmup_steps {_fmt(wr)} (a value < 1) as the same ratio",
            )
        )
        setting = "warmup_ratio"
    else:
        steps, rule, setting = 0, "no warmup: warmup_steps and warmup_ratio are 0", "none"
    share = wr if (ws == 0 and wr > 0) else (ws if 0 < ws < 1 else None)
    if total:
        share = None if steps is None else steps / total
    return WarmupPlan(steps=steps, share=share, rule=rule, setting=setting)


def _recommended_steps(total: int) -> int:
    # The guide's default, rounded the way the Trainer turns ``warmup_steps: 0.1`` into steps.
    return math.ceil(GUIDE_DEFAULT_RATIO * total)


def _gives(desc: str, param: str, current: float, steps: int | None) -> str:
    # "warmup_steps 200 is" for a step count, "warmup_ratio 0.3 gives 141 steps," for a ratio.
    if param == "warmup_steps" and current >= 1:
        return f"{desc} is"
    return f"{desc} gives {steps} steps," if steps is not None else f"{desc} is"


def _current_setting(config: TrainingConfig, warmup: WarmupPlan) -> tuple[str, float]:
    if warmup.setting == "warmup_ratio":
        return "warmup_ratio", config.warmup_ratio
    return "warmup_steps", config.warmup_steps


def _check_warmup_length(
    config: TrainingConfig,
    warmup: WarmupPlan,
    total: int | None,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> None:
    if config.lr_scheduler_type in _NO_WARMUP_SCHEDULES:
        return  # reported by _check_schedule: the warmup never happens
    w, share = warmup.steps, warmup.share
    param, current = _current_setting(config, warmup)
    desc = f"{param} {_fmt(current)}"
    if total and w is not None and w >= total:
        rec = _recommended_steps(total)
        findings.append(
            PlanFinding(
                "warmup_longer_than_run",
                "error",
                f"{desc} gives {w} warmup steps, not shorter than the {total}-step run: the LR "
                f"{'reaches' if w == total else 'never reaches'} its peak "
                f"{_fmt(config.learning_rate)} "
                f"{'only at the last step' if w == total else 'at all'}",
            )
        )
        recs.append(
            Recommendation(
                "warmup_steps",
                current if param == "warmup_steps" else None,
                rec,
                f"{w} warmup steps cover {_pct(w / total)} of {total} total steps; "
                f"use {rec} ({_pct(GUIDE_DEFAULT_RATIO)}, the guide's default)",
            )
        )
        return
    if share is not None and share > GUIDE_MAX_RATIO:
        where = f"{_pct(share)} of {total} total steps" if total else f"{_pct(share)} of the run"
        findings.append(
            PlanFinding(
                "warmup_too_long",
                "warning",
                f"{_gives(desc, param, current, w)} {where}; the guide's maximum is "
                f"{_pct(GUIDE_MAX_RATIO)}: the run spends too much of its budget at a small LR",
            )
        )
        if total:
            rec = _recommended_steps(total)
            recs.append(
                Recommendation(
                    "warmup_steps",
                    current if param == "warmup_steps" else None,
                    rec,
                    f"{_gives(desc, param, current, w)} {_pct(share)} of {total} total steps; "
                    "the guide's maximum is "
                    f"{_pct(GUIDE_MAX_RATIO)}: use {rec} ({_pct(GUIDE_DEFAULT_RATIO)})",
                )
            )
        else:
            recs.append(
                Recommendation(
                    param,
                    current,
                    GUIDE_DEFAULT_RATIO if param != "warmup_steps" or current < 1 else None,
                    f"{_pct(share)} of the run is above the guide's maximum "
                    f"{_pct(GUIDE_MAX_RATIO)}: use {_pct(GUIDE_DEFAULT_RATIO)}",
                )
            )
        return
    if w is None:
        return
    floor_steps = min(GUIDE_MIN_STEPS, _recommended_steps(total)) if total else GUIDE_MIN_STEPS
    if w == 0:
        rec = _recommended_steps(total) if total else None
        findings.append(
            PlanFinding(
                "no_warmup",
                "warning",
                f"no warmup: the first update already uses the full learning rate "
                f"{_fmt(config.learning_rate)} while Adam's moment estimates are still noisy",
            )
        )
        recs.append(
            Recommendation(
                "warmup_steps",
                0,
                rec if rec is not None else GUIDE_DEFAULT_RATIO,
                f"the guide's default is {_pct(GUIDE_DEFAULT_RATIO)} of the run"
                + (f" ({rec} of {total} steps)" if rec is not None else ""),
            )
        )
    elif w < floor_steps:
        # The guide's rule: 10% of the run, at least 50 steps, never more than 20%.
        if total:
            ceiling = math.floor(GUIDE_MAX_RATIO * total)
            rec = max(_recommended_steps(total), min(GUIDE_MIN_STEPS, ceiling))
            rule = (
                f"{_pct(GUIDE_DEFAULT_RATIO)} of the run ({_recommended_steps(total)}), at least "
                f"{GUIDE_MIN_STEPS} steps, at most {_pct(GUIDE_MAX_RATIO)} ({ceiling})"
            )
        else:
            rec, rule = GUIDE_MIN_STEPS, f"at least {GUIDE_MIN_STEPS} steps"
        findings.append(
            PlanFinding(
                "warmup_too_short",
                "warning",
                f"{_gives(desc, param, current, w)} "
                + (f"{_pct(w / total)} of {total} total steps" if total else f"{w} steps")
                + f", under the guide's minimum of {floor_steps} steps: early updates at the "
                f"full LR {_fmt(config.learning_rate)} risk loss spikes or divergence",
            )
        )
        recs.append(
            Recommendation(
                "warmup_steps",
                current if param == "warmup_steps" else None,
                rec,
                f"{w} warmup steps are too few; the guide asks for {rule}: use {rec}",
            )
        )


def _check_schedule(
    config: TrainingConfig,
    warmup: WarmupPlan,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> None:
    kind = config.lr_scheduler_type
    if kind in _NO_WARMUP_SCHEDULES and warmup.setting != "none":
        param, current = _current_setting(config, warmup)
        findings.append(
            PlanFinding(
                "warmup_ignored",
                "error",
                f"lr_scheduler_type '{kind}' has no warmup phase: {param} {_fmt(current)} is "
                "ignored and training starts at the full learning rate "
                f"{_fmt(config.learning_rate)}",
            )
        )
        if kind == "constant":
            recs.append(
                Recommendation(
                    "lr_scheduler_type",
                    kind,
                    "constant_with_warmup",
                    "it keeps the LR constant after the warmup you asked for",
                )
            )
        return
    if kind in _NO_WARMUP_SCHEDULES and kind not in SCHEDULE_KINDS:
        return  # reduce_lr_on_plateau and greedy follow the eval metric: no formula to check
    if kind not in SCHEDULE_KINDS:
        findings.append(
            PlanFinding(
                "unknown_scheduler",
                "warning",
                f"lr_scheduler_type '{kind}' is not one of {', '.join(SCHEDULE_KINDS)}: "
                "the schedule cannot be checked or plotted",
            )
        )
        return
    try:
        _schedule_kwargs(kind, config.lr_scheduler_kwargs, config.learning_rate)
    except ConfigError as err:
        findings.append(PlanFinding("scheduler_kwargs", "error", str(err)))


def _check_lr(
    config: TrainingConfig,
    size: float | None,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> None:
    lr = config.learning_rate
    band = METHOD_RANGES.get(config.method or "")
    if band is not None and band.learning_rate is not None:
        low, high = band.learning_rate / LR_RANGE_FACTOR, band.learning_rate * LR_RANGE_FACTOR
        if not low <= lr <= high:
            side = "above" if lr > high else "below"
            findings.append(
                PlanFinding(
                    "lr_out_of_range",
                    "error",
                    f"learning_rate {_fmt(lr)} is {side} the usual range for {band.label} "
                    f"({_fmt(low)}-{_fmt(high)}; the guide uses {_fmt(band.learning_rate)})",
                )
            )
            recs.append(
                Recommendation(
                    "learning_rate",
                    lr,
                    band.learning_rate,
                    f"the guide's learning rate for {band.label}"
                    + (" (a too-high LR diverges whatever the warmup)" if side == "above" else ""),
                )
            )
            return
    model = range_for(MODEL_RANGES, size)
    if model is not None and model.learning_rate is not None and band is None:
        low, high = model.learning_rate / LR_RANGE_FACTOR, model.learning_rate * LR_RANGE_FACTOR
        if not low <= lr <= high:
            findings.append(
                PlanFinding(
                    "lr_unusual_for_model",
                    "warning",
                    f"learning_rate {_fmt(lr)} is outside {_fmt(low)}-{_fmt(high)}, a factor "
                    f"{LR_RANGE_FACTOR:g} around the guide's {_fmt(model.learning_rate)} for "
                    f"{model.label}",
                )
            )


def _range_check(basis: str, label: str, steps: float | None, row: GuideRange | None) -> GuideCheck:
    if row is None:
        return GuideCheck(basis, label, steps, None, None, "unknown")
    placement = _place(steps, row.low_steps, row.high_steps)
    return GuideCheck(basis, label, steps, row.low_steps, row.high_steps, placement)


def _place(
    value: float | None, low: float | None, high: float | None
) -> Literal["below", "within", "above", "unknown"]:
    if value is None or low is None or high is None:
        return "unknown"
    if value < low:
        return "below"
    if value > high:
        return "above"
    return "within"


def _guide_checks(
    config: TrainingConfig,
    warmup: WarmupPlan,
    n: int | None,
    size: float | None,
    total: int | None,
) -> list[GuideCheck]:
    w = float(warmup.steps) if warmup.steps is not None else None
    # The lowest acceptable share is the guide's 50-step minimum, or its 10% default when
    # 10% of a short run is fewer than 50 steps.
    low_share = min(GUIDE_MIN_STEPS, _recommended_steps(total)) / total if total else 0.0
    checks = [
        GuideCheck(
            "share",
            f"default {_pct(GUIDE_DEFAULT_RATIO)}, maximum {_pct(GUIDE_MAX_RATIO)} of the run, "
            f"at least {GUIDE_MIN_STEPS} steps",
            warmup.share,
            low_share,
            GUIDE_MAX_RATIO,
            _place(warmup.share, low_share, GUIDE_MAX_RATIO),
        )
    ]
    data = range_for(DATASET_RANGES, n)
    model = range_for(MODEL_RANGES, size)
    method = METHOD_RANGES.get(config.method or "")
    checks += [
        _range_check(
            "dataset",
            f"{n:,} samples ({data.label})" if data and n else "dataset size unknown",
            w,
            data,
        ),
        _range_check(
            "model",
            f"{_fmt_size(size)} ({model.label})" if model and size else "model size unknown",
            w,
            model,
        ),
        _range_check(
            "method",
            method.label
            if method
            else f"method {config.finetuning_type or 'unknown'} (no guide range)",
            w,
            method,
        ),
    ]
    beta2 = config.adam_beta2
    if beta2 is not None and beta2 < 1:
        adam = 2.0 / (1.0 - beta2)
        note = (
            f"Adam's second-moment average spans ~1/(1-beta2) = {1 / (1 - beta2):,.0f} steps; a "
            f"warmup of ~2/(1-beta2) = {adam:,.0f} steps covers its bias"
        )
        label = f"Adam beta2 {_fmt(beta2)}: ~2/(1-beta2) = {adam:,.0f} steps"
        if total and adam > total:
            note += f" (longer than the {total}-step run: rely on the share of the run instead)"
            label += f", longer than the {total}-step run"
        checks.append(
            GuideCheck(
                "adam",
                label,
                w,
                None,
                adam,
                "unknown" if w is None else ("below" if w < adam else "within"),
                note,
            )
        )
    return checks


# --- Schedules ----------------------------------------------------------------------------------
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


def _schedule_kwargs(kind: str, kwargs: Mapping[str, Any], peak_lr: float) -> dict[str, Any]:
    """Defaults filled in and validated the way ``transformers.get_scheduler`` would."""
    if kind not in _KWARG_DEFAULTS:
        raise ConfigError(
            f"lr_scheduler_type '{kind}' has no schedule formula here",
            f"Use one of {', '.join(SCHEDULE_KINDS)}",
        )
    allowed = _KWARG_DEFAULTS[kind]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"lr_scheduler_kwargs {unknown} do not apply to '{kind}' (the Trainer fails on them)",
            f"Use only {sorted(allowed) or 'no kwargs'}",
        )
    out = {**allowed, **kwargs}
    if kind in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        if out["min_lr"] is not None and out["min_lr_rate"] is not None:
            raise ConfigError(
                f"'{kind}' got both min_lr and min_lr_rate", "Set only one in lr_scheduler_kwargs"
            )
        if out["min_lr"] is None and out["min_lr_rate"] is None:
            raise ConfigError(
                f"'{kind}' needs min_lr or min_lr_rate (the Trainer refuses to start without it)",
                "Add one to lr_scheduler_kwargs, e.g. min_lr_rate: 0.1",
            )
    if kind == "polynomial" and not peak_lr > float(out["lr_end"]):
        raise ConfigError(
            f"polynomial lr_end {_fmt(out['lr_end'])} is not below the learning rate "
            f"{_fmt(peak_lr)} (the Trainer refuses it)",
            "Lower lr_end in lr_scheduler_kwargs",
        )
    if kind == "warmup_stable_decay":
        if out["num_decay_steps"] is None:
            raise ConfigError(
                "'warmup_stable_decay' needs num_decay_steps (the Trainer refuses to start)",
                "Add num_decay_steps to lr_scheduler_kwargs",
            )
        for key in ("warmup_type", "decay_type"):
            if out[key] not in ("linear", "cosine", "1-sqrt"):
                raise ConfigError(
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
    opts = _schedule_kwargs(kind, kwargs, peak_lr)
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


def plot_schedule(result: PlanResult, path: str | Path) -> Path:
    """Draw the LR over the whole run, warmup end marked, to a PNG or SVG (by extension)."""
    out = Path(path)
    if out.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(
            f"plot file '{out}' has extension '{out.suffix or '(none)'}'",
            "Give a .png or .svg file name",
        )
    cfg = result.config
    total, warm = result.steps.total_steps, result.warmup.steps
    if not total or warm is None:
        raise ConfigError(
            "cannot plot the schedule: the total number of steps is unknown",
            "Give --samples N or set max_steps in the config",
        )
    kind = cfg.lr_scheduler_type
    steps = np.arange(0, total + 1)
    lrs = lr_schedule(kind, steps, cfg.learning_rate, warm, total, **cfg.lr_scheduler_kwargs)

    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        ax.plot(
            steps, lrs, color="#1f77b4", lw=1.8, label=f"{kind} (peak {_fmt(cfg.learning_rate)})"
        )
        if warm > 0:
            share = f", {_pct(warm / total)} of the run"
            ax.axvline(
                warm, color="#d62728", ls="--", lw=1.2, label=f"warmup end: step {warm}{share}"
            )
            ax.axvspan(0, warm, color="#d62728", alpha=0.08)
        ax.set_xlim(0, total)
        ax.set_ylim(bottom=0)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("learning rate")
        ax.set_title(f"{Path(cfg.path).name}: {total} steps, warmup {warm}")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(out, format=out.suffix.lower().lstrip("."))
    finally:
        plt.close(fig)
    return out


# --- Rendering ----------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    """Numbers as a config would write them: 5e-05 -> 5e-5, 3.0 -> 3, 0.1 -> 0.1."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if 0 < abs(value) < 1e-3:
            mantissa, exponent = f"{value:.3e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.6g}"
    return str(value)


def _pct(share: float) -> str:
    pct = share * 100
    return f"{pct:.0f}%" if pct >= 10 or pct == 0 or pct.is_integer() else f"{pct:.1f}%"


def _fmt_size(size: float | None) -> str:
    if size is None:
        return "unknown"
    return f"{size * 1000:g}M" if size < 1 else f"{size:g}B"


def render_text(result: PlanResult) -> str:
    """The terminal report: inputs, step arithmetic, guide table, findings, recommendations."""
    cfg, st, wu = result.config, result.steps, result.warmup
    fmt_name = (
        "LLaMA-Factory config" if cfg.source_format == "llamafactory" else "TrainingArguments"
    )
    lines = [f"Plan for {cfg.path} ({fmt_name})", ""]
    samples = (
        f"{result.samples:,} samples ({result.samples_source})" if result.samples else "unknown"
    )
    lines += [
        f"  dataset          {samples}",
        f"  GPUs             {result.gpus}",
        f"  model            {_fmt_size(result.model_size_b)}"
        + (f" ({result.model_size_source})" if result.model_size_b else " (give --model-size)"),
        f"  method           {cfg.method or cfg.finetuning_type or 'unknown'}, "
        f"learning_rate {_fmt(cfg.learning_rate)}, "
        f"{cfg.lr_scheduler_type} schedule",
        "",
        "Steps (HF Trainer rules)",
        f"  effective batch  {st.effective_batch_size} = {cfg.per_device_train_batch_size} per "
        f"device x {cfg.gradient_accumulation_steps} accumulation x {result.gpus} GPU"
        + ("s" if result.gpus > 1 else ""),
    ]
    lines.append(f"  batches/epoch    {st.batches_rule}")
    lines.append(f"  steps per epoch  {st.steps_per_epoch_rule}")
    if st.guide_steps_per_epoch is not None and result.samples is not None:
        lines.append(
            f"                   the guide's estimate: {result.samples:,} / "
            f"{st.effective_batch_size} = {st.guide_steps_per_epoch:,.2f}"
        )
    lines.append(f"  total steps      {st.total_steps_rule}")
    lines.append(f"  warmup           {wu.rule}")
    if wu.share is not None:
        where = ""
        if wu.steps:
            where = f"; the LR reaches its peak {_fmt(cfg.learning_rate)} at step {wu.steps}"
        lines.append(f"                   {_pct(wu.share)} of the run{where}")
    lines += ["", "Against the guide", f"  {'rule':<8} {'warmup':<12} {'verdict':<8} guide"]
    for c in result.checks:
        if c.basis == "share":
            value = "-" if c.value is None else _pct(c.value)
            rng = c.label
        elif c.basis == "adam":
            value = "-" if c.value is None else f"{c.value:g} steps"
            rng = c.label
        else:
            value = "-" if c.value is None else f"{c.value:g} steps"
            rng = c.label + ("" if c.low is None else f": {c.low:g}-{c.high:g} steps")
        lines.append(f"  {c.basis:<8} {value:<12} {c.placement:<8} {rng}")
    lines += ["", "Findings"]
    if not result.findings:
        lines.append("  none: the warmup fits the guide")
    for f in result.findings:
        lines.append(f"  {f.severity:<8} {f.code}: {f.message}")
    if result.recommendations:
        lines += ["", "Recommendations"]
        for r in result.recommendations:
            lines.append(f"  - {r.text}")
    return "\n".join(lines) + "\n"


def render_json(result: PlanResult) -> str:
    """``PlanResult.to_dict()`` as indented JSON."""
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
