"""Report models built directly from the dataclasses, so the renderers are tested on their own."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from detectors._types import Finding, ScheduleFit, Severity
from warmup_monitor.diagnosis import Advice, Diagnosis, Verdict
from warmup_monitor.points import Points
from warmup_monitor.report import Report, RunReport
from warmup_monitor.run import Run


def make_run(
    name: str = "run-a",
    *,
    steps: int = 200,
    every: int = 1,
    warmup: int = 20,
    peak: float = 3e-4,
    nan_at: int | None = None,
    loss_tag: str = "train/loss",
    eval_every: int | None = 50,
    config: dict | None = None,
) -> Run:
    """A linear-warmup / linear-decay run with a decaying loss, optionally NaN from ``nan_at``."""
    rows = []
    for step in range(every, steps + 1, every):
        lr = peak * step / warmup if step < warmup else peak * (steps - step) / (steps - warmup)
        loss = 2.0 + 3.0 * math.exp(-step / 60.0) + 0.05 * math.sin(step)
        grad = 1.0 + 0.5 * math.exp(-step / 30.0)
        if nan_at is not None and step >= nan_at:
            loss, grad = float("nan"), float("inf")
        rows += [(loss_tag, step, loss, 0.0), ("train/learning_rate", step, lr, 0.0)]
        rows.append(("train/grad_norm", step, grad, 0.0))
        if eval_every and step % eval_every == 0:
            rows.append(("eval/loss", step, loss + 0.1, 0.0))
    return Run.from_points(
        Points.from_rows(rows),
        name=name,
        path=Path("logs") / name,
        source="tensorboard",
        config=config or {"learning_rate": peak, "warmup_steps": warmup},
        status="finished",
    )


def make_fit(warmup: int = 20, total: int = 200, peak: float = 3e-4) -> ScheduleFit:
    """The schedule ``make_run`` writes."""
    return ScheduleFit(
        first_step=1,
        last_step=total,
        warmup_steps=warmup,
        warmup_shape="linear",
        peak_lr=peak,
        peak_step=warmup,
        decay="linear",
        total_steps=total,
        reached_peak=True,
        lr_never_moves=False,
        warmup_longer_than_run=False,
    )


def nan_finding(step: int = 40) -> Finding:
    """A critical non-finite loss finding with a NaN value in its evidence."""
    return Finding(
        kind="nonfinite",
        severity=Severity.CRITICAL,
        metric="loss",
        step=step,
        end_step=None,
        message=f"loss is nan at step {step}, 20 steps after the LR peak",
        evidence={"value": float("nan"), "threshold": None, "lr": 2.9e-4, "points": 3},
    )


def spike_finding(step: int = 25, end: int = 30) -> Finding:
    """A warning spike in grad norm with a value, threshold and baseline."""
    return Finding(
        kind="spike",
        severity=Severity.WARNING,
        metric="grad_norm",
        step=step,
        end_step=end,
        message=f"grad_norm spikes to 8.25 at step {step} (threshold 4.1)",
        evidence={"value": 8.25, "threshold": 4.1, "baseline": 1.2},
    )


def too_short(first_step: int = 25) -> Diagnosis:
    """A warmup-too-short diagnosis with two findings and one piece of advice."""
    return Diagnosis(
        verdict=Verdict.WARMUP_TOO_SHORT,
        confidence=0.87,
        summary="grad_norm spikes and loss turns NaN right after the 20-step warmup ends",
        schedule=make_fit(),
        findings=(spike_finding(first_step), nan_finding()),
        advice=(
            Advice(
                text="Lengthen the warmup from 20 to 200 steps (10% of the run)",
                parameter="warmup_steps",
                current=20,
                suggested=200,
                reason="10% of 2000 total steps",
            ),
        ),
        evidence={"first_problem_step": first_step, "lr_at_problem": 3e-4},
        first_problem_step=first_step,
    )


def healthy() -> Diagnosis:
    """A healthy diagnosis with no findings."""
    return Diagnosis(
        verdict=Verdict.HEALTHY,
        confidence=0.9,
        summary="loss falls steadily; warmup is 10% of the run",
        schedule=make_fit(),
    )


@pytest.fixture
def single_report() -> Report:
    """One run diagnosed as warmup too short."""
    run = make_run("run-a", nan_at=40)
    rr = RunReport("run-a", run.path, "tensorboard", run=run, diagnosis=too_short())
    return Report(paths=(Path("logs/run-a"),), runs=(rr,))


@pytest.fixture
def multi_report() -> Report:
    """Three runs: one healthy, one too short, one unreadable."""
    good = make_run("good")
    bad = make_run("bad", nan_at=40)
    runs = (
        RunReport("good", good.path, "tensorboard", run=good, diagnosis=healthy()),
        RunReport("bad", bad.path, "tensorboard", run=bad, diagnosis=too_short()),
        RunReport("broken", Path("logs/broken"), "swanlab", error="corrupted record at byte 7"),
    )
    return Report(paths=(Path("logs"),), runs=runs)


def long_run(points: int = 100_000) -> Run:
    """A long run (for timing the plots)."""
    steps = np.arange(1, points + 1)
    loss = 2.0 + np.exp(-steps / 5000.0) + 0.05 * np.sin(steps)
    loss[50_000] = np.nan
    lr = np.minimum(steps / 1000.0, 1.0) * 3e-4
    rows = [("loss", int(s), float(v), 0.0) for s, v in zip(steps, loss, strict=True)]
    rows += [("learning_rate", int(s), float(v), 0.0) for s, v in zip(steps, lr, strict=True)]
    return Run.from_points(Points.from_rows(rows), name="long", path=Path("long"), source="x")
