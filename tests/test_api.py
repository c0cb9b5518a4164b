"""The public API: what ``import warmup_monitor`` offers, and its docstring example."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import pytest

import warmup_monitor as wm

REPO = Path(__file__).resolve().parents[1]


def test_top_level_names() -> None:
    for name in (
        "read_run",
        "find_runs",
        "open_source",
        "diagnose",
        "Diagnosis",
        "Verdict",
        "build_comparison",
        "Comparison",
    ):
        assert name in wm.__all__ and getattr(wm, name) is not None
    from warmup_monitor.diagnosis import diagnose

    assert wm.diagnose is diagnose
    with pytest.raises(AttributeError):
        _ = wm.no_such_name


def test_package_docstring_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example in ``help(warmup_monitor)`` runs against the shipped sample runs."""
    monkeypatch.chdir(REPO)
    failures, tried = doctest.testmod(wm, raise_on_error=False, verbose=False)
    assert tried >= 5 and failures == 0


def test_to_dict_is_json_without_nan() -> None:
    """``Diagnosis.to_dict()`` holds JSON types only; a NaN is null and listed in non_finite."""
    d = wm.diagnose(wm.read_run(REPO / "sample_logs" / "warmup_too_short_nan"))
    doc = d.to_dict()
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text)["verdict"] == d.verdict.value
    assert doc["first_problem_step"] == d.first_problem_step
    assert len(doc["findings"]) == len(d.findings)

    def finite_numbers(x: object) -> bool:
        if isinstance(x, float):
            return math.isfinite(x)
        if isinstance(x, dict):
            return all(finite_numbers(v) for v in x.values())
        if isinstance(x, list):
            return all(finite_numbers(v) for v in x)
        return True

    assert finite_numbers(doc)
