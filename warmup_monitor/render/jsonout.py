"""The report as one JSON document (``schema_version`` 1; see ``report_schema.json``).

JSON has no NaN or Infinity: a non-finite number is written as ``null`` and the object holding
it lists it under ``non_finite`` (``{"evidence.value": "nan"}``), so the fact is never lost.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from detectors._types import Finding, ScheduleFit

from ..diagnosis import Advice, Diagnosis
from ..jsonvalues import JsonConverter
from ..report import Report, RunReport

__all__ = [
    "SCHEMA_VERSION",
    "diagnosis_to_dict",
    "load_schema",
    "render_json",
    "report_to_dict",
]

SCHEMA_VERSION = 1


def _schedule(fit: ScheduleFit | None, conv: JsonConverter) -> dict[str, Any] | None:
    if fit is None:
        return None
    return conv(
        {
            "warmup_steps": fit.warmup_steps,
            "warmup_fraction": fit.warmup_fraction,
            "warmup_shape": fit.warmup_shape,
            "warmup_start": fit.warmup_start,
            "peak_lr": fit.peak_lr,
            "peak_step": fit.peak_step,
            "decay": fit.decay,
            "decay_start": fit.decay_start,
            "decay_floor": fit.decay_floor,
            "total_steps": fit.total_steps,
            "first_step": fit.first_step,
            "last_step": fit.last_step,
            "reached_peak": fit.reached_peak,
            "lr_never_moves": fit.lr_never_moves,
            "warmup_longer_than_run": fit.warmup_longer_than_run,
            "notes": list(fit.notes),
        },
        "schedule",
    )


def _finding(f: Finding) -> dict[str, Any]:
    conv = JsonConverter()
    out = {
        "detector": f.kind,
        "severity": f.severity.value,
        "metric": f.metric,
        "step": conv(f.step, "step"),
        "end_step": conv(f.end_step, "end_step"),
        "message": f.message,
        "evidence": conv(dict(f.evidence or {}), "evidence"),
    }
    out["non_finite"] = conv.non_finite
    return out


def _advice(a: Advice, conv: JsonConverter, i: int) -> dict[str, Any]:
    return {
        "text": a.text,
        "parameter": a.parameter,
        "current": conv(a.current, f"advice[{i}].current"),
        "suggested": conv(a.suggested, f"advice[{i}].suggested"),
        "reason": a.reason,
    }


def _diagnosis_fields(d: Diagnosis, conv: JsonConverter) -> dict[str, Any]:
    level = d.level
    return {
        "verdict": d.verdict.value,
        "confidence": conv(d.confidence, "confidence"),
        "summary": d.summary,
        "level": level.value if level is not None else None,
        "first_problem_step": d.first_problem_step,
        "schedule": _schedule(d.schedule, conv),
        "findings": [_finding(f) for f in d.findings],
        "advice": [_advice(a, conv, i) for i, a in enumerate(d.advice)],
        "evidence": conv(dict(d.evidence), "evidence"),
    }


def diagnosis_to_dict(d: Diagnosis) -> dict[str, Any]:
    """One diagnosis as JSON types (the diagnosis fields of a report's run, same rules)."""
    conv = JsonConverter()
    out = _diagnosis_fields(d, conv)
    out["non_finite"] = conv.non_finite
    return out


def _run(rr: RunReport) -> dict[str, Any]:
    conv = JsonConverter()
    out: dict[str, Any] = {
        "path": rr.path.as_posix(),
        "name": rr.name,
        "source": rr.source,
        "error": rr.error,
    }
    d = rr.diagnosis
    run = rr.run
    level = rr.level
    empty: dict[str, Any] = {
        "verdict": None,
        "confidence": None,
        "summary": None,
        "level": None,
        "first_problem_step": None,
        "schedule": None,
        "findings": [],
        "advice": [],
        "evidence": {},
    }
    fields = _diagnosis_fields(d, conv) if d is not None else empty
    out.update(
        {
            "verdict": fields["verdict"],
            "confidence": fields["confidence"],
            "summary": fields["summary"],
            "level": level.value if level is not None else None,
            "first_problem_step": fields["first_problem_step"],
            "status": run.status if run is not None else None,
            "last_step": rr.last_step,
            "final_loss": conv(rr.final_loss, "final_loss"),
            "schedule": fields["schedule"],
            "findings": fields["findings"],
            "advice": fields["advice"],
            "evidence": fields["evidence"],
            "metrics": dict(run.metric_map) if run is not None else {},
            "config": conv(dict(run.config), "config") if run is not None else {},
            "resumes": (
                [{"step": r.step, "from_step": r.from_step, "tag": r.tag} for r in run.resumes]
                if run is not None
                else []
            ),
            "notes": list(run.notes) if run is not None else [],
            "warnings": list(run.warnings) if run is not None else [],
        }
    )
    out["non_finite"] = conv.non_finite
    return out


def report_to_dict(report: Report) -> dict[str, Any]:
    """The JSON document as Python objects (only JSON types, no NaN/Inf)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "since": report.since,
        "loss_window": report.loss_window,
        "runs": [_run(rr) for rr in report.runs],
    }


def render_json(report: Report, *, indent: int | None = 2) -> str:
    """The report as JSON text, ending with a newline; always valid JSON (no NaN/Infinity)."""
    return (
        json.dumps(report_to_dict(report), indent=indent, allow_nan=False, ensure_ascii=False)
        + "\n"
    )


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) the output of :func:`render_json` follows."""
    text = resources.files("warmup_monitor").joinpath("report_schema.json").read_text("utf-8")
    return json.loads(text)
