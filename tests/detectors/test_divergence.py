"""Divergence: a loss that climbs well above its best and stays there."""

from __future__ import annotations

import numpy as np
import pytest
from _synth import healthy, with_divergence

from detectors import DivergenceConfig, Severity, detect_divergence

# A smooth fall to 1.0, then a step up to 1.3 (x1.3) from step 100.
SMOOTH_BUMP = [3.0, 2.5, 2.0, 1.6, 1.3, 1.1, 1.0, 1.0, 1.0, 1.3, 1.3, 1.3, 1.3, 1.3]


@pytest.mark.parametrize(
    ("values", "config", "expected"),
    [
        # (losses logged at steps 10, 20, ...; config; [(step, severity)])
        ([1.0, 4.3, 8.8, 13.5, 15.7, 15.0, 18.8, 20.8], None, [(20, Severity.CRITICAL)]),
        ([3.0, 2.5, 2.0, 1.8, 1.7, 1.6, 1.55, 1.5], None, []),
        ([3.0, 2.0, 1.0, 1.0, 2.5, 2.6, 2.7, 2.8, 2.9], None, [(50, Severity.CRITICAL)]),
        (
            [3.0, 2.0, 1.0, 1.0, 2.5, 2.6, 2.7, 2.8, 2.9, 1.0, 0.9, 0.9, 0.9],
            None,
            [(50, Severity.WARNING)],
        ),
        (SMOOTH_BUMP, None, []),
        ([*SMOOTH_BUMP[:9], 1.7, 1.8, *[1.0] * 5], None, [(100, Severity.INFO)]),  # brief, x1.8
        ([*SMOOTH_BUMP[:9], 3.0, 3.2, *[1.0] * 5], None, [(100, Severity.WARNING)]),  # brief, x3.2
        (SMOOTH_BUMP, DivergenceConfig(ratio=1.2), [(100, Severity.CRITICAL)]),
        ([3.0, 2.0, 1.0], None, []),
    ],
)
def test_table(values: list[float], config: DivergenceConfig | None, expected: list) -> None:
    """Climbs of ``ratio`` above the running best that last ``patience`` points are found."""
    steps = np.arange(1, len(values) + 1) * 10
    got = detect_divergence(steps, np.asarray(values), config)
    assert [(f.step, f.severity) for f in got] == expected


@pytest.mark.parametrize("seed", range(5))
def test_planted_divergence_is_found_near_its_onset(seed: int) -> None:
    """An exponential blow-up from a known step is found within a few logged points of it."""
    syn = with_divergence(at_step=500, rate=0.01, seed=seed)
    got = [f for f in detect_divergence(syn.steps, syn.values) if f.severity is Severity.CRITICAL]
    assert got, "divergence not found"
    assert 500 <= got[0].step <= 500 + 10 * 8


@pytest.mark.parametrize("seed", range(5))
def test_healthy_noisy_losses_do_not_diverge(seed: int) -> None:
    """Falling losses with realistic noise (per-step and averaged) give no finding."""
    for every, noise in ((10, 0.05), (1, 0.15)):
        syn = healthy(2000, every=every, noise=noise, averaged=every > 1, seed=seed)
        assert detect_divergence(syn.steps, syn.values) == []


def test_loss_converging_to_zero_is_not_divergence() -> None:
    """Relative wobbles of a loss near 0 (0.0003 -> 0.0009) are below ``min_rise``."""
    steps = np.arange(1, 41) * 10
    values = np.concatenate([np.linspace(5.0, 0.0003, 20), np.tile([0.0003, 0.0009], 10)])
    assert detect_divergence(steps, values) == []


def test_above_start_rule_after_the_warmup() -> None:
    """With ``after_step``, a loss back above its starting level after it is reported."""
    steps = np.arange(1, 13) * 10
    values = np.array([2.0, 1.9, 1.8, 1.8, 1.9, 2.05, 2.1, 2.2, 2.2, 2.3, 2.3, 2.3])
    got = detect_divergence(steps, values, DivergenceConfig(ratio=3.0, after_step=50))
    assert [f.evidence["rule"] for f in got] == ["above_start"]
    assert got[0].step > 50


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"ratio": 1.0},
            "The 'ratio' parameter of DivergenceConfig must be a float in the range (1, inf). "
            "Got 1.0 instead.",
        ),
        (
            {"patience": 0},
            "The 'patience' parameter of DivergenceConfig must be an int in the range [1, inf). "
            "Got 0 instead.",
        ),
        (
            {"smooth": 5, "max_smooth": 3},
            "The 'max_smooth' parameter of DivergenceConfig must be an int in the range "
            "[5, inf). Got 3 instead.",
        ),
    ],
)
def test_config_validation_messages(kwargs: dict, message: str) -> None:
    """Invalid parameters raise ValueError naming the parameter, the range and the value."""
    with pytest.raises(ValueError) as err:
        DivergenceConfig(**kwargs)
    assert str(err.value) == message
