"""``watch --metrics-port``: the Prometheus exporter, its shipped alert rules (``promtool test
rules``) and a real Prometheus server scraping a watcher."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from warmup_monitor.errors import InputError
from warmup_monitor.watch import Watcher

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from warmup_monitor.watch.exporter import VERDICTS, MetricsExporter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus"


def _nan_run(path: Path, torch_writer: Any, nan_at: int = 40, steps: int = 60) -> None:
    writer = torch_writer(path)
    for step in range(1, steps + 1):
        loss = float("nan") if step >= nan_at else 4.0 - 0.02 * step
        writer.add_scalar("train/loss", loss, step)
        writer.add_scalar("train/learning_rate", 1e-3 * min(step / 10, 1.0), step)
        writer.add_scalar("train/grad_norm", 1.0, step)
    writer.flush()


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_exporter_serves_each_runs_state_and_the_watchers_health(
    tmp_path: Path, torch_writer: Any, write_tb_run: Any
) -> None:
    _nan_run(tmp_path / "bad", torch_writer)
    write_tb_run(tmp_path / "good")
    watcher = Watcher(tmp_path, notify=False, diagnose_every=0.0)
    exporter = MetricsExporter(watcher, port=0)
    try:
        watcher.step()
        samples = _scrape(exporter.port)
    finally:
        exporter.close()
        watcher.close()
    assert _value(samples, "warmup_monitor_watcher_runs") == 2
    assert _value(samples, "warmup_monitor_watcher_polls_total") >= 2
    assert _value(samples, "warmup_monitor_watcher_poll_errors_total") == 0
    assert _value(samples, "warmup_monitor_run_last_step", run="bad") == 60
    assert math.isnan(_value(samples, "warmup_monitor_run_loss", run="bad"))
    assert _value(samples, "warmup_monitor_run_loss", run="good") == pytest.approx(4.0 - 1.2)
    assert _value(samples, "warmup_monitor_run_learning_rate", run="good") == pytest.approx(1e-3)
    assert _value(samples, "warmup_monitor_run_non_finite", run="bad", metric="loss") == 1
    assert _value(samples, "warmup_monitor_run_non_finite", run="good", metric="loss") == 0
    nan = _value(
        samples, "warmup_monitor_run_findings", run="bad", kind="non_finite", severity="critical"
    )
    assert nan >= 1
    assert (
        _value(samples, "warmup_monitor_run_findings_by_severity", run="bad", severity="critical")
        >= nan
    )
    # Exactly one verdict series is 1 per run.
    for run in ("bad", "good"):
        flags = [
            _value(samples, "warmup_monitor_run_verdict", run=run, verdict=v) for v in VERDICTS
        ]
        assert sorted(flags) == [0.0] * (len(VERDICTS) - 1) + [1.0]
    assert _value(samples, "warmup_monitor_run_verdict", run="good", verdict="healthy") == 1
    age = _value(samples, "warmup_monitor_run_seconds_since_last_point", run="good")
    assert 0 <= age < 600  # written by this test a moment ago


def test_exporter_on_a_busy_port_is_a_one_line_input_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(InputError, match=r"cannot serve metrics on 127\.0\.0\.1:\d+"):
            MetricsExporter(Watcher(tmp_path, notify=False), port=port)


def test_cli_metrics_port_errors_exit_2(tmp_path: Path, write_tb_run: Any) -> None:
    write_tb_run(tmp_path / "run")
    once = subprocess.run(
        [
            sys.executable,
            "-m",
            "warmup_monitor.cli",
            "watch",
            str(tmp_path),
            "--once",
            "--metrics-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.returncode == 2 and "--once" in once.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = subprocess.run(
            [
                sys.executable,
                "-m",
                "warmup_monitor.cli",
                "watch",
                str(tmp_path),
                "--metrics-port",
                str(sock.getsockname()[1]),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 2
    assert busy.stderr.strip().count("\n") == 0 and "Traceback" not in busy.stderr
    assert "--metrics-port" in busy.stderr


# ------------------------------------------------------------------------ shipped alert rules
def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install prometheus)")
    return path


def test_promtool_checks_and_unit_tests_the_shipped_rules() -> None:
    promtool = _binary("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run(
            [promtool, *args], cwd=RULES, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def test_a_real_prometheus_scrapes_a_watcher_and_fires_the_nan_alert(
    tmp_path: Path, torch_writer: Any
) -> None:
    prometheus = _binary("prometheus")
    logs = tmp_path / "logs"
    _nan_run(logs / "bad", torch_writer)
    watcher = Watcher(logs, notify=False, diagnose_every=0.0)
    watcher.step()
    exporter = MetricsExporter(watcher, port=0)
    prom_port = _free_port()
    config = tmp_path / "prometheus.yml"
    shutil.copy(RULES / "alerts.yml", tmp_path / "alerts.yml")
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n  - job_name: warmup-monitor\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
    )
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 40
        up = verdict = firing = None
        while time.monotonic() < deadline and not (up and verdict and firing):
            time.sleep(0.5)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            try:
                up = _api(prom_port, "/api/v1/query?query=up")["data"]["result"]
                verdict = _api(
                    prom_port,
                    "/api/v1/query?query=warmup_monitor_run_non_finite%7Bmetric%3D%22loss%22%7D",
                )["data"]["result"]
                alerts = _api(prom_port, "/api/v1/alerts")["data"]["alerts"]
                firing = [a for a in alerts if a["labels"]["alertname"] == "WarmupMonitorNaN"]
            except OSError:
                continue
        assert up and up[0]["value"][1] == "1", up
        assert verdict and verdict[0]["metric"]["run"] == "bad", verdict
        assert verdict[0]["value"][1] == "1"
        assert firing and firing[0]["state"] == "firing", firing
        assert firing[0]["labels"]["severity"] == "critical"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        exporter.close()
        watcher.close()
