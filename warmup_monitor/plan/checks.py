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

The learning-rate schedules are the HF Trainer's formulas in :mod:`detectors.schedules`; the
rendering (text, JSON, the LR plot) lives in :mod:`warmup_monitor.render.plan`.
"""

from __future__ import annotations

import math
from typing import Literal

from detectors.schedules import SCHEDULE_KINDS, ScheduleKwargsError, schedule_kwargs

from ..errors import ConfigError
from ..guide import (
    DATASET_RANGES,
    GUIDE_DEFAULT_RATIO,
    GUIDE_MAX_RATIO,
    GUIDE_MIN_STEPS,
    METHOD_RANGES,
    MODEL_RANGES,
    GuideRange,
    batches_per_epoch,
    model_size_from_name,
    optimizer_warmup_steps,
    range_for,
    steps_per_epoch,
    warms_up_by_itself,
    warmup_rule,
)
from .config import TrainingConfig
from .model import (
    GuideCheck,
    PlanFinding,
    PlanResult,
    Recommendation,
    Rounding,
    StepPlan,
    WarmupPlan,
)
from .model import fmt_pct as _pct
from .model import fmt_size as _fmt_size
from .model import fmt_value as _fmt

__all__ = ["KNOWN_STAGES", "LR_RANGE_FACTOR", "STAGE_LEARNING_RATES", "SUPERVISED_STAGES", "plan"]

# An LR more than this factor from the guide's value for the method is outside the usual range.
LR_RANGE_FACTOR = 10.0
_NO_WARMUP_SCHEDULES = frozenset({"constant", "reduce_lr_on_plateau", "greedy"})
# LLaMA-Factory's training stages. The supervised ones (pre-training, SFT, reward model) are
# judged by the guide's LR for the method; preference and RL stages start from a tuned model and
# take far smaller steps, so their reference is LLaMA-Factory's own example config for the stage
# (qwen3_lora_dpo.yaml and qwen3_lora_kto.yaml: 5e-6; llama3_lora_ppo.yaml: 1e-5). Any other
# stage gets no LR verdict. A TrainingArguments JSON has no stage: SFT.
SUPERVISED_STAGES = ("pt", "sft", "rm")
STAGE_LEARNING_RATES = {"dpo": 5e-6, "kto": 5e-6, "ppo": 1e-5}
KNOWN_STAGES = (*SUPERVISED_STAGES, *STAGE_LEARNING_RATES)


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
    own = own_warmup(config)
    if own is not None:
        warmup = _with_own_warmup(config, warmup, own, steps.total_steps, findings, recs)
    else:
        _check_own_warmup_ratio(config, steps.total_steps, findings, recs)
        if config.lr_scheduler_type in _NO_WARMUP_SCHEDULES and warmup.setting != "none":
            # get_scheduler passes no warmup to these schedules: the LR starts at its peak.
            # From here on every schedule without a warmup phase plans 0 warmup steps.
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


def own_warmup(config: TrainingConfig) -> int | None:
    """The warmup the optimizer does by itself (schedule-free AdamW and SGD), in steps."""
    return optimizer_warmup_steps({"optim": config.optim, "warmup_steps": config.warmup_steps})


def _with_own_warmup(
    config: TrainingConfig,
    warmup: WarmupPlan,
    own: int,
    total: int | None,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> WarmupPlan:
    """A schedule-free optimizer warms up over ``warmup_steps`` itself; the Trainer's scheduler
    should then be ``constant`` (as schedulefree expects), or the two warmups multiply."""
    kind = config.lr_scheduler_type
    rule = f"optim '{config.optim}' warms up by itself over warmup_steps {own}"
    if kind in _NO_WARMUP_SCHEDULES:
        rule += f" (lr_scheduler_type '{kind}' adds no warmup of its own)"
    else:
        rule += f", and lr_scheduler_type '{kind}' warms up again over {warmup.steps} steps"
        findings.append(
            PlanFinding(
                "double_warmup",
                "warning",
                f"optim '{config.optim}' warms up by itself over warmup_steps {own} and "
                f"lr_scheduler_type '{kind}' warms up over the same steps: the two ramps "
                f"multiply, so the LR is still at a quarter of its peak half way through the "
                f"warmup. Schedule-free optimizers expect lr_scheduler_type 'constant'",
            )
        )
        recs.append(
            Recommendation(
                "lr_scheduler_type",
                kind,
                "constant",
                f"{config.optim} warms up by itself over warmup_steps; a constant scheduler "
                "keeps that single warmup",
            )
        )
    return WarmupPlan(
        steps=own,
        share=own / total if total else None,
        rule=rule,
        setting="warmup_steps",
    )


def _check_own_warmup_ratio(
    config: TrainingConfig,
    total: int | None,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> None:
    """The Trainer hands a schedule-free optimizer ``warmup_steps`` as it is, never
    ``warmup_ratio``: a ratio below 1 (transformers 5.x) is a fraction of one step, so the first
    update runs at 1/ratio times the LR; a ``warmup_ratio`` (4.x) does not reach it at all."""
    ws, wr = config.warmup_steps, config.warmup_ratio
    if not warms_up_by_itself(config.optim):
        return
    if 0 < ws < 1:
        ratio, setting = ws, "warmup_steps"
        what = (
            f"reads warmup_steps {_fmt(ws)} as {_fmt(ws)} steps, not as a ratio of the run: its "
            f"first update runs at {_fmt(1 / ws)}x the learning rate and there is no warmup"
        )
    elif ws == 0 and wr > 0:
        ratio, setting = wr, "warmup_ratio"
        what = f"takes its warmup from warmup_steps (0), not warmup_ratio {_fmt(wr)}: no warmup"
    else:
        return
    findings.append(
        PlanFinding(
            "optimizer_warmup_ratio",
            "warning",
            f"optim '{config.optim}' {what}. Give warmup_steps as a step count",
        )
    )
    if total:
        recs.append(
            Recommendation(
                "warmup_steps",
                ws,
                math.ceil(ratio * total),
                f"{setting} {_fmt(ratio)} of the {total}-step run is "
                f"{math.ceil(ratio * total)} steps, a count the optimizer reads",
            )
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
    if config.lr_scheduler_type in _NO_WARMUP_SCHEDULES and own_warmup(config) is None:
        return  # reported by _check_schedule: the warmup never happens
    w, share = warmup.steps, warmup.share
    param, current = _current_setting(config, warmup)
    desc = f"{param} {_fmt(current)}"
    # One rule for the checks and the recommendation: 10%, at least 50 steps, at most 20%.
    rule = warmup_rule(total) if total else None
    if total and rule and w is not None and w >= total:
        rec = rule.steps
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
                f"use {rec} ({rule.text})",
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
        if total and rule:
            rec = rule.steps
            recs.append(
                Recommendation(
                    "warmup_steps",
                    current if param == "warmup_steps" else None,
                    rec,
                    f"{_gives(desc, param, current, w)} {_pct(share)} of {total} total steps; "
                    "the guide's maximum is "
                    f"{_pct(GUIDE_MAX_RATIO)}: use {rec} ({rule.text})",
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
    floor_steps = rule.low if rule else GUIDE_MIN_STEPS
    if w == 0:
        rec = rule.steps if rule else None
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
                f"the guide's rule: {rule.text}"
                if rule
                else f"the guide's default is {_pct(GUIDE_DEFAULT_RATIO)} of the run",
            )
        )
    elif w < floor_steps:
        if rule:
            rec, why = rule.steps, rule.text
        else:
            rec, why = GUIDE_MIN_STEPS, f"the guide's minimum of {GUIDE_MIN_STEPS} steps"
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
                f"{w} warmup steps are too few: use {rec} ({why})",
            )
        )


def _check_schedule(
    config: TrainingConfig,
    warmup: WarmupPlan,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> None:
    kind = config.lr_scheduler_type
    # A schedule-free optimizer wants a constant scheduler: its warmup is its own.
    if (
        kind in _NO_WARMUP_SCHEDULES
        and warmup.setting != "none"
        and not warms_up_by_itself(config.optim)
    ):
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
        schedule_kwargs(kind, config.lr_scheduler_kwargs, config.learning_rate)
    except ScheduleKwargsError as err:
        findings.append(PlanFinding("scheduler_kwargs", "error", str(err)))


def _check_lr(
    config: TrainingConfig,
    size: float | None,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> None:
    lr = config.learning_rate
    stage = (config.stage or "sft").lower()
    if stage in STAGE_LEARNING_RATES:
        ref = STAGE_LEARNING_RATES[stage]
        label = f"stage {stage} ({config.method or config.finetuning_type or 'any method'})"
        _lr_range(lr, ref, label, "LLaMA-Factory's example configs use", findings, recs)
        return
    if stage not in SUPERVISED_STAGES:
        findings.append(
            PlanFinding(
                "lr_not_judged",
                "info",
                f"stage '{stage}' is none of {', '.join(KNOWN_STAGES)}: there is no usual "
                f"range to judge learning_rate {_fmt(lr)} against",
            )
        )
        return
    band = METHOD_RANGES.get(config.method or "")
    if band is not None and band.learning_rate is not None:
        _lr_range(lr, band.learning_rate, band.label, "the guide uses", findings, recs)
        return
    model = range_for(MODEL_RANGES, size)
    if model is not None and model.learning_rate is not None:
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


def _lr_range(
    lr: float,
    ref: float,
    label: str,
    source: str,
    findings: list[PlanFinding],
    recs: list[Recommendation],
) -> None:
    """An error (and the reference LR as advice) when ``lr`` is more than
    :data:`LR_RANGE_FACTOR` away from ``ref``."""
    low, high = ref / LR_RANGE_FACTOR, ref * LR_RANGE_FACTOR
    if low <= lr <= high:
        return
    side = "above" if lr > high else "below"
    findings.append(
        PlanFinding(
            "lr_out_of_range",
            "error",
            f"learning_rate {_fmt(lr)} is {side} the usual range for {label} "
            f"({_fmt(low)}-{_fmt(high)}; {source} {_fmt(ref)})",
        )
    )
    recs.append(
        Recommendation(
            "learning_rate",
            lr,
            ref,
            f"the usual learning rate for {label}"
            + (" (a too-high LR diverges whatever the warmup)" if side == "above" else ""),
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
    low_share = warmup_rule(total).low / total if total else 0.0
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
