"""Catapult: a window-averaged loss that shoots up as the LR reaches its peak."""

from __future__ import annotations

import numpy as np
import pytest
from _synth import healthy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors import CatapultConfig, Severity, detect_catapult

# Means of 5 steps logged at steps 5, 10, ...: a climb at the second point that comes back.
TAIL = [3.3, 3.2, 3.1, 3.05, 3.0, 3.0, 2.95, 2.9, 2.9, 2.85, 2.8, 2.8]
BUMP = [4.4, 5.8, 4.0, 3.5, *TAIL]


@pytest.mark.parametrize(
    ("values", "config", "expected"),
    [
        # (values logged every 5 steps; config; [(step, end_step, severity)])
        (BUMP, None, [(10, 10, Severity.WARNING)]),
        ([4.4, 4.9, 4.0, 3.5, *TAIL], None, []),  # x1.11: below x1.2
        ([4.4, 3.8, 5.0, 5.1, 3.4, *TAIL], None, [(15, 20, Severity.WARNING)]),
        (
            [4.4, 3.8, 5.0, *[5.1 + 0.01 * k for k in range(16)]],
            None,
            [(15, 95, Severity.CRITICAL)],
        ),
        (BUMP, CatapultConfig(from_step=15), []),  # the climb is before the judged span
        (BUMP, CatapultConfig(until_step=5), []),  # ... or after it
        (BUMP, CatapultConfig(averaged_over=1), []),  # single-step values: not this rule's
        (BUMP, CatapultConfig(ratio=1.5), []),
        (BUMP[:3], None, []),
    ],
)
def test_table(values: list[float], config: CatapultConfig | None, expected: list) -> None:
    """A logged value ``ratio`` above the lowest earlier value is found, with its extent."""
    steps = np.arange(1, len(values) + 1) * 5
    got = detect_catapult(steps, np.asarray(values), config)
    assert [(f.step, f.end_step, f.severity) for f in got] == expected


def test_message_names_metric_values_step_and_threshold() -> None:
    (f,) = detect_catapult(np.arange(1, len(BUMP) + 1) * 5, np.asarray(BUMP), metric="loss")
    assert f.kind == "catapult"
    assert f.message.startswith("loss (the mean of 5 steps) climbs from its best 4.4 to 5.8")
    assert "x1.32, threshold x1.2" in f.message and "at step 10" in f.message
    assert f.evidence["recovered"] is True and f.evidence["baseline"] == pytest.approx(4.4)


def test_per_step_spacing_is_left_to_the_divergence_rule() -> None:
    """Without ``averaged_over`` the median spacing decides: per-step logs give nothing."""
    assert detect_catapult(np.arange(1, len(BUMP) + 1), np.asarray(BUMP)) == []


def test_the_climb_must_clear_the_series_noise() -> None:
    """A series whose point-to-point noise is as large as the bump is not judged by x1.2."""
    rng = np.random.default_rng(3)
    noisy = np.exp(rng.normal(0.0, 0.15, 60)) * 3.0
    noisy[1] = noisy[0] * 1.3
    got = detect_catapult(np.arange(1, 61) * 10, noisy)
    assert all(f.evidence["threshold"] > 1.3 for f in got)


@pytest.mark.parametrize("seed", range(6))
def test_healthy_averaged_losses_give_nothing(seed: int) -> None:
    """Falling window means with realistic per-step noise never climb x1.2 over their best."""
    for every in (5, 10, 50):
        syn = healthy(2000, every=every, noise=0.2, averaged=True, seed=seed)
        assert detect_catapult(syn.steps, syn.values) == []


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(0.05, 50.0), min_size=4, max_size=60),
    scale=st.floats(1e-4, 1e4),
)
# Exact ties, which rounding would decide differently once scaled: x1.2 the lowest earlier
# value, and a rise of exactly ``min_rise`` of the first value.
@example(values=[0.5, 0.5, 0.5, 0.6], scale=43.0)
@example(values=[3.0, 1.2, 1.5, 0.5], scale=74.5)
def test_scale_invariant_and_above_threshold(values: list[float], scale: float) -> None:
    """Scaling the loss changes nothing; a finding's value really is ``ratio`` above the best
    logged before it, and nothing earlier was."""
    v = np.asarray(values)
    steps = np.arange(1, v.size + 1) * 5
    ref = detect_catapult(steps, v)
    got = detect_catapult(steps, v * scale)
    assert [(f.step, f.end_step, f.severity) for f in got] == [
        (f.step, f.end_step, f.severity) for f in ref
    ]
    for f in ref:
        i = int(np.searchsorted(steps, f.step))
        assert v[i] >= f.evidence["threshold"] * v[:i].min() * (1 - 1e-9)
        assert v[i] >= 1.2 * v[:i].min() * (1 - 1e-9)
        thr = f.evidence["threshold"]
        for j in range(1, i):
            low = v[:j].min()
            assert not (v[j] >= thr * low * (1 + 1e-9) and v[j] - low >= 0.1 * v[0] * (1 + 1e-9))
