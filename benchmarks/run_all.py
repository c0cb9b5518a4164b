"""Run every benchmark in turn: ``python benchmarks/run_all.py`` (``--quick`` for shorter runs).

Each benchmark is also a command of its own:

* ``bench_startup.py``   start-up of the command line vs ``tensorboard --help``
* ``bench_read.py``      TensorBoard reading (1M, 10M scalars): ``read_run`` vs tbparse,
  EventAccumulator and reading the bytes
* ``bench_many.py``      500 / 2,000 small runs: reading, JSON and HTML reports vs tbparse,
  EventAccumulator and TensorBoard's data server
* ``bench_swanlab.py``   SwanLab reading: ``read_run`` vs SwanLab's own reader
* ``bench_watch.py``     live watch: alert latency, CPU while idle and under load, memory
* ``bench_watch_busy.py`` watch CPU with ten runs each written at 100 steps/s
* ``bench_accuracy.py``  diagnosis accuracy on every labeled run
* ``bench_fuzz.py``      damaged real log files: tracebacks, hangs and silent drops (all 0)
* ``bench_compare.py``   ``compare`` on a 500-run sweep vs ``report`` and tbparse on the same runs
* ``bench_remote.py``    ``report s3://…`` on the same 500 runs served by a local S3 API vs disk
* ``bench_callback.py``  the HF callback's cost per ``on_log`` vs trainpulse and training-doctor;
  memory over 100k logged steps

The first run writes its data (1M-point logs, made by the real writers) under
``benchmarks/_data/``; later runs reuse it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES: tuple[tuple[str, list[str]], ...] = (
    ("bench_startup.py", ["--repeat", "3"]),
    ("bench_read.py", ["--quick"]),
    ("bench_many.py", ["--quick", "--repeat", "1"]),
    ("bench_swanlab.py", ["--repeat", "1"]),
    ("bench_watch.py", ["--quick"]),
    ("bench_watch_busy.py", ["--seconds", "10"]),
    ("bench_accuracy.py", []),
    ("bench_fuzz.py", ["--quick"]),
    ("bench_compare.py", ["--quick"]),
    ("bench_remote.py", ["--repeat", "1"]),
    ("bench_callback.py", ["--quick"]),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the shorter variant of each")
    args = parser.parse_args()
    failed = []
    for script, quick_args in BENCHES:
        cmd = [sys.executable, str(HERE / script), *(quick_args if args.quick else [])]
        print(f"\n## {script}\n", flush=True)
        start = time.perf_counter()
        if subprocess.call(cmd) != 0:
            failed.append(script)
        print(f"\n({script}: {time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
