"""The terminal renderer on report models built from the dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from warmup_monitor.diagnosis import Diagnosis, Verdict
from warmup_monitor.points import Points
from warmup_monitor.render._common import planned_total, run_notes, schedule_text
from warmup_monitor.render.terminal import render_text
from warmup_monitor.report import Report, RunReport
from warmup_monitor.run import Run

from .conftest import make_fit

SINGLE = """\
run-a  (tensorboard: logs/run-a)
Verdict: warmup_too_short (confidence 0.87), first problem at step 25
  grad_norm spikes and loss turns NaN right after the 20-step warmup ends
Schedule: linear warmup 20 steps (10.0% of run), peak LR 0.0003 at step 20, linear decay, 200 total steps
Findings (2):
  WARNING   spike      grad_norm  steps 25-30  value=8.25  threshold=4.1  baseline=1.2
            grad_norm spikes to 8.25 at step 25 (threshold 4.1)
  CRITICAL  nonfinite  loss       step 40      value=nan  lr=0.00029
            loss is nan at step 40, 20 steps after the LR peak
Advice:
  * Lengthen the warmup from 20 to 200 steps (10% of the run)
    warmup_steps: 20 -> 200 (10% of 2000 total steps)
"""  # noqa: E501

TABLE = """\
RUN     SOURCE       STEPS  VERDICT                  WARMUP      PEAK LR  FINAL LOSS  FIRST PROBLEM
bad     tensorboard    200  warmup_too_short (0.87)  20 (10.0%)   0.0003         nan             25
good    tensorboard    200  healthy (0.90)           20 (10.0%)   0.0003       2.063              -
broken  swanlab      error: corrupted record at byte 7
"""


def test_single_run_exact_text(single_report: Report) -> None:
    """One run: verdict, schedule, findings with evidence numbers, advice with its numbers."""
    assert render_text(single_report) == SINGLE


def test_single_run_quiet_is_one_verdict_line(single_report: Report) -> None:
    """--quiet on one run prints only its verdict line."""
    assert render_text(single_report, quiet=True) == (
        "run-a: warmup_too_short (confidence 0.87), first problem at step 25\n"
    )


def test_several_runs_table_first_sorted_worst_first(multi_report: Report) -> None:
    """Several runs: the summary table comes first, problems on top, unreadable runs last."""
    text = render_text(multi_report)
    assert text.startswith(TABLE)
    assert text.index("bad  (tensorboard: logs/bad)") < text.index("good  (tensorboard: logs/good)")
    assert "broken  (swanlab: logs/broken)\nVerdict: error (corrupted record at byte 7)\n" in text


def test_several_runs_quiet_is_the_table(multi_report: Report) -> None:
    """--quiet on several runs prints only the table."""
    assert render_text(multi_report, quiet=True) == TABLE


def test_no_colour_unless_asked(single_report: Report, multi_report: Report) -> None:
    """Plain text has no ANSI escapes; colour adds them without changing the words."""
    for report in (single_report, multi_report):
        plain = render_text(report)
        coloured = render_text(report, color=True)
        assert "\x1b[" not in plain
        assert "\x1b[" in coloured
        assert click.unstyle(coloured) == plain


def test_notes_resumes_and_warnings_are_listed(single_report: Report) -> None:
    """Reader warnings, notes and resumes appear under Notes."""
    rr = single_report.runs[0]
    assert rr.run is not None
    rr.run.warnings.append("skipped 2 corrupted records at byte 512")
    rr.run.notes.append("also found swanlab; read tensorboard as the richer source")
    rr.run.status = "crashed"
    text = render_text(single_report)
    assert text.endswith(
        "Notes:\n"
        "  - also found swanlab; read tensorboard as the richer source\n"
        "  - warning: skipped 2 corrupted records at byte 512\n"
        "  - run status: crashed\n"
    )


def test_run_without_lr_says_so(single_report: Report) -> None:
    """A diagnosis without a schedule names the missing LR trace instead of inventing numbers."""
    rr = single_report.runs[0]
    assert rr.diagnosis is not None
    d = dataclasses.replace(rr.diagnosis, schedule=None)
    report = Report(single_report.paths, (dataclasses.replace(rr, diagnosis=d),))
    assert "Schedule: no learning-rate trace in the logs\n" in render_text(report)


def test_warmup_longer_than_run(single_report: Report) -> None:
    """An LR still rising at the last step reads as a warmup longer than the run, table too."""
    rr = single_report.runs[0]
    assert rr.diagnosis is not None and rr.diagnosis.schedule is not None
    fit = dataclasses.replace(
        rr.diagnosis.schedule,
        warmup_steps=None,
        warmup_longer_than_run=True,
        reached_peak=False,
        peak_step=200,
        decay="none",
        total_steps=None,
    )
    d = dataclasses.replace(rr.diagnosis, schedule=fit)
    other = dataclasses.replace(rr, name="other")
    report = Report(single_report.paths, (dataclasses.replace(rr, diagnosis=d), other))
    text = render_text(report)
    assert "  >200 (>100%)  " in text.splitlines()[2]
    assert (
        "Schedule: warmup longer than the run (the LR still rises at step 200), peak LR 0.0003 "
        "at step 200 (target never reached), no decay seen, last step 200\n"
    ) in text


def _interleaved_run(restarts: int) -> Run:
    """Steps 10, 20, ... written in order, then ``restarts`` times a step written again after
    the next one (the order two processes appending to one log produce)."""
    rows = []
    for k in range(1, 60):
        rows.append(("train/loss", 10 * k, 3.0 - 0.01 * k, float(k)))
        if k <= restarts:
            rows.append(("train/loss", 10 * (k - 1) or 10, 3.0, float(k)))
    return Run.from_points(Points.from_rows(rows), name="r", path=Path("r"), source="test")


def test_a_few_resumes_are_listed_many_are_summed_up() -> None:
    """Each restart of a resumed run is a note; hundreds of them (two writers interleaving one
    log) are one line that counts them, not a screen of notes."""
    few = run_notes(RunReport("r", Path("r"), "test", run=_interleaved_run(3)))
    assert [n for n in few if n.startswith("resumed at step")] == [
        "resumed at step 10 after reaching step 20",
        "resumed at step 20 after reaching step 30",
    ]
    many = run_notes(RunReport("r", Path("r"), "test", run=_interleaved_run(40)))
    assert not any(n.startswith("resumed at step") for n in many)
    (line,) = [n for n in many if n.startswith("steps go back")]
    assert line.startswith("steps go back 39 times (first at step 10 after step 20, last at step")


def _judged_by(total: int) -> Diagnosis:
    """A healthy diagnosis of a 20-step warmup whose LR trace implies 200 total steps, judged
    against a planned run of ``total`` steps."""
    evidence = {"total_steps": total, "warmup_steps": 20}
    return Diagnosis(Verdict.HEALTHY, 0.8, "healthy", make_fit(), (), (), evidence, None)


def test_the_schedule_line_gives_the_run_length_the_verdict_used() -> None:
    """A max_steps in the config that the LR trace's extrapolated decay does not match is the
    length the diagnosis judged by: the line says so, and the warmup's share is of it."""
    assert planned_total(_judged_by(200)) is None
    assert schedule_text(make_fit(), planned_total(_judged_by(200))).endswith(
        "warmup 20 steps (10.0% of run), peak LR 0.0003 at step 20, linear decay, 200 total steps"
    )
    assert planned_total(_judged_by(400)) == 400
    text = schedule_text(make_fit(), planned_total(_judged_by(400)))
    assert "warmup 20 steps (5.0% of run)" in text
    assert text.endswith("400 total steps (the config's; the LR trace alone implies 200)")


def test_the_schedule_line_names_a_stable_phase_before_the_decay() -> None:
    """A warmup-stable-decay schedule: the line says how long the LR stays at its peak."""
    from dataclasses import replace

    text = schedule_text(replace(make_fit(), decay="cosine", decay_start=160))
    assert "peak LR 0.0003 at step 20, constant to step 160, then cosine decay" in text
