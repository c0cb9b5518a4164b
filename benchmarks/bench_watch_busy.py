"""Busy watch: CPU of ``warmup-monitor watch`` over ten runs each written at 100 steps/s.

Run ``python benchmarks/bench_watch_busy.py`` (``--seconds`` for the writing window). Ten writer
processes (``bench_watch.py``'s: torch ``SummaryWriter`` with ``flush()`` after every step, or
``trainer_log.jsonl`` lines) write under one folder while one watcher process follows it, with
file-system notifications and with ``--no-notify --interval 1``. CPU is the watcher's
user+system time over the writing window, as a share of one core. The writers themselves are
the load, so this is measured on a busy machine by construction.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_watch import _cpu_seconds, _watcher, _writer


def _busy(fmt: str, notify: bool, runs: int, rate: float, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        steps = int(rate * seconds)
        writers = [
            _writer(fmt, root / f"run{i}", initial=200, steps=steps, rate=rate) for i in range(runs)
        ]
        for w in writers:
            w.wait_for(lambda e: "ready" in e, 120)
        watcher = _watcher(root, notify, 1.0)
        try:
            watcher.wait_for(lambda e: e.get("event") == "run_added", 60)
            time.sleep(3.0)  # every run found, first reads and diagnoses done
            cpu0, t0 = _cpu_seconds(watcher.proc.pid), time.time()
            for w in writers:
                w.send("go\n")
            for w in writers:
                w.wait_for(lambda e: "done" in e, seconds * 5 + 60)
            cpu1, t1 = _cpu_seconds(watcher.proc.pid), time.time()
        finally:
            watcher.stop()
            for w in writers:
                w.stop()
        return 100.0 * (cpu1 - cpu0) / (t1 - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="writing window")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="steps/s per run")
    parser.add_argument("--format", choices=["jsonl", "tensorboard"], default="jsonl")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {load:.2f}\n")
    print("| format | mode | runs x steps/s | watcher CPU (share of one core) |")
    print("|---|---|---:|---:|")
    for notify in (True, False):
        cpu = _busy(args.format, notify, args.runs, args.rate, args.seconds)
        mode = "notify" if notify else "poll 1 s"
        print(f"| {args.format} | {mode} | {args.runs} x {args.rate:g} | {cpu:.1f}% |", flush=True)
    print(f"\nLoad average: {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
