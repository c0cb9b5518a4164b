"""Compare benchmark: ``warmup-monitor compare`` on a sweep of 500 runs.

Run ``python benchmarks/bench_compare.py`` (``--quick`` skips the tbparse peer). The sweep is
written once by torch's real ``SummaryWriter`` under ``benchmarks/_data/sweep500/``: 25 warmups x
4 peak LRs x 5 seeds, 1,000 training steps logged every 5 (loss, learning rate, grad norm: 600
scalars per run), each run with the ``args.json`` its script would save.

Measured in one process after the imports, best of ``--repeat`` (wall time, and the CPU time of
that call, which on a shared machine shows the work without the waiting): the whole ``compare``
(find, read and diagnose every run, then measure, group and rank), each renderer on its
result, and two peers on the same folder: ``report`` (read and diagnose only: what compare adds
is the difference) and tbparse's ``SummaryReader(...).scalars`` (only loading the scalars into
pandas, where a hand-written comparison would start).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(__file__).resolve().parent / "_data" / "sweep500"
WARMUPS = tuple(range(0, 250, 10))  # 25
LRS = (1e-4, 3e-4, 1e-3, 3e-3)
SEEDS = (1, 2, 3, 4, 5)
STEPS, EVERY = 1000, 5
TARGET_SECONDS = 10.0


def _loss(step: int, progress: float, lr: float, seed: int) -> float:
    """A falling loss whose progress is the LR summed so far (``progress``, in peak-LR steps)."""
    rate = lr / 1e-3 / 400
    noise = 0.05 * math.sin(step * 0.37 + seed * 1.7) + 0.03 * math.sin(step * 1.3 + seed)
    return 1.0 + 3.0 * math.exp(-rate * progress) + noise


def _write() -> None:
    import torch
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    tmp = DATA.with_name(DATA.name + ".partial")
    print(f"writing {len(WARMUPS) * len(LRS) * len(SEEDS)} runs with torch SummaryWriter …")
    started = time.perf_counter()
    for warmup in WARMUPS:
        for lr in LRS:
            for seed in SEEDS:
                folder = tmp / f"lr{lr:g}" / f"w{warmup}" / f"seed{seed}"
                writer = SummaryWriter(str(folder), max_queue=10_000, flush_secs=3600)
                progress = 0.0
                for step in range(0, STEPS + 1, EVERY):
                    factor = min(1.0, step / warmup) if warmup else 1.0
                    progress += factor * EVERY
                    writer.add_scalar("train/loss", _loss(step, progress, lr, seed), step)
                    writer.add_scalar("train/learning_rate", lr * factor, step)
                    writer.add_scalar("train/grad_norm", 1.0 + 0.1 * math.sin(step), step)
                writer.close()
                config = {"warmup_steps": warmup, "learning_rate": lr, "seed": seed}
                (folder / "args.json").write_text(json.dumps(config))
    tmp.rename(DATA)
    print(f"  done in {time.perf_counter() - started:.0f} s")


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """``(wall, cpu, result)`` of the fastest of ``repeat`` calls (by wall time)."""
    best, cpu, out = math.inf, math.nan, None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - t
        if wall < best:
            best, cpu = wall, time.process_time() - c
    return best, cpu, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the tbparse peer")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many (default 2)")
    args = parser.parse_args(argv)
    if not DATA.exists():
        _write()

    from warmup_monitor.compare import build_comparison, compare_report
    from warmup_monitor.render.compare import render_compare_json, render_compare_text
    from warmup_monitor.render.compare_html import render_compare_html
    from warmup_monitor.report import build_report

    rows: list[tuple[str, float, float]] = []

    def timed(what: str, fn: Callable[[], Any], repeat: int = args.repeat) -> Any:
        wall, cpu, out = _best(fn, repeat)
        rows.append((what, wall, cpu))
        return out

    comparison = timed(
        "warmup-monitor `compare` (find, read, diagnose, measure, rank)",
        lambda: build_comparison([DATA]),
    )
    report = timed(
        "peer: warmup-monitor `report` (find, read, diagnose)", lambda: build_report([DATA])
    )
    timed(
        "  of which measuring, grouping, ranking (`compare_report`)", lambda: compare_report(report)
    )
    text = timed("render text", lambda: render_compare_text(comparison))
    timed("render JSON", lambda: render_compare_json(comparison))
    timed("render HTML (every run drawn)", lambda: render_compare_html(comparison), 1)
    if not args.quick:
        from tbparse import SummaryReader

        timed(
            "peer: tbparse `SummaryReader(...).scalars` (loading only)",
            lambda: SummaryReader(str(DATA), extra_columns={"dir_name"}).scalars,
            1,
        )
    t_compare = rows[0][1]
    t_text = rows[3][1]

    n = len(comparison.measures)
    print(f"\n{n} runs, {len(comparison.entries)} settings ({', '.join(comparison.varying)})\n")
    print("| What | Wall time | CPU time | vs `compare` (wall) |")
    print("|---|---:|---:|---:|")
    for what, seconds, cpu in rows:
        print(f"| {what} | {seconds:.2f} s | {cpu:.2f} s | {seconds / t_compare:.2f}x |")
    total = t_compare + t_text
    verdict = "within" if total < TARGET_SECONDS else "OVER"
    print(f"\ncompare + text output: {total:.2f} s for {n} runs ({verdict} the 10 s target)")
    if os.path.exists("/proc/loadavg"):
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"load average while measuring: {load} (on {os.cpu_count()} cores)")
    print("conclusion:", comparison.conclusion)
    print("\n".join(text.splitlines()[6:12]))
    return 0 if total < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
