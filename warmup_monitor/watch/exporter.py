"""Prometheus metrics of a running watch: ``watch --metrics-port``.

One watcher per node or per storage prefix serves ``/metrics``; one Prometheus scrapes them
all and Alertmanager routes, groups and silences (rules in ``deploy/prometheus/alerts.yml``).
Values are read from :meth:`Watcher.snapshot` at scrape time, so a scrape always sees the
state after a complete pass of the watch loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

from ..errors import InputError
from .follow import Watcher

__all__ = ["VERDICTS", "MetricsExporter"]

#: Every verdict, each exported as a 0/1 series so that a change flips two series at once.
VERDICTS: tuple[str, ...] = (
    "healthy",
    "warmup_too_short",
    "warmup_too_long",
    "lr_too_high",
    "numerical_instability",
    "insufficient_data",
)
_PREFIX = "warmup_monitor"
_SEVERITIES = ("info", "warning", "critical")


class _Collector:
    """A prometheus_client collector reading the watcher's snapshot at each scrape."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def describe(self) -> list[Any]:
        # Metric families depend on the runs present: no fixed description.
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        now = time.time()
        runs = self.watcher.snapshot()
        health = self.watcher.health
        stats = self.watcher.stats
        run = ["run"]

        info = GaugeMetricFamily(
            f"{_PREFIX}_run_info",
            "A watched run (always 1): its path, log format and status as read from the log.",
            labels=["run", "path", "format", "status"],
        )
        verdict = GaugeMetricFamily(
            f"{_PREFIX}_run_verdict",
            "1 for the run's current verdict, 0 for the others.",
            labels=["run", "verdict"],
        )
        last_step = GaugeMetricFamily(
            f"{_PREFIX}_run_last_step", "Largest training step logged so far.", labels=run
        )
        values = {
            metric: GaugeMetricFamily(
                f"{_PREFIX}_run_{metric}",
                f"Newest logged {metric} (NaN and ±Inf are exported as such).",
                labels=run,
            )
            for metric in ("loss", "learning_rate", "grad_norm")
        }
        non_finite = GaugeMetricFamily(
            f"{_PREFIX}_run_non_finite",
            "1 while the newest logged value of the metric is NaN or ±Inf.",
            labels=["run", "metric"],
        )
        findings = GaugeMetricFamily(
            f"{_PREFIX}_run_findings",
            "Distinct findings raised so far for the run, by detector kind and severity.",
            labels=["run", "kind", "severity"],
        )
        by_severity = GaugeMetricFamily(
            f"{_PREFIX}_run_findings_by_severity",
            "Distinct findings raised so far for the run, by severity.",
            labels=["run", "severity"],
        )
        since = GaugeMetricFamily(
            f"{_PREFIX}_run_seconds_since_last_point",
            "Seconds since the newest point was logged (its wall time, else when it was read).",
            labels=run,
        )
        read_error = GaugeMetricFamily(
            f"{_PREFIX}_run_read_error",
            "1 while the last read of the run's logs failed (it is retried at every poll).",
            labels=run,
        )
        for snap in runs:
            name = snap.name
            info.add_metric([name, snap.path, snap.format, snap.status], 1.0)
            for v in VERDICTS:
                verdict.add_metric([name, v], 1.0 if snap.verdict == v else 0.0)
            if snap.last_step is not None:
                last_step.add_metric([name], float(snap.last_step))
            for metric, family in values.items():
                if metric in snap.last:
                    family.add_metric([name], snap.last[metric])
            for metric in ("loss", "grad_norm"):
                non_finite.add_metric([name, metric], 1.0 if metric in snap.non_finite else 0.0)
            totals = dict.fromkeys(_SEVERITIES, 0)
            for (kind, severity), count in sorted(snap.findings.items()):
                findings.add_metric([name, kind, severity], float(count))
                totals[severity] = totals.get(severity, 0) + count
            for severity, count in totals.items():
                by_severity.add_metric([name, severity], float(count))
            if snap.last_point_time is not None and math.isfinite(snap.last_point_time):
                since.add_metric([name], max(0.0, now - snap.last_point_time))
            read_error.add_metric([name], 1.0 if snap.read_error else 0.0)
        yield from (info, verdict, last_step, *values.values(), non_finite, findings)
        yield from (by_severity, since, read_error)

        yield GaugeMetricFamily(
            f"{_PREFIX}_watcher_runs", "Runs currently watched.", value=float(len(runs))
        )
        yield CounterMetricFamily(
            f"{_PREFIX}_watcher_points_read",
            "Points read since the watcher started.",
            value=float(stats.points_read),
        )
        yield CounterMetricFamily(
            f"{_PREFIX}_watcher_alerts",
            "Alerts raised since the watcher started.",
            value=float(stats.alerts),
        )
        yield CounterMetricFamily(
            f"{_PREFIX}_watcher_passes", "Passes of the watch loop.", value=float(health.passes)
        )
        yield CounterMetricFamily(
            f"{_PREFIX}_watcher_polls", "Reads of a run's logs.", value=float(health.polls)
        )
        yield CounterMetricFamily(
            f"{_PREFIX}_watcher_poll_errors",
            "Reads of a run's logs that failed (each is retried at the next poll).",
            value=float(health.poll_errors),
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}_watcher_last_pass_seconds",
            "How long the last pass of the watch loop took.",
            value=health.last_pass_seconds,
        )
        if health.last_pass is not None:
            yield GaugeMetricFamily(
                f"{_PREFIX}_watcher_seconds_since_last_pass",
                "Seconds since the watch loop last completed a pass (grows when it hangs).",
                value=max(0.0, now - health.last_pass),
            )


class MetricsExporter:
    """Serves ``/metrics`` for ``watcher`` on ``host:port`` until :meth:`close`.

    ``port=0`` picks a free port (read it from :attr:`port`). Raises :class:`InputError`
    when ``prometheus_client`` is missing or the address cannot be bound.
    """

    def __init__(self, watcher: Watcher, *, port: int, host: str = "127.0.0.1") -> None:
        try:
            from prometheus_client import CollectorRegistry, start_http_server
            from prometheus_client.process_collector import ProcessCollector
        except ImportError as err:
            raise InputError(
                "--metrics-port needs the prometheus_client package",
                "pip install 'warmup-monitor[prometheus]'",
            ) from err
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(watcher))  # type: ignore[arg-type]
        # CPU, memory and open files of the watcher process itself.
        ProcessCollector(registry=self.registry)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as err:
            raise InputError(
                f"cannot serve metrics on {host}:{port} ({err.strerror or err})",
                "Pick a free --metrics-port, or 0 for any free port",
            ) from err
        self.host = host
        self.port = int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
