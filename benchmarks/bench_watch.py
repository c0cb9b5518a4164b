"""Live-watch benchmark: alert latency, CPU and memory of ``warmup-monitor watch``.

Run ``python benchmarks/bench_watch.py`` (about 5 minutes; ``--quick`` about 2). It prints
README-ready Markdown (also written to ``--out`` when given).

What it does, per scenario: a writer process logs a run with a real writer (torch's
``SummaryWriter`` with ``flush()`` after every step, or ``trainer_log.jsonl`` lines flushed
one by one) at a fixed rate, injecting a NaN loss every so often at known steps; the watcher
runs as a separate process (``watch DIR --format jsonl``), with file-system notifications or
with ``--no-notify --interval 1``. Latency is the time from the writer's ``time.time()`` right
after flushing the NaN step to the benchmark's ``time.time()`` when the watcher's alert line
for that step is read from its stdout: the whole path, pipe included.

CPU is the watcher's user+system time (psutil, else ``/proc/<pid>/stat``) over a quiet window
before writing starts (idle) and over the writing window (load). Memory is the watcher's RSS
sampled while a writer streams 1M scalar points as fast as it can.

A "step" is one training step logged as two scalars (loss and learning rate); rates are steps
per second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------- writer
def _loss(step: int) -> float:
    return 3.0 * math.exp(-step / 2000) + 0.5 + 0.01 * math.sin(step)


def _lr(step: int) -> float:
    return 3e-4 * min(1.0, (step + 1) / 100)


class _TB:
    def __init__(self, folder: Path) -> None:
        import torch
        from torch.utils.tensorboard import SummaryWriter

        torch.set_num_threads(1)
        self.writer = SummaryWriter(str(folder), max_queue=100_000, flush_secs=3600)

    def write(self, step: int, loss: float) -> None:
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/learning_rate", _lr(step), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Jsonl:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.file = (folder / "trainer_log.jsonl").open("a", encoding="utf-8")

    def write(self, step: int, loss: float) -> None:
        record = {"current_steps": step, "total_steps": 10**7, "loss": loss, "lr": _lr(step)}
        self.file.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _writer_main(args: argparse.Namespace) -> None:
    """The writer process: initial steps, wait for "go" on stdin, then the timed phase."""
    folder = Path(args.dir)
    out = _TB(folder) if args.writer == "tensorboard" else _Jsonl(folder)

    def say(**kw: Any) -> None:
        print(json.dumps(kw), flush=True)

    for step in range(args.initial):
        out.write(step, _loss(step))
    out.flush()
    say(ready=time.time())
    sys.stdin.readline()
    step = args.initial
    start = time.time()
    end_step = args.initial + args.steps
    flush_every = max(1, args.flush_every)
    while step < end_step:
        if args.rate > 0:
            # Pace by the clock; a writer that falls behind catches up without sleeping.
            due = start + (step - args.initial) / args.rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        is_nan = args.nan_every > 0 and (step - args.initial) % args.nan_every == args.nan_every - 1
        out.write(step, math.nan if is_nan or step == end_step - 1 else _loss(step))
        if is_nan or (step - args.initial) % flush_every == 0 or step == end_step - 1:
            out.flush()
            if is_nan or step == end_step - 1:
                say(nan_step=step, flushed=time.time())
        if args.progress and step % args.progress == 0:
            say(progress=step, at=time.time())
        step += 1
    out.close()
    say(done=time.time(), steps=step - args.initial, seconds=time.time() - start)


# ---------------------------------------------------------------------------------- process tools
class _Proc:
    """A child process whose stdout JSON lines are collected with the time they were read."""

    def __init__(self, argv: list[str], *, stdin: bool = False) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        self.lines: queue.Queue[tuple[float, dict[str, Any]] | None] = queue.Queue()
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.time()
            try:
                self.lines.put((now, json.loads(line)))
            except json.JSONDecodeError:
                continue
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def drain(self, timeout: float = 0.0) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.time()))
            except queue.Empty:
                return
            if item is None:
                return
            self.seen.append(item)

    def wait_for(self, pred: Any, timeout: float) -> tuple[float, dict[str, Any]]:
        for item in self.seen:
            if pred(item[1]):
                return item
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                item = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if item is None:
                break
            self.seen.append(item)
            if pred(item[1]):
                return item
        raise TimeoutError(f"{self.proc.args[:4]}: nothing matching within {timeout} s")

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.drain(1.0)


def _cpu_seconds(pid: int) -> float:
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_anon_mb(pid: int) -> float:
    """Anonymous (heap) RSS: excludes pages of memory-mapped log files, which the kernel can
    drop at any time."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _writer(fmt: str, folder: Path, **kw: Any) -> _Proc:
    argv = [sys.executable, __file__, "--writer", fmt, "--dir", str(folder)]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return _Proc(argv, stdin=True)


def _watcher(root: Path, notify: bool, interval: float) -> _Proc:
    argv = [sys.executable, "-m", "warmup_monitor", "watch", str(root), "--format", "jsonl"]
    argv += ["--interval", str(interval)]
    if not notify:
        argv.append("--no-notify")
    return _Proc(argv)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ---------------------------------------------------------------------------------- scenarios
def _latency(
    fmt: str, notify: bool, rate: int, seconds: float, idle: float, interval: float
) -> dict[str, Any]:
    """One writer at ``rate`` steps/s with a NaN every ~0.5 s (at least every 5 steps)."""
    nan_every = max(5, rate // 2)
    steps = int(rate * seconds)
    with tempfile.TemporaryDirectory(prefix="wm-bench-") as tmp:
        root = Path(tmp)
        run = root / ("run1" if fmt == "tensorboard" else "lf")
        writer = _writer(
            fmt, run, initial=200, steps=steps, rate=rate, nan_every=nan_every, flush_every=1
        )
        writer.wait_for(lambda e: "ready" in e, 120)
        watcher = _watcher(root, notify, interval)
        try:
            watcher.wait_for(lambda e: e["event"] == "run_added", 60)
            time.sleep(1.0)  # the first read and diagnosis
            watcher.drain()
            cpu0, t0 = _cpu_seconds(watcher.proc.pid), time.time()
            time.sleep(idle)
            idle_cpu = (_cpu_seconds(watcher.proc.pid) - cpu0) / (time.time() - t0)
            cpu1, t1 = _cpu_seconds(watcher.proc.pid), time.time()
            writer.send("go\n")
            writer.wait_for(lambda e: "done" in e, seconds * 3 + 60)
            load_cpu = (_cpu_seconds(watcher.proc.pid) - cpu1) / (time.time() - t1)
            flushed = {e["nan_step"]: e["flushed"] for _, e in writer.seen if "nan_step" in e}
            last = max(flushed)
            with contextlib.suppress(TimeoutError):
                watcher.wait_for(
                    lambda e: e.get("detector") == "non_finite" and e.get("step") == last,
                    interval + 10,
                )
            watcher.drain(0.5)
        finally:
            watcher.stop()
            writer.stop()
    alerts = {
        e["step"]: read_at
        for read_at, e in watcher.seen
        if e.get("event") == "finding" and e.get("detector") == "non_finite"
    }
    latencies = [alerts[s] - t for s, t in flushed.items() if s in alerts]
    return {
        "format": fmt,
        "mode": "notify" if notify else f"poll {interval:g} s",
        "rate": rate,
        "injected": len(flushed),
        "alerted": sum(1 for s in flushed if s in alerts),
        "median": statistics.median(latencies) if latencies else math.nan,
        "p95": _pct(latencies, 0.95),
        "max": max(latencies) if latencies else math.nan,
        "idle_cpu": idle_cpu * 100,
        "load_cpu": load_cpu * 100,
        "stderr": [line for line in watcher.stderr if line][:3],
    }


def _memory(fmt: str, points: int, rate: int = 0) -> dict[str, Any]:
    """Stream ``points`` scalars as fast as the writer goes (or at ``rate`` steps/s); sample
    the watcher's RSS."""
    steps = points // 2
    with tempfile.TemporaryDirectory(prefix="wm-bench-") as tmp:
        root = Path(tmp)
        run = root / ("run1" if fmt == "tensorboard" else "lf")
        writer = _writer(
            fmt,
            run,
            initial=200,
            steps=steps,
            rate=rate,
            nan_every=0,
            flush_every=100,
            progress=max(1, steps // 20),
        )
        writer.wait_for(lambda e: "ready" in e, 120)
        watcher = _watcher(root, True, 1.0)
        samples: list[tuple[float, float]] = []
        try:
            watcher.wait_for(lambda e: e["event"] == "run_added", 60)
            time.sleep(1.0)
            rss0 = _rss_mb(watcher.proc.pid)
            anon0 = _rss_anon_mb(watcher.proc.pid)
            start = time.time()
            writer.send("go\n")
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    pid = watcher.proc.pid
                    samples.append((_rss_mb(pid), _rss_anon_mb(pid)))
                    stop.wait(0.25)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            _, done = writer.wait_for(lambda e: "done" in e, 3600)
            end_step = 200 + steps - 1
            # The last step is a NaN: its alert means the watcher has read everything.
            caught_up_at, _ = watcher.wait_for(
                lambda e: e.get("detector") == "non_finite" and e.get("step") == end_step, 600
            )
            stop.set()
            sampler.join()
            cpu = _cpu_seconds(watcher.proc.pid)
        finally:
            watcher.stop()
            writer.stop()
    summary = next((e for _, e in reversed(watcher.seen) if e.get("event") == "summary"), {})
    write_s = float(done["seconds"])
    rss = [r for r, _ in samples]
    anon = [a for _, a in samples]
    n = len(rss)
    return {
        "format": fmt,
        "rate": rate,
        "points": steps * 2,
        "write_s": write_s,
        "behind_s": caught_up_at - (start + write_s),
        "rss_start": rss0,
        "rss_q": [rss[min(n - 1, int(n * q))] for q in (0.25, 0.5, 0.75)] if n else [],
        "rss_end": rss[-1] if rss else math.nan,
        "rss_max": max(rss) if rss else math.nan,
        "anon_start": anon0,
        "anon_q": [anon[min(n - 1, int(n * q))] for q in (0.25, 0.5, 0.75)] if n else [],
        "anon_end": anon[-1] if anon else math.nan,
        "anon_max": max(anon) if anon else math.nan,
        "points_read": summary.get("points_read"),
        "cpu_s": cpu,
    }


# ---------------------------------------------------------------------------------- report
def _fmt_s(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.2f}"


def _markdown(lat: list[dict[str, Any]], mem: list[dict[str, Any]], args: Any) -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "### Live watch: alert latency, CPU, memory",
        "",
        f"Measured with `python benchmarks/bench_watch.py{' --quick' if args.quick else ''}` "
        f"on {os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}), "
        f"load average at the end {load}: the machine was shared with other jobs while "
        "measuring, so these are upper bounds.",
        "",
        "Latency: from the writer's `flush()` of a NaN step to the watcher's alert line read from "
        "its stdout (`--format jsonl`). A step is two scalars (loss, LR); a NaN every ~0.5 s.",
        "",
        "| format | mode | steps/s | NaNs alerted | median | p95 | max | CPU idle | CPU writing |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in lat:
        lines.append(
            f"| {r['format']} | {r['mode']} | {r['rate']} | {r['alerted']}/{r['injected']} | "
            f"{_fmt_s(r['median'])} s | {_fmt_s(r['p95'])} s | {_fmt_s(r['max'])} s | "
            f"{r['idle_cpu']:.2f}% | {r['load_cpu']:.1f}% |"
        )
    lines += ["", "CPU is the share of one core used by the watcher process.", ""]
    if mem:
        lines += [
            "Memory: the watcher's RSS while a writer streams scalars (flush every 100 steps), "
            "as fast as it can or at a fixed rate; the last step is a NaN, and the time from the "
            "end of writing to its alert is how far behind the watcher was.",
            "",
            "RSS counts the pages of memory-mapped event files the reader touched; heap is the "
            "anonymous part (`RssAnon`), the memory the watcher itself holds.",
            "",
            "| format | writer pace | points | writing took | watcher behind | RSS before "
            "| RSS at 25/50/75% | RSS end (max) | heap before | heap at 25/50/75% "
            "| heap end (max) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in mem:
            q = " / ".join(f"{x:.0f}" for x in r["rss_q"])
            qa = " / ".join(f"{x:.0f}" for x in r["anon_q"])
            pace = f"{r['rate']:,} steps/s" if r["rate"] else "as fast as it can"
            lines.append(
                f"| {r['format']} | {pace} | {r['points']:,} | {r['write_s']:.1f} s | "
                f"{r['behind_s']:.1f} s | {r['rss_start']:.0f} MB | {q} MB | "
                f"{r['rss_end']:.0f} ({r['rss_max']:.0f}) MB | {r['anon_start']:.0f} MB | "
                f"{qa} MB | {r['anon_end']:.0f} ({r['anon_max']:.0f}) MB |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, 200k points")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--no-memory", action="store_true", help="skip the long streams")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    # Writer-process mode (used by the benchmark itself).
    parser.add_argument("--writer", choices=["tensorboard", "jsonl"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--initial", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--nan-every", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--flush-every", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--progress", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        _writer_main(args)
        return
    seconds = 8.0 if args.quick else 20.0
    idle = 4.0 if args.quick else 10.0
    latency = []
    for fmt in () if args.no_latency else ("tensorboard", "jsonl"):
        for notify in (True, False):
            for rate in (10, 1000):
                result = _latency(fmt, notify, rate, seconds, idle, 1.0)
                print(
                    f"# {fmt} {result['mode']} {rate}/s: median {_fmt_s(result['median'])} s, "
                    f"p95 {_fmt_s(result['p95'])} s, {result['alerted']}/{result['injected']}, "
                    f"idle {result['idle_cpu']:.2f}%, load {result['load_cpu']:.1f}%"
                    + (f", stderr: {result['stderr']}" if result["stderr"] else ""),
                    file=sys.stderr,
                    flush=True,
                )
                latency.append(result)
    memory = []
    if not args.no_memory:
        points = 200_000 if args.quick else 1_000_000
        # jsonl as fast as it goes outruns the reader (it parses the backlog in one poll);
        # paced at 20k steps/s the watcher keeps up: both are shown.
        for fmt, rate in (("tensorboard", 0), ("jsonl", 0), ("jsonl", 20_000)):
            result = _memory(fmt, points, rate)
            print(f"# memory {fmt} {rate}: {result}", file=sys.stderr, flush=True)
            memory.append(result)
    text = _markdown(latency, memory, args)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
