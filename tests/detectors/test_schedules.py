"""The LR schedule in one place: the HF Trainer's formulas (against transformers itself), the
comparison of a logged LR with the configured schedule, and the LR phase of a step."""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import ScheduleFit
from detectors.schedules import (
    SCHEDULE_KINDS,
    ScheduleKwargsError,
    compare_schedule,
    infer_lr_schedule,
    lr_at,
    lr_phase,
    lr_schedule,
    optimizer_warmup,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch = pytest.importorskip("torch")
torch.set_num_threads(1)


# ---------------------------------------------------------------------------------- HF formulas
_KIND_KWARGS: list[tuple[str, dict]] = [
    ("linear", {}),
    ("cosine", {}),
    ("cosine", {"num_cycles": 1.5}),
    ("cosine_with_restarts", {"num_cycles": 3}),
    ("polynomial", {"lr_end": 1e-6, "power": 2.0}),
    ("constant", {}),
    ("constant_with_warmup", {}),
    ("inverse_sqrt", {}),
    ("inverse_sqrt", {"timescale": 40}),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr", {"min_lr": 2e-5}),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.05}),
    ("warmup_stable_decay", {"num_decay_steps": 80}),
    (
        "warmup_stable_decay",
        {
            "num_decay_steps": 50,
            "warmup_type": "cosine",
            "decay_type": "1-sqrt",
            "min_lr_ratio": 0.1,
        },
    ),
    (
        "warmup_stable_decay",
        {
            "num_decay_steps": 120,
            "num_stable_steps": 100,
            "warmup_type": "1-sqrt",
            "decay_type": "linear",
        },
    ),
]


def _reference(kind: str, peak: float, warmup: int, total: int, kwargs: dict) -> np.ndarray:
    """LR after each scheduler step from transformers' own scheduler on a dummy optimizer."""
    from transformers import get_scheduler

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=peak)
    values = []
    with warnings.catch_warnings():
        # wsd warns when given both num_training_steps and num_stable_steps, as the Trainer does.
        warnings.simplefilter("ignore")
        scheduler = get_scheduler(
            kind,
            optimizer=optimizer,
            num_warmup_steps=warmup,
            num_training_steps=total,
            scheduler_specific_kwargs=dict(kwargs),
        )
        values.append(optimizer.param_groups[0]["lr"])
        for _ in range(total + 5):
            optimizer.step()
            scheduler.step()
            values.append(optimizer.param_groups[0]["lr"])
    return np.asarray(values)


@pytest.mark.parametrize(("kind", "kwargs"), _KIND_KWARGS)
@pytest.mark.parametrize(("warmup", "total"), [(30, 300), (0, 120), (47, 471)])
def test_schedule_matches_transformers(kind: str, kwargs: dict, warmup: int, total: int) -> None:
    """lr_schedule equals transformers.get_scheduler's LR at every step, past the end too."""
    peak = 2e-4
    reference = _reference(kind, peak, warmup, total, kwargs)
    ours = lr_schedule(kind, np.arange(len(reference)), peak, warmup, total, **kwargs)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    ("optimizer", "warmup"), [("AdamWScheduleFree", 7), ("SGDScheduleFree", 1)]
)
@pytest.mark.parametrize("kind", ["constant", "linear"])
def test_optimizer_warmup_matches_schedulefree(optimizer: str, warmup: int, kind: str) -> None:
    """The LR a schedule-free optimizer applies is the scheduler's LR logged at step ``s``
    times ``optimizer_warmup(s)``: what the Trainer's loop with the real optimizer does."""
    schedulefree = pytest.importorskip("schedulefree")
    transformers = pytest.importorskip("transformers")
    param = torch.nn.Parameter(torch.zeros(3))
    opt = getattr(schedulefree, optimizer)([param], lr=0.5, warmup_steps=warmup)
    opt.train()
    sched = transformers.get_scheduler(kind, opt, num_warmup_steps=warmup, num_training_steps=30)
    logged, applied = [], []
    for _ in range(20):
        param.grad = torch.ones(3)
        opt.step()
        applied.append(opt.param_groups[0]["scheduled_lr"])
        sched.step()
        logged.append(sched.get_last_lr()[0])  # what the Trainer logs at step s
    steps = np.arange(1, 21)
    # Update s + 1 applies the LR logged at step s.
    want = np.asarray(applied[1:])
    got = (np.asarray(logged) * optimizer_warmup(steps, warmup))[:-1]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=50), st.integers(-3, 500))
def test_optimizer_warmup_is_a_ramp_to_one(steps: list[int], warmup: int) -> None:
    """In (0, 1], never falling with the step, 1 from step ``warmup - 1`` on; none below 1."""
    s = np.sort(np.asarray(steps))
    f = optimizer_warmup(s, warmup)
    assert np.all((f > 0) & (f <= 1)) and np.all(np.diff(f) >= 0)
    assert np.all(f[s >= warmup - 1] == 1.0)


def test_every_schedule_kind_is_covered() -> None:
    """Each kind with a formula is compared with transformers above."""
    assert {kind for kind, _ in _KIND_KWARGS} == set(SCHEDULE_KINDS)


def test_schedule_rejects_unknown_kind_and_kwargs() -> None:
    """Unknown kinds and kwargs the Trainer would refuse are refused, saying what to change."""
    with pytest.raises(ScheduleKwargsError, match="Use one of"):
        lr_schedule("triangular", [0, 1], 1e-4, 1, 10)
    with pytest.raises(ScheduleKwargsError):
        lr_schedule("linear", [0, 1], 1e-4, 1, 10, num_cycles=2)
    with pytest.raises(ScheduleKwargsError):
        lr_schedule("cosine_with_min_lr", [0, 1], 1e-4, 1, 10)


@pytest.mark.parametrize(
    ("kind", "kwargs", "says"),
    [
        ("warmup_stable_decay", {"num_decay_steps": "40"}, "num_decay_steps='40' is not a finite"),
        ("warmup_stable_decay", {"num_decay_steps": True}, "num_decay_steps=True is not a finite"),
        ("polynomial", {"lr_end": float("nan")}, "lr_end=nan is not a finite"),
        ("cosine", {"num_cycles": 10**400}, "is not a finite number"),
        ("inverse_sqrt", {"timescale": 0}, "timescale 0 is not positive"),
    ],
)
def test_schedule_refuses_settings_the_trainer_fails_on(kind: str, kwargs: dict, says: str) -> None:
    """Scheduler arguments from other people's configs: a string, a boolean or a non-finite
    number where the formula needs a number is refused with the key named, never a crash."""
    with pytest.raises(ScheduleKwargsError, match=re.escape(says)):
        lr_schedule(kind, [0, 1, 2], 1e-4, 1, 10, **kwargs)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**400), 10**400)
    | st.floats()
    | st.sampled_from(["40", "x", "linear", "cosine", "1-sqrt", ""])
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(SCHEDULE_KINDS),
    st.dictionaries(
        st.sampled_from(sorted({k for _, kw in _KIND_KWARGS for k in kw} | {"timescale"})),
        _SCALARS,
        max_size=4,
    ),
)
def test_any_scheduler_arguments_are_compared_or_refused(kind: str, kwargs: dict) -> None:
    """Any mapping of scalars gives a schedule the log is compared with, or no comparison:
    never an exception and never a numpy warning."""
    steps = np.arange(5, 301, 5)
    lrs = lr_schedule("linear", steps, 1e-4, 30, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compare_schedule(
            steps, lrs, kind=kind, peak_lr=1e-4, warmup_steps=30, total_steps=300, kwargs=kwargs
        )
    assert got is None or isinstance(got.follows, bool)


@st.composite
def _schedules(draw: st.DrawFn) -> tuple[str, dict, float, int, int]:
    kind = draw(st.sampled_from(SCHEDULE_KINDS))
    total = draw(st.integers(1, 3000))
    warmup = draw(st.integers(0, total))
    peak = draw(st.floats(1e-7, 1e-2))
    kwargs: dict = {}
    if kind in ("cosine", "cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        kwargs["num_cycles"] = draw(st.sampled_from([0.5, 0.25, 1.0]))
    if kind == "cosine_with_restarts":
        kwargs["num_cycles"] = draw(st.integers(1, 5))
    if kind in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        kwargs["min_lr_rate"] = draw(st.floats(0.0, 0.9))
    if kind == "polynomial":
        kwargs["lr_end"] = peak * draw(st.floats(0.0, 0.9))
        kwargs["power"] = draw(st.floats(0.5, 3.0))
    if kind == "warmup_stable_decay":
        kwargs["num_decay_steps"] = draw(st.integers(0, total))
        kwargs["warmup_type"] = draw(st.sampled_from(["linear", "cosine", "1-sqrt"]))
        kwargs["decay_type"] = draw(st.sampled_from(["linear", "cosine", "1-sqrt"]))
        kwargs["min_lr_ratio"] = draw(st.floats(0.0, 0.5))
    return kind, kwargs, peak, warmup, total


@settings(max_examples=200, deadline=None)
@given(_schedules())
def test_schedule_bounded_and_warmup_monotone(case: tuple[str, dict, float, int, int]) -> None:
    """Every schedule stays within [0, peak] and never falls during the warmup."""
    kind, kwargs, peak, warmup, total = case
    steps = np.arange(0, total + 3)
    values = lr_schedule(kind, steps, peak, warmup, total, **kwargs)
    assert np.all(np.isfinite(values))
    assert values.min() >= 0.0
    assert values.max() <= peak * (1 + 1e-12)
    rising = values[:warmup]
    assert np.all(np.diff(rising) >= -peak * 1e-12)


# ---------------------------------------------------------------------------------- comparison
def _logged(kind: str, warmup: int, total: int, every: int = 5, peak: float = 2e-4) -> tuple:
    steps = np.arange(every, total + 1, every)
    return steps, lr_schedule(kind, steps, peak, warmup, total)


@pytest.mark.parametrize("offset", [0, 1])
def test_comparison_follows_the_configured_schedule(offset: int) -> None:
    """A log made by the configured schedule follows it, whichever step the LR is logged at."""
    steps, lrs = _logged("cosine", 48, 471)
    got = compare_schedule(
        steps + offset, lrs, kind="cosine", peak_lr=2e-4, warmup_steps=48, total_steps=471
    )
    assert got is not None and got.follows and got.offset == offset
    assert got.message.startswith("the logged LR follows cosine with 48 warmup steps")


def test_comparison_survives_rounded_logs() -> None:
    """LLaMA-Factory writes the LR with a few digits: still the configured schedule."""
    steps, lrs = _logged("linear", 30, 300)
    rounded = np.array([float(f"{x:.2e}") for x in lrs])
    got = compare_schedule(
        steps, rounded, kind="linear", peak_lr=2e-4, warmup_steps=30, total_steps=300
    )
    assert got is not None and got.follows


def test_comparison_names_an_ignored_warmup_ratio() -> None:
    """The config asks for 100 warmup steps through warmup_ratio, the log starts at its peak."""
    steps, lrs = _logged("cosine", 0, 1000, every=10)
    got = compare_schedule(
        steps,
        lrs,
        kind="cosine",
        peak_lr=2e-4,
        warmup_steps=100,
        total_steps=1000,
        warmup_setting="warmup_ratio",
    )
    assert got is not None and got.agreement == "warmup_missing"
    assert "100 warmup steps" in got.message and "the log shows none" in got.message
    assert "warmup_ratio ignored" in got.message


@pytest.mark.parametrize(
    ("logged", "config", "agreement"),
    [
        (("linear", 100, 300, 2e-4), ("linear", 30, 300, 2e-4), "warmup_differs"),
        (("linear", 30, 300, 4e-4), ("linear", 30, 300, 2e-4), "peak_differs"),
        (("constant_with_warmup", 30, 300, 2e-4), ("cosine", 30, 300, 2e-4), "shape_differs"),
    ],
)
def test_comparison_says_what_differs(logged: tuple, config: tuple, agreement: str) -> None:
    kind, warmup, total, peak = logged
    steps, lrs = _logged(kind, warmup, total, peak=peak)
    ckind, cwarm, ctotal, cpeak = config
    got = compare_schedule(
        steps, lrs, kind=ckind, peak_lr=cpeak, warmup_steps=cwarm, total_steps=ctotal
    )
    assert got is not None and got.agreement == agreement, got
    assert got.max_error > 0.05 and got.to_dict()["agreement"] == agreement


def test_comparison_needs_a_formula_and_points() -> None:
    steps, lrs = _logged("linear", 30, 300)
    assert (
        compare_schedule(
            steps, lrs, kind="reduce_lr_on_plateau", peak_lr=2e-4, warmup_steps=0, total_steps=300
        )
        is None
    )
    assert (
        compare_schedule(
            steps[:2], lrs[:2], kind="linear", peak_lr=2e-4, warmup_steps=30, total_steps=300
        )
        is None
    )


# ---------------------------------------------------------------------------------- LR phase
_STEPS = np.arange(0, 300)
_LRS = lr_schedule("linear", _STEPS, 1e-3, 100, 300)


@pytest.mark.parametrize(
    ("upto", "step", "phase"),
    [
        (50, 49, "warmup"),  # still climbing at the newest point: the peak is not known yet
        (300, 30, "warmup"),
        (300, 97, "peak"),  # within 5% of the peak
        (300, 100, "peak"),
        (300, 250, "decay"),
    ],
)
def test_lr_phase_from_the_fitted_schedule(upto: int, step: int, phase: str) -> None:
    fit = infer_lr_schedule(_STEPS[:upto], _LRS[:upto])
    lr = lr_at(_STEPS[:upto], _LRS[:upto], step)
    assert lr_phase(fit, step, lr) == phase


def test_lr_phase_constant_and_unknown() -> None:
    flat = infer_lr_schedule(_STEPS, np.full(300, 1e-4))
    assert lr_phase(flat, 10, 1e-4) == "constant"
    zero = infer_lr_schedule(_STEPS, np.zeros(300))
    assert lr_phase(zero, 10, 0.0) == "constant"
    plateau = ScheduleFit(0, 299, 100, "linear", 1e-3, 100, "constant", None, True, False, False)
    assert lr_phase(plateau, 200, 1e-3) == "constant"
    assert lr_phase(None, 10) is None
    assert lr_phase(None, 10, warmup_end=50) == "warmup"
    assert lr_phase(None, 60, warmup_end=50) == "peak"


def test_lr_at_follows_the_ramp_back_to_zero() -> None:
    assert lr_at([10, 20], [1e-4, 2e-4], 5) == pytest.approx(5e-5)
    assert lr_at([10, 20], [1e-4, 2e-4], 15) == pytest.approx(1.5e-4)
    assert lr_at([10], [float("nan")], 15) is None
