"""Non-finite detection, including what the HF Trainer hides in the logged loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _synth import with_nans
from hypothesis import given
from hypothesis import strategies as st

from detectors import (
    NonFiniteConfig,
    Severity,
    ZeroedLossConfig,
    detect_hidden_nan,
    detect_nonfinite,
    detect_zeroed_loss,
)

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("values", "metric", "expected"),
    [
        # (values at steps 10, 20, ...; metric; [(step, end_step, severity)])
        ([1.0, 0.9, 0.8, 0.7], "loss", []),
        ([1.0, NAN, 0.8, 0.7], "loss", [(20, 20, Severity.CRITICAL)]),
        ([1.0, 0.9, INF, -INF], "loss", [(30, 40, Severity.CRITICAL)]),
        ([1.0, NAN, *[0.8] * 20], "grad_norm", [(20, 20, Severity.WARNING)]),
        ([1.0, NAN, 0.8, 0.7, 0.6], "grad_norm", [(20, 20, Severity.WARNING)]),
        ([1.0, NAN, NAN, 0.7, 0.6], "grad_norm", [(20, 30, Severity.CRITICAL)]),
        ([1.0, 0.9, 0.8, 0.7, NAN], "grad_norm", [(50, 50, Severity.WARNING)]),
        ([1.0, 0.9, 0.8, NAN, NAN], "grad_norm", [(40, 50, Severity.CRITICAL)]),
        (
            [1.0, NAN, 0.8, NAN, 0.6, NAN, 0.5],
            "grad_norm",
            [(20, 20, Severity.CRITICAL), (40, 40, Severity.CRITICAL), (60, 60, Severity.CRITICAL)],
        ),
        ([1.0, NAN, 0.8], "eval_loss", [(20, 20, Severity.WARNING)]),
    ],
)
def test_table(values: list[float], metric: str, expected: list[tuple]) -> None:
    """Each stretch of non-finite points is one finding, graded by metric and persistence."""
    steps = np.arange(1, len(values) + 1) * 10
    got = detect_nonfinite(steps, np.asarray(values), metric=metric)
    assert [(f.step, f.end_step, f.severity) for f in got] == expected
    assert all(f.kind == "non_finite" and f.metric == metric for f in got)


def test_isolated_grad_norm_nan_in_a_long_run_is_a_warning() -> None:
    """One NaN grad norm among hundreds of logged points (an fp16 skip) is only a warning."""
    syn = with_nans((2000,), n_steps=3000, every=1)
    got = detect_nonfinite(syn.steps, syn.values, metric="grad_norm")
    assert [(f.step, f.severity) for f in got] == [(2000, Severity.WARNING)]
    assert "grad_norm is NaN at step 2000" in got[0].message


def test_nan_until_the_end_is_critical_and_names_the_last_finite_value() -> None:
    """A loss that turns NaN for good is critical; the message quotes the last finite value."""
    syn = with_nans((300,), until_end=True)
    (f,) = detect_nonfinite(syn.steps, syn.values)
    assert f.step == 300 and f.end_step == int(syn.steps[-1]) and f.severity is Severity.CRITICAL
    assert f.evidence["recovered"] is False and f.evidence["baseline"] is not None
    assert "still at the last logged point" in f.message


def test_max_value_treats_an_overflowing_loss_like_nan() -> None:
    """With ``max_value`` set, a finite loss above it is reported too."""
    steps = np.array([10, 20, 30])
    got = detect_nonfinite(steps, np.array([2.0, 5e3, 1.0]), NonFiniteConfig(max_value=1e3))
    assert [f.step for f in got] == [20]


def test_hidden_nan_loss_zero_with_nan_grad_norm() -> None:
    """A logged loss of 0.0 next to a NaN grad norm is a hidden NaN window (LLaMA-Factory)."""
    steps = np.array([10, 20, 30, 40, 50])
    loss = np.array([2.0, 1.8, 0.0, 0.0, 0.0])
    grad = np.array([1.0, 1.2, NAN, NAN, NAN])
    (f,) = detect_hidden_nan(steps, loss, steps, grad)
    assert (f.step, f.end_step, f.severity) == (30, 50, Severity.CRITICAL)
    assert f.evidence["hidden"] is True


def test_zero_loss_with_finite_grad_norm_is_not_hidden_nan() -> None:
    """A loss rounded to 0.0 with a finite grad norm is not evidence of NaN."""
    steps = np.array([10, 20, 30])
    assert detect_hidden_nan(steps, np.array([0.1, 0.0, 0.0]), steps, np.ones(3)) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"isolated_run": -1},
            "The 'isolated_run' parameter of NonFiniteConfig must be an int in the range "
            "[0, inf). Got -1 instead.",
        ),
        (
            {"isolated_share": 2.0},
            "The 'isolated_share' parameter of NonFiniteConfig must be a float in the range "
            "[0, 1]. Got 2.0 instead.",
        ),
    ],
)
def test_config_validation_messages(kwargs: dict, message: str) -> None:
    """Invalid parameters raise ValueError naming the parameter, the range and the value."""
    with pytest.raises(ValueError) as err:
        NonFiniteConfig(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # The trainer's hidden NaN without a grad norm: a real level, then exactly 0.0 for good.
        ([4.3, 3.1, 2.362, 0.0, 0.0, 0.0], [(30, 50)]),
        # Zeros that are followed by a real loss again still count once they last 2 points.
        ([4.3, 3.1, 0.0, 0.0, 2.9, 2.8], [(20, 30)]),
        # A single zero inside the run is a glitch, not a hidden NaN window.
        ([4.3, 3.1, 0.0, 2.9, 2.8, 2.7], []),
        # A converged loss rounded to 0.0 falls gradually: 0.0004 before the zeros.
        ([0.5, 0.01, 0.002, 0.0004, 0.0, 0.0], []),
        # Zeros from the very first point say nothing about a drop.
        ([0.0, 0.0, 0.0], []),
    ],
)
def test_zeroed_loss_table(values: list[float], expected: list[tuple[int, int]]) -> None:
    """A loss jumping from a real level to exactly 0.0 and staying there is a warning."""
    steps = np.arange(len(values)) * 10
    found = detect_zeroed_loss(steps, values)
    assert [(f.step, f.end_step) for f in found] == expected
    assert all(f.severity is Severity.WARNING and f.kind == "non_finite" for f in found)


def test_zeroed_loss_config_validation() -> None:
    """ZeroedLossConfig names the parameter, the allowed range and the value it got."""
    with pytest.raises(ValueError, match="'min_points' parameter of ZeroedLossConfig"):
        ZeroedLossConfig(min_points=0)


@given(st.lists(st.sampled_from([0.0, 0.01, 1.0, 3.5, math.nan, math.inf]), max_size=40))
def test_zeroed_loss_never_raises_and_reports_input_steps(values: list[float]) -> None:
    """Any series: no exception, steps taken from the input and sorted."""
    steps = np.arange(len(values)) * 5 + 1
    found = detect_zeroed_loss(steps, values)
    assert [f.step for f in found] == sorted(f.step for f in found)
    assert all(f.step in set(steps.tolist()) for f in found)
