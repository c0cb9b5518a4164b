"""Properties every registered detector shares, checked with hypothesis on arbitrary floats."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import detectors
from detectors import REGISTRY, ClipRateConfig, Finding, all_detectors, detect_spikes

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _steps(draw_steps: list[int]) -> np.ndarray:
    return np.asarray(draw_steps, dtype=np.int64)


@st.composite
def series(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 80))
    values = draw(arrays(np.float64, n, elements=FLOATS))
    gaps = draw(arrays(np.int64, n, elements=st.integers(0, 50)))
    steps = np.cumsum(gaps) + draw(st.integers(0, 1000))
    if draw(st.booleans()):  # unsorted input, as a resumed run may write it
        steps = steps[draw(st.permutations(list(range(n))))] if n else steps
    return np.asarray(steps, dtype=np.int64), values


def _configs(kind: str) -> list:
    if kind == "clip_rate":
        return [None, ClipRateConfig(max_grad_norm=1.0)]
    return [None]


def test_registry_lists_every_detector_once() -> None:
    """The registry has the nine detectors, keyed by the finding kind they emit."""
    assert sorted(REGISTRY) == sorted(
        [
            "non_finite",
            "divergence",
            "catapult",
            "sustained_rise",
            "spike",
            "no_progress",
            "slow_decline",
            "clip_rate",
            "schedule",
        ]
    )
    assert [d.kind for d in all_detectors()] == list(REGISTRY)
    for d in all_detectors():
        assert d.config.__dataclass_params__.frozen, d.kind


def test_public_names_are_exported() -> None:
    """Everything in ``__all__`` exists."""
    for name in detectors.__all__:
        assert hasattr(detectors, name), name


def test_detectors_import_neither_pandas_nor_the_application() -> None:
    """``import detectors`` in a fresh interpreter loads no pandas and no warmup_monitor."""
    code = (
        "import sys, detectors; "
        "bad = [m for m in ('pandas', 'warmup_monitor') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("kind", list(REGISTRY))
@SETTINGS
@given(data=series())
def test_no_detector_raises_and_steps_are_input_steps(
    kind: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Any float array (NaN/Inf included, unsorted steps) gives sorted findings on input steps."""
    steps, values = data
    det = REGISTRY[kind]
    for cfg in _configs(kind):
        for metric in det.metrics:
            got = det(steps, values, cfg, metric=metric)
            assert all(isinstance(f, Finding) and f.kind == kind for f in got)
            keys = [f.step for f in got]
            assert keys == sorted(keys)
            allowed = set(steps.tolist())
            for f in got:
                assert f.step in allowed
                assert f.end_step is None or (f.end_step in allowed and f.end_step >= f.step)
                assert f.metric == metric


@SETTINGS
@given(
    data=series(),
    scale=st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
# An exact tie: the last point is exactly x2 its recent median (the bar), which rounding would
# decide differently once the values are scaled.
@example(
    data=(np.arange(9), np.array([0.5, 0.5, 0.5, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0])),
    scale=582043.6875,
)
def test_spike_findings_are_invariant_to_scaling(
    data: tuple[np.ndarray, np.ndarray], scale: float
) -> None:
    """Multiplying a positive loss by a positive constant gives the same spike findings."""
    steps, values = data
    values = np.abs(values)
    values[~np.isfinite(values)] = 1.0
    values = np.clip(values, 1e-3, 1e3)
    ref = detect_spikes(steps, values)
    got = detect_spikes(steps, values * scale)
    assert [(f.step, f.end_step, f.severity) for f in got] == [
        (f.step, f.end_step, f.severity) for f in ref
    ]


def test_short_series_return_no_findings() -> None:
    """Series of 0-2 points give no finding from any detector."""
    for det in all_detectors():
        for n in range(3):
            assert det(np.arange(n), np.full(n, 1.0)) == [], det.kind


def test_length_mismatch_is_a_clear_error() -> None:
    """Steps and values of different lengths raise ValueError saying both lengths."""
    with pytest.raises(ValueError, match="Got 3 steps and 2 values instead"):
        detect_spikes(np.arange(3), np.ones(2))


def test_evidence_is_json_serialisable() -> None:
    """Finding evidence only holds JSON types (floats, ints, strings, bools, None)."""
    import json

    rng = np.random.default_rng(0)
    v = np.exp(rng.normal(0, 0.02, 200)) * np.linspace(5, 1, 200)
    v[120:] *= 4.0
    v[50] = math.nan
    for det in all_detectors():
        for f in det(
            np.arange(200),
            v,
            ClipRateConfig(max_grad_norm=1.0) if det.kind == "clip_rate" else None,
        ):
            json.dumps(dict(f.evidence), allow_nan=True)


@st.composite
def loss_like(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A falling noisy loss with an optional climb, NaN and rewritten steps."""
    n = draw(st.integers(0, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = np.arange(n, dtype=np.float64)
    noise = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5]))
    values = (2.0 * np.exp(-x / max(1.0, n / 4)) + 0.5) * np.exp(rng.normal(0.0, noise, n))
    if n and draw(st.booleans()):
        a = draw(st.integers(0, n - 1))
        values[a : a + draw(st.integers(1, 60))] *= draw(st.floats(1.0, 6.0))
    if n and draw(st.booleans()):
        values[rng.integers(0, n, 2)] = draw(st.sampled_from([math.nan, math.inf, 0.0]))
    steps = np.arange(n, dtype=np.int64) * draw(st.integers(1, 10))
    if n > 2 and draw(st.booleans()):
        steps[n // 2 :] -= 2 * (steps[1] - steps[0])  # a resume re-writes a few steps
    return steps, values


@SETTINGS
@given(data=st.one_of(series(), loss_like()))
def test_shared_work_changes_no_finding(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Detectors sharing their cleaned series and medians find exactly what each finds alone."""
    steps, values = data
    alone = [repr(det(steps, values)) for det in all_detectors()]
    with detectors.shared_work():
        shared = [repr(det(steps, values)) for det in all_detectors()]
        again = [repr(det(steps, values)) for det in all_detectors()]
    assert shared == alone
    assert again == alone
