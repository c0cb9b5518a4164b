"""In-process callback benchmark: the cost of one ``on_log`` call, and memory over a long run.

Run ``python benchmarks/bench_callback.py`` (about a minute; ``--quick`` shorter). It prints
README-ready Markdown (also written to ``--out`` when given).

**Overhead per logging call.** A real ``TrainingArguments`` / ``TrainerState`` /
``TrainerControl`` is set up and the HF callback's ``on_log`` is called with the Trainer's own
``logs`` dict (``loss``, ``grad_norm``, ``learning_rate``, ``epoch``) for 5,000 logged steps of
a synthetic run (10% linear warmup, cosine decay, a loss falling with noise), back to back:
the time of each call is measured with ``perf_counter`` (wall) and ``thread_time`` (the CPU
the call used: on a shared machine the wall time also counts the moments the scheduler gave
the core to another process; the control row, a busy loop with no monitor, shows that part).
Most calls only buffer the point and check it for NaN; a re-diagnosis of everything logged so
far runs at most every 0.2 s and at most 5% of the time (after a diagnosis that took t, none
for 19 t), or at once after a new loss high. Back to back is the worst case for
how often a call diagnoses per call made; the table shows the median, p99 and worst call, the
mean (diagnoses included), and the share of calls that diagnosed. The peers are the HF
callbacks of ``trainpulse`` (``make_hf_callback``) and ``training_doctor``
(``TrainCheckCallback``, default ``check_interval``), fed the same calls in the same run.

**Memory.** 100,000 logged steps are fed through the callback; the Python heap (tracemalloc,
which also sees numpy's buffers) is sampled every 10,000 steps. The engine keeps up to 20,000
points per tag as written and thins the older ones; new points wait in small chunks until the
next diagnosis merges them, so the heap is a sawtooth. Flat means the highest sample of the
second half is no higher (within 25% + 1 MiB) than the highest of the first.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _logs(n: int, seed: int = 0) -> Iterator[tuple[int, dict[str, float]]]:
    """``n`` logged steps of a healthy-looking run, as the Trainer's ``logs`` dicts."""
    rng = random.Random(seed)
    warmup = max(1, n // 10)
    for step in range(1, n + 1):
        if step <= warmup:
            lr = 3e-4 * step / warmup
        else:
            lr = 3e-4 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (n - warmup)))
        loss = 0.8 + 3.0 * math.exp(-step / (n / 5)) + rng.gauss(0, 0.05)
        yield (
            step,
            {
                "loss": loss,
                "grad_norm": abs(rng.gauss(1.0, 0.2)),
                "learning_rate": lr,
                "epoch": step / n,
            },
        )


def _trainer_objects(n: int, out: str) -> tuple[Any, Any, Any]:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(
        output_dir=out,
        max_steps=n,
        warmup_steps=0.1,
        learning_rate=3e-4,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
    )
    state = TrainerState(max_steps=n, logging_steps=1)
    return args, state, TrainerControl()


def _ours() -> Any:
    from warmup_monitor.integrations.hf import WarmupMonitorCallback

    return WarmupMonitorCallback(print_alerts=False, write_report=False, check_plan=False)


def _trainpulse() -> Any:
    from trainpulse.callbacks import make_hf_callback

    return make_hf_callback()


def _training_doctor() -> Any:
    # Its TrainerCallback subclass lists TrainerCallback first, so the Trainer's no-op on_log
    # shadows its own; the plain class holds the on_log it means to run.
    from training_doctor.integrations.huggingface import HuggingFaceCallback

    return HuggingFaceCallback(auto_print=False)


class _Control:
    """Not a monitor: a pure-Python loop of about warmup-monitor's median CPU per call, to
    show how much of the wall-clock tail is the machine (other processes taking the core)."""

    def on_train_begin(self, *args: Any) -> None:
        pass

    def on_log(self, *args: Any, **kwargs: Any) -> None:
        total = 0
        for i in range(1500):
            total += i * i


PEERS: tuple[tuple[str, Callable[[], Any]], ...] = (
    ("warmup-monitor", _ours),
    ("trainpulse", _trainpulse),
    ("training-doctor", _training_doctor),
    ("control (busy loop, no monitor)", _Control),
)


def _per_call(make: Callable[[], Any], n: int, out: str) -> dict[str, float]:
    args, state, control = _trainer_objects(n, out)
    cb = make()
    cb.on_train_begin(args, state, control)
    times = []
    cpu = []
    diagnoses = 0
    engine = getattr(getattr(cb, "monitor", None), "engine", None)
    gc.collect()
    for step, logs in _logs(n):
        state.global_step = step
        before = engine.last_diagnosis if engine is not None else None
        c0 = time.thread_time()
        t0 = time.perf_counter()
        cb.on_log(args, state, control, logs=logs)
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        if engine is not None and engine.last_diagnosis is not before:
            diagnoses += 1
    times.sort()
    cpu.sort()
    return {
        "median": statistics.median(times) * 1e3,
        "p99": times[int(0.99 * (len(times) - 1))] * 1e3,
        "cpu_median": statistics.median(cpu) * 1e3,
        "cpu_p99": cpu[int(0.99 * (len(cpu) - 1))] * 1e3,
        "max": times[-1] * 1e3,
        "mean": statistics.fmean(times) * 1e3,
        "diagnosed": diagnoses / n if engine is not None else math.nan,
        "stopped": float(control.should_training_stop),
    }


def _memory(n: int, out: str) -> list[tuple[int, float]]:
    args, state, control = _trainer_objects(n, out)
    cb = _ours()
    cb.on_train_begin(args, state, control)
    samples = []
    gc.collect()
    tracemalloc.start()
    for step, logs in _logs(n, seed=1):
        state.global_step = step
        cb.on_log(args, state, control, logs=logs)
        if step % (n // 10) == 0:
            gc.collect()
            samples.append((step, tracemalloc.get_traced_memory()[0] / 2**20))
    tracemalloc.stop()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5000, help="logged steps per call test")
    parser.add_argument("--long", type=int, default=100_000, help="logged steps, memory test")
    parser.add_argument("--quick", action="store_true", help="30,000 steps for the memory test")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    opts = parser.parse_args(argv)
    long = 30_000 if opts.quick else opts.long
    lines = [
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} cores (shared; figures are noisy, compare within one run)",
        "",
        f"**Per `on_log` call**, {opts.points:,} logged steps fed back to back (ms):",
        "",
        "| callback | median | p99 | CPU median | CPU p99 | worst | mean | calls that diagnosed "
        "| mean vs warmup-monitor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in PEERS:
            try:
                results[name] = _per_call(make, opts.points, tmp)
            except ImportError as err:
                print(f"{name}: not installed ({err}); skipped", file=sys.stderr)
        ours = results["warmup-monitor"]
        for name, r in results.items():
            share = "-" if math.isnan(r["diagnosed"]) else f"{r['diagnosed']:.2%}"
            lines.append(
                f"| {name} | {r['median']:.3f} | {r['p99']:.3f} | {r['cpu_median']:.3f} | "
                f"{r['cpu_p99']:.3f} | {r['max']:.1f} | "
                f"{r['mean']:.3f} | {share} | {r['mean'] / ours['mean']:.2f}x |"
            )
        ok = ours["cpu_median"] <= 1.0 and ours["cpu_p99"] <= 5.0
        wall_ok = ours["median"] <= 1.0 and ours["p99"] <= 5.0
        lines += [
            "",
            f"Target median <= 1 ms and p99 <= 5 ms per call: CPU {'met' if ok else 'NOT met'} "
            f"({ours['cpu_median']:.3f} ms, {ours['cpu_p99']:.3f} ms); wall clock "
            f"{'met' if wall_ok else 'not met'} ({ours['median']:.3f} ms, {ours['p99']:.3f} ms; "
            "compare the control's wall p99). The healthy run was "
            f"{'stopped (wrong)' if ours['stopped'] else 'not stopped'}.",
            "",
        ]
        samples = _memory(long, tmp)
    # The buffer appends small chunks and merges them when it diagnoses or thins, so the heap
    # is a sawtooth: flat means the peaks of the second half are no higher than the first's.
    half = len(samples) // 2
    early = max(mb for _, mb in samples[1:half])
    late = max(mb for _, mb in samples[half:])
    lines += [
        f"**Memory** over {long:,} logged steps (Python heap incl. numpy, MiB):",
        "",
        "| logged steps | " + " | ".join(f"{s:,}" for s, _ in samples) + " |",
        "|---|" + "---:|" * len(samples),
        "| heap | " + " | ".join(f"{mb:.1f}" for _, mb in samples) + " |",
        "",
        f"Highest sample after {samples[half][0]:,} steps {late:.1f} MiB vs {early:.1f} MiB "
        f"between {samples[1][0]:,} and {samples[half - 1][0]:,} steps: "
        f"{'flat' if late <= early * 1.25 + 1 else 'GROWING'}.",
    ]
    text = "\n".join(lines)
    print(text)
    if opts.out:
        opts.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
