"""The ``warmup-monitor`` command line: parses options and calls the library, nothing more."""

from __future__ import annotations

import sys
from typing import Any

import click

from . import __version__
from .commands import plan, report, watch
from .errors import WarmupMonitorError, one_line

__all__ = ["main"]

# Exit code of every command for bad input (commands use 1 for "a problem was found").
EXIT_USAGE = 2


class _Group(click.Group):
    """Turns library errors into one ``Error: …`` line and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WarmupMonitorError as err:
            click.echo(f"Error: {err}", err=True)
            ctx.exit(EXIT_USAGE)
        except (PermissionError, FileNotFoundError) as err:
            click.echo(f"Error: {one_line(err)}", err=True)
            ctx.exit(EXIT_USAGE)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="warmup-monitor")
def main() -> None:
    """Diagnose learning-rate warmup problems from TensorBoard, SwanLab, HF Trainer and
    LLaMA-Factory logs.

    \b
    report  diagnose finished (or running) runs: terminal, HTML or JSON
    watch   follow a live run and alert on NaN, divergence or a wasteful warmup
    plan    check a training config's warmup before the run starts
    """


# Each command lives in its own module under ``warmup_monitor.commands``.
main.add_command(report.command, "report")
main.add_command(watch.command, "watch")
main.add_command(plan.command, "plan")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
