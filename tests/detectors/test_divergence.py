"""Divergence: a loss that climbs well above its best and stays there."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _synth import healthy, with_divergence
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import DivergenceConfig, Severity, detect_divergence
from detectors._common import LOG_TIE
from detectors.divergence import _climbs, _running_argmin

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
        # Two points x1.8 that came back: brief when each is one training step's loss, long
        # (20 steps) when each is the mean of the 10 steps since the last one.
        (
            [*SMOOTH_BUMP[:9], 1.7, 1.8, *[1.0] * 5],
            DivergenceConfig(averaged_over=1),
            [(100, Severity.INFO)],
        ),
        ([*SMOOTH_BUMP[:9], 1.7, 1.8, *[1.0] * 5], None, [(100, Severity.WARNING)]),
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


def _climbs_reference(
    above: np.ndarray, ys: np.ndarray, prev_min: np.ndarray, half: float, patience: int
) -> list[tuple[int, int, int]]:
    """The climbs walked point by point: the plain definition ``_climbs`` must match."""
    n = above.size
    out = []
    i = 0
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        if j - i + 1 < patience and j < n - 1:
            i = j + 1
            continue
        if j - i + 1 < patience:
            break
        base = float(prev_min[i])
        k = j
        while k + 1 < n and ys[k + 1] - base >= half - LOG_TIE:  # a tie is "at the bar"
            k += 1
        out.append((i, j, k))
        i = k + 1
    return out


@st.composite
def climb_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``above``, ``ys`` and ``prev_min`` made of stretches, some longer than a chunk."""
    parts = draw(
        st.lists(st.tuples(st.booleans(), st.integers(1, 200), st.integers(0, 4)), max_size=8)
    )
    levels = [math.nan, -1.0, 0.4, 1.0, 3.0]
    above = np.concatenate([np.full(k, b) for b, k, _ in parts] or [np.zeros(0, bool)])
    ys = np.concatenate([np.full(k, levels[lv]) for _, k, lv in parts] or [np.zeros(0)])
    n = above.size
    flips = draw(st.lists(st.integers(0, max(0, n - 1)), max_size=5)) if n else []
    ys[flips] = 0.0
    prev_min = np.full(n, draw(st.sampled_from([0.0, -math.inf, math.inf, 0.5])))
    return above, ys, prev_min


@settings(max_examples=200, deadline=None)
@given(data=climb_inputs(), half=st.floats(0.0, 3.0), patience=st.integers(1, 5))
def test_climbs_match_the_point_by_point_walk(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], half: float, patience: int
) -> None:
    """Stretch-wise climbs equal the point-by-point walk on any input, NaN included."""
    a, y, p = data
    assert _climbs(a, y, p, half, patience) == _climbs_reference(a, y, p, half, patience)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, math.inf, -math.inf]), max_size=60))
def test_running_argmin_is_the_argmin_of_each_prefix(values: list[float]) -> None:
    """The first minimum before each index, as ``np.argmin`` picks it."""
    ys = np.asarray(values, dtype=np.float64)
    best = _running_argmin(ys)
    assert best(0) == 0
    for i in range(1, ys.size + 1):
        assert best(i) == int(np.argmin(ys[:i]))
    with_nan = np.array([1.0, math.nan, 0.0])
    assert [_running_argmin(with_nan)(i) for i in range(4)] == [0, 0, 1, 1]


def test_a_long_run_with_many_climbs() -> None:
    """Many climbs in a long series are all found (the walk is stretch-wise, not quadratic)."""
    rng = np.random.default_rng(3)
    n = 200_000
    y = np.full(n, 1.0) * np.exp(rng.normal(0.0, 0.001, n))
    for a in range(1000, n, 10_000):
        y[a : a + 30] = 3.0
    got = detect_divergence(np.arange(n), y)
    assert len(got) == 20
    assert [f.severity for f in got] == [Severity.WARNING] * 20


def test_above_start_ignores_the_points_that_define_the_start() -> None:
    """A falling curve's first point is above the median of the first three: not a finding."""
    steps = np.arange(13, 13 * 17, 13)
    values = 2.5 + 1.5 * np.exp(-np.arange(steps.size) / 4.0)
    found = detect_divergence(steps, values, DivergenceConfig(after_step=10))
    assert found == []


@given(
    level=st.floats(0.5, 20.0),
    wobble=st.lists(st.floats(-0.04, 0.04), min_size=8, max_size=200),
    after=st.integers(0, 20),
)
@settings(max_examples=150, deadline=None)
def test_a_loss_wobbling_at_its_start_is_not_above_it(
    level: float, wobble: list[float], after: int
) -> None:
    """A flat loss within 4% of its level (a small LR, or the first steps without a warmup)
    never stands ``min_rise`` above its starting level: noise is not a failure."""
    values = level * (1.0 + np.asarray(wobble))
    steps = np.arange(1, values.size + 1)
    found = detect_divergence(steps, values, DivergenceConfig(after_step=after))
    assert [f for f in found if f.evidence["rule"] == "above_start"] == []


def test_a_rise_above_the_start_is_judged_like_a_climb() -> None:
    """Back above the start (x1.17, below the climb rule's x1.5 over the best) for 3 logged
    steps, then down again: info (a brief bump); for 8 steps: a warning; still above at the end:
    critical. Three window means of 10 steps are 30 steps above the start: a warning."""

    def rule(values: list[float], every: int = 1) -> list[Severity]:
        steps = np.arange(1, len(values) + 1) * every
        cfg = DivergenceConfig(after_step=5 * every, averaged_over=every)
        found = detect_divergence(steps, np.asarray(values), cfg)
        return [f.severity for f in found if f.evidence["rule"] == "above_start"]

    down = [4.0, 3.6, 3.3, 3.1, 3.0, 2.9]
    assert rule([*down, 4.2, 4.2, 4.2, *[2.9] * 10]) == [Severity.INFO]
    assert rule([*down, *[4.2] * 8, *[2.9] * 10]) == [Severity.WARNING]
    assert rule([*down, *[4.2] * 6]) == [Severity.CRITICAL]
    assert rule([*down, 4.2, 4.2, 4.2, *[2.9] * 10], every=10) == [Severity.WARNING]
