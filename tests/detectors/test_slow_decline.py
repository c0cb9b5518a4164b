"""Slow decline: a flat start, and a loss falling more slowly during the warmup than after."""

from __future__ import annotations

import numpy as np
import pytest
from _synth import flat_then_fall, healthy

from detectors import SlowDeclineConfig, detect_slow_decline, flat_start


@pytest.mark.parametrize(
    ("flat_until", "expect_finding"),
    [(50, False), (300, True), (600, True)],
)
def test_flat_start_length_is_measured(flat_until: int, expect_finding: bool) -> None:
    """The flat start ends within a few logged points of the planted step."""
    syn = flat_then_fall(flat_until)
    fs = flat_start(syn.steps, syn.values)
    assert fs is not None and fs.moved
    assert flat_until <= fs.until <= flat_until + 60
    rules = [f.evidence["rule"] for f in detect_slow_decline(syn.steps, syn.values)]
    assert ("flat_start" in rules) is expect_finding


def test_loss_that_never_moves_is_flat_to_the_end() -> None:
    """A loss that never falls is flat until the last logged step (``moved`` False)."""
    steps = np.arange(1, 31) * 10
    values = 3.0 * np.exp(np.random.default_rng(0).normal(0, 0.005, 30))
    fs = flat_start(steps, values)
    assert fs is not None and not fs.moved and fs.until == 300


def test_noisy_dip_does_not_end_the_flat_start() -> None:
    """A dip that returns to the starting level within ``hold`` points is ignored."""
    values = [1.55, 1.60, 1.58, 1.54, 1.50, 1.48, 1.58, 1.60, 1.57, 1.59]
    values += np.linspace(1.3, 0.1, 20).tolist()
    steps = np.arange(1, len(values) + 1) * 10
    fs = flat_start(steps, np.asarray(values))
    assert fs is not None and fs.until >= 100


def test_slow_in_warmup_rate_comparison() -> None:
    """A loss flat during a 300-step warmup and falling after it is reported by the rate rule."""
    syn = flat_then_fall(300, n_steps=800)
    cfg = SlowDeclineConfig(warmup_end_step=300)
    got = [
        f
        for f in detect_slow_decline(syn.steps, syn.values, cfg)
        if f.evidence["rule"] == "slow_in_warmup"
    ]
    assert len(got) == 1 and got[0].end_step == 300


def test_healthy_curve_has_no_slow_decline() -> None:
    """A loss that falls from the first steps gives no finding, with or without warmup info."""
    syn = healthy(1000, tau=80)
    assert detect_slow_decline(syn.steps, syn.values) == []
    assert detect_slow_decline(syn.steps, syn.values, SlowDeclineConfig(warmup_end_step=100)) == []


def test_config_validation_message() -> None:
    """Invalid parameters raise ValueError naming the parameter, the range and the value."""
    with pytest.raises(ValueError) as err:
        SlowDeclineConfig(rate_ratio=1.0)
    assert str(err.value) == (
        "The 'rate_ratio' parameter of SlowDeclineConfig must be a float in the range (1, inf). "
        "Got 1.0 instead."
    )
