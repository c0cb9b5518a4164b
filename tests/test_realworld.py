"""Real training logs from public repositories load with the expected series and last step.

The cases live beside the repository (``../shared/realworld/<case>/``: ``case.json`` and the
files as committed in ``raw/``); the tests skip when that folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from warmup_monitor.discover import find_runs, read_run

REALWORLD = Path(__file__).resolve().parents[1] / ".." / "shared" / "realworld"
CASES = sorted(p.parent.name for p in REALWORLD.glob("*/case.json")) if REALWORLD.is_dir() else []

pytestmark = pytest.mark.skipif(not CASES, reason="real-world logs are not present")


def _case(name: str) -> dict:
    return json.loads((REALWORLD / name / "case.json").read_text())


def _has_lr(case: dict) -> bool:
    # Lightning's CSVLogger has no LR column unless a LearningRateMonitor was attached.
    lr = case.get("learning_rate")
    return not (isinstance(lr, str) and "not logged" in lr)


@pytest.mark.parametrize("name", CASES)
def test_raw_folder_loads(name: str) -> None:
    """The case's raw/ folder is one run with a loss (and LR) ending at the last logged step."""
    case = _case(name)
    raw = REALWORLD / name / "raw"
    refs = find_runs(raw)
    assert len(refs) == 1, [r.name for r in refs]
    run = read_run(raw)
    steps, loss = run.series("loss")
    assert len(steps) > 0 and np.all(np.diff(steps) > 0)
    assert np.isfinite(loss).any()
    if _has_lr(case):
        assert run.has("learning_rate")
        assert np.isfinite(run.series("learning_rate")[1]).any()
    if case.get("last_logged_step") is not None:
        assert int(steps[-1]) == case["last_logged_step"]
    assert not any("skipped" in w for w in run.warnings), run.warnings


@pytest.mark.parametrize("name", CASES)
def test_main_log_folder_loads(name: str) -> None:
    """Pointing at the main log's own folder reads the same loss series."""
    case = _case(name)
    main = REALWORLD / name / "raw" / case["main_log"]
    whole = read_run(REALWORLD / name / "raw")
    direct = read_run(main.parent)
    assert np.array_equal(direct.series("loss")[0], whole.series("loss")[0])
    from_file = read_run(main)
    assert np.array_equal(from_file.series("loss")[0], whole.series("loss")[0])
