"""Shared detector helpers: input cleaning, robust statistics, parameter validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors._common import (
    as_series,
    check_float,
    check_int,
    finite_series,
    fmt_ratio,
    median_spacing,
    robust_noise,
    to_scale,
    trailing_median,
    true_runs,
)


def test_as_series_sorts_and_keeps_the_last_write_of_a_step() -> None:
    """Unsorted steps are sorted; a step written twice keeps the later value."""
    s, v = as_series([30, 10, 20, 20], [3.0, 1.0, 2.0, 2.5])
    assert s.tolist() == [10, 20, 30] and v.tolist() == [1.0, 2.5, 3.0]


def test_finite_series_cleans_like_as_series_then_drops_non_finite_values() -> None:
    """NaN/Inf values go after the last write of a step wins: a NaN rewrite drops the step."""
    s, v = finite_series([30, 10, 20, 20, 40], [3.0, math.nan, 2.0, math.inf, -math.inf])
    assert s.tolist() == [30] and v.tolist() == [3.0]
    assert s.dtype == np.int64 and v.dtype == np.float64


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (1.5, "1.50"),
        (99.994, "99.99"),
        (122.36, "122"),
        (1042.06, "1042"),
        (3.3398e5, "3.34e+05"),
        (math.inf, "inf"),
    ],
)
def test_fmt_ratio_keeps_a_blow_up_readable(ratio: float, text: str) -> None:
    """Two decimals for the ratios thresholds are set in; no 14-digit ratio after a blow-up."""
    assert fmt_ratio(ratio) == text


@pytest.mark.parametrize(
    ("steps", "spacing"),
    [([], 1.0), ([7], 1.0), ([10, 20, 30, 50], 10.0), ([0, 5, 5, 10], 5.0), ([3, 3], 1.0)],
)
def test_median_spacing_is_the_typical_gap_between_logged_steps(
    steps: list[int], spacing: float
) -> None:
    """The median of the positive gaps; 1.0 when there is no gap to measure."""
    assert median_spacing(np.asarray(steps, dtype=np.int64)) == spacing


@pytest.mark.parametrize(
    ("mask", "runs"),
    [
        ([], []),
        ([False, False], []),
        ([True], [(0, 0)]),
        ([True, True, False, True], [(0, 1), (3, 3)]),
        ([False, True, True, True, False, False, True, True], [(1, 3), (6, 7)]),
    ],
)
def test_true_runs_are_the_inclusive_bounds_of_each_true_stretch(
    mask: list[bool], runs: list[tuple[int, int]]
) -> None:
    """Each stretch of consecutive True values gives its first and last index."""
    assert true_runs(np.asarray(mask, dtype=bool)) == runs


@pytest.mark.parametrize("window", [1, 2, 3, 5, 8, 25, 60])
def test_trailing_median_matches_the_definition(window: int) -> None:
    """Each point is the median of the (odd) trailing window, partial at the start."""
    x = np.random.default_rng(0).normal(size=50)
    w = window | 1
    expected = [np.median(x[max(0, i - w + 1) : i + 1]) for i in range(50)]
    assert trailing_median(x, window) == pytest.approx(expected)


def test_robust_noise_ignores_the_trend() -> None:
    """A steep smooth trend plus noise of sigma 0.1 gives a noise estimate near 0.1."""
    rng = np.random.default_rng(1)
    x = np.linspace(10, 0, 2000) ** 1.5 / 10 + rng.normal(0, 0.1, 2000)
    assert robust_noise(x) == pytest.approx(0.1, rel=0.15)
    assert math.isnan(robust_noise(np.array([1.0, 2.0])))


def test_to_scale_lifts_a_few_rounded_zeros() -> None:
    """A positive loss with a rare logged 0.0 stays on the log scale; mostly-zero does not."""
    x = np.linspace(2.0, 0.001, 40)
    x[30] = 0.0
    y, logged = to_scale(x)
    assert logged and np.isfinite(y).all()
    _, logged = to_scale(np.array([1.0, 0.0, 0.0, 0.0]))
    assert not logged
    _, logged = to_scale(np.array([1.0, -0.5]))
    assert not logged


def test_validation_messages() -> None:
    """Messages name the owner, the parameter, the range and the offending value."""
    with pytest.raises(ValueError) as err:
        check_int("SpikeConfig", "window", 1, 3)
    assert str(err.value) == (
        "The 'window' parameter of SpikeConfig must be an int in the range [3, inf). Got 1 instead."
    )
    with pytest.raises(ValueError, match=r"range \(0, 1\]\. Got nan instead"):
        check_float("X", "share", math.nan, 0.0, 1.0, low_open=True)
    with pytest.raises(ValueError, match="must be an int"):
        check_int("X", "n", True, 0)
