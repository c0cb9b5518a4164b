"""Many small runs: reading, JSON and HTML reports over 500 and 2,000 TensorBoard runs.

Run ``python benchmarks/bench_many.py`` (``--quick`` for 500 runs only, ``--runs 2000`` for
other counts, ``--no-html`` to leave out the HTML page). Each run is 300 steps x 4 tags written
by torch's real ``SummaryWriter`` under one folder, the way a sweep or a ``runs/`` folder
collects them; the data is written once and cached in ``benchmarks/_data/``.

Measured, each in a fresh interpreter after its imports (median of ``--repeat``), as wall time
and as the CPU time of the process and its workers (the better guide on a busy machine):

- ``read_runs(folder)``: discovery, every run read into a ``Run`` and its frame built, in worker
  processes (the default) and in one process (``workers=1``);
- ``report --format json`` and ``report --html`` through the command line, the whole process,
  with the page's size;
- ``report --html`` of one run of 1M scalars (``bench_read.py``'s 5 tags x 200k steps), to show
  that a long run's page stays fast and small;
- tbparse ``SummaryReader(folder).scalars`` and TensorBoard's ``EventAccumulator`` over every
  run (peers), and reading every file's bytes (the floor);
- TensorBoard's data server (the ``tensorboard_data_server`` binary that ``tensorboard`` starts
  to load event files), from its start until it has loaded every point of the folder, then one
  ``ReadScalars`` request for all of them over its gRPC API (with ``--checksum``, as every
  reader here verifies every record).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
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
import resource
what, root = sys.argv[1], Path(sys.argv[2])
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, once joined
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
if what.startswith("read_runs"):
    import warmup_monitor as wm
    warm = sorted(root.iterdir())[0]
    len(wm.read_run(warm).scalars)  # imports (pandas too) and lazy tables
    kw = {"workers": 1} if what == "read_runs_serial" else {}
    c = cpu()
    t = time.perf_counter()
    n = sum(len(r.scalars) for r in wm.read_runs(root, **kw))
elif what == "tbparse":
    from tbparse import SummaryReader
    c = cpu()
    t = time.perf_counter()
    n = len(SummaryReader(str(root)).scalars)
elif what == "accumulator":
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    c = cpu()
    t = time.perf_counter()
    n = 0
    for run in sorted(root.iterdir()):
        acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
        acc.Reload()
        n += sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
else:
    c = cpu()
    t = time.perf_counter()
    n = sum(len(f.read_bytes()) for run in sorted(root.iterdir()) for f in run.iterdir())
print(json.dumps({"wall": time.perf_counter() - t, "cpu": cpu() - c, "n": n}))
"""

# TensorBoard's data server: started, asked until it has loaded every point, asked for them all.
_DATA_SERVER = """
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
import grpc
from tensorboard.data.proto import data_provider_pb2 as pb, data_provider_pb2_grpc as pb_grpc
from tensorboard_data_server import server_binary
root, runs, tags, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def cpu_of(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
with tempfile.TemporaryDirectory() as tmp:
    port_file = Path(tmp) / "port"
    cmd = [server_binary(), "--logdir", str(root), "--port", "0", "--port-file", str(port_file),
           "--reload", "once", "--samples-per-plugin", "scalars=all", "--checksum",
           "--die-after-stdin"]
    t = time.perf_counter()
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        while not port_file.exists() or not port_file.read_text().endswith("\\n"):
            time.sleep(0.005)
        channel = grpc.insecure_channel(
            f"localhost:{int(port_file.read_text())}",
            options=[("grpc.max_receive_message_length", -1)],
        )
        stub = pb_grpc.TensorBoardDataProviderStub(channel)
        plugin = pb.PluginFilter(plugin_name="scalars")
        while True:  # loaded: every run's every tag up to the last step
            listed = stub.ListScalars(pb.ListScalarsRequest(experiment_id="", plugin_filter=plugin))
            done = sum(
                1 for r in listed.runs for g in r.tags if g.metadata.max_step == steps
            )
            if done == runs * tags:
                break
            time.sleep(0.02)
        loaded = time.perf_counter() - t
        q = time.perf_counter()
        data = stub.ReadScalars(
            pb.ReadScalarsRequest(
                experiment_id="", plugin_filter=plugin, downsample=pb.Downsample(num_points=10**9)
            )
        )
        n = sum(len(g.data.step) for r in data.runs for g in r.tags)
        wall = time.perf_counter() - t
        query = time.perf_counter() - q
        server_cpu = cpu_of(server.pid)
    finally:
        server.kill()
        server.wait()
print(json.dumps({"wall": wall, "loaded": loaded, "query": query, "cpu": server_cpu, "n": n}))
"""


def _child(what: str, root: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, what, str(root)], capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"{what} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _data_server(root: Path, runs: int) -> dict[str, float] | None:
    """TensorBoard's data server on ``root``, or ``None`` when it is not installed."""
    try:
        import grpc  # noqa: F401
        import tensorboard_data_server  # noqa: F401
    except ImportError:
        return None
    args = [str(root), str(runs), str(len(TAGS)), str(STEPS)]
    out = subprocess.run(
        [sys.executable, "-c", _DATA_SERVER, *args], capture_output=True, text=True, timeout=1800
    )
    if out.returncode:
        raise SystemExit(f"data server failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["n"] != runs * len(TAGS) * STEPS:
        raise SystemExit(f"data server returned {result['n']} points")
    return result


def _cli(args: list[str], tmp: Path) -> dict[str, float]:
    """Wall and CPU time of one whole ``warmup-monitor`` process (imports and workers included)."""
    cmd = [sys.executable, "-m", "warmup_monitor.cli", *args]
    root = str(Path(__file__).resolve().parents[1])  # this checkout, installed or not
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.getenv("PYTHONPATH")])),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Exit 1 is a report that found a problem; a traceback is a failure whatever the code.
    if out.returncode not in (0, 1) or "Traceback" in out.stderr:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall": wall, "cpu": cpu}


def _long_run_html(tmp: Path) -> tuple[dict[str, float], float]:
    """``report --html`` of one run of 1M scalars: wall and CPU time, and the page's kB."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_read import TAGS as READ_TAGS
    from bench_read import _dataset

    run = _dataset("scalars_1m", 200_000, READ_TAGS)
    page = tmp / "r1m.html"
    measured = _cli(["report", str(run), "--html", str(page), "-q"], tmp)
    return measured, page.stat().st_size / 1e3


def _median(f: Callable[[], dict[str, float]], repeat: int) -> dict[str, float]:
    """The measurement with the median wall time of ``repeat``."""
    results = sorted((f() for _ in range(repeat)), key=lambda r: r["wall"])
    return results[len(results) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 runs only")
    parser.add_argument(
        "--runs", type=int, nargs="+", help="run counts to measure (default: 500 2000)"
    )
    parser.add_argument("--no-html", action="store_true", help="leave out report --html")
    parser.add_argument("--no-peers", action="store_true", help="leave out the peers")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    args = parser.parse_args()
    sizes = tuple(args.runs) if args.runs else (500,) if args.quick else (500, 2000)
    start_load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {start_load:.2f}\n")
    rows = []
    tmp = DATA / "_out"
    tmp.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        root = dataset(n)
        ours = _median(lambda root=root: _child("read_runs", root), args.repeat)
        measured: list[tuple[str, dict[str, float]]] = [
            ("warmup-monitor `read_runs` (worker processes)", ours),
            (
                "warmup-monitor `read_runs(workers=1)` (one process)",
                _median(lambda root=root: _child("read_runs_serial", root), args.repeat),
            ),
        ]
        if not args.no_peers:
            measured += [
                ("tbparse `SummaryReader(folder).scalars`", _child("tbparse", root)),
                ("TensorBoard `EventAccumulator`, run by run", _child("accumulator", root)),
            ]
            server = _data_server(root, n)
            if server is not None:
                label = (
                    f"TensorBoard data server: loaded in {server['loaded']:,.2f} s, "
                    f"`ReadScalars` of every point {server['query']:,.2f} s"
                )
                measured.append((label, server))
        measured.append(
            (
                "reading every file's bytes (the floor)",
                _median(lambda root=root: _child("bytes", root), args.repeat),
            )
        )
        measured.append(
            (
                "`warmup-monitor report --format json` (whole process)",
                _median(
                    lambda root=root: _cli(
                        ["report", str(root), "--format", "json", "-o", str(tmp / "r.json")], tmp
                    ),
                    args.repeat,
                ),
            )
        )
        if not args.no_html:
            html = tmp / f"r{n}.html"
            html_time = _cli(["report", str(root), "--html", str(html), "-q"], tmp)
            size = html.stat().st_size / 1e6
            measured.append(
                (f"`warmup-monitor report --html` (whole process, {size:.1f} MB page)", html_time)
            )
        for label, m in measured:
            line = (
                f"| {n} runs | {label} | {m['wall']:,.2f} s | {m['cpu']:,.2f} s | "
                f"{m['wall'] / ours['wall']:,.1f}x | {m['cpu'] / n * 1e3:,.2f} ms |"
            )
            rows.append(line)
            print(line, flush=True)
    if not args.no_html:
        m, size = _long_run_html(tmp)
        line = (
            f"| 1 run of 1M scalars | `warmup-monitor report --html` (whole process, {size:,.0f} "
            f"kB page) | {m['wall']:,.2f} s | {m['cpu']:,.2f} s | – | – |"
        )
        rows.append(line)
        print(line, flush=True)
    print()
    print("| Runs | What | Wall time | CPU time | vs `read_runs` (wall) | CPU per run |")
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
