"""Output helpers shared by the commands that read many runs: progress bar, writing, colour."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ..errors import printable
from ..report import ProgressCallback

__all__ = ["reading_progress", "save", "use_color", "write_output"]


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
