"""``warmup-monitor compare``: output in each format, errors and exit codes."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from warmup_monitor.cli import main
from warmup_monitor.render.compare import load_compare_schema

SWEEP = Path(__file__).resolve().parents[1] / "fixtures" / "sweep"
SWEEP_RUNS = [f"w{w}/seed{s}" for w in (0, 15, 30, 45, 75, 120) for s in (1, 2)]


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["compare", *args])


@pytest.fixture(scope="module")
def sweep_json() -> dict[str, Any]:
    result = _invoke(str(SWEEP), "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_text_ranks_the_sweep_and_concludes(tmp_path: Path) -> None:
    """The text says what varies and how it was measured, ranks six settings, concludes."""
    result = _invoke(str(SWEEP))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("Compared 12 runs in 6 settings (warmup_steps varies; runs that differ")
    assert "All runs end at step 150 (±2%): compared step for step; losses smoothed" in out
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split()[:4] == ["RANK", "WARMUP", "RUNS", "STEPS"]
    assert [line.split()[0] for line in table[1:]] == ["1", "2", "3", "4", "5", "6"]
    assert "\nConclusion: warmup " in out
    for name in SWEEP_RUNS:
        assert f"\n{name} " in out


def test_json_follows_its_schema(sweep_json: dict[str, Any]) -> None:
    """JSON output validates against compare_schema.json and agrees with itself."""
    jsonschema.validate(sweep_json, load_compare_schema())
    assert sweep_json["schema_version"] == 1 and sweep_json["exit_code"] == 0
    assert sweep_json["varying"] == ["warmup_steps"]
    entries = sweep_json["entries"]
    assert [e["rank"] for e in entries] == list(range(1, 7))
    means = [e["steps_to_target"]["mean"] for e in entries]
    assert means == sorted(means)
    assert sorted(sweep_json["runs"][i]["name"] for e in entries for i in e["runs"]) == sorted(
        SWEEP_RUNS
    )
    assert sweep_json["conclusion"].startswith(entries[0]["label"])


def test_html_draws_every_run(tmp_path: Path) -> None:
    """--html writes one page with the ranking and one figure; no script, every run listed."""
    page = tmp_path / "cmp.html"
    result = _invoke(str(SWEEP), "-q", "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.count("<svg") == 1 and "<script" not in text
    svg = text[text.index("<svg") : text.index("</svg>") + len("</svg>")]
    ET.fromstring(svg)  # well-formed
    assert "<text" not in svg
    assert "Smoothed loss and learning rate of all 12 runs, coloured by warmup" in text
    for name in SWEEP_RUNS:
        assert f"<td>{name}</td>" in text


def test_one_run_is_a_one_line_error(tmp_path: Path, write_tb_run: Callable[..., None]) -> None:
    """A single run: exit 2 and one line naming the problem and the fix, no traceback."""
    write_tb_run(tmp_path / "only")
    result = _invoke(str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: compare needs at least two runs with a loss; found 1")


def test_repeats_are_compared_with_a_warning(
    tmp_path: Path, write_tb_run: Callable[..., None]
) -> None:
    """Runs whose settings are equal are compared as repeats, and stderr says so in one line."""
    write_tb_run(tmp_path / "a")
    write_tb_run(tmp_path / "b")
    result = _invoke(str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "Warning: no setting differs between the 2 runs' configs; compared as repeats\n"
    )
    assert "RANK  RUN" in result.stdout


def test_fail_on_counts_an_unstable_run(tmp_path: Path, torch_writer: Callable[..., Any]) -> None:
    """A run that ends in NaN reaches --fail-on warning: exit 1; without it, exit 0."""
    for name, nan_at in (("stable", None), ("nan", 40)):
        w = torch_writer(tmp_path / name)
        for step in range(100):
            loss = math.nan if nan_at is not None and step >= nan_at else 4.0 - step / 50
            w.add_scalar("train/loss", loss, step)
            w.add_scalar("train/learning_rate", 1e-3 * min(1.0, step / 10), step)
        w.flush()
    assert _invoke(str(tmp_path), "-q").exit_code == 0
    result = _invoke(str(tmp_path), "-q", "--fail-on", "warning", "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, load_compare_schema())
    assert doc["exit_code"] == 1 and doc["repeats"]
    assert doc["entries"][-1]["unstable"] == 1


def test_bad_target_is_a_one_line_error(tmp_path: Path, write_tb_run: Callable[..., None]) -> None:
    """--target nan is refused with exit 2."""
    write_tb_run(tmp_path / "a")
    write_tb_run(tmp_path / "b", steps=40)
    result = _invoke(str(tmp_path), "--target", "nan")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --target must be a finite loss; got nan")


def test_loss_window_reaches_every_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    """--loss-window is passed to the diagnosis of each compared run; 0 is refused."""
    from warmup_monitor import report as report_mod

    seen: list[int | None] = []
    real = report_mod.diagnose

    def spy(run: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("loss_window"))
        return real(run, **kwargs)

    monkeypatch.setattr(report_mod, "diagnose", spy)
    result = _invoke(str(SWEEP), "--loss-window", "3", "--jobs", "1", "-q")
    assert result.exit_code == 0, result.output
    assert seen == [3] * len(SWEEP_RUNS)
    bad = _invoke(str(SWEEP), "--loss-window", "0")
    assert bad.exit_code == 2 and "Invalid value for '--loss-window'" in bad.stderr
