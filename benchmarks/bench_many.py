"""Many small runs: reading, JSON and HTML reports over 500 and 2,000 TensorBoard runs.

Run ``python benchmarks/bench_many.py`` (``--quick`` for 500 runs only). Each run is 300 steps
x 4 tags written by torch's real ``SummaryWriter`` under one folder, the way a sweep or a
``runs/`` folder collects them; the data is written once and cached in ``benchmarks/_data/``.

Measured, each in a fresh interpreter after its imports (median of ``--repeat``):

- ``read_runs(folder)``: discovery, every run read into a ``Run``;
- ``report --format json`` and ``report --html`` through the command line, the whole process
  (wall time, and the CPU time of the process and its workers, which a busy machine inflates
  less), with the page's size;
- ``report --html`` of one run of 1M scalars (``bench_read.py``'s 5 tags x 200k steps), to show
  that a long run's page stays fast and small;
- tbparse ``SummaryReader(folder).scalars`` and TensorBoard's ``EventAccumulator`` over every
  run (peers), and reading every file's bytes (the floor).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(__file__).resolve().parent / "_data"
TAGS = ("train/loss", "train/learning_rate", "train/grad_norm", "train/epoch")
STEPS = 300


def _write(root: Path, runs: int) -> None:
    """``runs`` runs of ``STEPS`` x 4 scalars, each by its own torch ``SummaryWriter``."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    tmp = root.with_name(root.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    for r in range(runs):
        folder = tmp / f"run_{r:04d}"
        if folder.exists():
            continue
        part = folder.with_name(folder.name + ".part")
        writer = SummaryWriter(str(part), max_queue=10_000, flush_secs=3600)
        peak = 1e-4 * (1 + r % 7)
        warmup = 10 + (r % 5) * 20
        for step in range(1, STEPS + 1):
            lr = peak * min(1.0, step / warmup)
            loss = 2.5 * math.exp(-step / 80) + 0.4 + 0.03 * math.sin(step * (1 + r % 3))
            if r % 10 == 3 and step > 120:
                loss *= 1.0 + (step - 120) / 40  # a run that diverges
            values = (loss, lr, 1.0 + 0.2 * math.cos(step), step / STEPS)
            for tag, value in zip(TAGS, values, strict=True):
                writer.add_scalar(tag, value, step)
        writer.close()
        part.rename(folder)
    tmp.rename(root)


def dataset(runs: int) -> Path:
    root = DATA / f"many_{runs}"
    if not root.exists():
        print(f"writing {runs} runs ({STEPS} steps x {len(TAGS)} tags) with torch SummaryWriter …")
        t = time.perf_counter()
        _write(root, runs)
        print(f"  done in {time.perf_counter() - t:.0f} s", flush=True)
    return root


# ------------------------------------------------------------------------------ child side
_CHILD = """
import json, os, sys, time
from pathlib import Path
what, root = sys.argv[1], Path(sys.argv[2])
if what == "read_runs":
    import warmup_monitor as wm
    warm = sorted(root.iterdir())[0]
    wm.read_run(warm)  # imports and lazy tables
    t = time.perf_counter()
    n = sum(len(r.scalars) for r in wm.read_runs(root))
elif what == "tbparse":
    from tbparse import SummaryReader
    t = time.perf_counter()
    n = len(SummaryReader(str(root)).scalars)
elif what == "accumulator":
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    t = time.perf_counter()
    n = 0
    for run in sorted(root.iterdir()):
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        n += sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
else:
    t = time.perf_counter()
    n = sum(len(f.read_bytes()) for run in sorted(root.iterdir()) for f in run.iterdir())
print(json.dumps({"wall": time.perf_counter() - t, "n": n}))
"""


def _child(what: str, root: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, what, str(root)], capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"{what} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cli(args: list[str], tmp: Path) -> tuple[float, float]:
    """Wall and CPU time of one whole ``warmup-monitor`` process (imports included; CPU counts
    the report's forked workers too)."""
    cmd = [sys.executable, "-m", "warmup_monitor.cli", *args]
    cpu = _cpu_of_children()
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - t
    if out.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return wall, _cpu_of_children() - cpu


def _median(f: object, repeat: int) -> float:
    return statistics.median(f() for _ in range(repeat))  # type: ignore[operator]


def _median_pair(f: object, repeat: int) -> tuple[float, float]:
    """Median wall time, and the CPU time of that same measurement."""
    pairs = sorted(f() for _ in range(repeat))  # type: ignore[operator]
    return pairs[(len(pairs) - 1) // 2]


def _long_run_html(tmp: Path) -> tuple[float, float, float]:
    """``report --html`` of one run of 1M scalars: wall, CPU and page size in kB."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_read import TAGS, _dataset

    run = _dataset("scalars_1m", 200_000, TAGS)
    page = tmp / "r1m.html"
    wall, cpu = _cli(["report", str(run), "--html", str(page), "-q"], tmp)
    return wall, cpu, page.stat().st_size / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 runs only, no HTML at 2000")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    args = parser.parse_args()
    sizes = (500,) if args.quick else (500, 2000)
    start_load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {start_load:.2f}\n")
    rows = []
    tmp = DATA / "_out"
    tmp.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        root = dataset(n)
        ours = _median(lambda root=root: _child("read_runs", root)["wall"], args.repeat)
        floor = _median(lambda root=root: _child("bytes", root)["wall"], args.repeat)
        tbparse = _child("tbparse", root)["wall"]
        acc = _child("accumulator", root)["wall"]
        json_wall, json_cpu = _median_pair(
            lambda root=root: _cli(
                ["report", str(root), "--format", "json", "-o", str(tmp / "r.json")], tmp
            ),
            args.repeat,
        )
        html_wall = html_cpu = html_size = math.nan
        if n == 500 or not args.quick:
            html = tmp / f"r{n}.html"
            html_wall, html_cpu = _cli(["report", str(root), "--html", str(html), "-q"], tmp)
            html_size = html.stat().st_size / 1e6
        for label, wall, cpu in (
            ("warmup-monitor `read_runs`", ours, math.nan),
            ("tbparse `SummaryReader(folder).scalars`", tbparse, math.nan),
            ("TensorBoard `EventAccumulator`, run by run", acc, math.nan),
            ("reading every file's bytes (the floor)", floor, math.nan),
            ("`warmup-monitor report --format json` (whole process)", json_wall, json_cpu),
            (
                f"`warmup-monitor report --html` (whole process, {html_size:.1f} MB page)",
                html_wall,
                html_cpu,
            ),
        ):
            if math.isnan(wall):
                continue
            cpu_text = "" if math.isnan(cpu) else f"{cpu:,.2f} s"
            line = (
                f"| {n} runs | {label} | {wall:,.2f} s | {cpu_text} | {wall / ours:,.1f}x | "
                f"{wall / n * 1e3:,.1f} ms |"
            )
            rows.append(line)
            print(line, flush=True)
    wall, cpu, size = _long_run_html(tmp)
    line = (
        f"| 1 run of 1M scalars | `warmup-monitor report --html` (whole process, {size:,.0f} kB "
        f"page) | {wall:,.2f} s | {cpu:,.2f} s | – | – |"
    )
    rows.append(line)
    print(line, flush=True)
    print()
    print("| Runs | What | Wall time | CPU time | vs `read_runs` | Per run |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    print(f"\nLoad average: {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--write-only":
        for n in sys.argv[2:]:
            dataset(int(n))
        sys.exit(0)
    sys.exit(main())
