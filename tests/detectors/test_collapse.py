"""No progress: a loss that stalls near its starting level."""

from __future__ import annotations

import numpy as np
import pytest
from _synth import healthy
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import CollapseConfig, detect_no_progress


@pytest.mark.parametrize(
    ("values", "config", "expected"),
    [
        # (losses at steps 10, 20, ...; config; [step of the stall])
        ([5.0] * 20, None, [10]),
        ([5.0, 4.9, 4.8, 4.75, *[4.75] * 16], None, [40]),
        (list(np.linspace(5.0, 2.0, 20)), None, []),
        ([5.0, 4.0, 3.0, 2.5, *[2.5] * 16], None, []),  # stalled, but after a 50% drop
        ([5.0, 4.0, 3.0, 2.5, *[2.5] * 16], CollapseConfig(max_drop=0.6), [40]),
        ([5.0] * 8, None, []),  # fewer than min_points
    ],
)
def test_table(values: list[float], config: CollapseConfig | None, expected: list[int]) -> None:
    """A stall counts when the best level is old and barely below the start."""
    steps = np.arange(1, len(values) + 1) * 10
    assert [f.step for f in detect_no_progress(steps, np.asarray(values), config)] == expected


@pytest.mark.parametrize("seed", range(3))
def test_healthy_curve_makes_progress(seed: int) -> None:
    """A normally falling loss is never reported."""
    syn = healthy(1000, seed=seed)
    assert detect_no_progress(syn.steps, syn.values) == []


def test_config_validation_message() -> None:
    """Invalid parameters raise ValueError naming the parameter, the range and the value."""
    with pytest.raises(ValueError) as err:
        CollapseConfig(stall_share=0.0)
    assert str(err.value) == (
        "The 'stall_share' parameter of CollapseConfig must be a float in the range (0, 1]. "
        "Got 0.0 instead."
    )


def test_the_starting_level_is_where_training_started_not_the_third_window() -> None:
    """Window means over 5 steps: the first one already holds the fast early fall, the next two
    are logged after it. A loss that fell 25% in its first window and then converged made
    progress; read as single-step losses, the median of the first three hides that fall."""
    values = np.asarray([4.0, 3.2, 3.1, 3.05, *[3.0] * 26])
    steps = np.arange(1, len(values) + 1) * 5
    assert detect_no_progress(steps, values, CollapseConfig(averaged_over=5)) == []
    assert detect_no_progress(steps, values) == []  # the median spacing says the same
    single = detect_no_progress(steps, values, CollapseConfig(averaged_over=1))
    assert [f.kind for f in single] == ["no_progress"]


def test_a_plateau_early_in_a_planned_run_is_not_yet_a_stall() -> None:
    """20 flat points after a small early fall are "most of the logged steps" of a live run
    at step 200, but a tenth of a run planned for 2000 steps: not a stall until it covers
    half of the planned span; once the run has ended the two readings agree."""
    values = np.asarray([5.0, 4.9, 4.8, 4.75, *[4.75] * 16])
    steps = np.arange(1, values.size + 1) * 10
    assert [f.step for f in detect_no_progress(steps, values)] == [40]
    assert detect_no_progress(steps, values, CollapseConfig(planned_last_step=2000)) == []
    found = detect_no_progress(steps, values, CollapseConfig(planned_last_step=300))
    assert [f.step for f in found] == [40]
    assert "of the planned run" in found[0].message
    # A planned end at or before the last logged step: the logged span decides.
    for planned in (150, 200):
        same = detect_no_progress(steps, values, CollapseConfig(planned_last_step=planned))
        assert same == detect_no_progress(steps, values)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.5, 10.0), min_size=10, max_size=60),
    st.integers(1, 5000),
)
def test_a_planned_end_only_ever_withholds_a_stall(values: list[float], planned: int) -> None:
    """Measuring against the planned span never adds a finding, and changes nothing once the
    series has reached the planned end."""
    steps = np.arange(1, len(values) + 1) * 5
    y = np.asarray(values)
    logged = detect_no_progress(steps, y)
    with_plan = detect_no_progress(steps, y, CollapseConfig(planned_last_step=planned))
    if planned <= steps[-1]:
        assert with_plan == logged
    else:
        assert [f.step for f in with_plan] in ([], [f.step for f in logged])
