"""Formatting shared by the renderers: numbers, step ranges, evidence, schedules, advice."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from detectors._types import Finding, ScheduleFit

from ..diagnosis import Advice, Diagnosis, Verdict
from ..report import RunReport

# Evidence keys shown first, in this order; the rest follow sorted by name.
_LEADING_KEYS = ("value", "threshold", "baseline", "lr", "lr_phase")
# Evidence entries that only restate the step range or are too long for one line.
_SKIPPED_KEYS = frozenset({"step", "end_step", "kinds"})
_MAX_LIST = 4


def fmt_num(value: Any) -> str:
    """A number for people: ints as ints, floats with 4 significant digits, nan/inf spelled out."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) or hasattr(value, "__float__"):
        try:
            x = float(value)
        except (TypeError, ValueError):
            return str(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x == int(x) and abs(x) < 1e15 and not isinstance(value, float):
            return str(int(x))
        return f"{x:.4g}"
    return str(value)


def fmt_value(value: Any) -> str:
    """An evidence value: numbers via :func:`fmt_num`, short lists inline, strings as-is."""
    if isinstance(value, (list, tuple)):
        shown = ", ".join(fmt_num(v) for v in value[:_MAX_LIST])
        more = f", … ({len(value)} in all)" if len(value) > _MAX_LIST else ""
        return f"[{shown}{more}]"
    if isinstance(value, Mapping):
        return (
            "{" + ", ".join(f"{k}: {fmt_num(v)}" for k, v in list(value.items())[:_MAX_LIST]) + "}"
        )
    return fmt_num(value)


def fmt_percent(share: float | None) -> str:
    if share is None or not math.isfinite(share):
        return "-"
    return f"{share * 100:.1f}%"


def step_range(finding: Finding) -> str:
    if finding.end_step is None or finding.end_step == finding.step:
        return f"step {finding.step}"
    return f"steps {finding.step}-{finding.end_step}"


def evidence_items(finding: Finding, *, brief: bool = False) -> list[tuple[str, str]]:
    """``(key, text)`` pairs of a finding's evidence: value and threshold first.

    ``brief`` keeps only the leading keys (value, threshold, baseline, LR), for one-line output.
    """
    ev = finding.evidence or {}
    keys = [k for k in _LEADING_KEYS if k in ev]
    if not brief:
        keys += sorted(k for k in ev if k not in _LEADING_KEYS and k not in _SKIPPED_KEYS)
    # An absent threshold or baseline (None) says nothing worth a column.
    items = [(str(k), fmt_value(ev[k])) for k in keys if ev[k] is not None or k == "value"]
    if "kinds" in ev and items and items[0][0] == "value":
        # A stretch of NaN and +Inf: say both, not only the first value's kind.
        items[0] = ("value", str(ev["kinds"]))
    return items


def warmup_end(fit: ScheduleFit) -> int | None:
    """The training step where the warmup ends (the LR first reaches its peak), if any.

    ``warmup_steps`` counts from step 0 for a ramp that starts at 0, else from the first logged
    step; the end lies at or just before ``peak_step``, which tells the two apart.
    """
    if not fit.warmup_steps or fit.warmup_shape == "none":
        return None
    candidates = [
        e for e in (fit.warmup_steps, fit.first_step + fit.warmup_steps) if e <= fit.peak_step
    ]
    return max(candidates) if candidates else fit.peak_step


def planned_total(diagnosis: Diagnosis | None) -> int | None:
    """The run length the diagnosis judged by, when it is not the LR trace's own (a max_steps
    in the config that the trace's extrapolated decay does not match)."""
    if diagnosis is None or diagnosis.schedule is None:
        return None
    total = diagnosis.evidence.get("total_steps")
    implied = diagnosis.schedule.total_steps
    if not isinstance(total, int) or total <= 0 or not implied:
        return None
    return total if abs(total - implied) > 0.01 * total else None


def schedule_text(fit: ScheduleFit | None, total: int | None = None) -> str:
    """One line describing the inferred schedule; ``total`` is the planned run length when it
    differs from the one the LR trace implies (see :func:`planned_total`)."""
    if fit is None:
        return "no learning-rate trace in the logs"
    if fit.lr_never_moves:
        return f"constant LR {fmt_num(fit.peak_lr)} (the LR never moves: no warmup, no decay)"
    parts = []
    if fit.warmup_steps is None and fit.warmup_longer_than_run:
        parts.append(f"warmup longer than the run (the LR still rises at step {fit.last_step})")
    elif fit.warmup_steps is None:
        parts.append("warmup unknown (trace too short)")
    elif fit.warmup_steps == 0 or fit.warmup_shape == "none":
        parts.append("no warmup")
    else:
        shape = f"{fit.warmup_shape} " if fit.warmup_shape not in ("unknown", "") else ""
        span = total - fit.warmup_start if total else None
        share = fit.warmup_steps / span if span and span > 0 else fit.warmup_fraction
        since = f" from step {fit.warmup_start}" if fit.warmup_start else ""
        parts.append(f"{shape}warmup {fit.warmup_steps} steps{since} ({fmt_percent(share)} of run)")
    if fit.warmup_longer_than_run and fit.warmup_steps is not None:
        parts.append("warmup longer than the run")
    peak = f"peak LR {fmt_num(fit.peak_lr)} at step {fit.peak_step}"
    if not fit.reached_peak:
        peak += " (target never reached)"
    parts.append(peak)
    if fit.decay == "none":
        parts.append("no decay seen")
    elif fit.decay == "constant":
        parts.append("constant after the peak")
    else:
        decay = f"{fit.decay} decay"
        if fit.decay_floor:
            decay += f" to {fmt_percent(fit.decay_floor)} of the peak"
        if fit.decay_start is not None:
            decay = f"constant to step {fit.decay_start}, then {decay}"
        parts.append(decay)
    if total:
        parts.append(
            f"{total} total steps (the config's; the LR trace alone implies {fit.total_steps})"
        )
    elif fit.total_steps:
        parts.append(f"{fit.total_steps} total steps")
    else:
        parts.append(f"last step {fit.last_step}")
    return ", ".join(parts)


def advice_detail(advice: Advice) -> str | None:
    """``parameter: current -> suggested (reason)``; the reason only when the text lacks it."""
    reason = advice.reason if advice.reason and advice.reason not in advice.text else ""
    if advice.parameter is None:
        return reason or None
    detail = f"{advice.parameter}: {fmt_value(advice.current)} -> {fmt_value(advice.suggested)}"
    return f"{detail} ({reason})" if reason else detail


MAX_RESUME_LINES = 5  # more resumes than this are summed up in one line


def run_notes(rr: RunReport) -> list[str]:
    """Resumes, notes and reader warnings of a run, one short line each."""
    run = rr.run
    if run is None:
        return []
    resumes = run.resumes
    if len(resumes) <= MAX_RESUME_LINES:
        lines = [f"resumed at step {r.step} after reaching step {r.from_step}" for r in resumes]
    else:
        # Hundreds of "resumes" are two writers interleaving one log (say, two processes
        # appending to one trainer_log.jsonl), not hundreds of restarts: one line says so.
        first, last = resumes[0], resumes[-1]
        lines = [
            f"steps go back {len(resumes)} times (first at step {first.step} after step "
            f"{first.from_step}, last at step {last.step} after step {last.from_step}): "
            "restarts, or several writers appending to one log; the value written last at "
            "each step is the one used"
        ]
    lines += list(run.notes)
    lines += [f"warning: {w}" for w in run.warnings]
    if run.status not in ("finished", "unknown"):
        lines.append(f"run status: {run.status}")
    return lines


def verdict_of(diagnosis: Diagnosis) -> str:
    return Verdict(diagnosis.verdict).value


def summary_row(rr: RunReport) -> dict[str, str]:
    """The cells of a run's row in the multi-run summary table."""
    if rr.diagnosis is None:
        return {"run": rr.name, "source": rr.source, "error": rr.error or "unreadable"}
    d = rr.diagnosis
    fit = d.schedule
    warmup = "-"
    if fit is not None and fit.warmup_steps is not None:
        warmup = f"{fit.warmup_steps} ({fmt_percent(fit.warmup_fraction)})"
    elif fit is not None and fit.warmup_longer_than_run:
        warmup = f">{fit.last_step} (>100%)"
    return {
        "run": rr.name,
        "source": rr.source,
        "steps": fmt_num(rr.last_step),
        "verdict": f"{verdict_of(d)} ({d.confidence:.2f})",
        "warmup": warmup,
        "peak_lr": fmt_num(fit.peak_lr) if fit is not None else "-",
        "final_loss": fmt_num(rr.final_loss),
        "first_problem": fmt_num(d.first_problem_step),
    }
