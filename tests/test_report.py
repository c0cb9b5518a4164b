"""The report model: finding, reading and diagnosing every run under the given paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from detectors._types import Finding, Severity
from warmup_monitor import _parallel
from warmup_monitor import report as report_mod
from warmup_monitor.diagnosis import Diagnosis, Verdict
from warmup_monitor.errors import FormatError, InputError
from warmup_monitor.points import Points
from warmup_monitor.report import (
    build_report,
    displayed_loss,
    drop_before,
    is_problem,
    reaches,
    run_level,
)
from warmup_monitor.run import Run


def _finding(severity: Severity, step: int = 5) -> Finding:
    return Finding("spike", severity, "loss", step, None, f"loss spike at step {step}", {})


def _diagnosis(verdict: Verdict, *severities: Severity, confidence: float = 0.8) -> Diagnosis:
    return Diagnosis(
        verdict=verdict,
        confidence=confidence,
        summary=verdict.value,
        schedule=None,
        findings=tuple(_finding(s) for s in severities),
    )


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory, write_tb_run: Callable[..., None]) -> Path:
    """A folder with two TensorBoard runs, ``a`` and ``b``."""
    root = tmp_path_factory.mktemp("runs")
    write_tb_run(root / "a")
    write_tb_run(root / "b", steps=40)
    return root


@pytest.fixture
def fake_diagnose(monkeypatch: pytest.MonkeyPatch) -> list[Run]:
    """Replace diagnose() with a stand-in that records the runs it saw."""
    seen: list[Run] = []

    def diagnose(run: Run, *, ended: bool = False, loss_window: int | None = None) -> Diagnosis:
        seen.append(run)
        return _diagnosis(Verdict.HEALTHY)

    monkeypatch.setattr(report_mod, "diagnose", diagnose)
    return seen


def test_folder_of_runs_reports_each(runs_dir: Path, fake_diagnose: list[Run]) -> None:
    """Every run under the folder is read and diagnosed, with its last step and final loss."""
    report = build_report([runs_dir])
    assert [r.name for r in report.runs] == ["a", "b"]
    assert [r.last_step for r in report.runs] == [60, 40]
    assert report.runs[1].final_loss == pytest.approx(4.0 - 0.02 * 40)
    assert len(fake_diagnose) == 2


def test_progress_is_reported_per_run(runs_dir: Path, fake_diagnose: list[Run]) -> None:
    """The progress callback sees each run before it is read, then the end."""
    calls: list[tuple[int, int, str]] = []
    build_report([runs_dir], progress=lambda *a: calls.append(a))
    assert calls == [(0, 2, "a"), (1, 2, "b"), (2, 2, "")]


def test_same_run_through_two_paths_is_reported_once(
    runs_dir: Path, fake_diagnose: list[Run]
) -> None:
    """A folder and one of its runs given together report that run once."""
    report = build_report([runs_dir, runs_dir / "a"])
    assert [r.path.name for r in report.runs] == ["a", "b"]


def test_metric_override_reaches_the_run(
    tmp_path: Path, fake_diagnose: list[Run], write_tb_run: Callable[..., None]
) -> None:
    """--metric loss=TAG maps the canonical loss to a custom tag."""
    write_tb_run(tmp_path / "custom", loss_tag="my/objective")
    report = build_report([tmp_path / "custom"], metrics={"loss": "my/objective"})
    assert report.runs[0].run is not None
    assert report.runs[0].run.metric_map["loss"] == "my/objective"
    assert report.runs[0].final_loss == pytest.approx(4.0 - 0.02 * 60)


def test_since_drops_earlier_points(runs_dir: Path, fake_diagnose: list[Run]) -> None:
    """--since STEP hands diagnose() only the points at or after STEP, and says so."""
    report = build_report([runs_dir / "a"], since=25)
    run = fake_diagnose[0]
    steps, _ = run.series("loss")
    assert steps[0] == 25 and steps[-1] == 60
    assert run.series("learning_rate")[0][0] == 25
    assert "points before step 25 ignored (--since 25)" in run.notes
    assert report.since == 25


def test_drop_before_keeps_tags_separate() -> None:
    """Filtering keeps every tag's slice right, including a tag left with no points."""
    from warmup_monitor.points import Points

    rows = [("a", s, float(s), 0.0) for s in range(10)] + [("b", 1, 5.0, 0.0)]
    rows += [("c", s, -float(s), 0.0) for s in range(5, 10)]
    run = Run.from_points(Points.from_rows(rows), name="r", path=Path("r"), source="x")
    cut = drop_before(run, 5)
    assert cut.tags == ["a", "c"]
    np.testing.assert_array_equal(cut.series("a")[1], np.arange(5, 10, dtype=float))
    np.testing.assert_array_equal(cut.series("c")[1], -np.arange(5, 10, dtype=float))
    assert not cut.has("b")


def test_one_unreadable_run_among_several(
    runs_dir: Path, tmp_path: Path, fake_diagnose: list[Run]
) -> None:
    """A corrupted run is reported with its one-line error; the others are still diagnosed."""
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "trainer_state.json").write_text('{"log_history": [')
    report = build_report([runs_dir, tmp_path])
    names = [r.name for r in report.runs]
    # Runs are named by the shortest path suffix that tells them apart.
    assert names == ["a", "b", "broken"]
    broken = report.runs[2]
    assert broken.error is not None
    assert "not valid JSON" in broken.error
    assert "\n" not in broken.error
    assert report.runs[0].ok and report.runs[1].ok
    assert report.worst_first()[-1] is broken


def test_single_unreadable_run_raises_its_own_error(tmp_path: Path) -> None:
    """With one run that cannot be read, its own library error is raised (exit 2 in the CLI)."""
    (tmp_path / "trainer_state.json").write_text('{"log_history": [')
    with pytest.raises(FormatError, match="not valid JSON"):
        build_report([tmp_path])


def test_all_runs_unreadable_raises(tmp_path: Path) -> None:
    """When no run of several can be read, one InputError names the first failure."""
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainer_state.json").write_text("{")
    with pytest.raises(InputError, match=r"none of the 2 runs could be read \(first: x: "):
        build_report([tmp_path])


def test_missing_path_raises(tmp_path: Path) -> None:
    """A path that does not exist is an InputError naming it."""
    with pytest.raises(InputError, match="does not exist"):
        build_report([tmp_path / "nope"])


def test_negative_since_is_rejected(runs_dir: Path) -> None:
    """--since below 0 is an InputError."""
    with pytest.raises(InputError, match="--since must be a step >= 0; got -1"):
        build_report([runs_dir], since=-1)


@pytest.mark.parametrize(
    ("verdict", "severities", "level"),
    [
        (Verdict.HEALTHY, (), None),
        (Verdict.INSUFFICIENT_DATA, (), None),
        (Verdict.HEALTHY, (Severity.INFO,), Severity.INFO),
        (Verdict.HEALTHY, (Severity.CRITICAL,), Severity.CRITICAL),
        (Verdict.WARMUP_TOO_LONG, (), Severity.WARNING),
        (Verdict.WARMUP_TOO_LONG, (Severity.INFO,), Severity.WARNING),
        (Verdict.WARMUP_TOO_SHORT, (Severity.WARNING, Severity.CRITICAL), Severity.CRITICAL),
        (Verdict.NUMERICAL_INSTABILITY, (Severity.CRITICAL,), Severity.CRITICAL),
    ],
)
def test_run_level(verdict: Verdict, severities: tuple[Severity, ...], level: Severity) -> None:
    """A run's --fail-on level: its worst finding; a problem verdict is at least a warning."""
    assert run_level(_diagnosis(verdict, *severities)) == level


@pytest.mark.parametrize("verdict", list(Verdict))
def test_is_problem_is_every_verdict_but_healthy_and_insufficient_data(verdict: Verdict) -> None:
    """Only healthy and insufficient_data are calm; even with a critical finding they stay calm."""
    calm = verdict in (Verdict.HEALTHY, Verdict.INSUFFICIENT_DATA)
    assert is_problem(_diagnosis(verdict, Severity.CRITICAL)) is not calm


@pytest.mark.parametrize(
    ("fail_on", "levels", "expected"),
    [
        ("never", ((Verdict.LR_TOO_HIGH, Severity.CRITICAL),), False),
        ("warning", ((Verdict.HEALTHY, None),), False),
        ("warning", ((Verdict.HEALTHY, None), (Verdict.WARMUP_TOO_LONG, None)), True),
        ("critical", ((Verdict.WARMUP_TOO_LONG, Severity.WARNING),), False),
        ("critical", ((Verdict.HEALTHY, Severity.CRITICAL),), True),
    ],
)
def test_reaches(fail_on: str, levels: tuple, expected: bool) -> None:
    """--fail-on never/warning/critical against the runs' levels."""
    from warmup_monitor.report import Report, RunReport

    runs = tuple(
        RunReport(
            f"r{i}",
            Path(f"r{i}"),
            "x",
            diagnosis=_diagnosis(v, *([s] if s else [])),
        )
        for i, (v, s) in enumerate(levels)
    )
    assert reaches(Report((Path("."),), runs), fail_on) is expected


def test_worst_first_order() -> None:
    """Critical problems, then warnings, then calm verdicts, unreadable runs last."""
    from warmup_monitor.report import Report, RunReport

    def rr(name: str, d: Diagnosis | None) -> RunReport:
        return RunReport(name, Path(name), "x", diagnosis=d, error=None if d else "bad")

    report = Report(
        (Path("."),),
        (
            rr("healthy", _diagnosis(Verdict.HEALTHY)),
            rr("broken", None),
            rr("long", _diagnosis(Verdict.WARMUP_TOO_LONG, Severity.WARNING)),
            rr("short", _diagnosis(Verdict.WARMUP_TOO_SHORT, Severity.CRITICAL)),
            rr(
                "short-sure",
                _diagnosis(Verdict.WARMUP_TOO_SHORT, Severity.CRITICAL, confidence=0.95),
            ),
            rr("few", _diagnosis(Verdict.INSUFFICIENT_DATA)),
            rr("nan-at-0", _diagnosis(Verdict.HEALTHY, Severity.CRITICAL)),
        ),
    )
    assert [r.name for r in report.worst_first()] == [
        "short-sure",
        "short",
        "long",
        "nan-at-0",
        "few",
        "healthy",
        "broken",
    ]


def test_unexpected_error_in_one_run_keeps_the_others(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug hit by one run of several is shown as its error; alone, it propagates."""

    def diagnose(run: Run, *, ended: bool = False, loss_window: int | None = None) -> Diagnosis:
        if run.path.name == "a":
            raise RuntimeError("boom")
        return _diagnosis(Verdict.HEALTHY)

    monkeypatch.setattr(report_mod, "diagnose", diagnose)
    report = build_report([runs_dir])
    assert report.runs[0].error == "unexpected RuntimeError: boom (a bug: please report it)"
    assert report.runs[1].ok
    with pytest.raises(RuntimeError, match="boom"):
        build_report([runs_dir / "a"])


def test_displayed_loss_shows_the_trainers_hidden_nan() -> None:
    """A loss logged as 0.0 beside a NaN grad norm is shown (and reported as final) as NaN."""
    rows = [("train/loss", s, 2.0 - 0.1 * s, 0.0) for s in range(1, 6)]
    rows += [("train/grad_norm", s, 1.0, 0.0) for s in range(1, 6)]
    rows += [("train/loss", 6, 0.0, 0.0), ("train/grad_norm", 6, float("nan"), 0.0)]
    # A genuine 0.0 with a finite grad norm stays 0.0.
    rows += [("train/loss", 7, 0.0, 0.0), ("train/grad_norm", 7, 0.5, 0.0)]
    run = Run.from_points(Points.from_rows(rows), name="r", path=Path("r"), source="test")
    steps, loss = displayed_loss(run)
    assert steps.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert np.isnan(loss[5]) and loss[6] == 0.0
    assert np.isfinite(loss[:5]).all()
    assert run.series("loss")[1][5] == 0.0  # the run itself is unchanged


def test_many_runs_in_worker_processes_give_the_same_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs read and diagnosed in parallel: the same report, in the same order, same progress."""
    from warmup_monitor.render import render_json

    samples = Path(__file__).resolve().parents[1] / "sample_logs"
    calls: list[list[tuple[int, int, str]]] = [[], []]
    alone = build_report([samples], progress=lambda *a: calls[0].append(a), workers=1)
    monkeypatch.setattr(_parallel, "MIN_ITEMS", 2)
    assert _parallel.worker_count(len(alone.runs), 2) == 2
    parallel = build_report([samples], progress=lambda *a: calls[1].append(a), workers=2)
    assert len(parallel.runs) >= 8
    assert render_json(parallel) == render_json(alone)
    assert calls[1] == calls[0]
