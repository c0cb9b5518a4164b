"""``warmup-monitor plan CONFIG``: check a training config's warmup before the run starts."""

from __future__ import annotations

import click

from ._options import format_option

__all__ = ["command"]


@click.command(
    "plan",
    epilog="Exit status: 0 fine or warnings only, 1 the config has errors, 2 unreadable config "
    "or bad option. Without --samples and max_steps the total step count cannot be known: "
    "the plan says so, prints the formula, and exits 0.",
)
@click.argument("config", type=str)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=None,
    help="Training samples in the dataset (max_samples in the config caps it).",
)
@click.option(
    "--gpus", type=click.IntRange(min=1), default=1, show_default=True, help="Data-parallel GPUs."
)
@click.option("--model-size", default=None, help="Model size, e.g. 7B, 0.5B, 70b, 350M.")
@click.option(
    "--rounding",
    type=click.Choice(["ceil", "floor"]),
    default="ceil",
    show_default=True,
    help="How the Trainer counts a partial accumulation window at an epoch's end: "
    "ceil (transformers >= 4.52, 5.x) or floor (older transformers).",
)
@format_option
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the LR schedule over the run to this .png or .svg file.",
)
@click.pass_context
def command(
    ctx: click.Context,
    config: str,
    samples: int | None,
    gpus: int,
    model_size: str | None,
    rounding: str,
    fmt: str,
    plot: str | None,
) -> None:
    """Check the warmup of a LLaMA-Factory YAML or TrainingArguments JSON CONFIG.

    Prints the effective batch size, steps per epoch, total steps and warmup steps as the
    HF Trainer computes them, where the warmup sits against the guide's ranges, and what
    to change.
    """
    # Loaded here, not at import: `plan --help` needs neither the detectors nor the renderers.
    from ..plan import load_config, parse_model_size, plan
    from ..render.plan import plot_schedule, render_json, render_text

    size = None if model_size is None else parse_model_size(model_size)
    result = plan(
        load_config(config),
        samples=samples,
        gpus=gpus,
        model_size=size,
        rounding="floor" if rounding == "floor" else "ceil",
    )
    if plot is not None:
        plot_schedule(result, plot)
    click.echo(render_json(result) if fmt == "json" else render_text(result), nl=False)
    ctx.exit(result.exit_code)
