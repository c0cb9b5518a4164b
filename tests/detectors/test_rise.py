"""Sustained rise: a loss that climbs above its best and never comes back."""

from __future__ import annotations

import numpy as np
import pytest
from _synth import healthy
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import RiseConfig, Severity, detect_sustained_rise


def _fall_then(after: np.ndarray, *, start: float = 4.0, best: float = 2.4, seed: int = 0):
    """30 points falling from ``start`` to ``best``, then ``after``; 1% noise."""
    rng = np.random.default_rng(seed)
    fall = best + (start - best) * np.exp(-np.arange(30) / 5.0)
    v = np.concatenate([fall, after]) * np.exp(rng.normal(0, 0.01, 30 + after.size))
    return np.arange(1, v.size + 1) * 10, v


def test_a_slow_rise_that_never_comes_back_is_found() -> None:
    """From its best 2.40 to 3.17 (+32%) and held: below divergence's x1.5, but what the run
    learned since is lost."""
    steps, v = _fall_then(np.linspace(2.4, 3.17, 70))
    (f,) = detect_sustained_rise(steps, v)
    assert f.severity is Severity.CRITICAL and f.kind == "sustained_rise"
    assert 1.25 <= f.evidence["ratio"] <= 1.4


def test_a_rise_that_comes_back_is_not_sustained() -> None:
    steps, v = _fall_then(np.concatenate([np.linspace(2.4, 3.2, 30), np.full(40, 2.3)]))
    assert detect_sustained_rise(steps, v) == []


def test_a_tiny_wobble_of_a_loss_near_zero_is_not_a_rise() -> None:
    """A classifier's loss at 0.0115 drifting to 0.019 is +66%, but 1% of where it started
    (0.7): not a tenth of the starting level, so not a rise. Without that floor it would be."""
    steps, v = _fall_then(np.linspace(0.0115, 0.019, 70), start=0.7, best=0.0115)
    assert detect_sustained_rise(steps, v) == []
    assert detect_sustained_rise(steps, v, RiseConfig(min_share_of_start=0.0)) != []


@pytest.mark.parametrize("seed", range(3))
def test_healthy_curve_has_no_rise(seed: int) -> None:
    syn = healthy(1000, seed=seed)
    assert detect_sustained_rise(syn.steps, syn.values) == []


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=12, max_size=80), st.floats(0.0, 0.5))
def test_the_start_floor_only_ever_withholds(values: list[float], share: float) -> None:
    """A floor on the rise's size against the start never adds a finding."""
    steps = np.arange(1, len(values) + 1)
    y = np.asarray(values)
    without = detect_sustained_rise(steps, y, RiseConfig(min_share_of_start=0.0))
    with_floor = detect_sustained_rise(steps, y, RiseConfig(min_share_of_start=share))
    assert with_floor in ([], without)


def test_config_validation_message() -> None:
    with pytest.raises(ValueError, match="min_share_of_start"):
        RiseConfig(min_share_of_start=-0.1)
