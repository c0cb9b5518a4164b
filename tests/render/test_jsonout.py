"""The JSON renderer: valid JSON, the documented schema, NaN written as null and flagged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema

from warmup_monitor.diagnosis import Advice, Verdict
from warmup_monitor.render.jsonout import load_schema, render_json, report_to_dict
from warmup_monitor.report import Report, RunReport

from .conftest import make_run, too_short


def test_output_validates_against_schema(multi_report: Report) -> None:
    """Every field of a multi-run report (including an unreadable run) follows the schema."""
    doc = json.loads(render_json(multi_report))
    jsonschema.validate(doc, load_schema())
    assert doc["schema_version"] == 1
    assert [r["name"] for r in doc["runs"]] == ["good", "bad", "broken"]


def test_schema_rejects_unknown_verdict(single_report: Report) -> None:
    """The schema's verdict vocabulary is exactly the Verdict enum."""
    schema = load_schema()
    assert set(schema["$defs"]["verdict"]["enum"]) == {v.value for v in Verdict}
    doc = report_to_dict(single_report)
    doc["runs"][0]["verdict"] = "warmup_fine"
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("an unknown verdict validated")


def test_nan_is_null_and_flagged(single_report: Report) -> None:
    """A NaN in evidence and a NaN final loss become null and are listed under non_finite."""
    text = render_json(single_report)
    assert ": NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    run = json.loads(text)["runs"][0]
    nan = next(f for f in run["findings"] if f["detector"] == "nonfinite")
    assert nan["evidence"]["value"] is None
    assert nan["non_finite"] == {"evidence.value": "nan"}
    assert run["final_loss"] is None
    assert run["non_finite"] == {"final_loss": "nan"}


def test_fields_come_from_the_dataclasses(single_report: Report) -> None:
    """detector is Finding.kind; schedule numbers and advice are copied, not parsed."""
    run = report_to_dict(single_report)["runs"][0]
    assert run["verdict"] == "warmup_too_short"
    assert run["level"] == "critical"
    assert run["schedule"]["warmup_steps"] == 20
    assert math.isclose(run["schedule"]["warmup_fraction"], 0.1)
    assert run["findings"][0]["detector"] == "spike"
    assert run["findings"][0]["evidence"] == {"value": 8.25, "threshold": 4.1, "baseline": 1.2}
    assert run["advice"][0] == {
        "text": "Lengthen the warmup from 20 to 200 steps (10% of the run)",
        "parameter": "warmup_steps",
        "current": 20,
        "suggested": 200,
        "reason": "10% of 2000 total steps",
    }
    assert run["metrics"]["loss"] == "train/loss"


def test_numpy_and_infinite_values_convert() -> None:
    """numpy scalars become plain numbers; -inf in advice and config become null and flagged."""
    import numpy as np

    run = make_run("n", config={"lr": np.float32(0.5), "steps": np.int64(7), "x": float("-inf")})
    d = too_short()
    d = type(d)(
        verdict=d.verdict,
        confidence=np.float64(0.5),
        summary="",
        schedule=None,
        advice=(Advice("lower it", "learning_rate", np.float64(float("inf")), 1e-4, ""),),
    )
    rr = RunReport("n", Path("n"), "tensorboard", run=run, diagnosis=d)
    doc = json.loads(render_json(Report((Path("n"),), (rr,))))
    jsonschema.validate(doc, load_schema())
    got = doc["runs"][0]
    assert got["config"] == {"lr": 0.5, "steps": 7, "x": None}
    assert got["advice"][0]["current"] is None
    assert got["non_finite"] == {"config.x": "-inf", "advice[0].current": "inf"}
    assert got["schedule"] is None
