"""Columnar batches of scalar points: what every reader's ``poll()`` returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Points"]

_EMPTY_I64 = np.empty(0, dtype=np.int64)
_EMPTY_I32 = np.empty(0, dtype=np.int32)
_EMPTY_F64 = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class Points:
    """Scalar points in the order they were written.

    ``tag_codes[i]`` indexes ``tags``; ``steps`` int64, ``values`` float64 (NaN/±Inf kept),
    ``wall_times`` float64 seconds since the epoch (NaN when the format has none). Arrays are
    equal-length and never modified after construction.
    """

    tags: tuple[str, ...]
    tag_codes: np.ndarray
    steps: np.ndarray
    values: np.ndarray
    wall_times: np.ndarray

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    @staticmethod
    def empty() -> Points:
        return _EMPTY

    @staticmethod
    def from_rows(rows: Iterable[tuple[str, int, float, float]]) -> Points:
        """Build from ``(tag, step, value, wall_time)`` rows (convenient for small formats)."""
        index: dict[str, int] = {}
        codes: list[int] = []
        steps: list[int] = []
        values: list[float] = []
        times: list[float] = []
        for tag, step, value, wall_time in rows:
            code = index.get(tag)
            if code is None:
                code = index[tag] = len(index)
            codes.append(code)
            steps.append(int(step))
            values.append(float(value))
            times.append(float(wall_time))
        if not codes:
            return _EMPTY
        return Points(
            tags=tuple(index),
            tag_codes=np.asarray(codes, dtype=np.int32),
            steps=np.asarray(steps, dtype=np.int64),
            values=np.asarray(values, dtype=np.float64),
            wall_times=np.asarray(times, dtype=np.float64),
        )

    @staticmethod
    def concat(parts: Sequence[Points]) -> Points:
        """Concatenate batches, merging their tag tables; order is kept."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return _EMPTY
        if len(parts) == 1:
            return parts[0]
        index: dict[str, int] = {}
        codes = []
        for part in parts:
            remap = np.empty(len(part.tags), dtype=np.int32)
            for i, tag in enumerate(part.tags):
                code = index.get(tag)
                if code is None:
                    code = index[tag] = len(index)
                remap[i] = code
            codes.append(remap[part.tag_codes])
        return Points(
            tags=tuple(index),
            tag_codes=np.concatenate(codes),
            steps=np.concatenate([p.steps for p in parts]),
            values=np.concatenate([p.values for p in parts]),
            wall_times=np.concatenate([p.wall_times for p in parts]),
        )


_EMPTY = Points((), _EMPTY_I32, _EMPTY_I64, _EMPTY_F64, _EMPTY_F64)
