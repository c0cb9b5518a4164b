"""``warmup-monitor watch``: real writers and readers; the CLI in-process and as a live process."""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from warmup_monitor.cli import main

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------- writers
def _write_tb(
    writer: Any,
    steps: range,
    *,
    nan_at: int | None = None,
    loss_tag: str = "train/loss",
    warmup: int = 20,
) -> None:
    """Loss and LR through a real SummaryWriter, flushed after each step like a live run."""
    for step in steps:
        loss = math.nan if step == nan_at else 3.0 * math.exp(-step / 200) + 0.5
        writer.add_scalar(loss_tag, loss, step)
        writer.add_scalar("train/learning_rate", 3e-4 * min(1.0, (step + 1) / warmup), step)
        writer.flush()


def _lf_line(step: int, loss: float, total: int = 500) -> str:
    """One ``trainer_log.jsonl`` line as LLaMA-Factory writes it (NaN as Python's json does)."""
    record = {
        "current_steps": step,
        "total_steps": total,
        "loss": loss,
        "lr": 2e-5 * min(1.0, step / 20),
        "epoch": round(step / total, 4),
        "percentage": round(100 * step / total, 2),
        "elapsed_time": "0:00:10",
        "remaining_time": "0:10:00",
    }
    return json.dumps(record) + "\n"


def _invoke(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``watch`` in-process with ``--format jsonl``; returns exit code, events, stderr."""
    result = CliRunner().invoke(main, ["watch", *args, "--format", "jsonl"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, events, result.stderr


def _findings(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["detector"], e["metric"], e["step"]) for e in events if e["event"] == "finding"]


# ---------------------------------------------------------------------------------- --once
def test_once_reports_the_nan_of_a_tensorboard_run(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """--once on a torch SummaryWriter run: the NaN finding, with its step, LR and phase."""
    _write_tb(torch_writer(tmp_path / "run1"), range(60), nan_at=45)
    code, events, _ = _invoke(str(tmp_path), "--once")
    assert code == 0
    assert events[0]["event"] == "run_added" and events[-1]["event"] == "summary"
    nan = [e for e in events if e["event"] == "finding" and e["detector"] == "non_finite"]
    assert [(e["metric"], e["step"], e["severity"]) for e in nan] == [("loss", 45, "critical")]
    assert nan[0]["value"] is None and nan[0]["lr"] == pytest.approx(3e-4)
    assert isinstance(nan[0]["lag"], float) and nan[0]["time"] >= nan[0]["point_time"]
    assert events[-1]["points_read"] == 120 and events[-1]["runs_watched"] == 1


def test_exit_on_critical_exits_1_on_a_nan(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """--exit-on critical: exit code 1 once the NaN is reported; the summary still follows."""
    _write_tb(torch_writer(tmp_path / "run1"), range(30), nan_at=25)
    code, events, _ = _invoke(str(tmp_path), "--once", "--exit-on", "critical")
    assert code == 1
    assert ("non_finite", "loss", 25) in _findings(events)
    assert events[-1]["event"] == "summary"


def test_metric_override_reads_a_custom_tag(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """--metric loss=TAG makes a custom loss tag count as the loss."""
    _write_tb(torch_writer(tmp_path / "r"), range(30), nan_at=12, loss_tag="objective/total")
    _, plain, _ = _invoke(str(tmp_path), "--once")
    _, mapped, _ = _invoke(str(tmp_path), "--once", "--metric", "loss=objective/total")
    assert ("non_finite", "loss", 12) not in _findings(plain)
    assert ("non_finite", "loss", 12) in _findings(mapped)


def test_loss_window_says_what_a_logged_loss_stands_for(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """A loop that logs every 5 steps, no config: one value x1.3 as the LR warms up is a
    catapult in a mean over the spacing and, with --loss-window 1, one noisy step."""
    writer = torch_writer(tmp_path / "loop")
    for step in range(5, 201, 5):
        lr = 1e-3 * step / 20 if step <= 20 else 1e-3 * (200 - step) / 180
        writer.add_scalar("loss", (4.0 * 0.9835**step + 1.5) * (1.3 if step == 20 else 1.0), step)
        writer.add_scalar("lr", lr, step)
        writer.flush()
    _, as_mean, _ = _invoke(str(tmp_path), "--once")
    _, as_single, _ = _invoke(str(tmp_path), "--once", "--loss-window", "1")
    assert ("catapult", "loss", 20) in _findings(as_mean)
    assert [f for f in _findings(as_single) if f[0] == "catapult"] == []


def test_on_alert_command_receives_the_details(tmp_path: Path) -> None:
    """--on-alert runs the command (no shell) with WARMUP_MONITOR_* variables."""
    watched = tmp_path / "out"
    watched.mkdir()
    (watched / "trainer_log.jsonl").write_text(
        "".join(_lf_line(s, math.nan if s == 7 else 2.0) for s in range(1, 11))
    )
    dump = tmp_path / "alert-env.jsonl"  # outside the watched folder
    script = (
        "import json, os, sys; f = open(sys.argv[1], 'a'); "
        "f.write(json.dumps({k: v for k, v in os.environ.items() "
        "if k.startswith('WARMUP_MONITOR_')}) + chr(10))"
    )
    command = f'{sys.executable} -c "{script}" {dump}'
    code, events, _ = _invoke(str(watched), "--once", "--on-alert", command)
    assert code == 0
    received = [json.loads(line) for line in dump.read_text().splitlines()]
    nan = [r for r in received if r["WARMUP_MONITOR_KIND"] == "non_finite"]
    assert len(nan) == 1
    assert nan[0]["WARMUP_MONITOR_STEP"] == "7"
    assert nan[0]["WARMUP_MONITOR_METRIC"] == "loss"
    assert nan[0]["WARMUP_MONITOR_SEVERITY"] == "critical"
    assert nan[0]["WARMUP_MONITOR_VALUE"] == "nan"
    assert nan[0]["WARMUP_MONITOR_RUN"] == "out"
    assert json.loads(nan[0]["WARMUP_MONITOR_JSON"])["step"] == 7
    alerts = [
        e
        for e in events
        if (e["event"] == "finding" and e["severity"] in ("warning", "critical"))
        or (e["event"] == "verdict" and e["verdict"] not in ("healthy", "insufficient_data"))
    ]
    assert len(received) == len(alerts)  # one command per alert, info findings excluded
    assert sorted(os.listdir(watched)) == ["trainer_log.jsonl"]  # nothing written there


class _Hook:
    """A loopback HTTP server that records the JSON bodies posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/x"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_receives_the_alert(tmp_path: Path) -> None:
    """--webhook posts {"text": ...} for the NaN to a loopback server before exiting."""
    (tmp_path / "trainer_log.jsonl").write_text(
        "".join(_lf_line(s, math.nan if s == 4 else 2.0) for s in range(1, 9))
    )
    hook = _Hook()
    try:
        code, _, _ = _invoke(str(tmp_path), "--once", "--webhook", hook.url)
    finally:
        hook.close()
    assert code == 0
    texts = [b["text"] for b in hook.bodies]
    assert any("non_finite" in t and "step 4" in t and "CRITICAL" in t for t in texts), texts
    assert all(set(b) == {"text"} for b in hook.bodies)


# ---------------------------------------------------------------------------------- bad paths
def test_missing_path_exits_2_with_a_hint(tmp_path: Path) -> None:
    """A path that does not exist: one error line naming it and --wait, exit 2."""
    result = CliRunner().invoke(main, ["watch", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: path '{tmp_path / 'nope'}' does not exist. "
        "Check the path, or pass --wait to wait for it to appear\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--on-alert", "no-such-command-xyz", "--on-alert command 'no-such-command-xyz' not found"),
        ("--webhook", "hooks.example.com/x", "--webhook 'hooks.example.com/x' is not an http"),
        ("--interval", "0", "Invalid value for '--interval'"),
        ("--loss-window", "0", "Invalid value for '--loss-window'"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, option: str, value: str, message: str) -> None:
    """A bad alert command, webhook URL or interval fails at startup with exit code 2."""
    (tmp_path / "trainer_log.jsonl").write_text(_lf_line(1, 2.0))
    result = CliRunner().invoke(main, ["watch", str(tmp_path), "--once", option, value])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_once_on_an_empty_folder_exits_2(tmp_path: Path) -> None:
    """--once with nothing to read is an error, not an empty success."""
    result = CliRunner().invoke(main, ["watch", str(tmp_path), "--once"])
    assert result.exit_code == 2
    assert "empty directory" in result.stderr


def test_unreadable_folder_gives_one_clear_line(tmp_path: Path) -> None:
    """A folder without read permission: 'Error: path … is not readable', exit 2."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    argv = [sys.executable, "-m", "warmup_monitor", "watch", str(locked), "--once"]
    if os.geteuid() == 0:
        # Root reads anything: drop the capabilities that bypass permission bits.
        if shutil.which("setpriv") is None:
            locked.chmod(0o755)
            pytest.skip("running as root without setpriv")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *argv]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2
    assert proc.stderr == f"Error: path '{locked}' is not readable. Check its permissions\n"


# ---------------------------------------------------------------------------------- live
def _default_sigint() -> None:
    # A test run started as a background job inherits an ignored SIGINT, and Python then
    # installs no Ctrl-C handler: give the child the disposition an interactive watch has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Live:
    """``warmup-monitor watch … --format jsonl`` as a child process; events read as they come."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "warmup_monitor", "watch", *args, "--format", "jsonl"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
            preexec_fn=_default_sigint,
        )
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        # Both pipes are drained by threads: communicate() would race them for stdout.
        self._threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict:
        """The first event (already seen or new) matching ``pred``; fails at the deadline."""
        for event in self.events:
            if pred(event):
                return event
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            event = json.loads(line)
            self.events.append(event)
            if pred(event):
                return event
        raise AssertionError(f"no matching event within {timeout} s; got {self.events}")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; returns the exit code and stderr once the summary is out."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        for thread in self._threads:
            thread.join(timeout=10)
        while True:
            try:
                line = self._lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.events.append(json.loads(line))
        return self.proc.returncode, "".join(self.stderr)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _is_finding(metric: str, step: int, run: str | None = None) -> Callable[[dict], bool]:
    def pred(e: dict[str, Any]) -> bool:
        return (
            e["event"] == "finding"
            and e["detector"] == "non_finite"
            and e["metric"] == metric
            and e["step"] == step
            and (run is None or e["run"] == run)
        )

    return pred


def test_live_watch_follows_runs_as_they_appear_change_and_vanish(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """One live watcher: waits for the folder, picks up a TensorBoard run and a jsonl run,
    alerts on their NaNs, survives a half-written line, a truncated and a replaced file
    without repeating alerts, reports a vanished run once, and exits 0 on Ctrl-C."""
    root = tmp_path / "output"
    live = _Live(str(root), "--wait", "--interval", "0.2")
    try:
        live.wait_for(lambda e: e["event"] == "notice" and "does not exist" in e["message"])
        # A TensorBoard run appears and hits a NaN.
        writer = torch_writer(root / "tb" / "run1")
        _write_tb(writer, range(0, 40))
        live.wait_for(lambda e: e["event"] == "run_added" and e["path"].endswith("run1"))
        _write_tb(writer, range(40, 45), nan_at=42)
        flushed = time.time()
        alert = live.wait_for(_is_finding("loss", 42))
        assert alert["lr_phase"] in ("peak", "constant") and alert["value"] is None
        assert alert["time"] - flushed < 10
        # A LLaMA-Factory log appears next to it, with a half-written last line.
        lf = root / "lf"
        lf.mkdir()
        log = lf / "trainer_log.jsonl"
        lines = [_lf_line(s, math.nan if s == 6 else 2.0) for s in range(1, 11)]
        log.write_text("".join(lines) + _lf_line(11, 2.0)[:25])
        live.wait_for(_is_finding("loss", 6, run="lf"))
        with log.open("a") as f:
            f.write(_lf_line(11, 2.0)[25:] + _lf_line(12, math.inf))
        live.wait_for(_is_finding("loss", 12, run="lf"))
        # Truncated to a shorter prefix, then replaced by a new file: read again from the
        # start, but the NaN at step 6 is not alerted a second time.
        with log.open("r+") as f:
            f.truncate(len("".join(lines[:7])))
        tmp = lf / "trainer_log.jsonl.tmp"
        tmp.write_text("".join(lines) + _lf_line(13, 2.0) + _lf_line(14, math.nan))
        os.replace(tmp, log)
        live.wait_for(_is_finding("loss", 14, run="lf"))
        # The jsonl run's folder vanishes: said once, the TensorBoard run is still followed.
        shutil.rmtree(lf)
        live.wait_for(lambda e: e["event"] == "run_removed" and e["run"] == "lf")
        _write_tb(writer, range(45, 50), nan_at=48)
        live.wait_for(_is_finding("loss", 48))
        code, err = live.stop()
    finally:
        live.kill()
    assert code == 0, err
    assert "Traceback" not in err
    nan_steps = sorted(
        (e["run"], e["step"])
        for e in live.events
        if e["event"] == "finding" and e["detector"] == "non_finite"
    )
    assert nan_steps == sorted(set(nan_steps))  # every alert once
    assert [e["event"] for e in live.events].count("run_removed") == 1
    assert live.events[-1]["event"] == "summary"
    assert live.events[-1]["runs_watched"] == 2


def test_polling_mode_alerts_within_an_interval(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """--no-notify polls: a NaN flushed to an existing run is reported within a few polls."""
    writer = torch_writer(tmp_path / "run")
    _write_tb(writer, range(0, 20))
    live = _Live(str(tmp_path), "--no-notify", "--interval", "0.2", "--exit-on", "critical")
    try:
        live.wait_for(lambda e: e["event"] == "run_added")
        _write_tb(writer, range(20, 25), nan_at=22)
        flushed = time.time()
        alert = live.wait_for(_is_finding("loss", 22))
        assert alert["time"] - flushed < 10
        assert live.proc.wait(timeout=30) == 1  # --exit-on critical
    finally:
        live.kill()


# ---------------------------------------------------------------------------------- stopping
# SIGTERM delivered to the watcher while it is still loading its libraries (the first second of
# a job that is cancelled at once): it arrives as the first heavy module is being imported.
_TERM_WHILE_LOADING = """
import os, signal, sys

class _TermOnFirstHeavyImport:
    fired = False
    def find_spec(self, name, path=None, target=None):
        if not self.fired and name.split(".")[0] in ("numpy", "pandas", "watchdog"):
            self.fired = True
            os.kill(os.getpid(), signal.SIGTERM)
        return None

sys.meta_path.insert(0, _TermOnFirstHeavyImport())
from warmup_monitor.cli import main
sys.argv = ["warmup-monitor", "watch", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("fmt", ["human", "jsonl"])
def test_sigterm_while_starting_still_prints_the_summary(tmp_path: Path, fmt: str) -> None:
    """Killed by SIGTERM while still starting: the summary and exit 0, never -15."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _TERM_WHILE_LOADING, str(tmp_path), "--format", fmt],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    if fmt == "jsonl":
        summary = json.loads(last)
        assert summary["event"] == "summary" and summary["runs_watched"] == 0
    else:
        assert " SUMMARY  watched 0 runs, read 0 points" in last
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------- hostile names
_EVIL = "run\x1b]0;pwned\x07\x1b[2J\rCRITICAL [x] forged\n\u202eCRITICAL"


def test_control_characters_in_names_are_escaped_on_the_terminal(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """A folder and a tag named with ESC, BEL, CR, newline and a bidi override: watch prints
    them as visible escapes, one line per event, no forged CRITICAL line."""
    _write_tb(torch_writer(tmp_path / _EVIL), range(30), nan_at=25, loss_tag="loss\x1b[8m\nx")
    result = CliRunner().invoke(
        main, ["watch", str(tmp_path), "--once", "--metric", "loss=loss\x1b[8m\nx"]
    )
    out = result.stdout
    assert not any(c in out for c in "\x1b\x07\r\u202e"), out
    lines = out.splitlines()
    assert not [line for line in lines if line.startswith("CRITICAL")]
    added = [line for line in lines if " RUN " in line]
    assert len(added) == 1 and "\\x1b]0;pwned\\x07" in added[0]
    assert "forged\\n\\u202eCRITICAL" in added[0]
    nan = [line for line in lines if "non_finite" in line]
    assert len(nan) == 1 and "tag 'loss\\x1b[8m\\nx'" in nan[0]


def test_jsonl_non_finite_values_are_null_and_listed(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """watch --format jsonl: a NaN is null and its place listed under non_finite, as in the
    report's JSON."""
    _write_tb(torch_writer(tmp_path / "run1"), range(60), nan_at=45)
    _, events, _ = _invoke(str(tmp_path), "--once")
    nan = [e for e in events if e["event"] == "finding" and e["detector"] == "non_finite"]
    assert nan and nan[0]["value"] is None and nan[0]["evidence"]["value"] is None
    assert nan[0]["non_finite"] == {"evidence.value": "nan", "value": "nan"}
    assert all("non_finite" in e for e in events)
