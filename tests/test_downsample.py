"""The one thinning of long series (watcher buffer and HTML plots): what it must never drop."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from warmup_monitor.downsample import keep_extremes, thin

_VALUES = st.one_of(
    st.floats(-1e6, 1e6),
    st.floats(-1e6, 1e6),
    st.floats(-1e6, 1e6),
    st.just(np.nan),
    st.just(np.inf),
    st.just(-np.inf),
)


def _kind(v: float) -> int:
    return 0 if np.isfinite(v) else (1 if np.isnan(v) else (2 if v > 0 else 3))


def _stretches(values: np.ndarray) -> int:
    kinds = [_kind(v) for v in values]
    return sum(1 for i, k in enumerate(kinds) if k and (i == 0 or kinds[i - 1] != k))


@settings(max_examples=300, deadline=None)
@given(
    values=arrays(np.float64, st.integers(0, 400), elements=_VALUES),
    buckets=st.integers(1, 40),
    data=st.data(),
)
def test_thinning_keeps_ends_extremes_and_every_non_finite_point(
    values: np.ndarray, buckets: int, data: st.DataObject
) -> None:
    """Whatever the series (NaN, ±Inf, steps out of order or repeated), the kept points hold its
    first and last point, its min and max, and every NaN/Inf point: kept itself, or inside a
    stretch of its kind whose two ends are kept (so the kept points redraw every stretch
    exactly); the count stays bounded."""
    n = len(values)
    ordered = data.draw(st.booleans())
    if ordered:
        steps = np.arange(n, dtype=np.int64) * data.draw(st.integers(1, 7))
    else:
        steps = np.array(data.draw(st.lists(st.integers(0, 50), min_size=n, max_size=n)))
        steps = steps.astype(np.int64)
    idx = keep_extremes(steps, values, buckets)
    kept = set(idx.tolist())
    assert idx.tolist() == sorted(kept) and all(0 <= i < n for i in kept)
    if n == 0:
        return
    assert {0, n - 1} <= kept
    finite = np.isfinite(values)
    if finite.any():
        assert values[idx][np.isfinite(values[idx])].min() == values[finite].min()
        assert values[idx][np.isfinite(values[idx])].max() == values[finite].max()
    if n > 3 * buckets:
        assert len(idx) <= 4 * buckets + 2
    if _stretches(values) <= buckets:
        for i in np.flatnonzero(~finite).tolist():
            k = _kind(values[i])
            a = i
            while a > 0 and _kind(values[a - 1]) == k:
                a -= 1
            b = i
            while b < n - 1 and _kind(values[b + 1]) == k:
                b += 1
            assert a in kept and b in kept, (i, a, b)
    else:
        # Many stretches: every bucket that holds a NaN/Inf still shows one.
        assert (~np.isfinite(values[idx])).any()


def test_isolated_nans_and_a_spike_survive_a_long_series() -> None:
    """1M points to ~2,000: the spike, the dip and each of a few isolated NaN/Inf points are
    kept themselves, as are both ends."""
    n = 1_000_000
    steps = np.arange(n, dtype=np.int64)
    values = np.sin(steps / 5000.0)
    values[123_457] = 50.0
    values[654_321] = -40.0
    bad = [10, 400_000, 400_002, 999_998]
    values[bad] = [np.nan, np.inf, -np.inf, np.nan]
    s, v = thin(steps, values, 2000)
    assert len(s) <= 2010
    kept = dict(zip(s.tolist(), v.tolist(), strict=True))
    assert kept[123_457] == 50.0 and kept[654_321] == -40.0
    assert all(i in kept for i in bad)
    assert np.isinf(kept[400_000]) and kept[400_002] == -np.inf
    assert 0 in kept and n - 1 in kept
