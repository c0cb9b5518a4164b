"""Compare sibling runs of a sweep: what differs between them, and what each setting cost.

:func:`build_comparison` is what ``warmup-monitor compare`` calls. It reads and diagnoses every
run (through :func:`~warmup_monitor.report.build_report`), finds the settings that differ
between the runs' configs (or, without a config, their inferred LR schedules), groups runs
that differ only in their seed, and measures each run with :mod:`detectors.progress` — the
same measures that label the sweep corpus:

* **target**: the loss the best setting reaches at 25% of its run (the mean over its seeds),
  or the one given;
* **steps to target**: the first step where the smoothed loss is at or below the target;
* **final loss**: the mean of the last 5% of the logged points;
* **area**: the mean height of the loss curve over the steps all runs share.

Runs of different lengths are measured on the steps they have in common (steps to target, area)
and against their own length (share of the run, final loss); the :class:`Comparison` says which.
Settings are ranked: those that reached the target by their steps to it (ties by area), then
those that did not by final loss; a setting with an unstable run (NaN, divergence, a problem
verdict of the instability kind) comes last, whatever its speed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.progress import (
    ProgressConfig,
    area_under,
    smooth_window,
    steps_to_target,
    tail_mean,
    value_at,
)

from .diagnosis import Verdict
from .errors import InputError
from .report import ProgressCallback, Report, RunReport, build_report, displayed_loss

__all__ = [
    "QUARTER",
    "Comparison",
    "Entry",
    "RunMeasures",
    "Stat",
    "build_comparison",
    "compare_report",
    "setting_label",
    "setting_name",
]

#: Share of its own run at which the best setting's loss becomes the default target.
QUARTER = 0.25
#: Share of the logged steps whose mean is the final loss.
FINAL_SHARE = 0.05
# Config keys that describe a run's bookkeeping rather than a setting someone chose.
_NOT_SETTINGS = frozenset({"global_step", "train_batch_size", "logging_steps", "loss_window"})
_SEED = "seed"
# Verdicts of a run that was unstable: it cannot be the best setting, however fast it fell.
_UNSTABLE = frozenset(
    {Verdict.WARMUP_TOO_SHORT, Verdict.LR_TOO_HIGH, Verdict.NUMERICAL_INSTABILITY}
)
# Keys in the order settings are named, with their short names.
_NAMES: dict[str, str] = {
    "warmup_steps": "warmup",
    "warmup_ratio": "warmup ratio",
    "learning_rate": "LR",
    "lr_scheduler_type": "scheduler",
    "per_device_train_batch_size": "batch",
    "gradient_accumulation_steps": "grad accum",
    "max_steps": "steps",
    "num_train_epochs": "epochs",
    "max_grad_norm": "max grad norm",
    "adam_beta2": "beta2",
    "finetuning_type": "method",
    "model_name_or_path": "model",
    "quantization_bit": "bits",
    "max_samples": "samples",
}
# Two settings closer than this (relative) are the same: 3e-3 logged as 0.0030000000000000001.
_SAME = 1e-6
# Settings within this share of the best's steps to target are as good as the best.
_TIE = 0.1


@dataclass(frozen=True)
class Stat:
    """Mean and spread of one measure over the runs of a setting (``n`` runs had a value)."""

    mean: float
    min: float
    max: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat | None:
        xs = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        if xs.size == 0:
            return None
        return cls(float(xs.mean()), float(xs.min()), float(xs.max()), float(xs.std()), xs.size)


@dataclass(frozen=True)
class RunMeasures:
    """One run of the comparison: its setting, seed, measures and single-run verdict."""

    report: RunReport
    setting: dict[str, Any]
    seed: Any
    first_step: int
    last_step: int
    points: int
    smooth_points: int
    at_quarter: float
    steps_to_target: int | None
    share_to_target: float | None
    final_loss: float
    area: float
    unstable: bool

    @property
    def name(self) -> str:
        return self.report.name

    @property
    def verdict(self) -> str | None:
        d = self.report.diagnosis
        return Verdict(d.verdict).value if d is not None else None


@dataclass(frozen=True)
class Entry:
    """One setting (the runs that differ only in seed), ranked against the others.

    ``steps_lost`` and ``ratio`` compare the mean steps to target with the best setting's;
    ``None`` when this setting did not reach the target (in every run).
    """

    rank: int
    label: str
    setting: dict[str, Any]
    runs: tuple[RunMeasures, ...]
    steps_to_target: Stat | None
    share_to_target: Stat | None
    final_loss: Stat | None
    area: Stat | None
    steps_lost: float | None
    ratio: float | None

    @property
    def reached(self) -> int:
        """How many of its runs reached the target."""
        return sum(m.steps_to_target is not None for m in self.runs)

    @property
    def unstable(self) -> int:
        """How many of its runs were unstable."""
        return sum(m.unstable for m in self.runs)

    @property
    def verdicts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.runs:
            key = m.verdict or "error"
            out[key] = out.get(key, 0) + 1
        return out


@dataclass(frozen=True)
class Comparison:
    """A sweep compared: ranked settings, how they were measured, and one conclusion."""

    report: Report
    entries: tuple[Entry, ...]
    varying: tuple[str, ...]
    constant: dict[str, Any]
    inferred: tuple[str, ...]
    target: float
    target_given: bool
    target_label: str | None
    equal_length: bool
    common_end: int
    repeats: bool
    conclusion: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def measures(self) -> list[RunMeasures]:
        return [m for e in self.entries for m in e.runs]

    @property
    def grouped(self) -> bool:
        """True when some setting holds more than one run (seeds or repeats)."""
        return any(len(e.runs) > 1 for e in self.entries)

    @property
    def smooth_points(self) -> tuple[int, int]:
        windows = [m.smooth_points for m in self.measures]
        return (min(windows), max(windows))

    def to_dict(self) -> dict[str, Any]:
        """The comparison as ``--format json`` writes it: JSON types only, no NaN/Inf."""
        from .render.compare import comparison_to_dict

        return comparison_to_dict(self)


def setting_name(key: str) -> str:
    """The short name of a setting: ``warmup`` for ``warmup_steps``, ``LR`` …"""
    return _NAMES.get(key, key)


def setting_label(setting: Mapping[str, Any]) -> str:
    """``warmup 30, LR 0.003``: a setting in words, keys in their usual order."""
    keys = sorted(setting, key=_key_order)
    return ", ".join(f"{setting_name(k)} {_fmt_setting(setting[k])}" for k in keys)


def _key_order(key: str) -> tuple[int, str]:
    order = list(_NAMES)
    return (order.index(key) if key in order else len(order), key)


def _fmt_setting(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):  # lr_scheduler_kwargs
        return ", ".join(f"{k}={_fmt_setting(v)}" for k, v in value.items()) or "-"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        return math.isclose(float(a), float(b), rel_tol=_SAME, abs_tol=0.0)
    return a == b


def _canonical(value: Any) -> Any:
    """A hashable value under which settings equal within :data:`_SAME` fall together."""
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return float(f"{value:.6g}")
    if isinstance(value, Mapping):  # lr_scheduler_kwargs: a dict of scalars
        return _FrozenDict({str(k): _canonical(v) for k, v in value.items()})
    return value


class _FrozenDict(dict):
    """A mapping setting (``lr_scheduler_kwargs``) that can key a group; JSON sees a dict."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))


def _settings(rr: RunReport) -> tuple[dict[str, Any], set[str]]:
    """The run's settings: its config, completed from the inferred schedule; inferred keys."""
    assert rr.run is not None and rr.diagnosis is not None
    out = {k: v for k, v in rr.run.config.items() if k not in _NOT_SETTINGS}
    inferred: set[str] = set()
    fit = rr.diagnosis.schedule
    if fit is None:
        return out, inferred
    if "warmup_steps" not in out and "warmup_ratio" not in out and fit.warmup_steps is not None:
        out["warmup_steps"] = int(fit.warmup_steps)
        inferred.add("warmup_steps")
    # A warmup that never ends shows only a lower bound of the peak LR: unknown, not different.
    if (
        "learning_rate" not in out
        and fit.reached_peak
        and fit.peak_lr is not None
        and math.isfinite(fit.peak_lr)
    ):
        out["learning_rate"] = float(f"{fit.peak_lr:.3g}")
        inferred.add("learning_rate")
    # A constant LR after the peak is "constant" or "constant_with_warmup" to HF: not inferred.
    if "lr_scheduler_type" not in out and fit.decay in ("linear", "cosine"):
        out["lr_scheduler_type"] = fit.decay
        inferred.add("lr_scheduler_type")
    return out, inferred


def _warmup_in_steps(settings: list[dict[str, Any]]) -> None:
    """Runs that set their warmup as a ratio next to runs that set it in steps: all in steps."""
    if not any("warmup_steps" in s for s in settings):
        return
    for s in settings:
        if "warmup_ratio" in s and "warmup_steps" not in s and "max_steps" in s:
            s["warmup_steps"] = math.ceil(s.pop("warmup_ratio") * s["max_steps"])


def _varying(settings: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    # A key some runs lack (no config file, a run still starting) is varying only when the runs
    # that have it disagree: a missing value is unknown, not a different setting.
    keys = sorted({k for s in settings for k in s}, key=_key_order)
    varying, constant = [], {}
    for k in keys:
        values = [s[k] for s in settings if k in s]
        if all(_same(v, values[0]) for v in values[1:]):
            constant[k] = values[0]
        else:
            varying.append(k)
    return varying, constant


def _loss(rr: RunReport) -> tuple[np.ndarray, np.ndarray]:
    assert rr.run is not None
    return displayed_loss(rr.run)


def _finite_span(steps: np.ndarray, values: np.ndarray) -> tuple[int, int] | None:
    ok = np.isfinite(values)
    if not ok.any():
        return None
    return int(steps[ok][0]), int(steps[ok][-1])


def _is_unstable(rr: RunReport, values: np.ndarray) -> bool:
    d = rr.diagnosis
    if d is not None and Verdict(d.verdict) in _UNSTABLE:
        return True
    return bool(len(values)) and not math.isfinite(float(values[-1]))


def _measure(
    rr: RunReport,
    curve: tuple[np.ndarray, np.ndarray],
    at_quarter: float,
    setting: dict[str, Any],
    seed: Any,
    target: float,
    common_end: int,
    config: ProgressConfig,
) -> RunMeasures:
    steps, values = curve
    first, last = int(steps[0]), int(steps[-1])
    # The smoothing is causal, so where the whole curve first reaches the target is where the
    # curve cut at the common end does, if it does so by then.
    full_reach = steps_to_target(steps, values, target, config)
    reached = full_reach if full_reach is not None and full_reach <= common_end else None
    span = max(last - first, 1)
    return RunMeasures(
        report=rr,
        setting=setting,
        seed=seed,
        first_step=first,
        last_step=last,
        points=len(steps),
        smooth_points=smooth_window(int(np.isfinite(values).sum()), config),
        at_quarter=at_quarter,
        steps_to_target=reached,
        share_to_target=(full_reach - first) / span if full_reach is not None else None,
        final_loss=tail_mean(steps, values, FINAL_SHARE),
        area=area_under(steps, values, upto=common_end),
        unstable=_is_unstable(rr, values),
    )


def _mean_finite(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _at_share(steps: np.ndarray, values: np.ndarray, share: float, config: ProgressConfig) -> float:
    first, last = int(steps[0]), int(steps[-1])
    return value_at(steps, values, first + share * (last - first), config)


def compare_report(
    report: Report,
    *,
    target: float | None = None,
    smooth_points: int | None = None,
) -> Comparison:
    """Compare the runs of an already built report (see the module docstring)."""
    usable: list[RunReport] = []
    curves: list[tuple[np.ndarray, np.ndarray]] = []
    spans: list[tuple[int, int]] = []
    notes: list[str] = []
    for rr in report.runs:
        if rr.run is None or rr.diagnosis is None:
            continue
        if not rr.run.has("loss"):
            notes.append(f"run '{rr.name}' logs no loss: left out")
            continue
        steps, values = _loss(rr)
        span = _finite_span(steps, values)
        if span is None:
            notes.append(f"run '{rr.name}' has no finite loss: left out")
            continue
        usable.append(rr)
        curves.append((steps, values))
        # The logged span, NaN included: a run that blows up still covers the steps it logged,
        # and must not shrink the steps the others are compared on.
        spans.append((int(steps[0]), int(steps[-1])))
    if len(usable) < 2:
        found = ", ".join(f"'{r.name}'" for r in usable) or "none"
        raise InputError(
            f"compare needs at least two runs with a loss; found {len(usable)} ({found})",
            "Point at a folder holding the sibling runs of a sweep, or give several paths",
        )
    common_start = max(s[0] for s in spans)
    common_end = min(s[1] for s in spans)
    if common_end < common_start:
        short = min(range(len(usable)), key=lambda i: spans[i][1])
        late = max(range(len(usable)), key=lambda i: spans[i][0])
        raise InputError(
            f"the runs have no loss steps in common: '{usable[short].name}' ends at step "
            f"{spans[short][1]}, '{usable[late].name}' starts at step {spans[late][0]}",
            "Compare runs that cover the same steps (a sweep), not consecutive pieces of one run",
        )
    lasts = [int(steps[-1]) for steps, _ in curves]
    equal_length = max(lasts) - min(lasts) <= max(1, 0.02 * max(lasts))
    config = ProgressConfig(smooth_points=smooth_points)

    pairs = [_settings(rr) for rr in usable]
    settings = [s for s, _ in pairs]
    _warmup_in_steps(settings)
    seeds = [s.pop(_SEED, None) for s in settings]
    varying, constant = _varying(settings)
    inferred = sorted({k for _, inf in pairs for k in inf if k in varying}, key=_key_order)
    repeats = not varying

    # Group: runs with equal varying settings (differing only in seed) are one setting.
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, s in enumerate(settings):
        key = tuple(_canonical(s.get(k)) for k in varying) if varying else (i,)
        groups.setdefault(key, []).append(i)

    # The target: the best setting's loss at a quarter of its run (stable settings preferred).
    at_quarter = [_at_share(*curve, QUARTER, config) for curve in curves]
    quarter = {
        key: _mean_finite([at_quarter[i] for i in members]) for key, members in groups.items()
    }
    unstable = [_is_unstable(rr, values) for rr, (_, values) in zip(usable, curves, strict=True)]
    stable_keys = [key for key, members in groups.items() if not any(unstable[i] for i in members)]
    candidates = [k for k in (stable_keys or list(groups)) if math.isfinite(quarter[k])]
    target_label: str | None = None
    if target is None:
        if not candidates:
            raise InputError(
                "no run has a finite loss at a quarter of its run to define the target",
                "Give the target loss with --target",
            )
        best_key = min(candidates, key=lambda k: quarter[k])
        target_value = quarter[best_key]
        target_label = _group_label(best_key, varying, groups, usable)
    else:
        if not math.isfinite(target):
            raise InputError(f"--target must be a finite loss; got {target}", "Pass a number")
        target_value = float(target)

    measures = [
        _measure(
            usable[i],
            curves[i],
            at_quarter[i],
            settings[i],
            seeds[i],
            target_value,
            common_end,
            config,
        )
        for i in range(len(usable))
    ]
    entries = _rank(groups, measures, varying, usable)
    comparison = Comparison(
        report=report,
        entries=tuple(entries),
        varying=tuple(varying),
        constant=constant,
        inferred=tuple(inferred),
        target=target_value,
        target_given=target is not None,
        target_label=target_label,
        equal_length=equal_length,
        common_end=common_end,
        repeats=repeats,
        conclusion="",
        notes=tuple(notes),
    )
    return _with_conclusion(comparison)


def _group_label(
    key: tuple[Any, ...], varying: list[str], groups: Mapping[Any, list[int]], runs: list[RunReport]
) -> str:
    if not varying:
        return runs[groups[key][0]].name
    return setting_label(dict(zip(varying, key, strict=True)))


def _rank(
    groups: Mapping[tuple[Any, ...], list[int]],
    measures: list[RunMeasures],
    varying: list[str],
    runs: list[RunReport],
) -> list[Entry]:
    raw = []
    for key, members in groups.items():
        ms = tuple(measures[i] for i in members)
        all_reached = all(m.steps_to_target is not None for m in ms)
        steps = Stat.of([m.steps_to_target for m in ms]) if all_reached else None
        raw.append(
            (
                key,
                ms,
                steps,
                Stat.of([m.share_to_target for m in ms]) if all_reached else None,
                Stat.of([m.final_loss for m in ms]),
                Stat.of([m.area for m in ms]),
            )
        )

    def order(item: tuple[Any, ...]) -> tuple[int, float, float]:
        _, ms, steps, _, final, area = item
        area_mean = area.mean if area is not None else math.inf
        if any(m.unstable for m in ms):
            first = steps.mean if steps is not None else math.inf
            return (2, first, final.mean if final is not None else math.inf)
        if steps is not None:
            return (0, steps.mean, area_mean)
        return (1, final.mean if final is not None else math.inf, area_mean)

    raw.sort(key=order)
    best_steps = next((r[2].mean for r in raw if r[2] is not None and order(r)[0] == 0), None)
    entries = []
    for rank, (key, ms, steps, share, final, area) in enumerate(raw, start=1):
        lost = ratio = None
        if steps is not None and best_steps is not None:
            lost = steps.mean - best_steps
            ratio = steps.mean / best_steps if best_steps > 0 else None
        setting = dict(zip(varying, key, strict=True)) if varying else {}
        entries.append(
            Entry(
                rank=rank,
                label=_group_label(key, varying, groups, runs),
                setting=setting,
                runs=ms,
                steps_to_target=steps,
                share_to_target=share,
                final_loss=final,
                area=area,
                steps_lost=lost,
                ratio=ratio,
            )
        )
    return entries


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _steps_text(stat: Stat) -> str:
    return str(round(stat.mean))


def _with_conclusion(c: Comparison) -> Comparison:
    from dataclasses import replace

    return replace(c, conclusion=_conclusion(c))


def _conclusion(c: Comparison) -> str:
    """One sentence with numbers: which setting was best and what the others cost."""
    entries = list(c.entries)
    target = _fmt(c.target)
    if c.repeats:
        return _repeats_sentence(c)
    sentences = [s for s in (_unstable_everywhere(c),) if s]
    stable = [e for e in entries if not e.unstable]
    if not stable:
        if not sentences:
            sentences = ["Every setting had an unstable run: lower the LR, then tune the warmup."]
        return " ".join(sentences)
    best = stable[0]
    if best.steps_to_target is None:
        text = (
            f"No setting reached loss {target} on the common steps; {best.label} ended lowest "
            f"(final loss {_fmt(best.final_loss.mean) if best.final_loss else 'nan'})."
        )
        return " ".join([text, *sentences])
    reached = [e for e in stable if e.steps_to_target is not None]
    slowest = reached[-1]
    text = f"{best.label} reached loss {target} in {_steps_text(best.steps_to_target)} steps"
    missed = [e for e in stable if e.steps_to_target is None]
    unstable = [e for e in entries if e.unstable]
    if slowest is not best and slowest.ratio is not None:
        text += (
            f"; {slowest.label} needed {_steps_text(slowest.steps_to_target)} "  # type: ignore[arg-type]
            f"({slowest.ratio:.1f}x)"
        )
    if missed:
        text += "; " + _names(missed) + f" did not reach it by step {c.common_end}"
    if unstable and not sentences:
        text += "; " + _names(unstable) + " had unstable runs"
    advice = _advice(c, best, slowest, missed)
    text += f": {advice}." if advice else "."
    return " ".join([text, *sentences, *_within_noise(best, reached), *_ended_lower(best, stable)])


def _ended_lower(best: Entry, stable: Sequence[Entry]) -> list[str]:
    """Say so when a slower setting ended clearly lower (by more than its seeds' spread)."""
    if best.final_loss is None:
        return []
    mine = best.final_loss

    def margin(other: Stat) -> float:
        return max(mine.std, other.std, 0.01 * abs(mine.mean))

    lower = [
        e
        for e in stable
        if e is not best
        and e.final_loss is not None
        and mine.mean - e.final_loss.mean > margin(e.final_loss)
    ]
    if not lower:
        return []
    low = min(lower, key=lambda e: e.final_loss.mean)  # type: ignore[union-attr]
    assert low.final_loss is not None
    return [
        f"{low.label} got there later but ended lower (final loss {_fmt(low.final_loss.mean)} "
        f"vs {_fmt(mine.mean)})."
    ]


def _within_noise(best: Entry, reached: Sequence[Entry]) -> list[str]:
    """Say so when the runner-up's seeds overlap the best's: the order may be seed noise."""
    if len(reached) < 2 or best.steps_to_target is None:
        return []
    second = reached[1]
    a, b = best.steps_to_target, second.steps_to_target
    if b is None or (a.n < 2 and b.n < 2) or b.min > a.max:
        return []
    return [
        f"The seeds of {best.label} ({round(a.min)}-{round(a.max)} steps) and {second.label} "
        f"({round(b.min)}-{round(b.max)}) overlap: that difference is within seed noise."
    ]


def _names(entries: Sequence[Entry], limit: int = 3) -> str:
    """``warmup 0, warmup 10``; a label naming several keys goes in parentheses; a long list
    is counted (``12 settings, e.g. (warmup 0, LR 0.0003)``)."""
    labels = [f"({e.label})" if "," in e.label else e.label for e in entries]
    if len(labels) > limit:
        return f"{len(labels)} settings, e.g. {labels[0]}"
    return ", ".join(labels)


def _advice(c: Comparison, best: Entry, slowest: Entry, missed: Sequence[Entry]) -> str | None:
    others = [e for e in c.entries if e is not best and not e.unstable]
    if not others:
        return None
    if (
        slowest is not best
        and slowest.ratio is not None
        and slowest.ratio <= 1 + _TIE
        and not missed
    ):
        return f"within {_TIE:.0%} of each other, the setting barely matters here"
    if c.varying == ("warmup_steps",) or c.varying == ("warmup_ratio",):
        key = c.varying[0]
        mine = best.setting.get(key)
        longer = [e for e in others if _gt(e.setting.get(key), mine)]
        shorter = [e for e in others if _gt(mine, e.setting.get(key))]
        unstable_shorter = [e for e in c.entries if e.unstable and _gt(mine, e.setting.get(key))]
        if longer and not shorter and unstable_shorter:
            return (
                f"shorter warmups were unstable and longer ones only cost steps: keep {best.label}"
            )
        if longer and not shorter:
            return "a longer warmup only cost steps: shorten it"
        if shorter and not longer:
            return "a shorter warmup cost steps: lengthen it"
        return f"use {best.label}"
    return f"use {best.label}"


def _gt(a: Any, b: Any) -> bool:
    try:
        return a is not None and b is not None and float(a) > float(b)
    except (TypeError, ValueError):
        return False


def _unstable_everywhere(c: Comparison) -> str | None:
    """``LR 0.01 was unstable at every warmup (0, 30): lower the LR, warmup does not fix it``."""
    if "learning_rate" not in c.varying or len(c.varying) < 2:
        return None
    others = [k for k in c.varying if k != "learning_rate"]
    by_lr: dict[Any, list[Entry]] = {}
    for e in c.entries:
        by_lr.setdefault(_canonical(e.setting.get("learning_rate")), []).append(e)
    lines = []
    for lr, entries in sorted(by_lr.items(), key=lambda kv: str(kv[0])):
        if len(entries) > 1 and all(e.unstable == len(e.runs) for e in entries):
            what = _NAMES.get(others[0], others[0]) if len(others) == 1 else "setting"
            values = ", ".join(
                sorted({setting_label({k: e.setting.get(k) for k in others}) for e in entries})
            )
            lines.append(
                f"LR {_fmt_setting(lr)} was unstable at every {what} ({values}): lower the LR, "
                f"the {what} does not fix it."
            )
    return " ".join(lines) or None


def _repeats_sentence(c: Comparison) -> str:
    ms = c.measures
    steps = Stat.of([m.steps_to_target for m in ms])
    final = Stat.of([m.final_loss for m in ms])
    n = len(ms)
    reached = sum(m.steps_to_target is not None for m in ms)
    text = f"No setting differs between the {n} runs: compared as repeats. "
    if steps is not None:
        text += (
            f"{reached} of {n} reached loss {_fmt(c.target)}, in {round(steps.mean)} steps on "
            f"average (from {round(steps.min)} to {round(steps.max)})"
        )
    else:
        text += f"none reached loss {_fmt(c.target)}"
    if final is not None:
        text += f"; final loss {_fmt(final.mean)} ± {_fmt(final.std)}"
    return text + "."


def build_comparison(
    paths: Sequence[str | os.PathLike[str]],
    *,
    metrics: Mapping[str, str] | None = None,
    since: int | None = None,
    target: float | None = None,
    smooth_points: int | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    loss_window: int | None = None,
) -> Comparison:
    """Read, diagnose and compare every run under ``paths``.

    ``workers`` caps the worker processes that read and diagnose the runs and ``loss_window``
    says what one logged loss stands for (see :func:`~warmup_monitor.report.build_report`).

    Raises :class:`~warmup_monitor.errors.InputError` for fewer than two runs with a loss, runs
    with no loss step in common, or a bad ``target``.
    """
    report = build_report(
        list(paths),
        metrics=metrics,
        since=since,
        progress=progress,
        workers=workers,
        loss_window=loss_window,
    )
    return compare_report(report, target=target, smooth_points=smooth_points)
