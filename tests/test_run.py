"""The run model: last write wins, resumes, series, metric lookup and prefixes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmup_monitor import run as run_module
from warmup_monitor.errors import MetricNotFoundError
from warmup_monitor.points import Points
from warmup_monitor.run import Resume, Run


def make(rows: list[tuple[str, int, float]], **kw) -> Run:
    points = Points.from_rows([(t, s, v, 1000.0 + i) for i, (t, s, v) in enumerate(rows)])
    return Run.from_points(points, name="r", path=Path("r"), source="test", **kw)


def test_frame_is_sorted_by_tag_then_step() -> None:
    """The long frame is sorted by tag, then step, with the documented dtypes."""
    run = make([("train/loss", 3, 1.0), ("lr", 1, 0.1), ("train/loss", 1, 2.0), ("lr", 0, 0.0)])
    frame = run.scalars
    assert frame["tag"].tolist() == ["lr", "lr", "train/loss", "train/loss"]
    assert frame["step"].tolist() == [0, 1, 1, 3]
    assert str(frame["step"].dtype) == "int64" and str(frame["value"].dtype) == "float64"
    assert str(frame["tag"].dtype) == "category"
    assert run.tags == ["lr", "train/loss"]
    assert run.last_step == 3


def test_last_write_wins_and_resume_is_reported() -> None:
    """A restart repeating steps keeps the later values and lists one resume."""
    rows = [("train/loss", s, 1.0) for s in range(10)] + [("lr", s, 0.1) for s in range(10)]
    rows += [("train/loss", s, 2.0) for s in range(5, 12)] + [("lr", s, 0.2) for s in range(5, 12)]
    run = make(rows)
    steps, values = run.series("loss")
    assert steps.tolist() == list(range(12))
    assert values.tolist() == [1.0] * 5 + [2.0] * 7
    assert run.series("learning_rate")[1].tolist() == [0.1] * 5 + [0.2] * 7
    assert run.resumes == [Resume(step=5, from_step=9, tag="lr")]


def test_repeated_step_without_going_back_is_not_a_resume() -> None:
    """Logging a step twice in a row keeps the last value and is no restart."""
    run = make([("loss", 1, 1.0), ("loss", 2, 2.0), ("loss", 2, 3.0), ("loss", 3, 4.0)])
    assert run.series("loss")[1].tolist() == [1.0, 3.0, 4.0]
    assert run.resumes == []


def test_replaced_values_are_counted_in_a_note() -> None:
    """Values a later write of the same step replaced are counted and said; a value written
    again unchanged (the Trainer logs its last epoch twice) replaces nothing."""
    rows = [("train/loss", s, 1.0) for s in range(10)] + [("lr", s, 0.1) for s in range(10)]
    rows += [("train/loss", s, 2.0) for s in range(5, 12)] + [("lr", s, 0.1) for s in range(5, 12)]
    rows += [("epoch", 11, 0.5), ("epoch", 11, 0.5)]
    run = make(rows)
    assert [n for n in run.notes if "replaced" in n] == [
        "5 values replaced by a later write of the same step (the last write of each step is used)"
    ]
    assert not [n for n in make(rows[:10]).notes if "replaced" in n]
    one = make([("loss", 1, 1.0), ("loss", 1, math.nan), ("loss", 1, math.nan)])
    assert one.notes == [
        "1 value replaced by a later write of the same step (the last write of each step is used)"
    ]


def test_series_keeps_nan_and_inf() -> None:
    """Non-finite values are data, not gaps."""
    run = make([("loss", 0, 1.0), ("loss", 1, math.nan), ("loss", 2, math.inf)])
    values = run.series("loss")[1]
    assert values[0] == 1.0 and np.isnan(values[1]) and values[2] == math.inf


def test_canonical_names_and_overrides() -> None:
    """Canonical names map to the writers' tags; overrides win; raw tags work too."""
    run = make([("train/loss", 1, 1.0), ("my/lr", 1, 0.5), ("eval/loss", 1, 2.0)])
    assert run.metric_map["loss"] == "train/loss"
    assert run.metric_map["learning_rate"] == "my/lr"  # the one tag that looks like an LR
    assert run.has("eval_loss") and not run.has("grad_norm")
    assert run.series("my/lr")[1].tolist() == [0.5]
    custom = make([("train/loss", 1, 1.0), ("smooth", 1, 0.9)], metrics={"loss": "smooth"})
    assert custom.series("loss")[1].tolist() == [0.9]


def test_missing_metric_error_lists_tags() -> None:
    """Asking for an absent metric names it, the run and every available tag."""
    run = make([("train/loss", 1, 1.0), ("eval/acc", 1, 0.5)])
    with pytest.raises(MetricNotFoundError) as err:
        run.series("grad_norm")
    text = str(err.value)
    assert "grad_norm" in text and "'r'" in text
    assert "eval/acc, train/loss" in text and "--metric grad_norm=TAG" in text
    assert "\n" not in text
    bad = make([("train/loss", 1, 1.0)], metrics={"loss": "nope"})
    with pytest.raises(MetricNotFoundError, match="tag 'nope' for metric 'loss'"):
        bad.series("loss")


@pytest.mark.parametrize("status", ["finished", "crashed"])
def test_a_prefix_before_the_end_is_still_running(status: str) -> None:
    """A watcher saw the first steps while the run was going: a prefix that stops before the
    last logged step is "running", whatever the run became; the whole run keeps its status."""
    run = make([("loss", s, 1.0) for s in range(10)], status=status)
    assert run.prefix(4).status == "running"
    assert run.prefix(9).status == status
    assert make([("loss", s, 1.0) for s in range(10)]).prefix(4).status == "unknown"


def test_prefix_is_what_a_watcher_saw() -> None:
    """prefix(n) keeps steps <= n, and the resumes and slices that fit."""
    rows = [("loss", s, float(s)) for s in range(10)] + [("loss", s, -1.0) for s in (4, 5)]
    rows += [("lr", s, 0.1) for s in range(0, 10, 3)]
    run = make(rows)
    early = run.prefix(4)
    assert early.series("loss")[0].tolist() == [0, 1, 2, 3, 4]
    assert early.series("loss")[1].tolist() == [0.0, 1.0, 2.0, 3.0, -1.0]
    assert early.series("lr")[0].tolist() == [0, 3]
    assert [r.step for r in early.resumes] == [4]
    assert run.prefix(3).resumes == []
    assert run.prefix(-1).scalars.empty and run.prefix(-1).tags == []


def test_empty_run() -> None:
    """A run without points has an empty frame and no last step."""
    run = Run.from_points(Points.empty(), name="e", path=Path("e"), source="test")
    assert run.scalars.empty and run.tags == [] and run.last_step is None
    assert list(run.scalars.columns) == ["step", "tag", "value", "wall_time"]
    with pytest.raises(MetricNotFoundError, match="available tags: none"):
        run.series("loss")


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 20), st.floats(-5, 5)),
        max_size=60,
    )
)
def test_matches_a_dict_of_last_writes(rows: list[tuple[str, int, float]]) -> None:
    """Every (tag, step) holds its last written value, steps ascending per tag."""
    run = make(rows)
    last: dict[str, dict[int, float]] = {}
    for tag, step, value in rows:
        last.setdefault(tag, {})[step] = value
    assert run.tags == sorted(last)
    for tag, by_step in last.items():
        steps, values = run.series(tag)
        assert steps.tolist() == sorted(by_step)
        assert values.tolist() == [by_step[s] for s in sorted(by_step)]
    assert len(run.scalars) == sum(len(v) for v in last.values())


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["b", "a", "c/x", "é"]),
            st.integers(0, 30),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_few_tags_frame_equals_the_sorted_frame(rows: list[tuple[str, int, float]]) -> None:
    """The tag-by-tag frame of a run with few tags is the frame the general sort builds."""
    points = Points.from_rows((tag, step, value, float(step)) for tag, step, value in rows)
    fast = Run.from_points(points, name="r", path=Path("r"), source="test")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "_FEW_TAGS", 0)
        slow = Run.from_points(points, name="r", path=Path("r"), source="test")
    # Handing the arrays over (their memory reused for the frame) changes nothing either.
    copy = Points(points.tags, *(a.copy() for a in _columns(points)))
    consumed = Run.from_points(copy, name="r", path=Path("r"), source="test", consume=True)
    want = slow.scalars
    for run in (fast, consumed):
        got = run.scalars
        assert got["tag"].cat.categories.tolist() == want["tag"].cat.categories.tolist()
        assert got["tag"].tolist() == want["tag"].tolist()
        for column in ("step", "value", "wall_time"):
            a, b = got[column].to_numpy(), want[column].to_numpy()
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
        assert run.resumes == slow.resumes


@given(
    st.permutations(["b", "a", "c/x", "é"]),
    st.integers(1, 4),
    st.lists(st.integers(0, 3), min_size=2, max_size=12, unique=True),
    st.one_of(st.none(), st.tuples(st.integers(0, 40), st.sampled_from(["a", "b"]))),
)
def test_tags_in_a_repeating_order_frame_equals_the_sorted_frame(
    order: list[str], k: int, steps: list[int], extra: tuple[int, str] | None
) -> None:
    """Every step logging the same tags in the same order (positions found as slices), or one
    point more breaking the period, or a step written twice: the frame of the general sort."""
    rows = [(tag, step, float(step * 10 + i)) for step in steps for i, tag in enumerate(order[:k])]
    if extra is not None:
        rows.insert(extra[0] % (len(rows) + 1), (extra[1], 99, -1.0))
    points = Points.from_rows((tag, step, value, float(step)) for tag, step, value in rows)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "_FEW_TAGS", 0)
        want = Run.from_points(points, name="r", path=Path("r"), source="test").scalars
    copy = Points(points.tags, *(a.copy() for a in _columns(points)))
    for run in (
        Run.from_points(points, name="r", path=Path("r"), source="test"),
        Run.from_points(copy, name="r", path=Path("r"), source="test", consume=True),
    ):
        got = run.scalars
        assert got["tag"].tolist() == want["tag"].tolist()
        for column in ("step", "value", "wall_time"):
            assert got[column].to_numpy().tobytes() == want[column].to_numpy().tobytes()


def _columns(points: Points) -> tuple[np.ndarray, ...]:
    return (points.tag_codes, points.steps, points.values, points.wall_times)


def test_consumed_points_that_cannot_be_overwritten_are_copied() -> None:
    """Read-only or shared arrays handed over are left as they are; the frame is the same."""
    steps = np.arange(6, dtype=np.int64)
    values = np.frombuffer(np.linspace(0, 1, 6).tobytes())  # read-only
    codes = np.array([0, 1] * 3, dtype=np.int32)
    points = Points(("b", "a"), codes, steps, values, values)  # values shared with wall times
    run = Run.from_points(points, name="r", path=Path("r"), source="test", consume=True)
    assert run.series("a")[0].tolist() == [1, 3, 5]
    assert run.series("b")[1].tolist() == values[[0, 2, 4]].tolist()
    assert steps.tolist() == list(range(6)) and not values.flags.writeable
