"""LR schedule inference: warmup length and shape, peak, decay kind and the implied run length."""

from __future__ import annotations

import numpy as np
import pytest
from _synth import lr_trace
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import ScheduleConfig, detect_schedule, infer_lr_schedule


@pytest.mark.parametrize(
    ("warmup", "total", "decay", "every"),
    [
        (100, 1000, "linear", 10),
        (100, 1000, "cosine", 10),
        (38, 372, "cosine", 10),
        (500, 6510, "linear", 10),
        (50, 2115, "linear", 1),
        (675, 6750, "cosine", 10),
        (1000, 100_000, "linear", 50),
    ],
)
def test_warmup_peak_decay_and_total_are_recovered(
    warmup: int, total: int, decay: str, every: int
) -> None:
    """A full HF-style trace gives back its warmup, peak, decay kind and total steps."""
    syn = lr_trace(peak=2e-4, warmup=warmup, total=total, decay=decay, every=every)
    fit = infer_lr_schedule(syn.steps, syn.values)
    assert fit is not None
    assert fit.warmup_shape == "linear"
    assert abs(fit.warmup_steps - warmup) <= every
    assert fit.peak_lr == pytest.approx(2e-4, rel=0.02)
    assert fit.decay == decay
    assert fit.reached_peak and not fit.lr_never_moves and not fit.warmup_longer_than_run
    assert fit.total_steps is not None and abs(fit.total_steps - total) <= max(every, 0.01 * total)
    assert fit.warmup_fraction == pytest.approx(warmup / total, abs=every / total + 0.002)


def test_constant_with_warmup_has_constant_decay_and_no_total() -> None:
    """Warmup then a flat LR: decay ``constant`` and no implied run length."""
    syn = lr_trace(peak=3e-6, warmup=1000, total=20_000, decay="constant", every=50)
    fit = infer_lr_schedule(syn.steps, syn.values)
    assert fit is not None
    assert fit.decay == "constant" and fit.total_steps is None
    assert fit.warmup_steps == 1000


def test_warmup_stable_decay_schedule() -> None:
    """Warmup, a stable phase at the peak, then a linear decay: the decay origin is found."""
    steps = np.arange(10, 1001, 10)
    lr = np.where(
        steps < 100, 1e-4 * steps / 100, np.where(steps < 600, 1e-4, 1e-4 * (1000 - steps) / 400)
    )
    fit = infer_lr_schedule(steps, lr)
    assert fit is not None
    assert (fit.warmup_steps, fit.decay, fit.total_steps) == (100, "linear", 1000)
    assert any("stays at its peak until step 600" in n for n in fit.notes)
    assert fit.decay_start == 600


@pytest.mark.parametrize("decay_type", ["cosine", "linear"])
def test_the_trainers_warmup_stable_decay_has_a_decay_start(decay_type: str) -> None:
    """The Trainer's warmup_stable_decay (its default half-cosine decay, or a linear one) logged
    every 10 steps: the decay kind and where it starts; a plain cosine has no decay start."""
    from detectors.schedules import lr_schedule

    steps = np.arange(10, 1001, 10)
    kwargs = {"num_decay_steps": 200, "decay_type": decay_type}
    lr = lr_schedule("warmup_stable_decay", steps, 3e-4, 100, 1000, **kwargs)
    fit = infer_lr_schedule(steps, lr)
    assert fit is not None
    assert (fit.warmup_steps, fit.decay) == (100, decay_type)
    # Within a logging interval: a cosine leaves the peak so slowly that its first logged
    # point after the stable phase is still within the peak's tolerance.
    assert fit.decay_start is not None and 800 <= fit.decay_start <= 810
    assert fit.total_steps is not None and abs(fit.total_steps - 1000) <= 10
    plain = infer_lr_schedule(steps, lr_schedule("cosine", steps, 3e-4, 100, 1000))
    assert plain is not None and plain.decay == "cosine" and plain.decay_start is None


def test_lr_that_never_moves_is_flagged() -> None:
    """A constant LR from the first log: ``lr_never_moves``, no warmup, decay constant."""
    steps = np.arange(10, 101, 10)
    fit = infer_lr_schedule(steps, np.full(steps.size, 5e-3))
    assert fit is not None
    assert fit.lr_never_moves and fit.warmup_steps == 0 and fit.decay == "constant"
    findings = detect_schedule(steps, np.full(steps.size, 5e-3))
    assert [f.evidence["problem"] for f in findings] == ["lr_never_moves"]


def test_still_rising_trace_did_not_reach_its_peak() -> None:
    """A trace that ends while the LR climbs: not reached, warmup unknown (at least the run)."""
    syn = lr_trace(peak=5e-5, warmup=500, total=520, every=10, until=420)
    fit = infer_lr_schedule(syn.steps, syn.values)
    assert fit is not None
    assert not fit.reached_peak and fit.warmup_longer_than_run
    assert fit.warmup_steps is None and fit.peak_step == 420
    assert any("still rising" in n for n in fit.notes)
    findings = detect_schedule(syn.steps, syn.values)
    assert [f.evidence["problem"] for f in findings] == ["still_rising"]


def test_rounded_lr_of_llamafactory_logs_is_tolerated() -> None:
    """LR rounded to 7 decimals (older LLaMA-Factory) still gives the warmup and decay."""
    syn = lr_trace(peak=1e-4, warmup=40, total=400, decay="cosine", every=10, digits=7)
    fit = infer_lr_schedule(syn.steps, syn.values)
    assert fit is not None
    assert abs(fit.warmup_steps - 40) <= 10 and fit.decay == "cosine"


def test_resumed_trace_keeps_the_last_write_of_each_step() -> None:
    """Steps written twice (a resume) use the later value and still fit the schedule."""
    syn = lr_trace(peak=1e-4, warmup=100, total=1000, every=10)
    first = syn.values[:40].copy()
    first[30:] *= 3.0  # what the crashed attempt logged for logs 30-39
    # The run crashed after log 39 and resumed from log 30: logs 30-39 are written again.
    steps = np.concatenate([syn.steps[:40], syn.steps[30:]])
    values = np.concatenate([first, syn.values[30:]])
    fit = infer_lr_schedule(steps, values)
    assert fit is not None
    assert fit.decay == "linear" and abs(fit.total_steps - 1000) <= 10


def test_long_warmup_is_reported() -> None:
    """A warmup of 50% of the run is reported as a long warmup."""
    syn = lr_trace(peak=5e-5, warmup=500, total=1000, every=10)
    findings = detect_schedule(syn.steps, syn.values)
    assert len(findings) == 1
    f = findings[0]
    assert f.evidence["problem"] == "long_warmup" and f.evidence["value"] == pytest.approx(
        0.5, 0.03
    )


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_short_traces_give_no_fit(n: int) -> None:
    """Fewer than three finite points give ``None`` and no findings."""
    assert infer_lr_schedule(np.arange(n), np.full(n, 1e-4)) is None
    assert detect_schedule(np.arange(n), np.full(n, 1e-4)) == []


def test_real_hf_schedulers_are_recognised() -> None:
    """LR traces produced by transformers' own schedulers are fitted correctly."""
    torch = pytest.importorskip("torch")
    optimization = pytest.importorskip("transformers.optimization")
    torch.set_num_threads(1)
    cases = [
        (optimization.get_linear_schedule_with_warmup, "linear", 60, 600),
        (optimization.get_cosine_schedule_with_warmup, "cosine", 50, 500),
        (optimization.get_constant_schedule_with_warmup, "constant", 30, 300),
    ]
    for make, decay, warmup, total in cases:
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([param], lr=2e-4)
        args = (opt, warmup) if decay == "constant" else (opt, warmup, total)
        sched = make(*args)
        lrs = []
        for _ in range(total):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        steps = np.arange(1, total + 1)[4::5]  # HF logs the LR after each logging step
        fit = infer_lr_schedule(steps, np.asarray(lrs)[4::5])
        assert fit is not None, decay
        assert fit.decay == decay, decay
        assert abs(fit.warmup_steps - warmup) <= 5, decay
        if decay != "constant":
            assert abs(fit.total_steps - total) <= 5, decay


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"peak_tolerance": 0.9},
            "The 'peak_tolerance' parameter of ScheduleConfig must be a float in the range "
            "[0, 0.5]. Got 0.9 instead.",
        ),
        (
            {"min_points": 1},
            "The 'min_points' parameter of ScheduleConfig must be an int in the range [2, inf). "
            "Got 1 instead.",
        ),
    ],
)
def test_config_validation_messages(kwargs: dict, message: str) -> None:
    """Invalid parameters raise ValueError naming the parameter, the range and the value."""
    with pytest.raises(ValueError) as err:
        ScheduleConfig(**kwargs)
    assert str(err.value) == message


def test_ramp_logged_every_step_is_still_rising_at_the_end() -> None:
    """A warmup of 300 steps logged every step for 200 steps: its last points lie within the
    peak tolerance of each other, but the LR is still climbing, so it never reached a peak."""
    steps = np.arange(1, 201)
    lr = 0.02 * steps / 300.0
    fit = infer_lr_schedule(steps, lr)
    assert fit is not None and not fit.reached_peak
    assert fit.warmup_steps is None


def test_a_decay_that_starts_at_the_peak_has_no_stable_phase() -> None:
    """A linear decay over 1,450 steps stays within the peak's 1% for a logging interval or
    two: that is no stable phase (the decay from the warmup's end fits as well)."""
    from detectors.schedules import lr_schedule

    steps = np.arange(10, 1561, 10)
    for kind in ("linear", "cosine"):
        fit = infer_lr_schedule(steps, lr_schedule(kind, steps, 3e-4, 110, 1560))
        assert fit is not None and fit.decay == kind
        assert fit.decay_start is None and fit.decay_floor is None
        assert not [n for n in fit.notes if "stays at its peak" in n]


@pytest.mark.parametrize(
    ("kind", "upto"),
    [("cosine_with_min_lr", 1000), ("warmup_stable_decay", 1200)],
)
def test_a_decay_to_a_floor_gives_the_floor_and_the_run_length(kind: str, upto: int) -> None:
    """Down to 10% of the peak: a cosine that ends at its floor, and a linear
    decay that stays at its floor (until then it cannot be told from a longer decay to 0).
    The floor, and the run length where it is reached, not where a decay to 0 would end;
    logged well past that end (200 steps at the floor), the run was planned longer, so no run
    length is implied. A decay cut short before it levels off gives no floor."""
    from detectors.schedules import lr_schedule

    steps = np.arange(10, upto + 1, 10)
    kwargs = (
        {"min_lr_rate": 0.1}
        if kind == "cosine_with_min_lr"
        else {"num_decay_steps": 900, "decay_type": "linear", "min_lr_ratio": 0.1}
    )
    fit = infer_lr_schedule(steps, lr_schedule(kind, steps, 6e-4, 100, 1000, **kwargs))
    assert fit is not None
    assert fit.decay == ("cosine" if kind == "cosine_with_min_lr" else "linear")
    assert fit.decay_floor == pytest.approx(0.1, abs=0.005)
    if upto <= 1000:
        assert fit.total_steps is not None and abs(fit.total_steps - 1000) <= 10
    else:
        assert fit.total_steps is None
        assert any("no run length is implied" in n for n in fit.notes)
    cut = steps <= 600
    short = infer_lr_schedule(steps[cut], lr_schedule(kind, steps[cut], 6e-4, 100, 1000, **kwargs))
    assert short is not None and short.decay_floor is None


def test_a_decay_barely_begun_shows_no_floor() -> None:
    """A linear decay logged every 5 steps, 5% down from the peak: too little to show a floor
    (a cosine levelling off at 95% fits its few points as well), and its run length is rough."""
    from detectors.schedules import lr_schedule

    steps = np.arange(5, 46, 5)
    fit = infer_lr_schedule(steps, lr_schedule("linear", steps, 3e-2, 12, 600))
    assert fit is not None and fit.decay_floor is None
    assert any("rough extrapolation" in n for n in fit.notes)


@settings(max_examples=60, deadline=None)
@given(
    offset=st.sampled_from([0, 5_000, 123_456]),
    every=st.sampled_from([1, 5, 10, 50]),
    ramp_logs=st.integers(min_value=1, max_value=12),
)
def test_a_warmup_is_measured_from_where_it_starts(offset: int, every: int, ramp_logs: int) -> None:
    """A linear warmup from LR 0 at step ``offset`` (a log that starts mid-training, or none),
    logged every ``every`` steps with 1 to 12 points below the peak, is as long as it is
    whatever step it starts at: a ramp seen in one logged point too."""
    warmup = every * (ramp_logs + 1)
    total = 20 * warmup
    steps = np.arange(offset + every, offset + total + 1, every)
    rel = (steps - offset).astype(float)
    lr = np.where(rel < warmup, 1e-3 * rel / warmup, 1e-3 * (total - rel) / (total - warmup))
    fit = infer_lr_schedule(steps, lr)
    assert fit is not None and fit.warmup_shape == "linear"
    assert abs(fit.warmup_steps - warmup) <= every


@settings(max_examples=80, deadline=None)
@given(
    cycles=st.integers(min_value=2, max_value=6),
    every=st.sampled_from([1, 5, 10, 20]),
    warmup_share=st.sampled_from([0.0, 0.02, 0.1]),
)
def test_a_cosine_with_restarts_is_warmed_up_once(
    cycles: int, every: int, warmup_share: float
) -> None:
    """A cosine with hard restarts climbs back to its peak at each cycle. The first logged
    point can lie further below the peak than a later cycle's top: the warmup is still the rise
    before the LR first falls, not the climb to that later top."""
    from detectors.schedules import lr_schedule

    total = 400
    warmup = round(warmup_share * total)
    steps = np.arange(every, total + 1, every)
    lr = lr_schedule("cosine_with_restarts", steps, 5e-2, warmup, total, num_cycles=cycles)
    fit = infer_lr_schedule(steps, lr)
    assert fit is not None and fit.reached_peak
    assert fit.warmup_steps is not None and fit.warmup_steps <= warmup + every
    assert fit.peak_step <= warmup + every
