"""Every point read so far for one run, with memory bounded per tag."""

from __future__ import annotations

import numpy as np

from ..downsample import keep_extremes
from ..points import Points

__all__ = ["PointBuffer"]


class _TagStore:
    """Points of one tag in write order: appended chunks, concatenated lazily."""

    __slots__ = ("chunks", "count")

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self.chunks) != 1:
            if not self.chunks:
                empty_f = np.empty(0, np.float64)
                return np.empty(0, np.int64), empty_f, empty_f
            merged = tuple(np.concatenate(parts) for parts in zip(*self.chunks, strict=True))
            self.chunks = [merged]  # type: ignore[list-item]
        return self.chunks[0]


class PointBuffer:
    """Every point read so far, with memory bounded per tag.

    Up to ``max_points_per_tag`` points of a tag are kept as written. Beyond that the older
    half is thinned by :func:`~warmup_monitor.downsample.keep_extremes`: each bucket of steps
    keeps its lowest and highest finite value, and NaN/Inf stretches keep their ends, so spikes,
    every NaN and the shape of the curve survive while memory stays flat however long the run is.
    """

    def __init__(self, max_points_per_tag: int = 20_000) -> None:
        if max_points_per_tag < 64:
            raise ValueError(f"max_points_per_tag must be >= 64, got {max_points_per_tag}")
        self.max_points_per_tag = max_points_per_tag
        self._stores: dict[str, _TagStore] = {}
        self.total_added = 0

    def __len__(self) -> int:
        return sum(s.count for s in self._stores.values())

    @property
    def tags(self) -> list[str]:
        return list(self._stores)

    def add(self, points: Points) -> None:
        """Append a batch (in write order)."""
        n = len(points)
        if n == 0:
            return
        self.total_added += n
        codes = points.tag_codes
        if len(points.tags) == 1:
            groups = [(0, slice(None))]
        else:
            order = np.argsort(codes, kind="stable")
            sorted_codes = codes[order]
            bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
            starts = np.concatenate(([0], bounds))
            ends = np.concatenate((bounds, [n]))
            groups = [(int(sorted_codes[s]), order[s:e]) for s, e in zip(starts, ends, strict=True)]
        for code, sel in groups:
            tag = points.tags[code]
            store = self._stores.get(tag)
            if store is None:
                store = self._stores[tag] = _TagStore()
            chunk = (points.steps[sel], points.values[sel], points.wall_times[sel])
            store.chunks.append(chunk)
            store.count += len(chunk[0])
            if store.count > self.max_points_per_tag:
                self._thin(store)

    def _thin(self, store: _TagStore) -> None:
        steps, values, walls = store.arrays()
        n = len(steps)
        recent = self.max_points_per_tag // 2
        old = n - recent
        # At most 4 points per bucket plus both ends: with the recent half, under the cap.
        keep = keep_extremes(steps[:old], values[:old], max(6, self.max_points_per_tag // 10))
        idx = np.concatenate((keep, np.arange(old, n)))
        store.chunks = [(steps[idx], values[idx], walls[idx])]
        store.count = len(idx)

    def series(self, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, values, wall_times)`` of ``tag`` in write order (empty when absent)."""
        store = self._stores.get(tag)
        if store is None:
            return _TagStore().arrays()
        return store.arrays()

    def lookup(self, tag: str, step: int) -> tuple[float, float] | None:
        """``(value, wall_time)`` last written for ``tag`` at ``step``, or ``None``."""
        steps, values, walls = self.series(tag)
        hits = np.flatnonzero(steps == step)
        if len(hits) == 0:
            return None
        i = int(hits[-1])
        return float(values[i]), float(walls[i])

    def to_points(self) -> Points:
        """Everything kept, as one batch (each tag's points in write order)."""
        if not self._stores:
            return Points.empty()
        tags = tuple(self._stores)
        arrays = [self._stores[t].arrays() for t in tags]
        return Points(
            tags=tags,
            tag_codes=np.concatenate(
                [np.full(len(a[0]), i, dtype=np.int32) for i, a in enumerate(arrays)]
            ),
            steps=np.concatenate([a[0] for a in arrays]),
            values=np.concatenate([a[1] for a in arrays]),
            wall_times=np.concatenate([a[2] for a in arrays]),
        )
