"""Thinning and smoothing of long series for the HTML plots."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from warmup_monitor.render._plots import MAX_DRAWN, smooth, thin


def test_thin_keeps_spikes_and_nan_stretches() -> None:
    """A 200k-point series drops to ~MAX_DRAWN points but keeps its spike and its NaN gap."""
    steps = np.arange(200_000)
    values = np.sin(steps / 1000.0)
    values[123_457] = 50.0
    values[150_000:160_000] = np.nan
    s, v = thin(steps, values)
    assert len(s) <= MAX_DRAWN + 10
    assert 123_457 in s and v[list(s).index(123_457)] == 50.0
    assert 150_000 in s and np.isnan(v[list(s).index(150_000)])
    assert np.all(np.diff(s) > 0)


def test_short_series_are_untouched() -> None:
    """A series below the limit is drawn as is."""
    steps = np.arange(10)
    values = np.linspace(1.0, 2.0, 10)
    s, v = thin(steps, values)
    assert s is steps and v is values


_VALUES = st.one_of(st.floats(-1e6, 1e6), st.just(np.nan), st.just(np.inf), st.just(-np.inf))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(0, 3000), elements=_VALUES))
def test_thin_and_smooth_never_raise(values: np.ndarray) -> None:
    """Any series (NaN, ±Inf, empty) thins to a subsequence; smoothing is NaN exactly where
    the input is not finite."""
    steps = np.arange(len(values))
    s, _ = thin(steps, values, limit=100)
    assert set(s.tolist()) <= set(steps.tolist())
    assert len(s) <= len(values)
    sm = smooth(values)
    assert len(sm) == len(values)
    np.testing.assert_array_equal(np.isnan(sm), ~np.isfinite(values))


def test_smooth_keeps_a_constant() -> None:
    """The debiased EMA of a constant is that constant from the first point on."""
    np.testing.assert_allclose(smooth(np.full(500, 3.0)), 3.0)


def test_report_overlay_draws_every_run_and_says_which_are_grey() -> None:
    """Twelve runs: the ten worst in colour, the other two in grey, and the caption says so."""
    from pathlib import Path

    from warmup_monitor.render._plots import MAX_COMPARED, comparison_figure
    from warmup_monitor.report import build_report

    sweep = Path(__file__).resolve().parents[1] / "fixtures" / "sweep"
    report = build_report([sweep])
    drawn = comparison_figure(report.worst_first())
    assert drawn is not None and MAX_COMPARED == 10
    svg, caption = drawn
    assert caption.startswith(
        "Smoothed loss and learning rate of all 12 runs: the 10 worst in colour, the other 2 in "
        "grey"
    )
    assert svg.count("<svg") == 1
