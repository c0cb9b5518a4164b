"""``warmup-monitor report``: exact output, formats, options and exit codes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from detectors._types import Finding, ScheduleFit, Severity
from warmup_monitor import report as report_mod
from warmup_monitor.cli import main
from warmup_monitor.diagnosis import Advice, Diagnosis, Verdict
from warmup_monitor.render import load_schema
from warmup_monitor.run import Run


def _fit(run: Run) -> ScheduleFit:
    last = run.last_step or 0
    return ScheduleFit(1, last, 10, "linear", 1e-3, 10, "none", None, True, False, False)


def _stand_in(run: Run, *, ended: bool = False, loss_window: int | None = None) -> Diagnosis:
    """A deterministic diagnosis: run ``a`` warms up too briefly, every other run is healthy."""
    if run.path.name != "a":
        return Diagnosis(Verdict.HEALTHY, 0.9, "loss falls steadily", _fit(run))
    finding = Finding(
        "spike",
        Severity.CRITICAL,
        "loss",
        12,
        14,
        "loss jumps to 9.5 at step 12, 2 steps after the LR peak",
        {"value": 9.5, "threshold": 4.2, "lr": 1e-3},
    )
    advice = Advice("Warm up for 100 steps instead of 10", "warmup_steps", 10, 100, "10% of 1000")
    return Diagnosis(
        Verdict.WARMUP_TOO_SHORT,
        0.8,
        "loss spikes right after the 10-step warmup",
        _fit(run),
        (finding,),
        (advice,),
        {},
        12,
    )


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory, write_tb_run: Callable[..., None]) -> Path:
    """Two TensorBoard runs, ``a`` (60 steps) and ``b`` (40 steps)."""
    root = tmp_path_factory.mktemp("runs")
    write_tb_run(root / "a")
    write_tb_run(root / "b", steps=40)
    return root


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Diagnose with the deterministic stand-in, so the output is exact."""
    monkeypatch.setattr(report_mod, "diagnose", _stand_in)


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["report", *args], env=env)


def test_one_run_exact_text(runs_dir: Path, stand_in: None) -> None:
    """One run prints its verdict, schedule, findings and advice; exit 0 by default."""
    result = _invoke(str(runs_dir / "a"))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"a  (tensorboard: {runs_dir / 'a'})\n"
        "Verdict: warmup_too_short (confidence 0.80), first problem at step 12\n"
        "  loss spikes right after the 10-step warmup\n"
        "Schedule: linear warmup 10 steps (16.7% of run), peak LR 0.001 at step 10, "
        "no decay seen, last step 60\n"
        "Findings (1):\n"
        "  CRITICAL  spike  loss  steps 12-14  value=9.5  threshold=4.2  lr=0.001\n"
        "            loss jumps to 9.5 at step 12, 2 steps after the LR peak\n"
        "Advice:\n"
        "  * Warm up for 100 steps instead of 10\n"
        "    warmup_steps: 10 -> 100 (10% of 1000)\n"
    )
    assert result.stderr == ""


def test_folder_of_runs_prints_table_first(runs_dir: Path, stand_in: None) -> None:
    """A folder of runs: the summary table, worst first, then each run."""
    result = _invoke(str(runs_dir), "--quiet")
    assert result.exit_code == 0
    assert result.stdout == (
        "RUN  SOURCE       STEPS  VERDICT                  WARMUP      PEAK LR  FINAL LOSS"
        "  FIRST PROBLEM\n"
        "a    tensorboard     60  warmup_too_short (0.80)  10 (16.7%)    0.001         2.8"
        "             12\n"
        "b    tensorboard     40  healthy (0.90)           10 (25.0%)    0.001         3.2"
        "              -\n"
    )


@pytest.mark.parametrize(
    ("fail_on", "path", "code"),
    [
        ("never", "a", 0),
        ("warning", "a", 1),
        ("critical", "a", 1),
        ("warning", "b", 0),
        ("critical", ".", 1),
    ],
)
def test_fail_on_exit_codes(
    runs_dir: Path, stand_in: None, fail_on: str, path: str, code: int
) -> None:
    """--fail-on: exit 1 when a run reaches the level, else 0."""
    result = _invoke(str(runs_dir / path), "--fail-on", fail_on, "-q")
    assert result.exit_code == code


def test_json_to_file_validates(runs_dir: Path, tmp_path: Path, stand_in: None) -> None:
    """--format json -o FILE writes one schema-valid document and nothing to stdout."""
    out = tmp_path / "report.json"
    result = _invoke(str(runs_dir), "--format", "json", "-o", str(out))
    assert result.exit_code == 0
    assert result.stdout == ""
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, load_schema())
    assert [(r["name"], r["verdict"]) for r in doc["runs"]] == [
        ("a", "warmup_too_short"),
        ("b", "healthy"),
    ]
    assert doc["runs"][0]["findings"][0]["detector"] == "spike"


def test_json_to_stdout(runs_dir: Path, stand_in: None) -> None:
    """--format json prints the document on stdout."""
    result = _invoke(str(runs_dir / "b"), "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1 and doc["runs"][0]["verdict"] == "healthy"


def test_html_is_written(runs_dir: Path, tmp_path: Path, stand_in: None) -> None:
    """--html FILE writes the page and still prints the text report."""
    page = tmp_path / "r.html"
    result = _invoke(str(runs_dir), "--html", str(page), "-q")
    assert result.exit_code == 0
    assert result.stderr == f"HTML report written to {page}\n"
    text = page.read_text()
    assert text.count("<svg") == 3
    assert "<script" not in text


def test_html_escapes_log_content(
    tmp_path: Path, stand_in: None, write_tb_run: Callable[..., None]
) -> None:
    """A run whose folder and tag names hold <script> renders escaped."""
    evil = "<script>alert(1)</script>"
    run_dir = tmp_path / f"x{evil.replace('/', '_')}"
    write_tb_run(run_dir, loss_tag=f"loss{evil}")
    page = tmp_path / "r.html"
    result = _invoke(str(run_dir), "--metric", f"loss=loss{evil}", "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert "<script" not in text
    assert "loss&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_metric_override_and_since(runs_dir: Path, stand_in: None) -> None:
    """--metric maps a tag; --since drops earlier points (the run's note says so)."""
    result = _invoke(str(runs_dir / "b"), "--metric", "loss=train/loss", "--since", "20")
    assert result.exit_code == 0
    assert "Notes:\n  - points before step 20 ignored (--since 20)\n" in result.stdout


@pytest.mark.parametrize("bad", ["loss", "=x", "loss=", "loss:train/loss"])
def test_bad_metric_syntax_is_a_usage_error(runs_dir: Path, bad: str) -> None:
    """--metric without NAME=TAG is a usage error naming the expected form."""
    result = _invoke(str(runs_dir), "--metric", bad)
    assert result.exit_code == 2
    assert (
        f"Invalid value for '--metric': expected NAME=TAG, e.g. loss=train/loss; got '{bad}'"
        in result.stderr
    )


def test_missing_metric_tag_is_one_line_error(runs_dir: Path, stand_in: None) -> None:
    """A --metric tag absent from the run gives one Error line (listing the tags), exit 2."""
    result = _invoke(str(runs_dir / "a"), "--metric", "loss=nope")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: tag 'nope' for metric 'loss' not found in run 'a'")


def test_missing_path_is_one_line_error(tmp_path: Path) -> None:
    """A path that does not exist: one Error line, exit 2."""
    result = _invoke(str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: path '{tmp_path / 'nope'}' does not exist. Check the path and try again\n"
    )


def test_unknown_log_format_is_one_line_error(tmp_path: Path) -> None:
    """A folder with no known logs: one Error line naming what was looked for, exit 2."""
    (tmp_path / "notes.txt").write_text("hello")
    result = _invoke(str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: no training logs found in '{tmp_path}' (looked for: ")
    assert result.stderr.count("\n") == 1


def test_unknown_output_format_is_a_usage_error(runs_dir: Path) -> None:
    """--format xml is rejected by the option parser, exit 2."""
    result = _invoke(str(runs_dir), "--format", "xml")
    assert result.exit_code == 2
    assert "Invalid value for '--format': 'xml' is not one of 'text', 'json'." in result.stderr


def test_unreadable_run_among_several(runs_dir: Path, tmp_path: Path, stand_in: None) -> None:
    """One corrupted run among several: the others are reported, it shows its error, exit 0."""
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "trainer_state.json").write_text('{"log_history": [')
    result = _invoke(str(runs_dir / "b"), str(tmp_path / "broken"), "-q")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[1].startswith("b ")
    assert lines[2].startswith("broken  trainer_state  error: '")
    assert "is not valid JSON" in lines[2]
    assert result.stderr.startswith("Warning: run 'broken' was not read: '")


def test_no_colour_when_not_a_terminal(runs_dir: Path, stand_in: None) -> None:
    """Output to a pipe carries no ANSI escapes."""
    result = _invoke(str(runs_dir), env={"NO_COLOR": ""})
    assert "\x1b[" not in result.stdout


def test_real_diagnosis_json_validates(runs_dir: Path) -> None:
    """With the real diagnose(), the JSON of a folder of runs follows the schema."""
    result = _invoke(str(runs_dir), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, load_schema())
    assert {r["verdict"] for r in doc["runs"]} <= {v.value for v in Verdict}
    assert all(r["schedule"]["peak_lr"] == pytest.approx(1e-3) for r in doc["runs"])


REPO = Path(__file__).resolve().parents[2]
SAMPLE_LOGS = REPO / "sample_logs"
SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "report_sample_logs.txt"
needs_samples = pytest.mark.skipif(
    not (SAMPLE_LOGS / "MANIFEST.json").is_file(), reason="sample_logs/ not generated"
)


@needs_samples
def test_sample_logs_text_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text report of every sample run matches the reviewed snapshot.

    After an intended change of the diagnosis or the layout, regenerate it with
    ``WARMUP_MONITOR_UPDATE_SNAPSHOTS=1 pytest tests/commands/test_report.py`` and review the diff.
    """
    monkeypatch.chdir(REPO)
    result = _invoke("sample_logs")
    assert result.exit_code == 0, result.output
    if os.environ.get("WARMUP_MONITOR_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == SNAPSHOT.read_text(encoding="utf-8")


@needs_samples
def test_sample_logs_json_and_html(tmp_path: Path) -> None:
    """Every sample run gets a schema-valid JSON entry and a plot in the HTML page."""
    manifest = json.loads((SAMPLE_LOGS / "MANIFEST.json").read_text())
    page = tmp_path / "samples.html"
    result = _invoke(str(SAMPLE_LOGS), "--format", "json", "--html", str(page))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, load_schema())
    names = {s["name"] for s in manifest["scenarios"]}
    assert {r["name"] for r in doc["runs"]} == names
    assert all(r["error"] is None for r in doc["runs"])
    html = page.read_text()
    assert html.count("<svg") == len(names) + 1
    assert "<script" not in html


def test_terminal_escapes_control_characters(
    tmp_path: Path, write_tb_run: Callable[..., None]
) -> None:
    """Folder and tag names holding ESC, BEL, CR, newline and a bidi override are shown as
    escapes in the table and the run's details, with or without colour: no forged lines."""
    import re

    from warmup_monitor.render import render_text
    from warmup_monitor.report import build_report

    evil = "x\x1b]0;pwned\x07\x1b[2J\rCRITICAL forged\n\u202eWARNING"
    write_tb_run(tmp_path / evil, loss_tag=f"loss{evil}")
    write_tb_run(tmp_path / "b", steps=40)
    metrics = {"loss": f"loss{evil}"}
    result = _invoke(str(tmp_path), "--metric", f"loss=loss{evil}")
    report = build_report([tmp_path], metrics=metrics)
    coloured = re.sub(r"\x1b\[[0-9;]*m", "", render_text(report, color=True))
    for text in (result.stdout, coloured):
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f\u202e]", text), text
        assert not [line for line in text.splitlines() if line.startswith(("CRITICAL", "WARN"))]
        assert "x\\x1b]0;pwned\\x07\\x1b[2J\\rCRITICAL forged\\n\\u202eWARNING" in text


def test_json_non_finite_evidence_is_null_and_listed() -> None:
    """A real NaN run: each non_finite finding's evidence.value is null and listed in its
    non_finite map (what the README promises), and the schema refuses a string there."""
    sample = Path(__file__).resolve().parents[2] / "sample_logs" / "warmup_too_short_nan"
    result = _invoke(str(sample), "--format", "json")
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, load_schema())
    run = doc["runs"][0]
    nan = [f for f in run["findings"] if f["detector"] == "non_finite"]
    nan = [f for f in nan if f["evidence"].get("hidden") is not True]  # 0.0 + NaN grad norm
    assert nan
    for finding in nan:
        assert finding["evidence"]["value"] is None
        assert finding["non_finite"]["evidence.value"] in ("nan", "inf", "-inf")
        assert finding["evidence"]["kinds"] in ("NaN", "+Inf", "-Inf", "NaN/+Inf", "NaN/-Inf")
    nan[0]["evidence"]["value"] = "NaN"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, load_schema())
    nan[0]["evidence"]["value"] = None
    nan[0]["non_finite"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, load_schema())


def test_jobs_give_the_same_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--jobs 2`` (worker processes) and ``--jobs 1`` (none) write the same JSON."""
    from warmup_monitor import _parallel

    samples = Path(__file__).resolve().parents[2] / "sample_logs"
    monkeypatch.setattr(_parallel, "MIN_ITEMS", 2)
    outputs = []
    for jobs in ("1", "2"):
        result = CliRunner().invoke(main, ["report", str(samples), "--format", "json", "-j", jobs])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0] == outputs[1]
    assert len(json.loads(outputs[0])["runs"]) >= 8
    bad = CliRunner().invoke(main, ["report", str(samples), "--jobs", "0"])
    assert bad.exit_code == 2 and "--jobs" in bad.output


def test_a_log_that_records_no_end_is_read_as_complete(
    tmp_path: Path, torch_writer: Callable[..., object]
) -> None:
    """A TensorBoard log alone (no config, no end recorded) whose LR still rises at its last
    step: the post-run report says the warmup outlasted the run; with --running it is a run
    still warming up."""
    writer = torch_writer(tmp_path / "runs")
    for step in range(10, 201, 10):
        writer.add_scalar("train/loss", 2.0 + 2.5 * 0.99**step, step)
        writer.add_scalar("train/learning_rate", 1e-3 * step / 300, step)
    writer.close()
    post = _invoke(str(tmp_path / "runs"))
    assert "Verdict: warmup_too_long" in post.output
    assert "the LR never reached its peak" in post.output
    live = _invoke("--running", str(tmp_path / "runs"))
    assert "Verdict: healthy" in live.output
    assert "the warmup has not ended yet (the run has not finished)" in live.output


def test_loss_window_says_what_a_logged_loss_stands_for(
    tmp_path: Path, torch_writer: Callable[..., object]
) -> None:
    """A custom loop's TensorBoard log, every 5 steps and no config: one logged loss x1.3
    above its neighbours as the LR warms up. Read as a mean over 5 steps (the spacing) it is a
    catapult; with --loss-window 1 it is one noisy step. The JSON records what was stated."""
    writer = torch_writer(tmp_path / "loop")
    for step in range(5, 201, 5):
        lr = 1e-3 * step / 20 if step <= 20 else 1e-3 * (200 - step) / 180
        loss = (4.0 * 0.9835**step + 1.5) * (1.3 if step == 20 else 1.0)
        writer.add_scalar("loss", loss, step)
        writer.add_scalar("lr", lr, step)
    writer.close()

    def catapults(*options: str) -> tuple[list[dict], dict]:
        result = _invoke(str(tmp_path / "loop"), "--format", "json", *options)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        jsonschema.validate(doc, load_schema())
        findings = doc["runs"][0]["findings"]
        return [f for f in findings if f["detector"] == "catapult"], doc

    as_mean, doc = catapults()
    assert doc["loss_window"] is None
    assert [f["evidence"]["averaged_over"] for f in as_mean] == [5]
    as_single, doc = catapults("--loss-window", "1", "--html", str(tmp_path / "r.html"))
    assert doc["loss_window"] == 1
    assert as_single == []
    assert "training loss read as single steps" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("bad", ["0", "-1", "2.5", "all"])
def test_bad_loss_window_is_a_usage_error(runs_dir: Path, bad: str) -> None:
    result = _invoke(str(runs_dir), "--loss-window", bad)
    assert result.exit_code == 2
    assert "Invalid value for '--loss-window'" in result.stderr
    assert "Traceback" not in result.output
