"""Options shared by several commands, so that every command spells them the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["format_option", "loss_window_option", "metric_option"]

F = TypeVar("F", bound=Callable[..., Any])

_METRIC_FORM = "NAME=TAG, e.g. loss=train/loss"


def _parse_metrics(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in values:
        name, sep, tag = item.partition("=")
        if not sep or not name.strip() or not tag.strip():
            raise click.BadParameter(f"expected {_METRIC_FORM}; got '{item}'", ctx, param)
        mapping[name.strip()] = tag.strip()
    return mapping


def metric_option(func: F) -> F:
    """``--metric NAME=TAG`` (repeatable), passed to the command as a ``metrics`` dict."""
    return click.option(
        "--metric",
        "metrics",
        multiple=True,
        callback=_parse_metrics,
        metavar="NAME=TAG",
        help="Read canonical metric NAME (loss, learning_rate, grad_norm, eval_loss) from TAG.",
    )(func)


def format_option(func: F) -> F:
    """``--format text|json`` for commands that print one document, passed as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format.",
    )(func)


def loss_window_option(func: F) -> F:
    """``--loss-window N``: the training steps one logged loss stands for, as ``loss_window``."""
    return click.option(
        "--loss-window",
        "loss_window",
        type=click.IntRange(min=1),
        metavar="N",
        help="Each logged training loss is the mean of the last N training steps (1: the loss "
        "of the logged step itself, as most custom loops log it). Default: Lightning logs are "
        "single steps, HF Trainer and LLaMA-Factory logs means over their logging_steps, other "
        "logs means over their step spacing.",
    )(func)
