"""Start-up: how long the command line takes before it does any work.

Run ``python benchmarks/bench_startup.py``. Each command runs in a fresh process (median of
``--repeat``, warm page cache); ``tensorboard --help`` is the peer. The heavy libraries each
command imports are listed, so that a regression shows which import came back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("numpy", "pandas", "scipy", "matplotlib", "yaml", "google.protobuf", "swanlab")
COMMANDS = (
    ("warmup-monitor --help", ["--help"]),
    ("warmup-monitor report --help", ["report", "--help"]),
    ("warmup-monitor watch --help", ["watch", "--help"]),
    ("warmup-monitor plan --help", ["plan", "--help"]),
)
_PROBE = """
import json, sys
from warmup_monitor.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps(sorted(h for h in heavy if h in sys.modules)), file=sys.stderr)
"""


def _wall(cmd: list[str], repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {load:.2f}\n")
    tb = shutil.which("tensorboard")
    peer = _wall([tb, "--help"], args.repeat) if tb else float("nan")
    rows = []
    for label, argv in COMMANDS:
        wall = _wall([sys.executable, "-m", "warmup_monitor.cli", *argv], args.repeat)
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *argv],
            capture_output=True,
            text=True,
        )
        loaded = json.loads(probe.stderr.strip().splitlines()[-1])
        rows.append(
            f"| `{label}` | {wall * 1e3:,.0f} ms | {wall / peer:,.2f}x | "
            f"{', '.join(loaded) or 'none'} |"
        )
    rows.append(f"| `tensorboard --help` (peer) | {peer * 1e3:,.0f} ms | 1.00x | |")
    print("| Command | Wall time | vs `tensorboard --help` | Heavy modules loaded |")
    print("|---|---:|---:|---|")
    print("\n".join(rows))
    print(f"\nLoad average: {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
