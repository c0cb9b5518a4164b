"""Thinning a long series while keeping what matters: extremes, spikes, NaN/Inf, both ends.

One thinning for everything that needs fewer points than were logged: the live watcher's bounded
buffer and the plots of the HTML pages.
"""

from __future__ import annotations

import numpy as np

__all__ = ["keep_extremes", "thin"]


def keep_extremes(steps: np.ndarray, values: np.ndarray, buckets: int) -> np.ndarray:
    """Sorted indices of the points to keep out of ``steps``/``values`` (in write order).

    The steps are cut into ``buckets`` equal ranges; each keeps its first lowest and first
    highest finite value, so every spike and the series' min and max survive. The first and
    last points are kept. Non-finite values are kept exactly: the first and last point of every
    stretch of one kind (NaN, +Inf, -Inf), so every NaN/Inf point is either kept or lies between
    two kept ones of its kind with nothing else in between. Only when a series has more such
    stretches than ``buckets`` (a value flipping between NaN and finite every few steps) does
    each bucket keep just its first and last non-finite point, so the result stays bounded by
    about ``4 * buckets + 2`` points.

    Buckets span equal *step* ranges, so thinning an already thinned stretch again keeps the
    same resolution instead of eroding its oldest points; for a plot they are columns of the
    x axis. A series of at most ``3 * buckets`` points is kept whole.
    """
    n = len(values)
    buckets = max(1, int(buckets))
    if n <= 3 * buckets:
        return np.arange(n)
    lo, hi = int(steps.min()), int(steps.max())
    if hi > lo:
        bucket = ((steps - lo) * buckets // (hi - lo + 1)).astype(np.int64)
    else:  # every point at one step (unusual): buckets of consecutive points instead
        bucket = np.arange(n, dtype=np.int64) * buckets // n
    finite = np.isfinite(values)
    low = np.where(finite, values, np.inf)
    high = np.where(finite, values, -np.inf)
    bmin = np.full(buckets, np.inf)
    bmax = np.full(buckets, -np.inf)
    np.minimum.at(bmin, bucket, low)
    np.maximum.at(bmax, bucket, high)
    picked = [np.array([0, n - 1])]
    for mask in (finite & (low == bmin[bucket]), finite & (high == bmax[bucket])):
        where = np.flatnonzero(mask)
        _, first = np.unique(bucket[where], return_index=True)
        picked.append(where[first])
    if not finite.all():
        picked.append(_non_finite_ends(values, finite, bucket, buckets))
    return np.unique(np.concatenate(picked))


def _non_finite_ends(
    values: np.ndarray, finite: np.ndarray, bucket: np.ndarray, buckets: int
) -> np.ndarray:
    """First and last index of every stretch of one non-finite kind (bounded, see above)."""
    # 0 finite, 1 NaN, 2 +Inf, 3 -Inf: a stretch ends where the kind changes.
    kind = np.where(finite, 0, np.where(np.isnan(values), 1, np.where(values > 0, 2, 3)))
    change = np.flatnonzero(np.diff(kind)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change - 1, [len(kind) - 1]))
    bad = kind[starts] != 0
    starts, ends = starts[bad], ends[bad]
    if len(starts) <= buckets:
        return np.concatenate((starts, ends))
    where = np.flatnonzero(~finite)
    _, first = np.unique(bucket[where], return_index=True)
    _, last = np.unique(bucket[where][::-1], return_index=True)
    return np.concatenate((where[first], where[::-1][last]))


def thin(steps: np.ndarray, values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of a series thinned for drawing to about ``limit`` points (more only
    for its NaN/Inf stretches); the arrays themselves when they are short enough already."""
    if len(values) <= limit:
        return steps, values
    idx = keep_extremes(steps, values, max(1, limit // 2))
    return steps[idx], values[idx]
