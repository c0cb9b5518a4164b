"""Helpers shared by the readers: files re-read when they change, and JSON scalar checks."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..points import Points
from ..untrusted import to_float

__all__: list[str] = []


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class _Emitted:
    """Remembers what was emitted so a re-read whole file yields only new or changed points.

    Formats rewritten whole at each save (``trainer_state.json``) or rewritten on a header change
    (Lightning's ``metrics.csv``) are re-read entirely; this keeps ``poll()`` incremental.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, int], float] = {}

    def new_points(self, rows: list[tuple[str, int, float]]) -> Points:
        # Within one read the last write of a (tag, step) wins, as in the Run.
        final: dict[tuple[str, int], float] = {}
        for tag, step, value in rows:
            final.pop((tag, step), None)
            final[(tag, step)] = value
        out = []
        for key, value in final.items():
            old = self._values.get(key)
            if old is None or not _same(old, value):
                self._values[key] = value
                out.append((key[0], key[1], value, math.nan))
        return Points.from_rows(out)


def _signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime_ns) of a file, or None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _step(value: object) -> int | None:
    """A step as a non-negative int64-sized integer, or None (floats like 10.0 are accepted)."""
    number = _number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    step = int(number)
    return step if 0 <= step < 2**62 else None


def _number(value: object) -> float | None:
    """A JSON number as a float (NaN/±Inf kept), a number written as a string ("1.5") too;
    None for other strings, bools, nulls and containers."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return to_float(value)


class _Dropped:
    """Counts values skipped because they are not numbers, for one warning with the count."""

    def __init__(self) -> None:
        self.count = 0
        self.example = ""

    def add(self, key: str, step: int, value: object) -> None:
        self.count += 1
        if not self.example:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            self.example = f"{key} at step {step}: {shown}"

    def message(self, where: str) -> str | None:
        if not self.count:
            return None
        return f"{where}: skipped {self.count} value(s) that are not numbers (e.g. {self.example})"
