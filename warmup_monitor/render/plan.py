"""The plan as terminal text or JSON, and its LR schedule as a PNG/SVG plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detectors.schedules import lr_schedule, optimizer_warmup

from ..errors import ConfigError
from ..plan.checks import own_warmup
from ..plan.model import PlanResult
from ..plan.model import fmt_pct as _pct
from ..plan.model import fmt_size as _fmt_size
from ..plan.model import fmt_value as _fmt
from ..safe_text import for_terminal

__all__ = ["plot_schedule", "render_json", "render_text"]


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
    # Config values and the file name are the user's text: one entry, one line, no escapes.
    return "\n".join(for_terminal(line) for line in lines) + "\n"


def render_json(result: PlanResult) -> str:
    """``PlanResult.to_dict()`` as indented JSON."""
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"


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
    own = own_warmup(cfg)
    if own is not None:
        lrs = lrs * optimizer_warmup(steps, own)  # the LR the optimizer applies
    from ._plots import save_figure, schedule_figure  # matplotlib only when plotting

    fig = schedule_figure(
        steps,
        lrs,
        warmup=warm,
        label=f"{kind}{f' x {cfg.optim} warmup' if own is not None else ''} "
        f"(peak {_fmt(cfg.learning_rate)})",
        warmup_label=f"warmup end: step {warm}, {_pct(warm / total)} of the run",
        title=f"{Path(cfg.path).name}: {total} steps, warmup {warm}",
    )
    save_figure(fig, out)
    return out
