"""The post-run report model: every run under some paths, read and diagnosed.

:func:`build_report` is what ``warmup-monitor report`` calls; the renderers in
:mod:`warmup_monitor.render` turn the :class:`Report` it returns into text, HTML or JSON.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors._types import Severity

from ._parallel import ordered_map, worker_count
from .diagnosis import Diagnosis, Verdict, check_loss_window, diagnose
from .discover import RunRef, find_runs, read_run, shortest_names
from .errors import InputError, WarmupMonitorError, one_line
from .remote import is_url, mirrored
from .run import Run

__all__ = [
    "FAIL_ON_CHOICES",
    "ProgressCallback",
    "Report",
    "RunReport",
    "build_report",
    "displayed_loss",
    "drop_before",
    "is_problem",
    "reaches",
    "run_level",
]

#: ``progress(done, total, name)``: called before each run is read (``done`` runs finished so
#: far, ``name`` the run about to be read) and once more with ``done == total`` at the end.
ProgressCallback = Callable[[int, int, str], None]

#: Values of ``--fail-on``.
FAIL_ON_CHOICES: tuple[str, ...] = ("never", "warning", "critical")

# Verdicts that say nothing is wrong with the warmup; every other verdict is a problem.
_CALM_VERDICTS = frozenset({Verdict.HEALTHY, Verdict.INSUFFICIENT_DATA})


@dataclass(frozen=True)
class RunReport:
    """One run of the report: its diagnosis, or the one-line error that kept it from being read.

    Exactly one of ``diagnosis`` and ``error`` is set. ``run`` is the run as diagnosed (after
    ``since`` filtering); the HTML renderer draws its curves.
    """

    name: str
    path: Path
    source: str
    run: Run | None = None
    diagnosis: Diagnosis | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.diagnosis is not None

    @property
    def last_step(self) -> int | None:
        return self.run.last_step if self.run is not None else None

    @property
    def final_loss(self) -> float | None:
        """The last logged loss (NaN/Inf kept: a run that ends in NaN says so, also when the
        HF Trainer logged that NaN as 0.0), or ``None``."""
        if self.run is None or not self.run.has("loss"):
            return None
        _, values = displayed_loss(self.run)
        return float(values[-1]) if len(values) else None

    @property
    def level(self) -> Severity | None:
        """How bad this run is for ``--fail-on`` (see :func:`run_level`)."""
        return run_level(self.diagnosis) if self.diagnosis is not None else None


@dataclass(frozen=True)
class Report:
    """Every run found under ``paths``, in the order found."""

    paths: tuple[Path, ...]
    runs: tuple[RunReport, ...] = field(default_factory=tuple)
    since: int | None = None
    loss_window: int | None = None  # as stated by the user; None: what each log says

    @property
    def failed(self) -> tuple[RunReport, ...]:
        return tuple(r for r in self.runs if not r.ok)

    def worst_first(self) -> list[RunReport]:
        """Runs ordered for the summary table: critical problems first, unreadable runs last."""
        return sorted(self.runs, key=_badness_key)


def is_problem(diagnosis: Diagnosis) -> bool:
    """True for a verdict that says something is wrong (not ``healthy``/``insufficient_data``)."""
    return diagnosis.is_problem


def run_level(diagnosis: Diagnosis) -> Severity | None:
    """The severity a diagnosis reaches, for ``--fail-on`` (see :attr:`Diagnosis.level`)."""
    return diagnosis.level


def reaches(report: Report, fail_on: str) -> bool:
    """True when some run reaches the ``--fail-on`` level (``never`` never does)."""
    if fail_on not in FAIL_ON_CHOICES:
        raise InputError(
            f"--fail-on must be one of {', '.join(FAIL_ON_CHOICES)}; got '{fail_on}'",
            "Use --fail-on warning or --fail-on critical",
        )
    if fail_on == "never":
        return False
    threshold = Severity(fail_on)
    return any(r.level is not None and r.level >= threshold for r in report.runs)


def _badness_key(rr: RunReport) -> tuple[int, float, str]:
    if rr.diagnosis is None:
        return (9, 0.0, rr.name)
    verdict = Verdict(rr.diagnosis.verdict)
    level = rr.level
    if verdict in _CALM_VERDICTS:
        # A calm verdict with a critical finding (e.g. NaN at step 1 with LR 0) still sorts high.
        rank = 5 if verdict is Verdict.INSUFFICIENT_DATA else 6
        if level is not None:
            rank = min(rank, 4 - level.rank)
    else:
        rank = 2 - (level.rank if level is not None else 1)
    return (rank, -float(rr.diagnosis.confidence), rr.name)


def displayed_loss(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The loss as a report shows it: a 0.0 logged beside a non-finite grad norm is NaN.

    The HF Trainer logs such a loss in place of NaN; shown as 0.0 it would read as a perfect
    final loss and pull a smoothed curve down.
    """
    steps, loss = run.series("loss")
    loss = loss.astype(np.float64, copy=False)
    if not run.has("grad_norm") or not (loss == 0.0).any():
        return steps, loss
    grad_steps, grad = run.series("grad_norm")
    hidden = (loss == 0.0) & np.isin(steps, grad_steps[~np.isfinite(grad)])
    if not hidden.any():
        return steps, loss
    out = loss.copy()
    out[hidden] = np.nan
    return steps, out


def drop_before(run: Run, step: int) -> Run:
    """A copy of ``run`` without the points logged before ``step`` (``--since``)."""
    return run.between(first_step=step, note=f"points before step {step} ignored (--since {step})")


def build_report(
    paths: Sequence[str | os.PathLike[str]],
    *,
    metrics: Mapping[str, str] | None = None,
    since: int | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    running: bool = False,
    loss_window: int | None = None,
) -> Report:
    """Find every run under ``paths``, read and diagnose each one.

    A report is post-run: a log that records no end (TensorBoard, CSV) is taken as complete
    (``diagnose(run, ended=True)``) unless ``running`` says the runs are still going.
    ``loss_window`` is passed to :func:`~warmup_monitor.diagnosis.diagnose` for every run.

    From 16 runs up, runs are read and diagnosed by worker processes, one per CPU (at most 8)
    unless ``workers`` says how many (``1``: all in this process); the report is the same.

    A run that cannot be read (corrupted file, missing metric …) becomes a :class:`RunReport`
    with ``error`` set and the others are still reported. Raises the library error itself when
    a path holds no run at all, or when no run could be read (with one run, its own error).
    """
    if not paths:
        raise InputError("no path given", "Pass a run folder, a log file or a folder of runs")
    if since is not None and since < 0:
        raise InputError(f"--since must be a step >= 0; got {since}", "Pass a training step")
    check_loss_window(loss_window)
    out: list[RunReport] = []
    errors: list[BaseException] = []
    # URLs are read from local mirrors (deleted on leaving); reports show the URLs.
    with mirrored(paths) as (local, display):
        refs = _unique_refs(local)
        total = len(refs)
        each = _each_report(refs, metrics, since, progress, workers, running, loss_window)
        for report, error in each:
            out.append(_displayed(report, display))
            if error is not None:
                errors.append(error)
    roots = tuple(display(lp) if is_url(p) else Path(p) for p, lp in zip(paths, local, strict=True))
    if progress is not None:
        progress(total, total, "")
    out = _unique_names(out, refs)
    if errors and len(errors) == len(out):
        if len(out) == 1:
            only = errors[0]
            if isinstance(only, OSError) and not isinstance(
                only, (PermissionError, FileNotFoundError)
            ):
                raise InputError(one_line(only), "Check the path") from only
            raise only
        raise InputError(
            f"none of the {len(out)} runs could be read (first: {out[0].name}: {out[0].error})",
            "Check the files, or point at a single run to see its error",
        )
    return Report(paths=roots, runs=tuple(out), since=since, loss_window=loss_window)


def _each_report(
    refs: list[RunRef],
    metrics: Mapping[str, str] | None,
    since: int | None,
    progress: ProgressCallback | None,
    workers: int | None,
    running: bool = False,
    loss_window: int | None = None,
) -> Iterator[tuple[RunReport, BaseException | None]]:
    """``_report_one`` of every ref, in order; in worker processes when that pays."""
    total = len(refs)
    options = {"metrics": metrics, "since": since, "running": running, "loss_window": loss_window}
    if worker_count(total, workers) < 2:
        job = functools.partial(_report_one, single=total == 1, **options)
    else:
        job = functools.partial(_report_in_worker, **options)

    def before(done: int) -> None:
        if progress is not None:
            progress(done, total, refs[done].name)

    yield from ordered_map(job, refs, workers=workers, before=before)


def _report_in_worker(
    ref: RunRef,
    *,
    metrics: Mapping[str, str] | None,
    since: int | None,
    running: bool = False,
    loss_window: int | None = None,
) -> tuple[RunReport, BaseException | None]:
    report, error = _report_one(
        ref, metrics=metrics, since=since, single=False, running=running, loss_window=loss_window
    )
    # Errors cross back as their one-line text: not every exception can be pickled.
    return report, (None if error is None else _WorkerError(one_line(error)))


class _WorkerError(Exception):
    """A run's error, as seen in a worker process."""


def _report_one(
    ref: RunRef,
    *,
    metrics: Mapping[str, str] | None,
    since: int | None,
    single: bool,
    running: bool = False,
    loss_window: int | None = None,
) -> tuple[RunReport, BaseException | None]:
    """The report of one run, and the error that kept it from being read (or ``None``)."""
    try:
        run = read_run(ref, metrics=metrics)
        for name in metrics or {}:
            # A tag the user named but the run lacks is an error, not a silent fallback.
            run.tag_for(name)
        if since is not None:
            run = drop_before(run, since)
        diagnosis = diagnose(run, ended=not running, loss_window=loss_window)
    except (WarmupMonitorError, OSError) as err:
        return RunReport(ref.name, ref.path, ref.format, error=one_line(err)), err
    except Exception as err:
        # A bug in one reader or detector must not hide the other runs of the report; with
        # a single run it propagates so that it is seen and reported.
        if single:
            raise
        text = f"unexpected {type(err).__name__}: {one_line(err)} (a bug: please report it)"
        return RunReport(ref.name, ref.path, ref.format, error=text), err
    return RunReport(run.name, ref.path, run.source, run=run, diagnosis=diagnosis), None


def _displayed(report: RunReport, display: Callable[[Path], Any]) -> RunReport:
    path = display(report.path)
    if path is report.path:
        return report
    if report.run is not None:
        report.run.path = display(report.run.path)
    return dataclasses.replace(report, path=path)


def _unique_names(reports: list[RunReport], refs: list[RunRef]) -> list[RunReport]:
    # A log's own display name (a SwanLab experiment name) reads better than a folder name,
    # unless two runs share it: then every run is named by its folder.
    names = [r.name for r in reports]
    if len(set(names)) == len(names):
        return reports
    return [dataclasses.replace(r, name=ref.name) for r, ref in zip(reports, refs, strict=True)]


def _unique_refs(roots: Sequence[Path]) -> list[RunRef]:
    # The same run reached through two given paths (a folder and its child) is reported once.
    seen: set[Path] = set()
    refs: list[RunRef] = []
    for root in roots:
        for ref in find_runs(root):
            key = ref.path.resolve()
            if key not in seen:
                seen.add(key)
                refs.append(ref)
    # Each run is named by the shortest path suffix that tells it from the others ("x/raw",
    # "y/raw"), whether the runs come from one path or several.
    names = shortest_names([ref.location for ref in refs])
    return [dataclasses.replace(ref, name=name) for ref, name in zip(refs, names, strict=True)]
