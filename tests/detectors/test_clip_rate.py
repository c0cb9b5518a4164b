"""Clip rate: the share of logged grad norms above ``max_grad_norm``."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import ClipRateConfig, Severity, detect_clip_rate


@pytest.mark.parametrize(
    ("values", "config", "expected"),
    [
        # (grad norms at steps 1, 2, ...; config; [(step, end_step, severity)])
        ([2.0] * 30, ClipRateConfig(), []),  # threshold unknown: not judged
        ([0.5] * 30, ClipRateConfig(max_grad_norm=1.0), []),
        ([2.0] * 30, ClipRateConfig(max_grad_norm=1.0), [(1, 20, Severity.WARNING)]),
        (
            [2.0, 0.5] * 15,
            ClipRateConfig(max_grad_norm=1.0, max_share=0.4),
            [(1, 20, Severity.WARNING)],
        ),
        (
            [0.5] * 20 + [2.0] * 20 + [0.5] * 40,
            ClipRateConfig(max_grad_norm=1.0),
            [(12, 31, Severity.WARNING)],
        ),
        ([2.0] * 5, ClipRateConfig(max_grad_norm=1.0), []),  # fewer than min_points
    ],
)
def test_table(values: list[float], config: ClipRateConfig, expected: list) -> None:
    """The first window clipped more than ``max_share`` of the time is reported."""
    steps = np.arange(1, len(values) + 1)
    got = detect_clip_rate(steps, np.asarray(values), config)
    assert [(f.step, f.end_step, f.severity) for f in got] == expected


def test_config_validation_message() -> None:
    """Invalid parameters raise ValueError naming the parameter, the range and the value."""
    with pytest.raises(ValueError) as err:
        ClipRateConfig(max_grad_norm=0.0)
    assert str(err.value) == (
        "The 'max_grad_norm' parameter of ClipRateConfig must be a float in the range (0, inf). "
        "Got 0.0 instead."
    )
