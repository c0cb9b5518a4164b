"""Alert outputs: human and JSON lines, the --on-alert command runner, the webhook poster."""

from __future__ import annotations

import io
import json
import math
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detectors._types import Severity
from warmup_monitor.alerts import (
    AlertCommand,
    Outputs,
    Webhook,
    event_env,
    format_human,
    format_json,
    webhook_text,
)
from warmup_monitor.errors import ConfigError
from warmup_monitor.watch import WatchEvent


def _nan_event(message: str = "loss is NaN at step 40") -> WatchEvent:
    return WatchEvent(
        "finding",
        "run-a",
        1_700_000_010.0,
        message=message,
        severity=Severity.CRITICAL,
        detector="non_finite",
        metric="loss",
        step=40,
        evidence={"value": math.nan, "lr": 1.2e-4},
        value=math.nan,
        lr=1.2e-4,
        lr_phase="warmup",
        point_time=1_700_000_009.5,
        verdict="insufficient_data",
        advice=({"text": "Raise warmup_steps from 20 to 100", "parameter": "warmup_steps"},),
    )


def _verdict_event() -> WatchEvent:
    return WatchEvent(
        "verdict",
        "run-a",
        1_700_000_020.0,
        message="loss diverged while the LR was still climbing",
        severity=Severity.WARNING,
        detector="verdict",
        metric="loss",
        step=120,
        value=7.5,
        lr=3e-4,
        lr_phase="warmup",
        verdict="warmup_too_short",
        confidence=0.82,
        advice=({"text": "Raise warmup_steps to 300"},),
    )


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# ---------------------------------------------------------------------------------- formats
def test_human_line_names_run_step_value_phase_advice_and_lag() -> None:
    """A finding line carries level, run, step, value, LR phase, advice and the log lag."""
    line = format_human(_nan_event())
    assert "\n" not in line
    assert line.endswith(
        "CRITICAL [run-a] non_finite: loss is NaN at step 40. "
        "At step 40, loss NaN, LR 0.00012 in warmup phase. "
        "Advice: Raise warmup_steps from 20 to 100. [logged 0.5 s ago]"
    )


def test_human_verdict_line() -> None:
    """A verdict line names the verdict, confidence, where, summary and advice."""
    line = format_human(_verdict_event())
    assert line.endswith(
        "VERDICT  [run-a] warmup_too_short (82% confident): loss diverged while the LR was "
        "still climbing. At step 120, loss 7.5, LR 0.0003 in warmup phase. "
        "Advice: Raise warmup_steps to 300."
    )


def test_json_line_is_strict_json_with_null_for_nan() -> None:
    """JSON lines are valid strict JSON; NaN values become null, schema keys present."""
    data = json.loads(format_json(_nan_event()))
    assert data["value"] is None and data["evidence"]["value"] is None
    assert data["event"] == "finding" and data["severity"] == "critical"
    assert data["detector"] == "non_finite" and data["step"] == 40
    assert data["lag"] == pytest.approx(0.5)
    verdict = json.loads(format_json(_verdict_event()))
    assert (verdict["verdict"], verdict["confidence"]) == ("warmup_too_short", 0.82)
    assert verdict["advice"][0]["text"] == "Raise warmup_steps to 300"


def test_env_describes_the_alert() -> None:
    """--on-alert variables carry run, severity, kind, metric, step, value, message, JSON."""
    env = event_env(_nan_event())
    assert env["WARMUP_MONITOR_RUN"] == "run-a"
    assert env["WARMUP_MONITOR_SEVERITY"] == "critical"
    assert env["WARMUP_MONITOR_KIND"] == "non_finite"
    assert env["WARMUP_MONITOR_METRIC"] == "loss"
    assert env["WARMUP_MONITOR_STEP"] == "40"
    assert env["WARMUP_MONITOR_VALUE"] == "nan"
    assert env["WARMUP_MONITOR_VERDICT"] == "insufficient_data"
    assert json.loads(env["WARMUP_MONITOR_JSON"])["step"] == 40
    assert event_env(_verdict_event())["WARMUP_MONITOR_KIND"] == "verdict"


def test_webhook_text_is_one_readable_sentence() -> None:
    """The webhook text names the level, the run, where and the advice."""
    text = webhook_text(_verdict_event())
    assert text.startswith("warmup-monitor WARNING: run 'run-a' verdict warmup_too_short")
    assert "Advice: Raise warmup_steps to 300." in text


# ---------------------------------------------------------------------------------- command
def test_alert_command_gets_the_details_without_a_shell(tmp_path: Path) -> None:
    """The command receives the env vars; shell syntax in log content is never executed."""
    out = tmp_path / "env.json"
    canary = tmp_path / "pwned"
    script = (
        "import json, os, sys; "
        "json.dump({k: v for k, v in os.environ.items() if k.startswith('WARMUP_MONITOR_')}, "
        "open(sys.argv[1], 'w'))"
    )
    runner = AlertCommand([sys.executable, "-c", script, str(out)], report=print)
    hostile = f"loss is NaN; $(touch {canary}) `touch {canary}`"
    assert runner.send(_nan_event(hostile))
    runner.close(timeout=20)
    data = json.loads(out.read_text())
    assert data["WARMUP_MONITOR_MESSAGE"] == hostile
    assert data["WARMUP_MONITOR_STEP"] == "40"
    assert not canary.exists()
    assert runner.done == 1


def test_alert_command_string_is_split_once_with_shlex(tmp_path: Path) -> None:
    """A command string is split like a shell would split words, nothing more."""
    runner = AlertCommand(f"{sys.executable} -c 'print(1)'", report=print)
    try:
        assert runner.argv == [sys.executable, "-c", "print(1)"]
    finally:
        runner.close()


def test_alert_command_failure_is_reported_once() -> None:
    """A failing command is reported once however many alerts fail."""
    messages: list[str] = []
    runner = AlertCommand([sys.executable, "-c", "raise SystemExit(3)"], report=messages.append)
    for _ in range(3):
        runner.send(_nan_event())
    runner.close(timeout=30)
    assert runner.failed == 3
    assert messages == [f"on-alert: '{sys.executable}' exited with status 3"]


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("", "--on-alert is empty"),
        ("no-such-command-xyz --flag", "not found"),
        ("notify-send 'unclosed", "cannot be split into words"),
    ],
)
def test_bad_alert_command_is_a_config_error(command: str, problem: str) -> None:
    """An empty or unknown command is refused at startup."""
    with pytest.raises(ConfigError, match=problem):
        AlertCommand(command, report=print)


# ---------------------------------------------------------------------------------- webhook
class _Loopback:
    """An HTTP server on 127.0.0.1 in a thread; ``url`` has a secret-looking path."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/SECRET"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Hook(_Loopback):
    """A loopback HTTP server answering with the given statuses, recording bodies."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler)


def test_webhook_posts_slack_json_and_retries_server_errors() -> None:
    """Two 500s then 200: the alert is delivered once as {"text": ...}."""
    hook = _Hook([500, 503])
    try:
        poster = Webhook(hook.url, report=print, backoff=0.01)
        poster.send(_verdict_event())
        assert _wait_for(lambda: poster.done == 1)
        poster.close()
    finally:
        hook.close()
    assert len(hook.bodies) == 3
    assert set(hook.bodies[-1]) == {"text"}
    assert "warmup_too_short" in hook.bodies[-1]["text"]


def test_webhook_gives_up_on_client_errors_and_hides_the_url_path() -> None:
    """A 404 is not retried; the message names the host but not the secret path."""
    hook = _Hook([404])
    messages: list[str] = []
    try:
        poster = Webhook(hook.url, report=messages.append, backoff=0.01)
        poster.send(_nan_event())
        assert _wait_for(lambda: poster.failed == 1)
        poster.close()
    finally:
        hook.close()
    assert len(hook.bodies) == 1
    assert messages and "HTTP 404" in messages[0] and "SECRET" not in messages[0]


def test_webhook_never_blocks_the_caller() -> None:
    """With the server down, send() returns at once and close() is bounded."""
    poster = Webhook("http://127.0.0.1:9/unreachable", report=lambda m: None, timeout=0.2)
    start = time.perf_counter()
    for _ in range(150):
        poster.send(_nan_event())  # beyond the queue bound: dropped, not waited for
    assert time.perf_counter() - start < 0.5
    assert poster.dropped > 0
    start = time.perf_counter()
    poster.close(timeout=1.0)
    assert time.perf_counter() - start < 2.0


def test_bad_webhook_url_is_a_config_error() -> None:
    """Only http(s) URLs are accepted."""
    with pytest.raises(ConfigError, match="not an http"):
        Webhook("ftp://example.com/x", report=print)


# ---------------------------------------------------------------------------------- outputs
def test_outputs_write_every_event_and_track_exit_on() -> None:
    """Every event is written; exit_reached flips only at the --exit-on severity."""
    stream = io.StringIO()
    outputs = Outputs(stream, fmt="jsonl", exit_on=Severity.CRITICAL)
    outputs.emit(WatchEvent("run_added", "run-a", 1.0, message="watching"))
    outputs.emit(_verdict_event())
    assert not outputs.exit_reached
    outputs.emit(_nan_event())
    assert outputs.exit_reached and outputs.alerts == 2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [d["event"] for d in lines] == ["run_added", "verdict", "finding"]


class _SlowHook(_Loopback):
    """A loopback server that reads each request, then answers one byte every ``pause`` s."""

    def __init__(self, pause: float = 3.0) -> None:
        self.texts: list[str] = []
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.requests += 1
                hook.texts.extend(json.loads(self.rfile.read(length))["text"].split("\n"))
                try:
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args: object) -> None:
                pass

        self._serve(Handler)


def test_a_slow_webhook_does_not_stall_delivery() -> None:
    """A server answering one byte every 3 s: each POST is given up after its total deadline,
    queued alerts go out together, every one of 20 reaches the server within seconds, and the
    slowness is reported."""
    hook = _SlowHook()
    messages: list[str] = []
    try:
        poster = Webhook(hook.url, report=messages.append, timeout=1.0)
        for step in range(20):
            poster.send(_nan_event(f"loss is NaN at step {step}"))
        assert _wait_for(lambda: len(hook.texts) == 20, timeout=8.0), hook.texts
        assert hook.requests <= 4
        start = time.perf_counter()
        poster.close(timeout=2.0)
        assert time.perf_counter() - start < 3.0
    finally:
        hook.close()
    assert any("did not answer within 1 s" in m and "SECRET" not in m for m in messages)


def test_webhook_flushes_what_is_queued_within_the_close_timeout() -> None:
    """On exit (SIGTERM) the alerts still queued are sent in one POST within the bounded close,
    and what could not be confirmed is reported with its count."""
    hook = _SlowHook(pause=5.0)
    messages: list[str] = []
    try:
        poster = Webhook(hook.url, report=messages.append, timeout=4.0)
        poster.send(_nan_event("loss is NaN at step 1"))
        assert _wait_for(lambda: hook.requests == 1, timeout=5.0)  # now stuck on the answer
        for step in range(2, 12):
            poster.send(_nan_event(f"loss is NaN at step {step}"))
        start = time.perf_counter()
        poster.close(timeout=1.5)
        took = time.perf_counter() - start
    finally:
        hook.close()
    assert took < 2.5
    assert any("not confirmed" in m or "not delivered" in m for m in messages), messages
    assert any("11 alerts" in m or "10 alerts" in m for m in messages), messages
