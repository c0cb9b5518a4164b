"""Reading benchmark: warmup-monitor's TensorBoard reader against tbparse and EventAccumulator.

Run ``python benchmarks/bench_read.py`` (``--quick`` skips the slow peers on the large file;
the peers never read the 10M file unless ``--peers-on-10m``).
The event files are written once by torch's real ``SummaryWriter`` and cached under
``benchmarks/_data/``; later runs reuse them, so every reader sees a warm page cache.

Each (reader, data) pair runs in a fresh interpreter, after its imports and a warm-up read of
a tiny file. Wall and CPU time are the best of ``--repeat`` reads for warmup-monitor and of one
read for the slow peers on the large file; memory is the peak growth of the process's resident
set during the first read (sampled every 2 ms), which includes the pages of a memory-mapped file.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(__file__).resolve().parent / "_data"
TAGS = ("train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "train/tokens")
HF_TAGS = (
    "train/loss",
    "train/learning_rate",
    "train/grad_norm",
    "train/epoch",
    "eval/loss",
    "eval/runtime",
)
READERS = {
    "warmup-monitor": "warmup-monitor `read_run` (to the DataFrame)",
    "poll": "warmup-monitor `open_source(...).poll()` (points only)",
    "tbparse": "tbparse `SummaryReader(...).scalars`",
    "accumulator": "TensorBoard `EventAccumulator` (scalars=0)",
    "bytes": "reading the file's bytes (the floor)",
}


def _write(logdir: Path, steps: int, tags: tuple[str, ...]) -> None:
    """Write ``steps`` x ``len(tags)`` scalars with torch's SummaryWriter (a real training log)."""
    import math

    import torch
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    tmp = logdir.with_name(logdir.name + ".partial")
    if tmp.exists():
        for f in tmp.iterdir():
            f.unlink()
    writer = SummaryWriter(str(tmp), max_queue=10_000, flush_secs=3600)
    warmup = max(1, steps // 10)
    for step in range(steps):
        lr = 3e-4 * min(1.0, (step + 1) / warmup)
        loss = 2.5 * math.exp(-step / (steps / 3)) + 0.3 + 0.05 * math.sin(step)
        values = (loss, lr, 1.0 / (1 + step / 1000), step / steps * 3, float(step * 4096))
        # Six values: the HF-sized run also logs an eval loss; zip stops at the tags given.
        for tag, value in zip(tags, (*values, loss * 1.02), strict=False):
            writer.add_scalar(tag, value, step)
    writer.close()
    tmp.rename(logdir)


def _dataset(name: str, steps: int, tags: tuple[str, ...]) -> Path:
    logdir = DATA / name
    if not logdir.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"writing {name} ({steps} steps x {len(tags)} tags) with torch SummaryWriter …")
        t = time.perf_counter()
        _write(logdir, steps, tags)
        print(f"  done in {time.perf_counter() - t:.0f} s")
    return logdir


# ------------------------------------------------------------------------------ child side
def _reader(name: str) -> Callable[[Path], int]:
    if name == "warmup-monitor":
        from warmup_monitor import read_run

        return lambda p: len(read_run(p).scalars)
    if name == "poll":
        from warmup_monitor import open_source

        return lambda p: len(open_source(p).poll())
    if name == "bytes":

        def read_bytes(p: Path) -> int:
            return sum(len(f.read_bytes()) for f in sorted(p.iterdir()))

        return read_bytes
    if name == "tbparse":
        from tbparse import SummaryReader

        return lambda p: len(SummaryReader(str(p)).scalars)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def accumulate(p: Path) -> int:
        acc = EventAccumulator(str(p), size_guidance={"scalars": 0})
        acc.Reload()
        return sum(len(acc.Scalars(t)) for t in acc.Tags()["scalars"])

    return accumulate


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class _PeakRss(threading.Thread):
    """Samples this process's RSS every 2 ms; ``peak`` is the highest value seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.002):
            self.peak = max(self.peak, _rss_mb())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, _rss_mb())


def _child(name: str, path: Path, warm: Path, repeat: int) -> None:
    read = _reader(name)
    read(warm)
    walls, cpus = [], []
    rows = 0
    peak = 0.0
    for i in range(repeat):
        gc.collect()
        if i == 0:
            base = _rss_mb()
            sampler = _PeakRss()
            sampler.start()
        c, t = time.process_time(), time.perf_counter()
        rows = read(path)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        if i == 0:
            peak = sampler.stop() - base
    print(json.dumps({"wall": min(walls), "cpu": min(cpus), "peak_mb": peak, "rows": rows}))


def _idle_poll(path: Path, n: int = 2000) -> float:
    """Median time (µs) of a poll that finds nothing new."""
    from warmup_monitor import open_source

    src = open_source(path)
    src.poll()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        src.poll()
        times.append(time.perf_counter() - t)
    src.close()
    return statistics.median(times) * 1e6


# ------------------------------------------------------------------------------ parent side
def _run(name: str, path: Path, warm: Path, repeat: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", name, str(path), str(warm), str(repeat)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{name} failed on {path.name}:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow peers on 1M and 10M")
    parser.add_argument("--repeat", type=int, default=5, help="timed reads of fast readers")
    parser.add_argument(
        "--peers-on-10m",
        action="store_true",
        help="also run EventAccumulator on 10M (minutes; tbparse never: minutes and gigabytes)",
    )
    args = parser.parse_args(argv)

    big = _dataset("scalars_1m", 200_000, TAGS)
    huge = _dataset("scalars_10m", 2_000_000, TAGS)
    hf = _dataset("hf_5k", 5_000, HF_TAGS)
    tiny = _dataset("tiny_50", 50, HF_TAGS)  # warm-up read: imports and lazy tables
    start_load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {start_load:.2f}\n")
    table = []
    datasets = (
        ("1M scalars: 5 tags x 200k steps", big),
        ("10M scalars: 5 tags x 2M steps", huge),
        ("HF-sized: 6 tags x 5k steps", hf),
    )
    for label, path in datasets:
        size_mb = sum(f.stat().st_size for f in path.iterdir()) / 1e6
        base = None
        for name, title in READERS.items():
            slow = name in ("tbparse", "accumulator") and path in (big, huge)
            if slow and (
                args.quick or (path is huge and (name == "tbparse" or not args.peers_on_10m))
            ):
                continue  # peers on 10M: minutes (tbparse: and gigabytes)
            res = _run(name, path, tiny, 1 if slow or path is huge else args.repeat)
            base = base or res["wall"]
            line = (
                f"| {label} ({size_mb:.1f} MB) | {title} | {res['rows']:,} | "
                f"{res['wall'] * 1e3:,.0f} ms | {res['cpu'] * 1e3:,.0f} ms | "
                f"{res['wall'] / base:,.1f}x | {res['peak_mb']:,.0f} MB |"
            )
            table.append(line)
            print(line, flush=True)
    idle = _idle_poll(big)
    print()
    print("| Data | Reader | Rows | Wall time | CPU time | Wall vs read_run | Peak RSS growth |")
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(table))
    print(f"\nIdle `poll()` with nothing new (median of 2000): {idle:.1f} µs")
    print(f"Load average: {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
