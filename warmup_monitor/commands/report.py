"""``warmup-monitor report``: diagnose finished (or running) runs; text, HTML or JSON."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import printable
from ..report import Report, build_report, reaches
from ..safe_text import for_terminal
from ._options import format_option, loss_window_option, metric_option
from ._output import reading_progress, run_options, save, use_color, worker_processes, write_output

__all__ = ["command"]


def _build(
    paths: tuple[str, ...],
    metrics: dict[str, str],
    since: int | None,
    jobs: int | None,
    running: bool = False,
    loss_window: int | None = None,
) -> Report:
    with reading_progress() as progress:
        return build_report(
            paths,
            metrics=metrics or None,
            since=since,
            progress=progress,
            workers=worker_processes(jobs),
            running=running,
            loss_window=loss_window,
        )


@click.command("report")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...", type=click.Path())
@format_option
@run_options("report", "plots")
@metric_option
@loss_window_option
@click.option("-q", "--quiet", is_flag=True, help="Print only the verdict line (or the table).")
@click.option(
    "--running",
    is_flag=True,
    help="The runs are still going. Logs that record no end (TensorBoard, CSV) are otherwise "
    "read as complete: an LR still rising at the last step then means the warmup outlasted "
    "the run.",
)
def command(
    paths: tuple[str, ...],
    fmt: str,
    output: Path | None,
    html_out: Path | None,
    metrics: dict[str, str],
    loss_window: int | None,
    since: int | None,
    quiet: bool,
    running: bool,
    fail_on: str,
    jobs: int | None,
) -> None:
    """Diagnose the warmup of every run under PATH...

    PATH is a run folder, a log file (event file, trainer_state.json, trainer_log.jsonl,
    metrics.csv), a swanlog folder, an HF output_dir or a folder of runs, on disk or at an
    fsspec URL (s3://bucket/prefix/, gs://, az://, hf://; credentials from the usual
    configuration, e.g. AWS_PROFILE).

    \b
    Exit codes: 0 nothing reached --fail-on; 1 a run reached it;
    2 bad option, bad path, or no run could be read.
    """
    from ..render import render_html, render_json, render_text

    report = _build(paths, metrics, since, jobs, running, loss_window)
    if html_out is not None:
        save(html_out, render_html(report))
        click.echo(printable(f"HTML report written to {html_out}"), err=True)
    if fmt == "json":
        write_output(render_json(report), output, color=False)
    else:
        color = use_color(output)
        write_output(render_text(report, color=color, quiet=quiet), output, color=color)
    for rr in report.failed:
        click.echo(for_terminal(f"Warning: run '{rr.name}' was not read: {rr.error}"), err=True)
    if reaches(report, fail_on):
        click.get_current_context().exit(1)
