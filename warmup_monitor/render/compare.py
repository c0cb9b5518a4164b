"""A comparison of sibling runs as terminal text or JSON (``compare_schema.json``)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ..compare import (
    FINAL_SHARE,
    QUARTER,
    Comparison,
    Entry,
    RunMeasures,
    Stat,
    setting_label,
    setting_name,
)
from ..jsonvalues import JsonConverter
from ..safe_text import for_terminal
from ._common import fmt_num

__all__ = [
    "COMPARE_SCHEMA_VERSION",
    "comparison_to_dict",
    "describe",
    "load_compare_schema",
    "render_compare_json",
    "render_compare_text",
]

COMPARE_SCHEMA_VERSION = 1


def _steps(stat: Stat | None, reached: int, n: int) -> str:
    if stat is None:
        return "not reached" if reached == 0 else f"{reached}/{n} reached"
    text = str(round(stat.mean))
    if stat.n > 1 and stat.max > stat.min:
        text += f" ({round(stat.min)}-{round(stat.max)})"
    return text


def _loss(stat: Stat | None) -> str:
    if stat is None:
        return "nan"
    text = fmt_num(stat.mean)
    if stat.n > 1:
        text += f" ±{stat.std:.2g}"
    return text


def _share(stat: Stat | None) -> str:
    if stat is None:
        return "-"
    return f"{stat.mean:.0%}"


def _verdicts(entry: Entry) -> str:
    counts = entry.verdicts
    if len(entry.runs) == 1:
        return next(iter(counts))
    return ", ".join(f"{v} x{n}" for v, n in counts.items())


def describe(c: Comparison) -> list[str]:
    """The lines that say what was compared and how (above the table, in every format)."""
    n = len(c.measures)
    lines = []
    if c.repeats:
        lines.append(f"Compared {n} runs: no setting differs between them, so they are repeats.")
    else:
        keys = ", ".join(c.varying)
        head = f"Compared {n} runs in {len(c.entries)} settings ({keys} varies"
        if c.grouped:
            sizes = sorted({len(e.runs) for e in c.entries})
            each = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
            head += f"; runs that differ only in seed are grouped, {each} per setting: mean, "
            head += "min-max, ±std"
        lines.append(head + ").")
    if c.inferred:
        lines.append(f"Inferred from the logged LR (no config said): {', '.join(c.inferred)}.")
    if c.constant:
        same = ", ".join(f"{k} {fmt_num(v)}" for k, v in c.constant.items())
        lines.append(f"Same in every run: {same}.")
    if c.target_given:
        lines.append(f"Target: loss {fmt_num(c.target)} (--target).")
    else:
        lines.append(
            f"Target: loss {fmt_num(c.target)}, what the best setting ({c.target_label}) "
            f"reached at {QUARTER:.0%} of its run (--target to set it)."
        )
    lo, hi = c.smooth_points
    window = f"{lo}" if lo == hi else f"{lo}-{hi}"
    smoothing = f"losses smoothed by a trailing median of {window} logged points"
    if c.equal_length:
        lines.append(
            f"All runs end at step {c.common_end} (±2%): compared step for step; {smoothing}."
        )
    else:
        ends = [m.last_step for m in c.measures]
        lines.append(
            f"Runs differ in length ({min(ends)}-{max(ends)} steps): steps to target and area "
            f"are measured on the common steps up to {c.common_end}, SHARE is the step where "
            f"each run reached the target as a share of its own run; {smoothing}."
        )
    lines.append(
        f"Final loss: mean of the last {FINAL_SHARE:.0%} of each run's points; area: mean loss "
        f"over the common steps; an unstable setting ranks last."
    )
    return lines


def _columns(c: Comparison) -> list[str]:
    head = ["RANK"]
    head += ["RUN"] if c.repeats else [setting_name(k).upper() for k in c.varying]
    head += ["RUNS"] if c.grouped else []
    head += ["STEPS TO TARGET", "LOST", "RATIO"]
    head += [] if c.equal_length else ["SHARE"]
    head += ["FINAL LOSS", "AREA", "VERDICT"]
    return head


def _row(c: Comparison, e: Entry) -> list[str]:
    row = [str(e.rank)]
    row += [e.label] if c.repeats else [fmt_num(e.setting.get(k)) for k in c.varying]
    row += [str(len(e.runs))] if c.grouped else []
    row += [
        _steps(e.steps_to_target, e.reached, len(e.runs)),
        fmt_num(round(e.steps_lost)) if e.steps_lost is not None else "-",
        f"{e.ratio:.2f}x" if e.ratio is not None else "-",
    ]
    row += [] if c.equal_length else [_share(e.share_to_target)]
    row += [_loss(e.final_loss), _loss(e.area), _verdicts(e)]
    return row


def _run_row(c: Comparison, m: RunMeasures) -> list[str]:
    steps = str(m.steps_to_target) if m.steps_to_target is not None else "not reached"
    return [
        m.name,
        setting_label({k: m.setting.get(k) for k in c.varying}) or "-",
        fmt_num(m.seed),
        str(m.last_step),
        steps,
        fmt_num(m.final_loss),
        fmt_num(m.area),
        m.verdict or "error",
    ]


def _grid(head: list[str], rows: list[list[str]], left: set[int]) -> list[str]:
    """Aligned columns: those in ``left`` (and the last) flush left, numbers flush right."""
    head, rows = [for_terminal(c) for c in head], [[for_terminal(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left or i == len(cells) - 1 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(head), *(line(r) for r in rows)]


def _text_columns(c: Comparison) -> set[int]:
    """The ranking's columns holding words (run names, scheduler names …), not numbers."""
    if c.repeats:
        return {1}
    return {
        1 + i
        for i, k in enumerate(c.varying)
        if not all(
            isinstance(e.setting.get(k), (int, float)) and not isinstance(e.setting.get(k), bool)
            for e in c.entries
        )
    }


def render_compare_text(c: Comparison, *, quiet: bool = False) -> str:
    """The comparison as text: how it was measured, the ranking, the conclusion, every run."""
    blocks = []
    if not quiet:
        blocks.append("\n".join(for_terminal(line) for line in describe(c)))
    table = _grid(_columns(c), [_row(c, e) for e in c.entries], _text_columns(c))
    blocks.append("\n".join(table))
    blocks.append(for_terminal(f"Conclusion: {c.conclusion}"))
    if not quiet and c.grouped:
        head = ["RUN", "SETTING", "SEED", "STEPS", "REACHED AT", "FINAL LOSS", "AREA", "VERDICT"]
        rows = [_run_row(c, m) for m in c.measures]
        blocks.append("Runs:\n" + "\n".join(_grid(head, rows, {0, 1})))
    if c.notes and not quiet:
        blocks.append("Notes:\n" + "\n".join(f"  - {for_terminal(n)}" for n in c.notes))
    return "\n\n".join(blocks) + "\n"


def _stat(stat: Stat | None, conv: JsonConverter, where: str) -> dict[str, Any] | None:
    if stat is None:
        return None
    return conv(
        {"mean": stat.mean, "min": stat.min, "max": stat.max, "std": stat.std, "n": stat.n},
        where,
    )


def comparison_to_dict(c: Comparison, *, exit_code: int | None = None) -> dict[str, Any]:
    """The comparison as JSON-ready objects (no NaN/Inf: see ``non_finite``)."""
    conv = JsonConverter()
    measures = {id(m): i for i, m in enumerate(c.measures)}
    entries = []
    for e in c.entries:
        where = f"entries[{e.rank - 1}]"
        entries.append(
            {
                "rank": e.rank,
                "label": e.label,
                "setting": conv(e.setting, f"{where}.setting"),
                "runs": [measures[id(m)] for m in e.runs],
                "reached": e.reached,
                "unstable": e.unstable,
                "steps_to_target": _stat(e.steps_to_target, conv, f"{where}.steps_to_target"),
                "share_to_target": _stat(e.share_to_target, conv, f"{where}.share_to_target"),
                "final_loss": _stat(e.final_loss, conv, f"{where}.final_loss"),
                "area": _stat(e.area, conv, f"{where}.area"),
                "steps_lost": conv(e.steps_lost, f"{where}.steps_lost"),
                "ratio": conv(e.ratio, f"{where}.ratio"),
                "verdicts": e.verdicts,
            }
        )
    runs = []
    for i, m in enumerate(c.measures):
        where = f"runs[{i}]"
        d = m.report.diagnosis
        runs.append(
            {
                "name": m.name,
                "path": m.report.path.as_posix(),
                "source": m.report.source,
                "setting": conv(m.setting, f"{where}.setting"),
                "seed": conv(m.seed, f"{where}.seed"),
                "first_step": m.first_step,
                "last_step": m.last_step,
                "points": m.points,
                "smooth_points": m.smooth_points,
                "loss_at_quarter": conv(m.at_quarter, f"{where}.loss_at_quarter"),
                "steps_to_target": m.steps_to_target,
                "share_to_target": conv(m.share_to_target, f"{where}.share_to_target"),
                "final_loss": conv(m.final_loss, f"{where}.final_loss"),
                "area": conv(m.area, f"{where}.area"),
                "unstable": m.unstable,
                "verdict": m.verdict,
                "confidence": conv(d.confidence, f"{where}.confidence") if d else None,
                "summary": d.summary if d else None,
                "level": m.report.level.value if m.report.level is not None else None,
            }
        )
    failed = [
        {"name": rr.name, "path": rr.path.as_posix(), "error": rr.error} for rr in c.report.failed
    ]
    lo, hi = c.smooth_points
    out = {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "paths": [p.as_posix() for p in c.report.paths],
        "varying": list(c.varying),
        "constant": conv(c.constant, "constant"),
        "inferred": list(c.inferred),
        "repeats": c.repeats,
        "target": {
            "loss": conv(c.target, "target.loss"),
            "given": c.target_given,
            "defined_by": c.target_label,
            "at_share": None if c.target_given else QUARTER,
        },
        "basis": {
            "equal_length": c.equal_length,
            "common_end_step": c.common_end,
            "final_share": FINAL_SHARE,
            "smoothing": {"method": "trailing_median", "points_min": lo, "points_max": hi},
        },
        "conclusion": c.conclusion,
        "description": describe(c),
        "entries": entries,
        "runs": runs,
        "failed": failed,
        "notes": list(c.notes),
        "exit_code": exit_code,
    }
    out["non_finite"] = conv.non_finite
    return out


def render_compare_json(c: Comparison, *, exit_code: int | None = None) -> str:
    """The comparison as JSON text, ending with a newline (never NaN/Infinity)."""
    data = comparison_to_dict(c, exit_code=exit_code)
    return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def load_compare_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that :func:`render_compare_json` output follows."""
    text = resources.files("warmup_monitor").joinpath("compare_schema.json").read_text("utf-8")
    return json.loads(text)
