"""The report as terminal text: a summary table for several runs, then each run in detail."""

from __future__ import annotations

from collections.abc import Callable

import click

from detectors._types import Finding, Severity

from ..diagnosis import Diagnosis
from ..report import Report, RunReport, is_problem
from ..safe_text import for_terminal
from ._common import (
    advice_detail,
    evidence_items,
    planned_total,
    run_notes,
    schedule_text,
    step_range,
    summary_row,
    verdict_of,
)

__all__ = ["render_text"]

_COLUMNS = (
    ("run", "RUN"),
    ("source", "SOURCE"),
    ("steps", "STEPS"),
    ("verdict", "VERDICT"),
    ("warmup", "WARMUP"),
    ("peak_lr", "PEAK LR"),
    ("final_loss", "FINAL LOSS"),
    ("first_problem", "FIRST PROBLEM"),
)
_RIGHT = frozenset({"steps", "peak_lr", "final_loss", "first_problem"})
_SEVERITY_COLOUR = {Severity.CRITICAL: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}

Styler = Callable[..., str]


def _styler(color: bool) -> Styler:
    # Styled pieces may be log text (a run name): escaped before the styles are put around.
    if color:
        return lambda text, **kw: click.style(for_terminal(text), **kw)
    return lambda text, **_: for_terminal(text)


def render_text(report: Report, *, color: bool = False, quiet: bool = False) -> str:
    """The report as text. ``color`` adds ANSI styles; ``quiet`` keeps only verdict lines/table."""
    style = _styler(color)
    blocks: list[str] = []
    several = len(report.runs) > 1
    if several:
        blocks.append(_table(report, style))
    elif quiet:
        blocks.append(_verdict_line(report.runs[0], style, with_name=True))
    if not quiet:
        for rr in report.worst_first() if several else report.runs:
            blocks.append(_run_block(rr, style))
    return "\n\n".join(b for b in blocks if b) + "\n"


def _verdict_colour(d: Diagnosis, level: Severity | None) -> str:
    if is_problem(d):
        return "red" if level is Severity.CRITICAL else "yellow"
    return "green" if verdict_of(d) == "healthy" else "yellow"


def _verdict_line(rr: RunReport, style: Styler, *, with_name: bool) -> str:
    head = f"{for_terminal(rr.name)}: " if with_name else "Verdict: "
    if rr.diagnosis is None:
        return head + style("error", fg="red", bold=True) + f" ({for_terminal(rr.error)})"
    d = rr.diagnosis
    verdict = style(verdict_of(d), fg=_verdict_colour(d, rr.level), bold=True)
    line = f"{head}{verdict} (confidence {d.confidence:.2f})"
    if d.first_problem_step is not None:
        line += f", first problem at step {d.first_problem_step}"
    return line


def _table(report: Report, style: Styler) -> str:
    ordered = report.worst_first()
    rows = [{k: for_terminal(v) for k, v in summary_row(rr).items()} for rr in ordered]
    widths = {key: len(title) for key, title in _COLUMNS}
    for row in rows:
        if "error" in row:
            for key in ("run", "source"):
                widths[key] = max(widths[key], len(row[key]))
            continue
        for key, _ in _COLUMNS:
            widths[key] = max(widths[key], len(row[key]))

    def cell(key: str, text: str) -> str:
        return text.rjust(widths[key]) if key in _RIGHT else text.ljust(widths[key])

    lines = ["  ".join(style(cell(k, t), bold=True) for k, t in _COLUMNS).rstrip()]
    for row, rr in zip(rows, ordered, strict=True):
        if "error" in row:
            msg = style(f"error: {row['error']}", fg="red")
            lines.append(f"{cell('run', row['run'])}  {cell('source', row['source'])}  {msg}")
            continue
        cells = []
        for key, _ in _COLUMNS:
            text = cell(key, row[key])
            if key == "verdict" and rr.diagnosis is not None:
                text = style(text, fg=_verdict_colour(rr.diagnosis, rr.level))
            cells.append(text)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _finding_lines(findings: list[Finding], style: Styler) -> list[str]:
    """Findings in aligned columns: severity, detector, metric, steps, evidence; message below."""
    cols = [(for_terminal(f.kind), for_terminal(f.metric), step_range(f)) for f in findings]
    widths = [max(len(c[i]) for c in cols) for i in range(3)]
    lines = []
    for f, col in zip(findings, cols, strict=True):
        sev = style(f.severity.value.upper().ljust(8), fg=_SEVERITY_COLOUR[f.severity], bold=True)
        cells = "  ".join(text.ljust(w) for text, w in zip(col, widths, strict=True))
        evidence = "  ".join(f"{k}={v}" for k, v in evidence_items(f, brief=True))
        lines.append(f"  {sev}  {cells}  {for_terminal(evidence)}".rstrip())
        lines.append(f"            {for_terminal(f.message)}")
    return lines


def _run_block(rr: RunReport, style: Styler) -> str:
    title = style(rr.name, bold=True)
    lines = [f"{title}  ({for_terminal(rr.source)}: {for_terminal(rr.path)})"]
    if rr.diagnosis is None:
        lines.append(_verdict_line(rr, style, with_name=False))
        return "\n".join(lines)
    d = rr.diagnosis
    lines.append(_verdict_line(rr, style, with_name=False))
    if d.summary:
        lines.append(f"  {for_terminal(d.summary)}")
    lines.append(f"Schedule: {schedule_text(d.schedule, planned_total(d))}")
    if d.findings:
        lines.append(f"Findings ({len(d.findings)}):")
        ordered = sorted(d.findings, key=lambda f: (f.step, -f.severity.rank, f.kind))
        lines.extend(_finding_lines(ordered, style))
    else:
        lines.append("Findings: none")
    if d.advice:
        lines.append("Advice:")
        for a in d.advice:
            lines.append(f"  * {for_terminal(a.text)}")
            detail = advice_detail(a)
            if detail:
                lines.append(f"    {for_terminal(detail)}")
    notes = run_notes(rr)
    if notes:
        lines.append("Notes:")
        lines.extend(f"  - {for_terminal(n)}" for n in notes)
    return "\n".join(lines)
