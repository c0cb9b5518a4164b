"""Points: the columnar batches every reader's poll() returns."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from warmup_monitor.points import Points


def test_empty_is_shared_and_typed() -> None:
    """Points.empty() has no rows and the documented dtypes."""
    empty = Points.empty()
    assert len(empty) == 0 and empty.tags == ()
    assert empty.steps.dtype == np.int64 and empty.values.dtype == np.float64
    assert empty.tag_codes.dtype == np.int32 and empty.wall_times.dtype == np.float64
    assert Points.from_rows([]) is empty


def test_from_rows_keeps_order_and_special_values() -> None:
    """Rows keep write order; tags are numbered by first appearance; NaN/Inf survive."""
    pts = Points.from_rows(
        [("b", 0, 1.0, 10.0), ("a", 0, math.nan, 11.0), ("b", 1, math.inf, 12.0)]
    )
    assert pts.tags == ("b", "a")
    assert pts.tag_codes.tolist() == [0, 1, 0]
    assert pts.steps.tolist() == [0, 0, 1]
    assert np.isnan(pts.values[1]) and pts.values[2] == math.inf
    assert pts.wall_times.tolist() == [10.0, 11.0, 12.0]


def test_concat_merges_tag_tables() -> None:
    """Concatenation remaps codes so every row keeps its tag."""
    a = Points.from_rows([("x", 1, 1.0, 0.0), ("y", 1, 2.0, 0.0)])
    b = Points.from_rows([("y", 2, 3.0, 0.0), ("z", 2, 4.0, 0.0)])
    both = Points.concat([a, Points.empty(), b])
    assert both.tags == ("x", "y", "z")
    assert [both.tags[c] for c in both.tag_codes] == ["x", "y", "y", "z"]
    assert both.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert Points.concat([a]) is a
    assert len(Points.concat([])) == 0


rows = st.lists(
    st.tuples(
        st.sampled_from(["loss", "lr", "eval/loss", "损失"]),
        st.integers(0, 10**12),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(0, 2e9),
    ),
    max_size=30,
)


@given(st.lists(rows, max_size=4))
def test_concat_equals_rows_joined(parts: list[list[tuple[str, int, float, float]]]) -> None:
    """Concatenating batches gives the same rows as one batch of all rows."""
    joined = Points.concat([Points.from_rows(p) for p in parts])
    whole = Points.from_rows([r for p in parts for r in p])

    def listed(pts: Points) -> list[tuple[str, int, str, float]]:
        return [
            (pts.tags[c], s, repr(v), w)
            for c, s, v, w in zip(
                pts.tag_codes.tolist(),
                pts.steps.tolist(),
                pts.values.tolist(),
                pts.wall_times.tolist(),
                strict=True,
            )
        ]

    assert listed(joined) == listed(whole)
