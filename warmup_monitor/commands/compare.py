"""``warmup-monitor compare``: rank the sibling runs of a sweep by what each setting cost."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import printable
from ..report import reaches
from ..safe_text import for_terminal
from ._options import format_option, loss_window_option, metric_option
from ._output import reading_progress, run_options, save, worker_processes, write_output

__all__ = ["command"]


@click.command("compare")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...", type=click.Path())
@format_option
@click.option(
    "--target",
    type=float,
    metavar="LOSS",
    help="The loss every run races to (default: what the best setting reaches at 25% of its run).",
)
@click.option(
    "--smooth",
    "smooth_points",
    type=click.IntRange(min=1),
    metavar="POINTS",
    help="Trailing median window in logged points (default: 2% of the points, at most 25).",
)
@run_options("comparison", "the overlaid curves of every run")
@metric_option
@loss_window_option
@click.option("-q", "--quiet", is_flag=True, help="Print only the ranking and the conclusion.")
def command(
    paths: tuple[str, ...],
    fmt: str,
    target: float | None,
    smooth_points: int | None,
    output: Path | None,
    html_out: Path | None,
    metrics: dict[str, str],
    loss_window: int | None,
    since: int | None,
    quiet: bool,
    fail_on: str,
    jobs: int | None,
) -> None:
    """Compare the sibling runs of a sweep under PATH...: what differs, ranked by steps to a
    target loss, with what each setting cost against the best.

    PATH is anything `report` accepts; a folder holding the runs of a sweep is the usual case.
    Runs that differ only in their seed are grouped (mean and spread).

    \b
    Exit codes: 0 nothing reached --fail-on; 1 a run reached it;
    2 bad option, bad path, fewer than two runs with a loss, or no loss step in common.
    """
    from ..compare import build_comparison
    from ..render.compare import render_compare_json, render_compare_text

    with reading_progress() as progress:
        comparison = build_comparison(
            paths,
            metrics=metrics or None,
            since=since,
            target=target,
            smooth_points=smooth_points,
            progress=progress,
            workers=worker_processes(jobs),
            loss_window=loss_window,
        )
    code = 1 if reaches(comparison.report, fail_on) else 0
    if comparison.repeats:
        n = len(comparison.measures)
        click.echo(
            f"Warning: no setting differs between the {n} runs' configs; compared as repeats",
            err=True,
        )
    if html_out is not None:
        from ..render.compare_html import render_compare_html

        save(html_out, render_compare_html(comparison))
        click.echo(printable(f"HTML comparison written to {html_out}"), err=True)
    if fmt == "json":
        write_output(render_compare_json(comparison, exit_code=code), output, color=False)
    else:
        write_output(render_compare_text(comparison, quiet=quiet), output, color=False)
    for rr in comparison.report.failed:
        click.echo(for_terminal(f"Warning: run '{rr.name}' was not read: {rr.error}"), err=True)
    if code:
        click.get_current_context().exit(code)
