"""The warmup diagnosis on synthetic runs, the sample runs and the real-world runs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors import Severity
from detectors.schedules.hf import lr_schedule
from warmup_monitor import Points, Run, read_run
from warmup_monitor.diagnosis import UNSEEN_COST_CONFIDENCE, Verdict, diagnose
from warmup_monitor.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"
REALWORLD = ROOT / ".." / "shared" / "realworld"


def _lr(step: int, peak: float, warmup: int, total: int) -> float:
    if step < warmup:
        return peak * step / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def make_run(
    loss: np.ndarray,
    *,
    every: int = 10,
    peak: float | None = 1e-4,
    warmup: int = 100,
    total: int = 1000,
    grad: np.ndarray | None = None,
    config: dict | None = None,
) -> Run:
    """An HF-like run: loss (and LR, grad norm) logged every ``every`` steps from ``every``."""
    rows = []
    for i, value in enumerate(loss):
        step = (i + 1) * every
        rows.append(("train/loss", step, float(value), float(step)))
        if peak is not None:
            rows.append(("train/learning_rate", step, _lr(step, peak, warmup, total), float(step)))
        if grad is not None:
            rows.append(("train/grad_norm", step, float(grad[i]), float(step)))
    cfg = {"max_steps": total, "logging_steps": every}
    cfg.update(config or {})
    return Run.from_points(
        Points.from_rows(rows), name="synthetic", path=Path("synthetic"), source="test", config=cfg
    )


def falling(n: int, *, start: float = 4.0, floor: float = 1.5, tau: float = 15.0, seed: int = 0):
    """A loss falling exponentially over ``n`` logged points with 3% noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    return (floor + (start - floor) * np.exp(-t / tau)) * np.exp(rng.normal(0, 0.03, n))


def test_healthy_run_is_healthy() -> None:
    """A falling loss with a 10% warmup is healthy, with no problem step and no advice."""
    d = diagnose(make_run(falling(100)))
    assert d.verdict is Verdict.HEALTHY
    assert d.first_problem_step is None and d.advice == ()
    assert 0.5 <= d.confidence <= 1.0
    assert d.schedule is not None and d.schedule.warmup_steps == 100
    assert d.summary.startswith("healthy")


def test_nan_while_lr_is_zero_is_numerical_instability() -> None:
    """NaN at the first steps while the LR is ~0 is numerics, not the warmup."""
    loss = falling(100)
    loss[1:] = 0.0  # the Trainer's NaN filter leaves 0.0 when a whole window was NaN
    grad = np.ones(100)
    grad[1:] = math.nan
    d = diagnose(make_run(loss, grad=grad, warmup=1000, total=10_000))
    assert d.verdict is Verdict.NUMERICAL_INSTABILITY
    assert d.first_problem_step == 20
    assert d.evidence["lr_phase"] == "warmup" and d.evidence["lr_fraction_of_peak"] <= 0.02
    assert "not the cause" in d.summary
    assert d.advice and d.advice[0].parameter is None


def test_divergence_as_the_lr_climbs_means_warmup_too_short() -> None:
    """A blow-up at the end of a 20-step warmup -> warmup_too_short with computed advice."""
    loss = falling(100)
    loss[3:] *= np.exp(0.25 * np.arange(97))  # climbs from step 40, x1.1 its start at step 50
    d = diagnose(make_run(loss, peak=1e-3, warmup=20, total=1000))
    assert d.verdict is Verdict.WARMUP_TOO_SHORT
    assert d.first_problem_step == 50
    assert d.evidence["lr_phase"] in ("peak", "decay")
    params = {a.parameter: a for a in d.advice}
    assert params["warmup_steps"].current == 20 and params["warmup_steps"].suggested == 100
    assert (
        params["warmup_steps"].text == "raise warmup_steps from 20 to 100 (10% of 1000 total steps)"
    )
    assert params["learning_rate"].suggested == pytest.approx(3e-4)
    assert params["learning_rate"].text.startswith("or lower learning_rate from 0.001 to 0.0003")


def test_divergence_long_after_the_peak_means_lr_too_high() -> None:
    """A loss that climbs 600 steps after a normal warmup points at the LR, not the warmup."""
    loss = falling(100)
    loss[70:] *= np.exp(0.2 * np.arange(30))
    d = diagnose(make_run(loss, warmup=100, total=1000))
    assert d.verdict is Verdict.LR_TOO_HIGH
    assert 700 <= d.first_problem_step <= 730
    assert [a.parameter for a in d.advice] == ["learning_rate"]


def test_divergence_despite_a_long_warmup_means_lr_too_high() -> None:
    """Instability while the LR climbs a warmup of half the run: the warmup was not the problem."""
    loss = falling(100)
    loss[30:] *= np.exp(0.2 * np.arange(70))
    d = diagnose(make_run(loss, warmup=500, total=1000))
    assert d.verdict is Verdict.LR_TOO_HIGH
    assert d.evidence["lr_phase"] == "warmup"


def test_long_warmup_with_a_flat_start_is_too_long() -> None:
    """A 60% warmup with the loss flat for 300 steps -> warmup_too_long, cut to 10%."""
    flat = np.full(30, 5.0) * np.exp(np.random.default_rng(1).normal(0, 0.005, 30))
    loss = np.concatenate([flat, falling(70, start=5.0, floor=1.0)])
    d = diagnose(make_run(loss, warmup=600, total=1000))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    (advice,) = d.advice
    assert advice.parameter == "warmup_steps" and advice.current == 600 and advice.suggested == 100
    assert advice.text.startswith("cut warmup_steps from 600 to 100 (10% of 1000 total steps)")
    assert "60% of this run was spent warming up" in d.summary
    assert d.evidence["flat_until_step"] >= 290


def test_long_warmup_with_a_fast_falling_loss_is_too_long_by_its_share() -> None:
    """A 50% warmup whose loss fell fast anyway is still too long (above the guide's 20%), at
    a lower confidence that says the curve does not show the cost."""
    d = diagnose(make_run(falling(100, tau=5), warmup=500, total=1000))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert d.confidence == UNSEEN_COST_CONFIDENCE
    assert "50% of this run was spent warming up (500 of 1000 steps)" in d.summary
    assert "above the guide's maximum of 20%" in d.summary
    assert "the curve does not show how many steps it cost" in d.summary
    assert d.advice and d.advice[0].current == 500 and d.advice[0].suggested == 100


def _no_config_run(
    kind: str, *, last: int, warmup: int, total: int, every: int = 1, **kwargs: object
) -> Run:
    """Loss and the Trainer's LR for ``kind`` every ``every`` steps up to ``last``, with no
    config (a TensorBoard log on its own): the run length is only what the LR trace implies."""
    steps = np.arange(every, last + 1, every)
    lrs = lr_schedule(kind, steps, 1e-3, warmup, total, **kwargs)
    loss = falling(steps.size, tau=5)
    rows = [("train/loss", int(s), float(v), float(s)) for s, v in zip(steps, loss, strict=True)]
    rows += [
        ("train/learning_rate", int(s), float(v), float(s)) for s, v in zip(steps, lrs, strict=True)
    ]
    return Run.from_points(
        Points.from_rows(rows), name="synthetic", path=Path("synthetic"), source="test", config={}
    )


@pytest.mark.parametrize("last", [30, 45, 60, 75])
def test_share_of_an_extrapolated_run_length_waits_for_the_trace(last: int) -> None:
    """The first cycle of a cosine with hard restarts looks like a whole 80-step cosine, so the
    10% warmup of a 200-step run would be 25% of it: with no configured length, the share
    alone does not call the warmup too long before the trace has reached that length."""
    run = _no_config_run("cosine_with_restarts", last=last, warmup=20, total=200, num_cycles=3)
    assert diagnose(run).verdict is Verdict.HEALTHY


def test_a_restart_is_not_a_warmup() -> None:
    """A cosine with three hard restarts and no warmup, logged every 5 steps with no config:
    the second cycle's first logged LR is nearer the peak than the first cycle's, and the
    climb back to it is a restart, not a 70-step warmup."""
    run = _no_config_run(
        "cosine_with_restarts", last=200, warmup=0, total=200, every=5, num_cycles=3
    )
    d = diagnose(run, ended=True)
    assert d.verdict is Verdict.HEALTHY
    assert d.evidence["warmup_steps"] == 0


@pytest.mark.parametrize(("kind", "last", "warmup"), [("linear", 45, 12), ("inverse_sqrt", 25, 20)])
def test_a_decay_that_does_not_pin_the_run_length_implies_none(
    kind: str, last: int, warmup: int
) -> None:
    """A live log every 5 steps with no config: a linear decay 5% down from its peak, or one
    point of an inverse square root, fits any length; no run length (and no share) follows."""
    d = diagnose(_no_config_run(kind, last=last, warmup=warmup, total=600, every=5))
    assert d.verdict is Verdict.HEALTHY
    assert d.evidence.get("total_steps") is None


def test_an_ended_log_without_a_run_length_was_as_long_as_its_last_step() -> None:
    """A 30% warmup to a constant LR, logged alone (nothing says how long the run was meant to
    be or that it ended): too long once the caller says the log is complete (a post-run
    report), not while it may still be going (a live watch)."""
    run = _no_config_run("constant_with_warmup", last=200, warmup=60, total=200, every=5)
    assert diagnose(run).verdict is Verdict.HEALTHY
    ended = diagnose(run, ended=True)
    assert ended.verdict is Verdict.WARMUP_TOO_LONG
    assert ended.evidence["total_steps"] == 200


def test_share_of_an_implied_run_length_counts_once_the_trace_reaches_it() -> None:
    """A 30% warmup of a 200-step cosine, logged to its end with no config: too long by its
    share (the curve does not show the cost)."""
    d = diagnose(_no_config_run("cosine", last=200, warmup=60, total=200))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert d.confidence == UNSEEN_COST_CONFIDENCE
    # Nothing in the curve says a shorter warmup would save steps: the advice promises none.
    (cut,) = [a for a in d.advice if a.parameter == "warmup_steps"]
    assert "may not save steps" in cut.text and "sooner" not in cut.text


def test_long_warmup_whose_cost_shows_is_more_confident() -> None:
    """The same share with a loss that sat flat through the ramp: a cost the curve shows."""
    flat = np.full(30, 5.0) * np.exp(np.random.default_rng(1).normal(0, 0.005, 30))
    loss = np.concatenate([flat, falling(70, start=5.0, floor=1.0)])
    d = diagnose(make_run(loss, warmup=500, total=1000))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert d.confidence > UNSEEN_COST_CONFIDENCE
    assert "does not show" not in d.summary


def _bump(n: int = 40, at: int = 1, factor: float = 1.35) -> np.ndarray:
    """Window means of a loss falling from 4.4 with a catapult at logged point ``at``."""
    loss = falling(n, start=4.4, floor=3.0, tau=4.0, seed=5)
    loss[at] = loss[at - 1] * factor
    return loss


def test_averaged_catapult_without_warmup_is_too_short() -> None:
    """Means of 5 steps, no warmup: the second point climbs x1.35 over the first and comes
    back -> warmup_too_short at that step, citing the catapult."""
    d = diagnose(make_run(_bump(), every=5, peak=1e-3, warmup=0, total=200))
    assert d.verdict is Verdict.WARMUP_TOO_SHORT
    assert d.first_problem_step == 10
    assert d.evidence["kind"] == "catapult"
    assert "(the mean of 5 steps) climbs from its best" in d.summary


def test_averaged_catapult_after_a_usual_warmup_is_lr_too_high() -> None:
    """The same climb right after a 10% warmup peaks says the peak LR is too high."""
    d = diagnose(make_run(_bump(at=5), every=5, peak=1e-3, warmup=20, total=200))
    assert d.verdict is Verdict.LR_TOO_HIGH
    assert d.evidence["kind"] == "catapult"


@pytest.mark.parametrize("at", [2, 30])
def test_bump_outside_the_peak_window_is_not_a_catapult(at: int) -> None:
    """A one-point bump while the LR is below half its peak, or long after the peak, is not
    judged by the catapult rule (the divergence rule and its smoothing judge it)."""
    d = diagnose(make_run(_bump(at=at), every=5, peak=1e-3, warmup=40, total=200))
    assert not any(f.kind == "catapult" for f in d.findings)


def test_per_step_bump_is_not_a_catapult() -> None:
    """Logged every step (no averaging), one high point is noise for the divergence rule."""
    d = diagnose(make_run(_bump(n=200), every=1, peak=1e-3, warmup=0, total=200))
    assert not any(f.kind == "catapult" for f in d.findings)


def test_warmup_longer_than_the_run_with_flat_loss() -> None:
    """An LR still rising at the last step of a finished run, loss flat for a third of it."""
    flat = np.full(14, 1.55) * np.exp(np.random.default_rng(2).normal(0, 0.01, 14))
    loss = np.concatenate([flat, falling(28, start=1.5, floor=0.01, tau=4)])
    d = diagnose(make_run(loss, warmup=500, total=420))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert d.evidence["never_peaked"] is True
    assert "never reached its peak" in d.summary


@pytest.mark.parametrize("n", [0, 1, 3])
def test_too_few_points_is_insufficient_data(n: int) -> None:
    """Fewer than four finite loss points give insufficient_data."""
    d = diagnose(make_run(falling(max(n, 1))[:n]))
    assert d.verdict is Verdict.INSUFFICIENT_DATA
    assert d.first_problem_step is None


def test_run_without_loss_is_insufficient_data() -> None:
    """A run with only an LR series has no loss to judge."""
    rows = [("train/learning_rate", s, 1e-4, 0.0) for s in range(10, 200, 10)]
    run = Run.from_points(Points.from_rows(rows), name="x", path=Path("x"), source="test")
    assert diagnose(run).verdict is Verdict.INSUFFICIENT_DATA


def test_too_few_eval_points_are_named_in_insufficient_data() -> None:
    """An eval-only log with too few evaluations says so, not that there is no loss at all."""
    rows = [("eval/loss", s, 2.0 - s / 100, 0.0) for s in (10, 20)]
    rows += [("train/learning_rate", s, 1e-4, 0.0) for s in range(10, 30, 10)]
    run = Run.from_points(Points.from_rows(rows), name="x", path=Path("x"), source="test")
    d = diagnose(run)
    assert d.verdict is Verdict.INSUFFICIENT_DATA
    assert "2 finite eval_loss points" in d.summary


def test_nan_right_away_beats_insufficient_data() -> None:
    """A NaN loss in the first logged points is reported even with too few points."""
    d = diagnose(make_run(np.array([2.0, math.nan]), warmup=10))
    assert d.verdict in (Verdict.WARMUP_TOO_SHORT, Verdict.NUMERICAL_INSTABILITY)
    assert d.first_problem_step == 20


def test_without_lr_series_early_divergence_still_gets_a_verdict() -> None:
    """No LR logged: an early blow-up is called from the curve alone, with lower confidence."""
    loss = falling(100)
    loss[5:] *= np.exp(0.25 * np.arange(95))
    with_lr = diagnose(make_run(loss, warmup=20))
    without = diagnose(make_run(loss, peak=None, config={"max_steps": 1000}))
    assert without.verdict is Verdict.WARMUP_TOO_SHORT
    assert without.confidence < with_lr.confidence


def test_isolated_nan_grad_norm_with_falling_loss_is_a_loss_scaler_skip() -> None:
    """One NaN grad norm (an fp16 skip) in a smoothly falling run stays healthy, info only."""
    grad = np.ones(100)
    grad[60] = math.nan
    d = diagnose(make_run(falling(100), grad=grad))
    assert d.verdict is Verdict.HEALTHY
    assert not any(f.kind == "non_finite" for f in d.findings)
    skips = [f for f in d.findings if f.kind == "loss_scale_skip"]
    assert [(f.step, f.severity.value) for f in skips] == [(610, "info")]


def test_loss_scaler_skips_at_the_start_and_later_are_benign() -> None:
    """fp16: grad norm Inf at the first 3 logged steps and isolated later, loss finite and
    falling: a dynamic loss scaler skipping overflowed steps, not numerical instability."""
    grad = np.ones(100)
    grad[:3] = math.inf
    grad[[40, 75]] = math.nan
    d = diagnose(make_run(falling(100), grad=grad))
    assert d.verdict is Verdict.HEALTHY
    assert d.level is None or d.level.value == "info"
    assert len([f for f in d.findings if f.kind == "loss_scale_skip"]) == 3


def test_nan_grad_norm_with_a_climbing_loss_is_not_a_skip() -> None:
    """Non-finite grad norms after which the loss climbs are a failure, not scaler skips."""
    loss = falling(100)
    loss[50:] = loss[49] * np.linspace(3.0, 4.0, 50)
    grad = np.ones(100)
    grad[50:53] = math.nan
    d = diagnose(make_run(loss, grad=grad))
    assert d.is_problem
    assert not any(f.kind == "loss_scale_skip" for f in d.findings)


def test_evidence_is_json_serialisable_and_diagnosis_deterministic() -> None:
    """Evidence dumps to JSON; the same run gives the same diagnosis twice."""
    loss = falling(100)
    loss[3:] *= np.exp(0.25 * np.arange(97))
    run = make_run(loss, peak=1e-3, warmup=20)
    a, b = diagnose(run), diagnose(run)
    assert a == b
    json.dumps(a.evidence, allow_nan=True)
    for f in a.findings:
        json.dumps(dict(f.evidence), allow_nan=True)


def test_prefixes_are_diagnosed_and_the_alarm_comes_early() -> None:
    """Replayed point by point, a blow-up is flagged within two logged points of its onset.

    The loss climbs from step 410 and is x1.5 above its best from step 430 (the onset). Its
    mean over the ten steps to 420 is already x1.35 above its best, just after the LR peaked:
    a catapult, flagged one point before the onset.
    """
    loss = falling(100)
    loss[40:] *= np.exp(0.3 * np.arange(60))
    run = make_run(loss, peak=1e-3, warmup=400, total=1000)
    verdicts = {}
    for step in range(10, 1001, 10):
        verdicts[step] = diagnose(run.prefix(step)).verdict
    # The run's 40% warmup may be called too long once it has ended; what matters here is the
    # instability: no unstable verdict before the onset, and one within two points of it.
    unstable = (Verdict.WARMUP_TOO_SHORT, Verdict.LR_TOO_HIGH, Verdict.NUMERICAL_INSTABILITY)
    first_bad = min(s for s, v in verdicts.items() if v in unstable)
    assert 420 <= first_bad <= 450
    early = [v for s, v in verdicts.items() if s < 420]
    assert not any(v in unstable for v in early)
    assert all(v is not Verdict.WARMUP_TOO_LONG for s, v in verdicts.items() if s < 400)


# ------------------------------------------------------------------------ labeled real runs
def _realworld_cases() -> list[Path]:
    if not REALWORLD.is_dir():
        return []
    return sorted(REALWORLD.glob("*/case.json"))


@pytest.mark.skipif(not REALWORLD.is_dir(), reason="real-world runs not present")
@pytest.mark.parametrize("case_file", _realworld_cases(), ids=lambda p: p.parent.name)
def test_realworld_runs_get_an_acceptable_verdict(case_file: Path) -> None:
    """Every labeled real run gets one of its acceptable verdicts; unclear ones do not crash."""
    case = json.loads(case_file.read_text(encoding="utf-8"))
    d = diagnose(read_run(case_file.parent / "raw"))
    assert isinstance(d.verdict, Verdict)
    if case["acceptable_verdicts"]:
        assert d.verdict.value in case["acceptable_verdicts"], d.summary


def _sample_entries() -> list[dict]:
    manifest = SAMPLES / "MANIFEST.json"
    if not manifest.is_file():
        return []
    data = json.loads(manifest.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    if isinstance(data, dict):
        data = [dict(v, name=k) for k, v in data.items()]
    return [e for e in data if e.get("name") and e.get("label")]


# Sample runs whose curve does not show what their label says, and the verdict the curve
# supports instead. None at present: every label is checked against its own curve.
CURVE_READINGS: dict[str, str] = {}


@pytest.mark.skipif(not _sample_entries(), reason="sample runs not generated")
@pytest.mark.parametrize("entry", _sample_entries(), ids=lambda e: e["name"])
def test_sample_runs_get_their_label(entry: dict) -> None:
    """Each sample run's verdict is its manifest label (or one of its acceptable verdicts)."""
    d = diagnose(read_run(SAMPLES / entry.get("path", entry["name"])))
    acceptable = set(entry.get("acceptable_verdicts") or [entry["label"]])
    if entry["name"] in CURVE_READINGS:
        acceptable.add(CURVE_READINGS[entry["name"]])
        assert d.advice, "a long warmup that is only a note still gets advice"
    assert d.verdict.value in acceptable, d.summary


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 60),
    data=st.data(),
    with_lr=st.booleans(),
    with_grad=st.booleans(),
    max_steps=st.sampled_from([None, 0, 50, 300, 10_000]),
)
def test_diagnose_never_raises(
    n: int, data: st.DataObject, with_lr: bool, with_grad: bool, max_steps: int | None
) -> None:
    """Any run (NaN/Inf, zeros, negative losses, odd configs) gets a verdict, never an error."""
    floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
    rows = []
    for series, present in (
        ("train/loss", True),
        ("train/learning_rate", with_lr),
        ("train/grad_norm", with_grad),
    ):
        if not present:
            continue
        values = data.draw(st.lists(floats, min_size=n, max_size=n))
        rows += [(series, (i + 1) * 5, v, 0.0) for i, v in enumerate(values)]
    config = {} if max_steps is None else {"max_steps": max_steps, "warmup_steps": 10}
    run = Run.from_points(
        Points.from_rows(rows), name="x", path=Path("x"), source="test", config=config
    )
    d = diagnose(run)
    assert isinstance(d.verdict, Verdict) and 0.0 <= d.confidence <= 1.0
    json.dumps(d.evidence, allow_nan=True)


def test_config_warmup_is_used_when_the_lr_is_not_logged() -> None:
    """Without an LR trace the configured warmup places the anomaly in the schedule."""
    early = np.array([4.0, math.nan, math.nan, math.nan, math.nan])
    config = {"max_steps": 1000, "warmup_steps": 100}
    d = diagnose(make_run(early, every=1, peak=None, config=config))
    assert d.verdict is Verdict.NUMERICAL_INSTABILITY  # NaN at step 2 of 100: LR ~2% of peak
    assert d.evidence["schedule_source"] == "config" and d.evidence["lr_phase"] == "warmup"
    loss = falling(100)
    loss[1:] *= np.exp(0.3 * np.arange(99))
    d = diagnose(make_run(loss, peak=None, config={"max_steps": 1000, "warmup_steps": 20}))
    assert d.verdict is Verdict.WARMUP_TOO_SHORT
    d = diagnose(make_run(loss, peak=None, config=config))
    assert d.verdict is Verdict.LR_TOO_HIGH  # the same blow-up under a 10% warmup


def test_warmup_shorter_than_the_logging_interval_comes_from_the_config() -> None:
    """An LR already at its peak at the first log: the configured 5-step warmup is reported."""
    loss = falling(100)
    loss[2:] *= np.exp(0.3 * np.arange(98))
    d = diagnose(make_run(loss, peak=1e-3, warmup=5, total=1000, config={"warmup_steps": 5}))
    assert d.verdict is Verdict.WARMUP_TOO_SHORT
    assert d.evidence["warmup_steps"] == 5
    assert d.advice[0].text.startswith("raise warmup_steps from 5 to 100")


def test_long_warmup_with_a_slow_decline_then_a_fast_one_is_too_long() -> None:
    """A loss creeping down during a 40% warmup and falling fast after it -> warmup_too_long."""
    rng = np.random.default_rng(3)
    creep = np.linspace(5.0, 4.4, 40)  # -12% over the 400 warmup steps, no flat start
    after = 4.4 * np.exp(-np.arange(1, 61) / 8) + 1.0
    loss = np.concatenate([creep, after]) * np.exp(rng.normal(0, 0.003, 100))
    d = diagnose(make_run(loss, warmup=400, total=1000))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert any(
        f.kind == "slow_decline" and f.evidence.get("rule") == "slow_in_warmup" for f in d.findings
    )


@pytest.mark.parametrize(
    ("every", "warmup", "total", "first_loss", "first_grad"),
    [
        # Logged every 2 steps, a 20-step warmup: grad_norm NaN from the first log on and the
        # loss 0.0 from the second; the first log sits 5% up the ramp.
        pytest.param(2, 20, 120, 3.2905, math.nan, id="every-2-steps-nan-from-the-first-log"),
        # Logged every step, a 30-step warmup: step 1 is finite, the NaN seen at step 2 (LR 1e-4,
        # 3% of the peak there) was made by the update logged at step 1.
        pytest.param(1, 30, 300, 4.294, 6.652, id="every-step-nan-from-the-second-log"),
    ],
)
def test_nan_from_the_lr_zero_first_update_is_numerical(
    every: int, warmup: int, total: int, first_loss: float, first_grad: float
) -> None:
    """NaN created by the LR-0 first update (Adam with eps=0) is numerical, not the warmup.

    The values are those the HF Trainer logs for such a run: the LR logged at step s is the
    one step s used, and a step's loss and grad norm are measured before that step's update.
    """
    rows = []
    for step in range(every, 2 * warmup + 1, every):
        lr = 3e-3 * min(1.0, (step - 1) / warmup)
        first = step == every
        rows += [
            ("train/loss", step, first_loss if first else 0.0, 0.0),
            ("train/grad_norm", step, first_grad if first else math.nan, 0.0),
            ("train/learning_rate", step, lr, 0.0),
        ]
    run = Run.from_points(
        Points.from_rows(rows),
        name="eps0",
        path=Path("eps0"),
        source="test",
        config={"max_steps": total, "warmup_steps": warmup, "logging_steps": every},
    )
    d = diagnose(run)
    assert d.verdict is Verdict.NUMERICAL_INSTABILITY, d.summary
    assert d.first_problem_step == 2 and d.evidence["lr"] == 0.0
    assert "between steps 1 and 2" in d.summary


@pytest.mark.skipif(
    not (SAMPLES / "numerical_instability_adam_eps0" / "trainer_log.jsonl").exists(),
    reason="sample runs not generated",
)
def test_hidden_nan_without_grad_norm_is_not_called_healthy() -> None:
    """trainer_log.jsonl has no grad norm: a loss that drops to exactly 0.0 still warns."""
    run = read_run(SAMPLES / "numerical_instability_adam_eps0" / "trainer_log.jsonl")
    assert not run.has("grad_norm")
    d = diagnose(run)
    assert d.verdict is not Verdict.HEALTHY, d.summary
    (zeroed,) = [f for f in d.findings if f.evidence.get("rule") == "zeroed"]
    assert zeroed.severity is Severity.WARNING and zeroed.step == 20


def test_logged_lr_against_the_configured_schedule() -> None:
    """The config asks for a 10% warmup through warmup_ratio, the log shows none (transformers
    5 dropped warmup_ratio): a warning naming both; a log that follows the config says nothing."""
    cfg = {"learning_rate": 1e-4, "lr_scheduler_type": "linear", "warmup_ratio": 0.1}
    ignored = diagnose(make_run(falling(100), warmup=0, config=cfg))
    (found,) = [f for f in ignored.findings if f.evidence.get("problem") == "config_schedule"]
    assert found.severity == Severity.WARNING and found.metric == "learning_rate"
    assert "asks for 100 warmup steps (warmup_ratio), the log shows none" in found.message
    assert "warmup_ratio ignored" in found.message
    assert found.evidence["configured_warmup"] == 100 and found.evidence["logged_warmup"] == 0
    follows = diagnose(make_run(falling(100), warmup=100, config=cfg))
    assert not [f for f in follows.findings if f.evidence.get("problem") == "config_schedule"]


# --------------------------------------------------------------------------------------------
# Rules that must hold for whole classes of runs (not thresholds of single runs).
def _lr_limited(warmup: int, total: int = 1000, every: int = 10, seed: int = 0) -> np.ndarray:
    """A loss that is a function of the cumulative LR (progress per step tracks the LR)."""
    steps = np.arange(1, total + 1)
    lr = np.array([_lr(int(s), 1.0, warmup, total) for s in steps])
    cum = np.cumsum(lr)
    loss = 1.5 + 2.5 * np.exp(-cum / 150.0)
    rng = np.random.default_rng(seed)
    return loss[every - 1 :: every] * np.exp(rng.normal(0, 0.01, total // every))


def test_an_lr_limited_long_warmup_is_too_long_with_the_steps_it_cost() -> None:
    """Warmup 50% of the run, loss a function of the cumulative LR: the loss falls steadily
    (no flat start), yet the warmup cost steps; the verdict says how many."""
    d = diagnose(make_run(_lr_limited(500), warmup=500))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert d.evidence["steps_lost"] > 0 and "steps lost" in d.summary
    assert d.advice and d.advice[0].parameter == "warmup_steps"


def test_the_same_run_with_the_usual_warmup_is_healthy() -> None:
    assert diagnose(make_run(_lr_limited(100), warmup=100)).verdict is Verdict.HEALTHY


def test_a_long_warmup_the_loss_did_not_wait_for_is_too_long_at_low_confidence() -> None:
    """Warmup 50%, but the loss falls as fast as it can from the start (not LR-limited): too
    long by its share, at the confidence of a cost the curve does not show."""
    d = diagnose(make_run(falling(100, tau=8.0), warmup=500))
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert d.confidence == UNSEEN_COST_CONFIDENCE


def test_a_rise_that_never_comes_back_is_not_healthy() -> None:
    """The loss climbs from its best 2.40 to 3.17 (+32%, below the x1.5 divergence ratio) while
    the LR still warms up, and stays there."""
    loss = falling(100, start=4.0, floor=2.4, tau=5.0)
    loss[30:] = np.linspace(2.4, 3.17, 70) * np.exp(np.random.default_rng(1).normal(0, 0.01, 70))
    d = diagnose(make_run(loss, warmup=500))
    assert d.verdict in (Verdict.WARMUP_TOO_SHORT, Verdict.LR_TOO_HIGH)
    assert any(f.kind == "sustained_rise" and f.severity is Severity.CRITICAL for f in d.findings)


def test_a_run_that_stopped_learning_at_its_peak_lr_is_not_healthy() -> None:
    """Loss falls 5% in the first 7% of the run and then stays flat (never 5% below that
    level) for the remaining 93% at a high LR: the no-progress warning decides, not `healthy`."""
    rng = np.random.default_rng(3)
    loss = np.concatenate([np.linspace(4.0, 3.8, 7), np.full(93, 3.8)])
    loss *= np.exp(rng.normal(0, 0.01, 100))
    d = diagnose(make_run(loss, warmup=0, peak=3e-3))
    assert d.is_problem
    assert any(f.kind == "no_progress" for f in d.findings)


def test_a_live_plateau_early_in_a_run_waits_for_the_planned_length() -> None:
    """The same stall, watched live: at step 300 of a 1000-step run, 23 flat points are most
    of what was logged but not yet half the run. A problem only once they are."""
    rng = np.random.default_rng(3)
    loss = np.concatenate([np.linspace(4.0, 3.8, 7), np.full(93, 3.8)])
    loss *= np.exp(rng.normal(0, 0.01, 100))
    run = make_run(loss, warmup=0, peak=3e-3)
    early = diagnose(run.prefix(300))
    assert not early.is_problem
    assert not any(f.kind == "no_progress" for f in early.findings)
    assert diagnose(run.prefix(700)).is_problem


def test_a_flat_loss_while_the_lr_is_still_small_is_not_instability() -> None:
    """A stall during a long warmup at a tiny LR is what a long warmup looks like."""
    d = diagnose(make_run(_lr_limited(1500, total=1000), warmup=1500))
    assert d.verdict is Verdict.WARMUP_TOO_LONG


def test_eval_only_logs_are_judged() -> None:
    """Eval loss and LR logged, no train loss: a 50% LR-limited warmup is still judged."""
    loss = _lr_limited(500, every=50)
    rows = []
    for i, value in enumerate(loss):
        step = (i + 1) * 50
        rows.append(("eval/loss", step, float(value), float(step)))
        rows.append(("train/learning_rate", step, _lr(step, 1e-4, 500, 1000), float(step)))
    run = Run.from_points(
        Points.from_rows(rows),
        name="eval-only",
        path=Path("e"),
        source="test",
        config={"max_steps": 1000},
    )
    d = diagnose(run)
    assert d.verdict is Verdict.WARMUP_TOO_LONG
    assert d.evidence["metric"] == "eval_loss"


def test_the_verdict_cites_the_climb_that_ended_the_run() -> None:
    """An early climb that came back down, then one that did not: the second decides."""
    loss = falling(100)
    loss[8:14] *= 1.9  # a transient during the warmup, recovered
    loss[70:] *= np.linspace(1.0, 4.0, 30)  # long after the peak, never recovers
    d = diagnose(make_run(loss, warmup=100))
    assert d.verdict is Verdict.LR_TOO_HIGH
    assert d.first_problem_step is not None and d.first_problem_step >= 700


def test_a_finished_run_that_ends_on_a_loss_spike_is_not_healthy() -> None:
    """A spike in the last logged points is "too recent to tell" while the run may still come
    back; once the run is over (its planned steps logged) it ended on the spike."""
    loss = falling(100, start=4.0, floor=1.5, tau=10.0)
    loss[-3:] = [40.0, 400.0, 4000.0]
    live = diagnose(make_run(loss, warmup=100, total=2000))  # 1000 of 2000 steps: still running
    (spike,) = [f for f in live.findings if f.kind == "spike" and f.metric == "loss"]
    assert spike.severity is Severity.WARNING and "too recent to tell" in spike.message
    over = diagnose(make_run(loss, warmup=100, total=1000))
    assert over.is_problem and over.first_problem_step == 980
    (spike,) = [f for f in over.findings if f.kind == "spike" and f.metric == "loss"]
    assert spike.severity is Severity.CRITICAL and spike.evidence["recovered"] is False
    assert "the run ended before it came back" in spike.message


def _schedule_free_run(tmp_path: Path, loss_at: object, optim: str) -> Path:
    """A run logged by the HF Trainer's own TensorBoard callback with a schedule-free optimizer
    (which wants a constant scheduler, and warms up over warmup_steps 40 by itself): the LR it
    logs is the scheduler's, flat at 1e-3 from the first step."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.integrations import TensorBoardCallback

    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        report_to=[],
        optim=optim,
        lr_scheduler_type="constant",
        warmup_steps=40,
        max_steps=400,
        logging_steps=5,
    )
    state, control = transformers.TrainerState(), transformers.TrainerControl()
    callback = TensorBoardCallback()
    callback.on_train_begin(targs, state, control)
    for step in range(5, 401, 5):
        state.global_step = step
        logs = {"loss": loss_at(step), "learning_rate": 1e-3}  # type: ignore[operator]
        callback.on_log(targs, state, control, logs=logs)
    callback.on_train_end(targs, state, control)
    (run_dir,) = (tmp_path / "out" / "runs").iterdir()
    return run_dir


def test_a_schedule_free_optimizer_s_own_warmup_is_the_warmup(tmp_path: Path) -> None:
    """schedule_free_adamw warms up over warmup_steps 40 itself; the logged LR is flat. The
    schedule is the LR it applied (a 40-step warmup, 10% of the run, said in a note), so a
    blow-up well after it is the LR's, not a missing warmup's."""

    def blows_up(step: int) -> float:
        return 2.0 + 3.0 * 0.98**step if step < 200 else 2.0 + 0.05 * (step - 195)

    d = diagnose(read_run(_schedule_free_run(tmp_path / "sf", blows_up, "schedule_free_adamw")))
    assert d.schedule is not None and d.schedule.warmup_steps == 39  # update 40 at the peak
    assert any(f.evidence.get("problem") == "optimizer_warmup" for f in d.findings)
    assert d.verdict is Verdict.LR_TOO_HIGH
    assert d.evidence["warmup_steps"] == 39
    assert not any(a.parameter == "warmup_steps" for a in d.advice)
    # The same log from an optimizer that does not warm up: no warmup at all.
    plain = diagnose(read_run(_schedule_free_run(tmp_path / "plain", blows_up, "adamw_torch")))
    assert plain.schedule is not None and plain.schedule.lr_never_moves
    assert not any(f.evidence.get("problem") == "optimizer_warmup" for f in plain.findings)


def test_a_converged_loss_s_small_wobbles_are_not_a_failure() -> None:
    """A fine-tune whose loss fell from 0.7 to 0.01: drifting back to 0.02 over the last
    fifth (+70%, but 1% of the start) or ending on one high window is healthy."""
    rng = np.random.default_rng(1)
    t = np.arange(100)
    drift = (0.01 + 0.68 * np.exp(-t / 10)) * np.exp(rng.normal(0, 0.05, 100))
    drift[60:] *= np.linspace(1.0, 2.0, 40)
    assert diagnose(make_run(drift, peak=2e-5), ended=True).verdict is Verdict.HEALTHY
    last = (0.5 + 2.0 * np.exp(-t / 10)) * np.exp(rng.normal(0, 0.03, 100))
    last[-1] *= 1.6
    d = diagnose(make_run(last, peak=2e-5), ended=True)
    assert d.verdict is Verdict.HEALTHY
    assert any(f.kind == "spike" and f.severity is Severity.WARNING for f in d.findings)


def test_a_step_decay_logged_past_its_fitted_end_implies_no_run_length() -> None:
    """A classic image schedule (a 5-epoch warmup, then the LR cut 10x at epochs 30 and 60 of
    90), no config: the last stretch at 1% of the peak fits as a cosine's floor, but the LR is
    logged far past where that cosine would end, so that is not the run's length and the warmup
    is 5% of the 9,000 steps logged, not of a shorter 'implied' run."""
    rng = np.random.default_rng(0)
    t = np.arange(900)
    loss = (1.0 + 5.9 * np.exp(-t / 150)) * np.exp(rng.normal(0, 0.02, 900))
    rows = []
    for i, value in enumerate(loss):
        step = (i + 1) * 10
        epoch = (step - 1) // 100
        lr = 0.1 * (epoch + 1) / 5 if epoch < 5 else 0.1 * 0.1 ** ((epoch >= 30) + (epoch >= 60))
        rows += [("train/loss", step, float(value), float(step))]
        rows += [("train/learning_rate", step, lr, float(step))]
    run = Run.from_points(Points.from_rows(rows), name="s", path=Path("s"), source="test")
    d = diagnose(run, ended=True)
    assert d.schedule is not None and d.schedule.total_steps is None
    assert d.verdict is Verdict.HEALTHY
    assert d.evidence.get("total_steps") in (None, 9000)


def test_a_run_that_never_learns_is_judged_at_the_lr_it_stalled_at() -> None:
    """Logged every step with a 100-step warmup, the loss never improves from step 1: the stall
    is dated from step 1, where the LR is ~0, but it is a failure at the peak LR it stayed
    stalled through, not a numerical problem at LR 0."""
    rng = np.random.default_rng(0)
    loss = 2.3 * np.linspace(1.0, 1.03, 400) * np.exp(rng.normal(0, 0.002, 400))
    d = diagnose(make_run(loss, every=1, peak=3e-2, warmup=100, total=400), ended=True)
    assert d.verdict is Verdict.LR_TOO_HIGH
    assert d.first_problem_step == 1
    assert d.evidence["lr"] == pytest.approx(3e-2, rel=0.02)


def _bump_in_warmup(source: str, config: dict[str, float] | None) -> Run:
    """Logged every 5 steps, one value x1.3 above its neighbours as the LR warms up."""
    steps = np.arange(5, 201, 5)
    lr = np.where(steps <= 20, 1e-3 * steps / 20, 1e-3 * (200 - steps) / 180)
    loss = 4.0 * np.exp(-steps / 60) + 1.5
    loss[steps == 20] *= 1.3
    rows = []
    for s, value, rate in zip(steps, loss, lr, strict=True):
        rows += [("train/loss", int(s), float(value), float(s))]
        rows += [("train/learning_rate", int(s), float(rate), float(s))]
    return Run.from_points(
        Points.from_rows(rows), name="r", path=Path("r"), source=source, config=config
    )


@pytest.mark.parametrize(("source", "catapult"), [("hf_trainer", True), ("lightning", False)])
def test_a_lightning_loss_is_one_step_not_a_window_mean(source: str, catapult: bool) -> None:
    """The Trainer logs the mean loss of its ``logging_steps`` window; Lightning logs the loss of
    the logged step itself, even with ``log_every_n_steps`` in its config. One value x1.3 above
    its neighbours while the LR warms up is a catapult in a window mean, and noise in one step."""
    config = {"logging_steps": 5, "max_steps": 200, "warmup_steps": 20, "learning_rate": 1e-3}
    found = [f for f in diagnose(_bump_in_warmup(source, config)).findings if f.kind == "catapult"]
    assert bool(found) is catapult
    if found:
        assert found[0].evidence["averaged_over"] == 5


@pytest.mark.parametrize(
    ("source", "config", "stated", "averaged"),
    [
        ("tensorboard", None, None, 5),  # the log does not say: a mean over its spacing
        ("tensorboard", None, 1, None),  # told single steps: noise in one step
        ("lightning", None, 5, 5),  # what the user states wins over the writer's reading
        ("hf_trainer", {"logging_steps": 5}, 1, None),  # ... and over the config
    ],
)
def test_a_stated_loss_window_decides_how_a_logged_loss_is_read(
    source: str, config: dict[str, float] | None, stated: int | None, averaged: int | None
) -> None:
    d = diagnose(_bump_in_warmup(source, config), loss_window=stated)
    found = [f for f in d.findings if f.kind == "catapult"]
    assert (found[0].evidence["averaged_over"] if found else None) == averaged


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "5"])
def test_a_bad_loss_window_is_one_input_error(bad: object) -> None:
    with pytest.raises(InputError, match="loss window must be a whole number"):
        diagnose(_bump_in_warmup("tensorboard", None), loss_window=bad)  # type: ignore[arg-type]


def _relogged(run: Run, times: int, plus: int = 0) -> Run:
    """``run``'s loss, LR and grad norm with every step multiplied by ``times`` and ``plus``
    added, no config."""
    rows = []
    for name in ("loss", "learning_rate", "grad_norm"):
        if not run.has(name):
            continue
        for step, value in zip(*run.series(name), strict=True):
            rows.append((name, int(step) * times + plus, float(value), float(step)))
    return Run.from_points(Points.from_rows(rows), name=run.name, path=run.path, source="test")


@pytest.mark.skipif(not _sample_entries(), reason="sample runs not generated")
@pytest.mark.parametrize("entry", _sample_entries(), ids=lambda e: e["name"])
def test_the_unit_of_the_steps_changes_no_verdict_once_the_window_is_stated(entry: dict) -> None:
    """A loop that logs against the samples (or tokens) seen spaces its points by the batch.
    Told what one logged loss stands for, the diagnosis gives the verdict it gives on steps."""
    run = _relogged(read_run(SAMPLES / entry.get("path", entry["name"])), 1)
    spacing = int(np.median(np.diff(run.series("loss")[0])))
    base = diagnose(run, ended=True, loss_window=spacing)
    for times in (8, 1000):
        scaled = diagnose(_relogged(run, times), ended=True, loss_window=spacing)
        assert scaled.verdict is base.verdict, (times, base.summary, scaled.summary)


@pytest.mark.skipif(not _sample_entries(), reason="sample runs not generated")
@pytest.mark.parametrize("entry", _sample_entries(), ids=lambda e: e["name"])
def test_a_log_that_starts_mid_training_is_measured_from_its_warmup(entry: dict) -> None:
    """A second stage that keeps counting steps: the same run with 5,000 added to every step.
    Where its LR visibly warms up from 0, the run is measured from there and keeps its verdict,
    with a note that says so."""
    run = _relogged(read_run(SAMPLES / entry.get("path", entry["name"])), 1)
    base = diagnose(run, ended=True)
    if base.schedule is None or not base.schedule.warmup_steps:
        pytest.skip("no warmup in the logged LR: nothing shows where the run starts")
    later = diagnose(_relogged(run, 1, plus=5000), ended=True)
    assert later.verdict is base.verdict, (base.summary, later.summary)
    notes = [f for f in later.findings if f.evidence.get("problem") == "late_start"]
    every = int(np.median(np.diff(run.series("learning_rate")[0])))
    assert len(notes) == 1 and 5000 <= notes[0].step <= 5000 + every  # where the ramp leaves 0
    assert not [f for f in base.findings if f.evidence.get("problem") == "late_start"]
    schedule = later.to_dict()["schedule"]
    assert schedule["warmup_start"] == notes[0].step
    assert schedule["warmup_fraction"] == pytest.approx(
        base.to_dict()["schedule"]["warmup_fraction"], abs=0.01
    )


def _scripted_module(
    loss_at: Callable[[int], float], total: int, *, log_lr: bool = False, hparams: bool = False
) -> object:
    """A Lightning module that trains nothing and logs ``loss_at(global_step)`` as its loss
    (with ``log_lr``, its LR too), under a 20-step linear warmup and a linear decay to
    ``total`` steps; with ``hparams`` it saves its hyperparameters (the TensorBoardLogger then
    logs hp_metric)."""
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    class Scripted(pl.LightningModule):
        def __init__(self, lr: float = 1e-3) -> None:
            super().__init__()
            if hparams:
                self.save_hyperparameters()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch: object, batch_idx: int) -> torch.Tensor:
            self.log("train_loss", loss_at(self.global_step))
            if log_lr:
                self.log("lr", self.optimizers().param_groups[0]["lr"])
            return (self.w**2).sum()

        def configure_optimizers(self) -> dict:
            opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
            ramp = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda k: min((k + 1) / 20, (total - k) / (total - 20))
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": ramp, "interval": "step"}}

    return Scripted()


def _lightning_tensorboard_run(
    root: Path, *, lr_monitor: bool, hparams: bool, event_file_alone: bool
) -> Path:
    """A real Lightning run logged by its TensorBoardLogger every 10 steps: a falling loss, one
    value x1.5 at the end of a 20-step warmup. Lightning logs the loss of the logged step."""
    pl = pytest.importorskip("lightning.pytorch")
    import shutil

    import torch

    def loss_at(k: int) -> float:
        return (4.0 * math.exp(-k / 60) + 1.5) * (1.5 if k == 19 else 1.0)

    module = _scripted_module(loss_at, 200, log_lr=not lr_monitor, hparams=hparams)
    trainer = pl.Trainer(
        max_steps=200,
        log_every_n_steps=10,
        accelerator="cpu",
        logger=pl.loggers.TensorBoardLogger(str(root)),
        callbacks=[pl.callbacks.LearningRateMonitor()] if lr_monitor else [],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    data = torch.utils.data.TensorDataset(torch.zeros(200, 1))
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=1))
    folder = root / "lightning_logs" / "version_0"
    if not event_file_alone:
        return folder
    alone = root / "shared"
    alone.mkdir()
    for event in folder.glob("events.out.tfevents.*"):
        shutil.copy(event, alone)
    return alone


@pytest.mark.parametrize(
    ("lr_monitor", "hparams", "event_file_alone"),
    [
        (False, False, False),  # hparams.yaml beside the event file
        (True, False, True),  # LearningRateMonitor's lr-AdamW
        (False, True, True),  # TensorBoardLogger's hp_metric
    ],
)
def test_a_lightning_tensorboard_log_is_read_as_single_steps(
    tmp_path: Path, lr_monitor: bool, hparams: bool, event_file_alone: bool
) -> None:
    """Lightning's marks (its hparams.yaml, LearningRateMonitor's LR names, the logger's
    hp_metric) say the losses are single steps: one value x1.5 is one noisy step. Said to be
    means over the 10-step spacing, the same log shows a catapult."""
    folder = _lightning_tensorboard_run(
        tmp_path, lr_monitor=lr_monitor, hparams=hparams, event_file_alone=event_file_alone
    )
    run = read_run(folder)
    assert run.source == "tensorboard"

    def catapults(d: object) -> list[int]:
        return [f.step for f in d.findings if f.kind == "catapult"]  # type: ignore[attr-defined]

    assert catapults(diagnose(run)) == []
    assert catapults(diagnose(run, loss_window=10)) == [19]


def test_lightning_csv_logs_are_read_as_single_steps() -> None:
    from warmup_monitor.diagnosis import SINGLE_STEP_LOSS_SOURCES

    run = read_run(ROOT / "tests" / "fixtures" / "lightning" / "lightning_logs" / "version_0")
    assert run.source in SINGLE_STEP_LOSS_SOURCES


def _resumed_lightning_run(root: Path, after_resume: Callable[[int], float]) -> Path:
    """A real Lightning run stopped at step 100 and resumed from its checkpoint to step 300:
    the CSVLogger writes the resumed part as a new version that counts on from step 100.
    The loss falls until the checkpoint and follows ``after_resume(step)`` after it; the LR
    warms up over 20 steps and decays linearly (LearningRateMonitor logs it)."""
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    def loss_at(k: int) -> float:
        return 4.0 * math.exp(-k / 30) + 1.5 if k < 100 else after_resume(k)

    def trainer(max_steps: int) -> object:
        return pl.Trainer(
            max_steps=max_steps,
            log_every_n_steps=10,
            accelerator="cpu",
            logger=pl.loggers.CSVLogger(str(root), name="lightning_logs"),
            callbacks=[pl.callbacks.LearningRateMonitor()],
            default_root_dir=str(root),
            enable_progress_bar=False,
            enable_model_summary=False,
        )

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(100, 1)))
    first = trainer(100)
    first.fit(_scripted_module(loss_at, 300), data)
    checkpoint = next((root / "lightning_logs" / "version_0").rglob("*.ckpt"))
    trainer(300).fit(_scripted_module(loss_at, 300), data, ckpt_path=str(checkpoint))
    return root / "lightning_logs"


def test_a_resumed_log_measures_no_stall_from_its_first_point(tmp_path: Path) -> None:
    """The log of a resumed run starts at its checkpoint's step, past its warmup, with a
    trained loss: a late plateau there is no stalled start. The first part is read as usual."""
    logs = _resumed_lightning_run(tmp_path, lambda k: 1.52 + 0.01 * math.sin(k))
    resumed = read_run(logs / "version_1")
    assert int(resumed.series("loss")[0][0]) >= 100
    d = diagnose(resumed, ended=True)
    assert d.verdict is Verdict.HEALTHY, d.summary
    assert any(f.evidence.get("problem") == "resumed" for f in d.findings)
    first = diagnose(read_run(logs / "version_0"), ended=True)
    assert not any(f.evidence.get("problem") == "resumed" for f in first.findings)


def test_instability_in_a_resumed_log_is_not_blamed_on_the_warmup(tmp_path: Path) -> None:
    """A climb right after the resume, with the LR already decaying, is not "right away with
    no warmup": the warmup ended before the log began."""
    logs = _resumed_lightning_run(tmp_path, lambda k: 1.6 if k < 130 else 3.5)
    d = diagnose(read_run(logs / "version_1"), ended=True)
    assert d.verdict is Verdict.LR_TOO_HIGH, d.summary
    assert "mid-training" in d.summary
    # The first logged LR is not the peak: the advice does not start from it.
    assert [a.parameter for a in d.advice] == [None]
    assert "not in this resumed log (the highest in this log is " in d.advice[0].text


def test_the_resumed_half_of_a_sample_run_read_alone() -> None:
    """The SwanLab folder that the resumed sample run wrote after its restart starts at step
    105, past the 30-step warmup: it says so, and the slow decline it measures from step 105
    (a trained loss) stays a note."""
    runs = sorted((ROOT / "sample_logs" / "healthy_resumed" / "swanlog").glob("run-*"))
    d = diagnose(read_run(runs[-1]), ended=True)
    assert d.verdict is Verdict.HEALTHY
    resumed = [f for f in d.findings if f.evidence.get("problem") == "resumed"]
    assert [f.step for f in resumed] == [105]
    assert all(f.severity is Severity.INFO for f in d.findings if f.kind == "slow_decline")
    first = diagnose(read_run(runs[0]))
    assert not any(f.evidence.get("problem") == "resumed" for f in first.findings)
