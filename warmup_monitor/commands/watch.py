"""``warmup-monitor watch``: follow live runs and alert while they train."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import click

from ..safe_text import for_terminal
from ._options import loss_window_option, metric_option

__all__ = ["command"]


def _silence_stdout() -> None:
    # Python flushes stdout at exit; on a closed pipe that would print a second error.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _warn(message: str) -> None:
    click.echo(for_terminal(f"Warning: {message}"), err=True)


def _note(message: str) -> None:
    click.echo(for_terminal(message), err=True)


@click.command("watch")
@click.argument("path", type=click.Path(readable=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["human", "jsonl"]),
    default="human",
    show_default=True,
    help="One timestamped line per event, or one JSON object per event.",
)
@click.option(
    "--on-alert",
    metavar="CMD",
    help="Run CMD (no shell) for each alert, with WARMUP_MONITOR_* variables describing it.",
)
@click.option(
    "--webhook",
    metavar="URL",
    help='POST each alert as Slack-compatible JSON {"text": ...} to URL.',
)
@click.option(
    "--exit-on",
    type=click.Choice(["warning", "critical"]),
    help="Exit 1 as soon as an alert of this severity (or worse) is raised.",
)
@click.option("--once", is_flag=True, help="Read what exists now, report, and exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Polling period; with notifications, the fallback period.",
)
@click.option(
    "--no-notify",
    is_flag=True,
    help="Poll every --interval instead of using file-system notifications.",
)
@click.option("--wait", is_flag=True, help="Wait for PATH to appear instead of failing.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics of every watched run on http://HOST:PORT/metrics.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Address the metrics server listens on (0.0.0.0 to be scraped from other machines).",
)
@metric_option
@loss_window_option
def command(
    path: str,
    fmt: str,
    on_alert: str | None,
    webhook: str | None,
    exit_on: str | None,
    once: bool,
    interval: float,
    no_notify: bool,
    wait: bool,
    metrics_port: int | None,
    metrics_host: str,
    metrics: dict[str, str],
    loss_window: int | None,
) -> None:
    """Follow the runs under PATH and alert on NaN, divergence or a wrong warmup as they train.

    PATH is a run folder, a log file, a TensorBoard logdir, a swanlog folder or an HF
    output_dir; runs that appear under it later are picked up. Nothing is written there.
    PATH may be an fsspec URL (s3://bucket/prefix/, gs://, az://, hf://): it is then polled
    every --interval, fetching only what was appended.

    \b
    Exit codes: 0 stopped (Ctrl-C) or --once finished below --exit-on;
    1 an alert reached --exit-on; 2 bad option or unreadable/missing PATH.
    """
    ctx = click.get_current_context()
    # SIGTERM (a job scheduler stopping us) ends the watch like Ctrl-C, from the first moment:
    # the handler is in place before the libraries load, so a watch cancelled while starting
    # still prints its summary and exits 0.
    previous = _stop_on_sigterm()
    if metrics_port is not None and once:
        raise click.UsageError("--metrics-port serves a live watch; drop --once")
    outputs: Any = None
    watcher: Any = None
    exporter: Any = None
    started = interrupted = False
    try:
        from detectors._types import Severity

        from ..alerts import AlertCommand, Outputs, Webhook
        from ..watch import Watcher

        command_runner = AlertCommand(on_alert, report=_warn) if on_alert is not None else None
        poster = Webhook(webhook, report=_warn) if webhook is not None else None
        outputs = Outputs(
            sys.stdout,
            fmt=fmt,
            command=command_runner,
            webhook=poster,
            exit_on=Severity(exit_on) if exit_on else None,
        )
        from ..remote import is_url

        options: dict[str, Any] = {"metrics": metrics, "interval": interval, "wait": wait}
        if loss_window is not None:
            options["diagnose"] = _diagnose_with(loss_window)
        if is_url(path):
            from ..watch.remote import RemoteWatcher

            watcher = RemoteWatcher(path, **options)
        else:
            watcher = Watcher(path, notify=not no_notify, **options)
        watcher.check()  # a missing or unreadable PATH fails before anything is printed
        if metrics_port is not None:
            from ..watch.exporter import MetricsExporter

            exporter = MetricsExporter(watcher, port=metrics_port, host=metrics_host)
            _note(f"serving metrics on http://{exporter.host}:{exporter.port}/metrics")
        started = True
        if once:
            for event in watcher.once():
                outputs.emit(event)
        else:
            for event in watcher.follow():
                outputs.emit(event)
                if outputs.exit_reached:
                    break
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        # The reader of our output went away (`watch … | head`): stop quietly.
        _silence_stdout()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if exporter is not None:
            exporter.close()
        if watcher is not None:
            watcher.close()
        if started or interrupted:
            _close(outputs, watcher, fmt, once)
    if outputs is not None and outputs.exit_reached:
        ctx.exit(1)


def _diagnose_with(loss_window: int) -> Any:
    """The library's diagnosis, reading every logged training loss as ``loss_window`` steps."""
    import functools

    from ..diagnosis import diagnose

    return functools.partial(diagnose, loss_window=loss_window)


def _stop_on_sigterm() -> Any:
    """Make SIGTERM raise KeyboardInterrupt; the previous handler (None off the main thread)."""

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (embedded use)
        return None
    return previous


def _close(outputs: Any, watcher: Any, fmt: str, once: bool) -> None:
    """The summary, even after Ctrl-C, SIGTERM or an error; alerts still queued for the command
    or the webhook are delivered (bounded wait) before we exit."""
    from ..alerts import Outputs
    from ..watch import WatchStats

    if outputs is None:  # stopped while starting
        outputs = Outputs(sys.stdout, fmt=fmt)
    summary = watcher.summary() if watcher is not None else WatchStats().summary()
    if watcher is None or watcher.stats.runs_watched or not once:
        try:
            outputs.emit(summary)
        except BrokenPipeError:
            _silence_stdout()
    outputs.close()
