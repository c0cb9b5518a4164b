"""Many small runs: reading, JSON and HTML reports over 500 and 2,000 TensorBoard runs.

Run ``python benchmarks/bench_many.py`` (``--quick`` for 500 runs only). Each run is 300 steps
x 4 tags written by torch's real ``SummaryWriter`` under one folder, the way a sweep or a
``runs/`` folder collects them; the data is written once and cached in ``benchmarks/_data/``.

Measured, each in a fresh interpreter after its imports (median of ``--repeat``):

- ``read_runs(folder)``: discovery, every run read into a ``Run``;
- ``report --format json`` and ``report --html`` through the command line, the whole process;
- tbparse ``SummaryReader(folder).scalars`` and TensorBoard's ``EventAccumulator`` over every
  run (peers), and reading every file's bytes (the floor).
"""

from __future__ import annotations

import math
import os
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


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--write-only":
    for n in sys.argv[2:]:
        dataset(int(n))
    sys.exit(0)
