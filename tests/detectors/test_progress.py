"""Progress measures: hand-computed values and properties on any input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import (
    ProgressConfig,
    area_under,
    smooth,
    steps_to_target,
    tail_mean,
    value_at,
)


def test_steps_to_target_hand_computed() -> None:
    steps = [10, 20, 30, 40, 50]
    loss = [5.0, 4.0, 3.0, 2.0, 1.0]
    one = ProgressConfig(smooth_points=1)
    assert steps_to_target(steps, loss, 3.0, one) == 30
    assert steps_to_target(steps, loss, 0.5, one) is None
    assert steps_to_target(steps, loss, math.nan, one) is None
    # A trailing median of 3 points lags a falling curve by one point.
    assert steps_to_target(steps, loss, 3.0, ProgressConfig(smooth_points=3)) == 40


def test_one_lucky_point_does_not_reach_the_target() -> None:
    steps = np.arange(1, 8)
    loss = [5.0, 5.0, 1.0, 5.0, 5.0, 2.0, 2.0]
    assert steps_to_target(steps, loss, 2.0, ProgressConfig(smooth_points=3)) == 7


def test_tail_mean_area_and_value_at() -> None:
    steps = [0, 10, 20, 30, 40]
    loss = [4.0, 3.0, 2.0, 1.0, 1.0]
    assert tail_mean(steps, loss, share=0.25) == pytest.approx(1.0)
    assert tail_mean(steps, loss, share=0.5) == pytest.approx(4.0 / 3.0)
    # Trapezoids: (3.5 + 2.5 + 1.5 + 1.0) * 10 / 40.
    assert area_under(steps, loss) == pytest.approx(8.5 * 10 / 40)
    assert value_at(steps, loss, 15, ProgressConfig(smooth_points=1)) == pytest.approx(2.5)
    assert math.isnan(value_at(steps, loss, 99))


def test_short_and_empty_series() -> None:
    assert steps_to_target([], [], 1.0) is None
    assert math.isnan(tail_mean([], []))
    assert math.isnan(area_under([1], [2.0]))
    s, v = smooth([1, 2], [math.nan, math.inf])
    assert s.size == 0 and v.size == 0


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="smooth_points"):
        ProgressConfig(smooth_points=0)


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=150, deadline=None)
@given(st.lists(floats, min_size=0, max_size=60), floats)
def test_never_raises_and_answers_an_input_step(values: list[float], target: float) -> None:
    steps = np.arange(len(values)) * 3
    got = steps_to_target(steps, values, target)
    assert got is None or got in set(steps.tolist())
    s, sm = smooth(steps, values)
    assert s.shape == sm.shape
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        assert np.all(sm >= finite.min()) and np.all(sm <= finite.max())


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=0, max_size=40),
    st.integers(min_value=1, max_value=9),
)
def test_smooth_is_the_median_of_each_trailing_window(values: list[float], k: int) -> None:
    """Point i becomes the median of points max(0, i-k+1)..i, the first ones included."""
    steps = np.arange(len(values))
    _, sm = smooth(steps, values, ProgressConfig(smooth_points=k))
    expected = [float(np.median(values[max(0, i - k + 1) : i + 1])) for i in range(len(values))]
    np.testing.assert_allclose(sm, expected)
