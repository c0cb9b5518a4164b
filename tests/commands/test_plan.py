"""Tests for ``warmup-monitor plan``: output, exit codes, JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from warmup_monitor.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "plan"

JSON_TOP_KEYS = {
    "schema",
    "config",
    "inputs",
    "steps",
    "warmup",
    "guide",
    "findings",
    "recommendations",
    "exit_code",
}


def _run(*args: str) -> object:
    return CliRunner().invoke(main, ["plan", *args])


def test_guide_example_text() -> None:
    """The guide's example prints the batch, step and warmup arithmetic and exits 0."""
    result = _run(str(FIXTURES / "guide_example.yaml"), "--gpus", "2", "--samples", "10000")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "effective batch  64 = 8 per device x 4 accumulation x 2 GPUs" in out
    assert "471 = ceil(3 epochs x 157 steps per epoch)" in out
    assert "the guide's estimate: 10,000 / 64 = 156.25" in out
    assert "10% of the run; the LR reaches its peak 1e-4 at step 48" in out


def test_guide_example_floor_rounding() -> None:
    """--rounding floor reproduces the guide's 156 steps per epoch and 468 total."""
    result = _run(str(FIXTURES / "guide_example.yaml"), "--gpus", "2", "--rounding", "floor")
    assert result.exit_code == 0
    assert "156 = floor(625 / 4 accumulation) (transformers < 4.52)" in result.stdout
    assert "ceil(0.1 x 468) = 47" in result.stdout


def test_case1_warns_and_recommends() -> None:
    """A too-long warmup is a warning with a concrete recommendation, exit code 0."""
    result = _run(str(FIXTURES / "case1_customer_support.yaml"), "--rounding", "floor")
    assert result.exit_code == 0
    assert "warning  warmup_too_long" in result.stdout
    assert (
        "warmup_steps 200 -> 50: warmup_steps 200 is 43% of 468 total steps; "
        "the guide's maximum is 20%: use 50 (10% of 468 steps is 47, raised to the guide's "
        "minimum of 50 steps)" in result.stdout
    )


def test_errors_exit_1(tmp_path: Path) -> None:
    """A warmup longer than the run exits 1 and says so."""
    path = tmp_path / "train.yaml"
    path.write_text("stage: sft\nwarmup_steps: 1000\nlearning_rate: 1e-4\n", encoding="utf-8")
    result = _run(str(path), "--samples", "2000")
    assert result.exit_code == 1
    assert "error    warmup_longer_than_run" in result.stdout


def test_unknown_total_exits_0_with_formula(tmp_path: Path) -> None:
    """Without --samples or max_steps the plan warns and prints the per-sample formula."""
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 5e-5\nwarmup_steps: 100\n", encoding="utf-8")
    result = _run(str(path))
    assert result.exit_code == 0
    assert "total_steps_unknown" in result.stdout
    assert "ceil(3 x ceil(ceil(N / 8) / 1))" in result.stdout


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.yaml", (FIXTURES / "bad.yaml").read_text(encoding="utf-8")),
        ("train.txt", "learning_rate: 1e-4\n"),
        ("missing.yaml", None),
    ],
)
def test_bad_config_one_line_error(tmp_path: Path, name: str, text: str | None) -> None:
    """Bad YAML, an unknown extension or a missing file: one 'Error:' line, exit 2, no traceback."""
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    result = _run(str(path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert name in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_bad_model_size_is_usage_error() -> None:
    """An unparseable --model-size is a one-line error, exit 2."""
    result = _run(str(FIXTURES / "case2_tech_docs.yaml"), "--model-size", "huge")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: model size 'huge'")


def test_json_output_parses_with_stable_keys() -> None:
    """--format json is one JSON document with the documented keys."""
    result = _run(str(FIXTURES / "case1_customer_support.yaml"), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == JSON_TOP_KEYS
    assert data["schema"] == "warmup-monitor/plan@1"
    assert data["steps"]["total_steps"] == 471
    assert data["warmup"]["steps"] == 200
    assert data["findings"][0]["code"] == "warmup_too_long"
    assert data["recommendations"][0]["suggested"] == 50
    assert {c["basis"] for c in data["guide"]} == {"share", "dataset", "model", "method", "adam"}


def test_json_nested_keys_are_stable() -> None:
    """The nested JSON sections keep their documented keys."""
    result = _run(str(FIXTURES / "guide_example.yaml"), "--format", "json", "--gpus", "2")
    data = json.loads(result.stdout)
    assert set(data["steps"]) == {
        "effective_batch_size",
        "batches_per_epoch",
        "steps_per_epoch",
        "total_steps",
        "epochs_run",
        "guide_steps_per_epoch",
        "batches_rule",
        "steps_per_epoch_rule",
        "total_steps_rule",
        "formula",
    }
    assert set(data["warmup"]) == {"steps", "share", "rule", "setting"}
    assert set(data["inputs"]) == {
        "samples",
        "samples_source",
        "gpus",
        "rounding",
        "model_size_b",
        "model_size_source",
    }
    assert set(data["findings"][0]) == {"code", "severity", "message"}
    assert {"learning_rate", "warmup_steps", "warmup_ratio", "method"} <= set(data["config"])
    assert (data["steps"]["effective_batch_size"], data["steps"]["total_steps"]) == (64, 471)


def test_json_exit_code_field_matches_process(tmp_path: Path) -> None:
    """The exit_code field in JSON equals the process exit code."""
    path = tmp_path / "train.yaml"
    path.write_text("stage: sft\nwarmup_steps: 10\nwarmup_ratio: 0.1\n", encoding="utf-8")
    result = _run(str(path), "--samples", "5000", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["exit_code"] == 1


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<?xml")])
def test_plot_writes_file(tmp_path: Path, suffix: str, magic: bytes) -> None:
    """--plot writes a PNG or SVG by extension."""
    out = tmp_path / f"schedule{suffix}"
    result = _run(str(FIXTURES / "case2_tech_docs.yaml"), "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(magic)
    assert out.stat().st_size > 1000


def test_plot_needs_total_steps(tmp_path: Path) -> None:
    """--plot without a known total is a one-line error and writes nothing."""
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 5e-5\n", encoding="utf-8")
    out = tmp_path / "lr.png"
    result = _run(str(path), "--plot", str(out))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: cannot plot")
    assert not out.exists()


def test_plot_rejects_unknown_extension(tmp_path: Path) -> None:
    """--plot with an extension other than .png/.svg is a one-line error."""
    result = _run(str(FIXTURES / "case2_tech_docs.yaml"), "--plot", str(tmp_path / "lr.jpg"))
    assert result.exit_code == 2
    assert "png" in result.stderr


@pytest.mark.parametrize("text", ['{"a": 1}', "{}"])
def test_a_mapping_without_training_arguments_says_what_is_missing(
    tmp_path: Path, text: str
) -> None:
    """A JSON object with none of the keys the plan reads is not taken for TrainingArguments
    with every value defaulted: one line naming what is missing, exit 2."""
    path = tmp_path / "x.json"
    path.write_text(text)
    result = _run(str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: '{path}' has none of the training arguments")
    assert "learning_rate" in result.stderr and "num_train_epochs" in result.stderr
    assert "TrainingArguments.to_json_string()" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
