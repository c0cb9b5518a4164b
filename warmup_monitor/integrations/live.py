"""What every in-process callback shares: alerts, stopping, the plan at the start, the report.

:class:`LiveMonitor` imports no training framework. A callback hands it each logging step
(``monitor.log(step, {"loss": …, "learning_rate": …})``); it feeds the watcher's
:class:`~warmup_monitor.watch.AlertEngine`, so the immediate NaN alerts, the throttled
re-diagnosis and the memory of what was already said are the ones ``warmup-monitor watch``
uses, and passes every alert to the printer, the ``on_alert`` callable and the webhook.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from detectors._types import Severity

from ..alerts import Webhook, format_human
from ..config import canonical_config
from ..errors import ConfigError, one_line
from ..safe_text import for_terminal
from ..watch.engine import AlertEngine
from ..watch.events import WatchEvent

__all__ = ["STOP_CHOICES", "AlertCallable", "LiveMonitor"]

#: Values of ``stop_on``: stop at the first alert of that severity or worse, or never (None).
STOP_CHOICES: tuple[str | None, ...] = ("critical", "warning", None)

AlertCallable = Callable[[WatchEvent], Any]

# Alerts kept for ``monitor.alerts`` (the newest; the engine never repeats one, so this only
# bounds memory on a very long, very noisy run).
_KEEP_ALERTS = 1000


def _stop_severity(stop_on: str | None) -> Severity | None:
    if stop_on is None:
        return None
    if stop_on not in STOP_CHOICES:
        raise ConfigError(
            f"stop_on must be 'critical', 'warning' or None; got {stop_on!r}",
            "Pass stop_on='critical' (the default), 'warning', or None to never stop",
        )
    return Severity(stop_on)


class LiveMonitor:
    """The alerting of one training run, fed from inside the training loop.

    ``stop_on`` (``"critical"``, ``"warning"`` or ``None``) is the alert severity at which
    :attr:`stop_reason` is set, which the callbacks turn into a stop of the training.
    ``on_alert`` is called with each alert (a :class:`WatchEvent`); an exception it raises is
    reported once and never stops the training. ``webhook`` posts each alert (Slack-style
    ``{"text": …}``) from a background thread. ``print_alerts`` writes every event line
    (alerts, verdict changes, info findings, notices) to ``stream`` (stderr by default).
    ``diagnose_every``, ``diagnose_share`` and ``max_points_per_tag`` are the engine's
    throttle and memory bound: the training waits while a logging step is diagnosed, so by
    default diagnosing takes at most 5% of the wall time (a new loss high or a NaN is never
    held back by it).
    """

    def __init__(
        self,
        name: str = "train",
        *,
        source: str = "live",
        stop_on: str | None = "critical",
        on_alert: AlertCallable | None = None,
        webhook: str | None = None,
        print_alerts: bool = True,
        stream: IO[str] | None = None,
        metrics: Mapping[str, str] | None = None,
        diagnose_every: float = 0.2,
        diagnose_share: float = 0.05,
        max_points_per_tag: int = 20_000,
    ) -> None:
        if on_alert is not None and not callable(on_alert):
            raise ConfigError(
                f"on_alert must be a callable taking one event; got {type(on_alert).__name__}",
                "Pass a function, e.g. on_alert=lambda event: print(event.message)",
            )
        self.stop_on = _stop_severity(stop_on)
        self.on_alert = on_alert
        self.print_alerts = print_alerts
        self._stream = stream
        self.engine = AlertEngine(
            name,
            source=source,
            metrics=metrics,
            diagnose_every=diagnose_every,
            diagnose_share=diagnose_share,
            max_points_per_tag=max_points_per_tag,
        )
        self.webhook = Webhook(webhook, report=self.say) if webhook else None
        self.alerts: deque[WatchEvent] = deque(maxlen=_KEEP_ALERTS)
        self.stop_reason: str | None = None
        self.stop_event: WatchEvent | None = None
        self._said: set[str] = set()

    # -------------------------------------------------------------- setup
    @property
    def name(self) -> str:
        return self.engine.name

    def configure(
        self,
        raw_config: Mapping[str, Any],
        *,
        name: str | None = None,
        path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Give the run's own training arguments (any spelling :func:`canonical_config`
        reads); ``overrides`` are values the framework knows exactly (the total steps it
        counted). Returns the canonical config the diagnosis will use."""
        warnings: list[str] = []
        config = canonical_config(raw_config, warnings)
        config.update({k: v for k, v in (overrides or {}).items() if v is not None})
        self.engine.config = config
        self.engine.status = "running"
        if name:
            self.engine.name = name
        if path is not None:
            self.engine.path = Path(path)
        for warning in warnings:
            self.say(f"config: {warning}")
        # Loaded now (numpy, scipy, pandas), not inside the first logging step.
        import warmup_monitor.diagnosis  # noqa: F401

        return config

    # -------------------------------------------------------------- feeding
    def log(
        self, step: int, values: Mapping[str, Any], wall_time: float | None = None
    ) -> list[WatchEvent]:
        """Feed one logging step ``{metric: value}``; emit and return what it triggered."""
        events = self.engine.log(step, values, wall_time)
        self.emit(events)
        return events

    def emit(self, events: list[WatchEvent]) -> None:
        """Print events, hand alerts to ``on_alert`` and the webhook, note the first that
        reaches ``stop_on``."""
        for event in events:
            if self.print_alerts:
                self._write(format_human(event))
            if not event.is_alert:
                continue
            self.alerts.append(event)
            if self.on_alert is not None:
                try:
                    self.on_alert(event)
                except Exception as err:  # a bug in user code must not end the training
                    self.say(f"on_alert raised {type(err).__name__}: {one_line(err)}")
            if self.webhook is not None:
                self.webhook.send(event)
            if (
                self.stop_reason is None
                and self.stop_on is not None
                and event.severity is not None
                and event.severity >= self.stop_on
            ):
                self.stop_event = event
                self.stop_reason = _stop_text(event, self.stop_on)

    def notice(self, message: str, *, step: int | None = None, warning: bool = True) -> None:
        """Emit a notice line (not an alert) about the run."""
        severity = Severity.WARNING if warning else Severity.INFO
        event = WatchEvent(
            "notice", self.name, _now(), message=message, severity=severity, step=step
        )
        self.emit([event])

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None

    # -------------------------------------------------------------- plan and report
    def check_plan(
        self,
        raw_config: Mapping[str, Any],
        *,
        total_steps: int | None,
        samples: int | None = None,
        gpus: int = 1,
    ) -> Any:
        """Run ``warmup-monitor plan``'s checks on the real arguments, with the total steps the
        framework counted, and print the findings. Returns the
        :class:`~warmup_monitor.plan.PlanResult`, or None when the arguments cannot be
        checked (said on the stream; training goes on)."""
        from ..plan import config_from_mapping, plan

        data = dict(raw_config)
        if total_steps is not None and total_steps > 0:
            data["max_steps"] = int(total_steps)  # the framework's own count is exact
        try:
            result = plan(config_from_mapping(data, self.name), samples=samples, gpus=max(gpus, 1))
        except Exception as err:  # the plan is advice: it never stops a training
            self.say(f"plan: the training arguments could not be checked: {one_line(err)}")
            return None
        if self.print_alerts:
            for line in _plan_text(result):
                self._write(line)
        return result

    def finish(
        self, output_dir: str | Path | None, *, basename: str = "warmup_report"
    ) -> list[Path]:
        """Diagnose what was logged one last time (emitting what is new) and write
        ``<basename>.json`` and ``<basename>.html`` into ``output_dir`` (the report's JSON
        and HTML page); wait (bounded) for the webhook. Returns the files written."""
        written: list[Path] = []
        try:
            engine = self.engine
            if engine.status == "running":
                engine.status = "aborted" if self.should_stop else "finished"
            if engine.dirty or engine.last_diagnosis is None:
                self.emit(engine.diagnose())
            if output_dir is not None and len(engine.buffer) and engine.last_diagnosis is not None:
                written = _write_report(engine, Path(output_dir), basename)
                self.say(f"report written to {', '.join(str(p) for p in written)}", warn=False)
        except Exception as err:  # the end of a training must not fail on its report
            self.say(f"the final report could not be written: {type(err).__name__}: {err}")
        finally:
            if self.webhook is not None:
                self.webhook.close(timeout=10.0)
        return written

    # -------------------------------------------------------------- output
    def say(self, message: str, *, warn: bool = True) -> None:
        """One line on the stream, each distinct message once (a failing webhook or callable
        would otherwise repeat itself at every logging step)."""
        if message in self._said:
            return
        self._said.add(message)
        if self.print_alerts or warn:
            self._write(f"warmup-monitor: {message}")

    def _write(self, line: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(for_terminal(line) + "\n")
        stream.flush()


def _now() -> float:
    import time

    return time.time()


def _stop_text(event: WatchEvent, level: Severity) -> str:
    what = event.verdict if event.event == "verdict" else event.detector
    sev = event.severity.value if event.severity is not None else "alert"
    at = f" at step {event.step}" if event.step is not None else ""
    return f"{sev} {what}{at}: {event.message} (stop_on='{level.value}')"


def _plan_text(result: Any) -> list[str]:
    wu, st = result.warmup, result.steps
    share = "" if wu.share is None else f" ({wu.share:.0%} of the run)"
    lines = [
        f"warmup-monitor plan: {st.total_steps} total steps (the Trainer's count), "
        f"warmup {wu.steps} steps{share}; {wu.rule}"
    ]
    if not result.findings:
        lines.append("  no findings: the warmup fits the guide")
    for f in result.findings:
        lines.append(f"  {f.severity:<8} {f.code}: {f.message}")
    for r in result.recommendations:
        lines.append(f"  - {r.text}")
    return lines


def _write_report(engine: AlertEngine, folder: Path, basename: str) -> list[Path]:
    from ..render import render_html, render_json
    from ..report import Report, RunReport

    run = engine.run()
    rr = RunReport(engine.name, engine.path, run.source, run=run, diagnosis=engine.last_diagnosis)
    report = Report(paths=(engine.path,), runs=(rr,))
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{basename}.json"
    html_path = folder / f"{basename}.html"
    json_path.write_text(render_json(report), encoding="utf-8")
    html_path.write_text(render_html(report, title=f"Warmup report: {engine.name}"), "utf-8")
    return [json_path, html_path]
