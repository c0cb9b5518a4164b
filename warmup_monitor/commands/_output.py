"""What the commands that read many runs (report, compare) share: options, progress, output."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import printable
from ..report import FAIL_ON_CHOICES, ProgressCallback

__all__ = [
    "reading_progress",
    "run_options",
    "save",
    "use_color",
    "worker_processes",
    "write_output",
]

F = TypeVar("F", bound=Callable[..., Any])


def run_options(document: str, page: str) -> Callable[[F], F]:
    """``-o/--output``, ``--html``, ``--since``, ``--fail-on`` and ``-j/--jobs``, spelled alike
    by every command that reads runs; ``document`` and ``page`` name what is written."""

    def decorate(func: F) -> F:
        for option in reversed(
            (
                click.option(
                    "-o",
                    "--output",
                    type=click.Path(dir_okay=False, writable=True, path_type=Path),
                    help=f"Write the text or JSON {document} to FILE instead of stdout.",
                ),
                click.option(
                    "--html",
                    "html_out",
                    type=click.Path(dir_okay=False, writable=True, path_type=Path),
                    help=f"Also write a self-contained HTML page with {page} to FILE.",
                ),
                click.option(
                    "--since",
                    type=click.IntRange(min=0),
                    metavar="STEP",
                    help="Ignore points logged before STEP.",
                ),
                click.option(
                    "--fail-on",
                    type=click.Choice(FAIL_ON_CHOICES),
                    default="never",
                    show_default=True,
                    help=(
                        "Exit 1 when a run reaches this severity (a problem verdict counts as at "
                        "least warning)."
                    ),
                ),
                click.option(
                    "-j",
                    "--jobs",
                    type=click.IntRange(min=1),
                    metavar="N",
                    help=(
                        "Read and diagnose runs in N worker processes (default: one per CPU, "
                        "at most 8, from 16 runs up; 1: none)."
                    ),
                ),
            )
        ):
            func = option(func)
        return func

    return decorate


def worker_processes(jobs: int | None) -> int:
    """``--jobs``, else one per CPU (at most 8). A command owns its process, so its workers are
    forked even while a library it loaded keeps a thread (fsspec's, for URLs); a library
    caller's threads are respected by default (see ``warmup_monitor._parallel``)."""
    from .._parallel import default_workers

    return jobs if jobs is not None else default_workers()


@contextmanager
def reading_progress() -> Iterator[ProgressCallback | None]:
    """A progress callback drawing a bar on a terminal's stderr; ``None`` when not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=1, label="Reading runs", file=sys.stderr) as bar:

        def progress(done: int, total: int, name: str) -> None:
            bar.length = max(total, 1)
            bar.label = f"Reading {name}" if name else f"Read {total} run{'s' * (total != 1)}"
            bar.update(done - bar.pos)

        yield progress


def use_color(output: Path | None) -> bool:
    """Colour only on a terminal, and never with a non-empty NO_COLOR (https://no-color.org)."""
    return output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def save(path: Path, text: str) -> None:
    """Write ``text`` to ``path``. A folder name that is not valid UTF-8 reaches the text as lone
    surrogates: they are written as "\\udcff" escapes (valid JSON, readable in text and HTML),
    never a crash."""
    path.write_text(printable(text), encoding="utf-8")


def write_output(text: str, output: Path | None, *, color: bool) -> None:
    """``text`` to stdout, or to ``output`` when given."""
    if output is None:
        click.echo(printable(text), nl=False, color=color)
    else:
        save(output, text)
