"""Values made JSON-ready, with every non-finite number accounted for.

JSON has no NaN or Infinity: a non-finite number is written as ``null`` and the path where it
stood is recorded with what it was (``{"evidence.value": "nan"}``), so the fact is never lost.
The report, the comparison and ``watch --format jsonl`` all write numbers this way.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["JsonConverter"]


class JsonConverter:
    """Turns values into JSON types, recording where a non-finite number was replaced."""

    def __init__(self) -> None:
        self.non_finite: dict[str, str] = {}

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, enum.Enum):
            return self(value.value, where)
        if isinstance(value, int):
            return value
        if isinstance(value, PurePath):
            return value.as_posix()
        if isinstance(value, Mapping):
            return {str(k): self(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
            return [self(v, f"{where}[{i}]") for i, v in enumerate(items)]
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return self(value.tolist(), where)
        if isinstance(value, float) or hasattr(value, "__float__"):
            x = float(value)
            if math.isfinite(x):
                return x
            self.non_finite[where] = "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
            return None
        return str(value)
