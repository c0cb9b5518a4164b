"""The ``warmup-monitor`` command line: parses options and calls the library, nothing more."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from . import __version__
from .errors import WarmupMonitorError, one_line
from .safe_text import for_terminal

__all__ = ["main"]

# Exit code of every command for bad input (commands use 1 for "a problem was found").
EXIT_USAGE = 2


# Each command lives in its own module under ``warmup_monitor.commands``, imported only when
# that command runs: ``--help`` and ``plan`` then start without loading numpy, pandas or scipy.
_COMMANDS = ("report", "watch", "plan", "compare")


class _Group(click.Group):
    """Turns library errors into one ``Error: …`` line and exit code 2, never a traceback.

    Commands are loaded on first use; the group's own help lists them from its docstring.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*_COMMANDS, *(c for c in super().list_commands(ctx) if c not in _COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(f".commands.{cmd_name}", __package__)
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        pass  # listed in the docstring, so that --help imports no command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WarmupMonitorError as err:
            click.echo(for_terminal(f"Error: {err}"), err=True)
            ctx.exit(EXIT_USAGE)
        except OSError as err:  # an output file that cannot be written, …
            click.echo(for_terminal(f"Error: {one_line(err)}"), err=True)
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
    compare rank the sibling runs of a sweep by what each setting cost
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
