"""Benchmark of the SwanLab reader on a run of 1M scalars written by SwanLab itself.

Run: ``python benchmarks/bench_swanlab.py`` (``--points N`` for another size). The run is
written once with ``swanlab`` in offline mode (about half a minute) and cached in
``benchmarks/_data/``. Each measurement runs in a fresh interpreter so peak memory is its own.

Measured (wall and CPU time, each the best of ``--repeat`` fresh processes; on a busy machine
CPU time is the steadier guide):

- ``read_run``: the whole run into a :class:`Run` (wall time, peak RSS above the interpreter
  with its imports loaded);
- ``poll()`` alone: decoding without building the DataFrame;
- SwanLab's own ``DataStoreReader`` + its protobuf classes over the same file, for reference
  (whole finished files only: it cannot tail a growing file);
- idle ``poll()`` on a live run (no finish record, writer alive) and on a finished one;
- tailing: the file grown in 1 MiB pieces with a poll after each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout, installed or not
DATA = Path(__file__).resolve().parent / "_data"
# The measuring processes import this checkout too (``-c`` puts their working directory first).
CHILD_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}
KEYS = ("train/loss", "train/learning_rate", "train/grad_norm", "train/epoch")

_WRITE = """
import math, sys, swanlab
n_steps = int(sys.argv[2])
probe = swanlab.Settings.Probe(hardware=False, requirements=False, git=False, monitor=False)
swanlab.init(mode="offline", log_dir=sys.argv[1], project="bench", name="bench-1m",
             config={"learning_rate": 3e-4, "warmup_steps": 2000, "max_steps": n_steps},
             settings=swanlab.Settings(probe=probe))
for step in range(n_steps):
    swanlab.log({"train/loss": 2.0 / math.sqrt(step + 1),
                 "train/learning_rate": 3e-4 * min(1.0, step / 2000),
                 "train/grad_norm": 1.0 + (step % 7) * 0.1,
                 "train/epoch": step / 10000}, step=step)
swanlab.finish()
"""

_MEASURE = """
import json, resource, sys, time
from pathlib import Path
import warmup_monitor.discover as discover
from warmup_monitor.readers import swanlab as reader

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

what, path = sys.argv[1], Path(sys.argv[2])
if what == "swanlab_reader":
    from swanlab.sdk.internal.core_python.store import DataStoreReader
    from swanlab.proto.swanlab.record.v1.record_pb2 import Record
else:
    # Ours uses SwanLab's record schema too (loaded on first use): imported before the clock
    # starts, as it is for SwanLab's own reader.
    from warmup_monitor.readers import available_formats
    from warmup_monitor.readers._swanlab_records import record_class
    record_class()
    # Finding a run's format imports every reader module, and a run's frame imports pandas on
    # first use: imports, not reading (the TensorBoard benchmark reads a tiny run first).
    available_formats()
    import pandas
base = rss_mib()
t0, c0 = time.perf_counter(), time.process_time()
if what == "read_run":
    n = len(discover.read_run(path).scalars)
elif what == "poll":
    n = len(reader.open_source(path).poll())
elif what == "bytes":
    n = len(next(path.glob("run-*.swanlab")).read_bytes())
else:
    rd = DataStoreReader()
    rd.open(next(path.glob("run-*.swanlab")))
    keys, steps, values = [], [], []
    for data in rd:
        rec = Record.FromString(data)
        if rec.WhichOneof("record_type") == "scalar":
            keys.append(rec.scalar.key)
            steps.append(rec.scalar.step)
            values.append(rec.scalar.value.number)
    n = len(values)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "peak_mib": rss_mib() - base, "points": n}))
"""


def _run_dir(points: int) -> Path:
    steps = points // len(KEYS)
    logdir = DATA / f"swanlab_{points}"
    found = sorted(logdir.glob("run-*/run-*.swanlab"))
    if found:
        return found[0].parent
    shutil.rmtree(logdir, ignore_errors=True)
    print(f"writing {steps * len(KEYS):,} scalars with SwanLab (cached for next time) …")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _WRITE, str(logdir), str(steps)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    print(f"  written in {time.perf_counter() - t0:.1f} s")
    return next(logdir.glob("run-*"))


def _measure(what: str, run: Path, repeat: int) -> dict[str, float]:
    best: dict[str, float] | None = None
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE, what, str(run)],
            check=True,
            capture_output=True,
            text=True,
            env=CHILD_ENV,
            cwd=ROOT,
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or got["wall"] < best["wall"]:
            best = {**got, "cpu": min(got["cpu"], best["cpu"]) if best else got["cpu"]}
        else:
            best["cpu"] = min(best["cpu"], got["cpu"])
    assert best is not None
    return best


def _idle_poll(run: Path, tmp: Path) -> tuple[float, float]:
    """Mean idle poll() cost in microseconds: (live run, finished run)."""
    from warmup_monitor.readers import swanlab as reader

    # A live copy: everything up to (not including) the finish record, and metadata naming
    # this very process as the writer, so the reader sees a running run.
    live = tmp / run.name
    (live / "files").mkdir(parents=True)
    record = next(run.glob("run-*.swanlab"))
    data = record.read_bytes()
    (live / record.name).write_bytes(data[: len(data) - 64])
    meta = json.loads((run / "files" / "swanlab-metadata.json").read_text())
    meta["runtime"]["pid"] = os.getpid()
    (live / "files" / "swanlab-metadata.json").write_text(json.dumps(meta))
    shutil.copy(run / "files" / "config.yaml", live / "files" / "config.yaml")
    out = []
    for path in (live, run):
        src = reader.open_source(path)
        src.poll()
        if path is live:
            assert src.status == "running", src.status
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            src.poll()
        out.append((time.perf_counter() - t0) / n * 1e6)
    return out[0], out[1]


def _tail(run: Path, tmp: Path, piece: int = 1 << 20) -> tuple[float, int, int]:
    """Grow a copy in ``piece``-byte steps, polling after each: (seconds, polls, points)."""
    from warmup_monitor.readers import swanlab as reader

    record = next(run.glob("run-*.swanlab"))
    data = record.read_bytes()
    grow = tmp / "grow" / run.name
    grow.mkdir(parents=True)
    target = grow / record.name
    target.write_bytes(b"")
    src = reader.open_source(grow)
    total = polls = 0
    elapsed = 0.0
    with open(target, "ab") as fh:
        for start in range(0, len(data), piece):
            fh.write(data[start : start + piece])
            fh.flush()
            t0 = time.perf_counter()
            total += len(src.poll())
            elapsed += time.perf_counter() - t0
            polls += 1
    return elapsed, polls, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run = _run_dir(args.points)
    size = next(run.glob("run-*.swanlab")).stat().st_size
    load = os.getloadavg()[0]
    results = {
        what: _measure(what, run, args.repeat)
        for what in ("read_run", "poll", "swanlab_reader", "bytes")
    }
    tmp = DATA / "tmp_bench"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        idle_live, idle_done = _idle_poll(run, tmp)
        tail_s, tail_polls, tail_points = _tail(run, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    points = results["read_run"]["points"]
    assert results["poll"]["points"] == points == tail_points
    print(
        textwrap.dedent(
            f"""
            SwanLab run: {points:,} scalars ({len(KEYS)} metrics), `run-*.swanlab` of
            {size / 2**20:.1f} MiB written by swanlab in offline mode; best of {args.repeat},
            one core, peak memory = growth of the process's max RSS during the read.

            | What | Wall time | CPU time | vs `read_run` (wall / CPU) | Peak memory | Throughput |
            |---|---:|---:|---:|---:|---:|"""
        ).strip()
    )
    labels = {
        "read_run": "`read_run()` (decode + `Run` DataFrame)",
        "poll": "`SwanLabSource.poll()` (decode only)",
        "swanlab_reader": "SwanLab's own `DataStoreReader` + protobuf (reference)",
    }
    ours, ours_cpu = results["read_run"]["wall"], results["read_run"]["cpu"]
    for what, label in labels.items():
        r = results[what]
        print(
            f"| {label} | {r['wall']:.2f} s | {r['cpu']:.2f} s | {r['wall'] / ours:.1f}x / "
            f"{r['cpu'] / ours_cpu:.1f}x | {r['peak_mib']:.0f} MiB | "
            f"{r['points'] / r['wall'] / 1e6:.2f} M points/s |"
        )
    b = results["bytes"]
    print(
        f"| reading the file's bytes (the floor) | {b['wall']:.3f} s | {b['cpu']:.3f} s | "
        f"{b['wall'] / ours:.2f}x / {b['cpu'] / ours_cpu:.2f}x | – | – |"
    )
    print(
        f"| tail: grown in 1 MiB pieces, {tail_polls} polls | {tail_s:.2f} s | – | – | – | "
        f"{tail_points / tail_s / 1e6:.2f} M points/s |"
    )
    print(f"\nLoad average: {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(
        f"\nIdle `poll()` (nothing new): {idle_live:.0f} µs on a live run (stat of the record "
        f"file, config and metadata, writer pid check), {idle_done:.0f} µs on a finished run."
    )


if __name__ == "__main__":
    main()
