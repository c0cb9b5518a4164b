"""Spikes: robust z-score of the log value against a trailing window, cadence-aware."""

from __future__ import annotations

import numpy as np
import pytest
from _synth import healthy, with_spike

from detectors import Severity, SpikeConfig, detect_spikes


def _flat(n: int, bumps: dict[int, float], base: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = base * np.exp(rng.normal(0, 0.02, n))
    for i, f in bumps.items():
        v[i] *= f
    return v


@pytest.mark.parametrize(
    ("values", "config", "expected"),
    [
        # (per-step values at steps 1, 2, ...; config; [(step, severity)])
        (_flat(60, {}), None, []),
        (_flat(60, {30: 5.0}), None, [(31, Severity.INFO)]),
        (_flat(60, {30: 1.5}), None, []),
        (_flat(60, {30: 1.5}), SpikeConfig(min_ratio=1.3), [(31, Severity.INFO)]),
        (_flat(60, {i: 5.0 for i in range(57, 60)}), None, [(58, Severity.WARNING)]),
        (_flat(60, {i: 5.0 for i in range(40, 60)}), None, [(41, Severity.CRITICAL)]),
        # Back, but only 8 points after the flagged stretch: a warning, not "did not come back".
        (_flat(60, {i: 5.0 for i in range(30, 42)}), None, [(31, Severity.WARNING)]),
        (_flat(60, {3: 9.0}), None, []),  # before min_history points
    ],
)
def test_table(values: np.ndarray, config: SpikeConfig | None, expected: list) -> None:
    """Spikes are found at their step; recovery decides the severity."""
    steps = np.arange(1, values.size + 1)
    got = detect_spikes(steps, values, config)
    assert [(f.step, f.severity) for f in got] == expected


def test_a_spike_that_comes_back_late_says_when() -> None:
    """A raised stretch that comes back after the recovery window names where it came back."""
    (f,) = detect_spikes(np.arange(1, 61), _flat(60, {i: 5.0 for i in range(30, 42)}))
    assert f.evidence["recovered"] is True and f.evidence["recovered_after"] == 8
    assert "came back after 8 logged points (at step 43)" in f.message


def test_a_spike_at_the_end_of_a_complete_series_did_not_come_back() -> None:
    """In the last points a spike is too recent to tell, unless no point will follow."""
    values = _flat(60, {58: 5.0, 59: 5.0})
    (live,) = detect_spikes(np.arange(1, 61), values)
    assert live.severity is Severity.WARNING and live.evidence["recovered"] is None
    assert live.message.endswith("too recent to tell")
    (over,) = detect_spikes(np.arange(1, 61), values, SpikeConfig(complete=True))
    assert over.severity is Severity.CRITICAL and over.evidence["recovered"] is False
    assert over.message.endswith("the run ended before it came back")


def test_a_complete_series_ending_on_one_high_point_is_not_sure_of_it() -> None:
    """One high value as the very last point of a falling loss is as likely a blip as a
    blow-up: even once the run is over it stays a warning. Two high points at the end, or one
    back above where the loss started, are critical."""
    steps = np.arange(1, 61)
    falling = np.linspace(8.0, 2.0, 60) * np.exp(np.random.default_rng(0).normal(0, 0.02, 60))
    blip = falling.copy()
    blip[59] *= 3.0  # 6, below the start at 8
    (one,) = detect_spikes(steps, blip, SpikeConfig(complete=True))
    assert one.severity is Severity.WARNING and one.evidence["recovered"] is None
    two = falling.copy()
    two[58:] *= 3.0
    (both,) = detect_spikes(steps, two, SpikeConfig(complete=True))
    assert both.severity is Severity.CRITICAL
    gone = falling.copy()
    gone[59] = 20.0  # above the start: all it learned is lost
    (lost,) = detect_spikes(steps, gone, SpikeConfig(complete=True))
    assert lost.severity is Severity.CRITICAL


@pytest.mark.parametrize("seed", range(5))
def test_planted_spike_is_found_at_its_step(seed: int) -> None:
    """A one-step x6 spike in a per-step loss is found exactly, and graded transient."""
    syn = with_spike(at_step=600, factor=6.0, seed=seed)
    got = detect_spikes(syn.steps, syn.values)
    assert [f.step for f in got] == [600]
    assert got[0].severity is Severity.INFO and got[0].evidence["recovered"] is True


def test_averaged_loss_uses_a_smaller_jump_threshold() -> None:
    """A x6 one-step spike averaged over 10 steps (x1.5 logged) is still found."""
    syn = with_spike(at_step=605, factor=6.0, every=10, seed=3, noise=0.02)
    got = detect_spikes(syn.steps, syn.values)
    assert [f.step for f in got] == [610]
    assert got[0].evidence["averaged_over"] == 10
    # Read as per-step values, the same x1.5 bump is below the x2 jump rule.
    assert detect_spikes(syn.steps, syn.values, SpikeConfig(averaged_over=1)) == []


@pytest.mark.parametrize("seed", range(5))
def test_healthy_curves_have_no_spikes(seed: int) -> None:
    """Noisy but healthy losses (per-step and averaged) give no spike."""
    for every, noise in ((1, 0.1), (10, 0.05)):
        syn = healthy(2000, every=every, noise=noise, averaged=every > 1, seed=seed)
        assert detect_spikes(syn.steps, syn.values) == []


@pytest.mark.parametrize("scale", [1e-3, 0.5, 7.0, 1e4])
def test_findings_do_not_change_when_the_loss_is_scaled(scale: float) -> None:
    """Scaling the loss by a positive constant leaves steps, severities and z unchanged."""
    syn = with_spike(at_step=400, factor=4.0, seed=7)
    ref = detect_spikes(syn.steps, syn.values)
    got = detect_spikes(syn.steps, syn.values * scale)
    assert [(f.step, f.end_step, f.severity) for f in got] == [
        (f.step, f.end_step, f.severity) for f in ref
    ]
    assert [f.evidence["z"] for f in got] == pytest.approx([f.evidence["z"] for f in ref])


def test_grad_norm_is_not_treated_as_averaged() -> None:
    """A grad norm is the last step's value: no averaging adjustment even at a 10-step cadence."""
    steps = np.arange(1, 61) * 10
    got = detect_spikes(steps, _flat(60, {30: 3.0}), metric="grad_norm")
    assert [f.step for f in got] == [310]
    assert got[0].evidence["averaged_over"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"window": 1},
            "The 'window' parameter of SpikeConfig must be an int in the range [3, inf). "
            "Got 1 instead.",
        ),
        (
            {"z": 0},
            "The 'z' parameter of SpikeConfig must be a float in the range (0, inf). "
            "Got 0 instead.",
        ),
        (
            {"averaged_over": 0},
            "The 'averaged_over' parameter of SpikeConfig must be an int in the range [1, inf). "
            "Got 0 instead.",
        ),
    ],
)
def test_config_validation_messages(kwargs: dict, message: str) -> None:
    """Invalid parameters raise ValueError naming the parameter, the range and the value."""
    with pytest.raises(ValueError) as err:
        SpikeConfig(**kwargs)
    assert str(err.value) == message


def test_flat_history_gives_a_finite_z_score() -> None:
    """A jump after a perfectly flat history is judged against the noise floor, not infinity."""
    values = np.r_[np.ones(20), 2.0, np.ones(5)]
    steps = np.arange(values.size) * 10
    (finding,) = detect_spikes(steps, values, metric="grad_norm")
    assert finding.step == 200
    z = finding.evidence["z"]
    assert z is not None and np.isfinite(z)
    assert z == pytest.approx(np.log(2.0) / 0.01)
    # A jump below the floor-scaled threshold is no spike at all.
    assert detect_spikes(steps, values, SpikeConfig(noise_floor=0.2), metric="grad_norm") == []
