"""Fuzz benchmark: thousands of damaged real log files, counted by what the readers made of them.

    python benchmarks/bench_fuzz.py                 # 3,200 inputs (about 530 per format)
    python benchmarks/bench_fuzz.py --inputs 600    # shorter
    python benchmarks/bench_fuzz.py --seed 7        # another sweep

One intact file per format is written by the real writers (torch's and tensorboardX's
``SummaryWriter``, SwanLab offline, HF ``TrainerState.save_to_json``, LLaMA-Factory's
``json.dumps`` lines, Lightning's ``metrics.csv``); each input is that file with one seeded
random damage (see ``tests/damage.py``), read with ``read_run`` + ``diagnose`` under a 10 s
deadline. Counted per format: tracebacks, hangs, silent drops (a point untouched by the damage
missing with no warning), points lost before the damage (must be 0), inputs refused with a
one-line error, and inputs where points were lost with a warning.

Peers on the same damaged event and SwanLab files: TensorBoard's ``EventAccumulator`` and
SwanLab's own ``DataStoreReader`` + protobuf; for them the table gives exceptions and the share
of intact points recovered, next to warmup-monitor's share. A benchmark, not a test: it reports;
the exit status is 1 when any traceback, hang or silent drop was found.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from damage import (  # noqa: E402
    FORMATS,
    build_corpus,
    check,
    random_damage,
    untouched_points,
)

BAD = ("traceback", "hang", "silent_drop", "lost_before_damage", "false_restart")


Point = tuple[str, int, float]


def _tb_peer(data: bytes) -> tuple[set[Point], bool]:
    """Scalar points TensorBoard's EventAccumulator reads from ``data``, and whether it raised."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.out.tfevents.1700000000.host"
        path.write_bytes(data)
        got: set[Point] = set()
        try:
            acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
            acc.Reload()
            tags = acc.Tags()
            for t in tags["scalars"]:
                got |= {(t, e.step, float(e.value)) for e in acc.Scalars(t)}
            for t in tags["tensors"]:
                got |= {(t, e.step, _tensor_value(e.tensor_proto)) for e in acc.Tensors(t)}
        except Exception:
            return got, True
    return got, False


def _tensor_value(proto: object) -> float:
    from tensorboard.util import tensor_util

    try:
        return float(tensor_util.make_ndarray(proto).reshape(()))
    except Exception:
        return float("nan")


def _swanlab_peer(data: bytes) -> tuple[set[Point], bool]:
    """Scalar points SwanLab's own DataStoreReader + protobuf read, and whether it raised."""
    from swanlab.proto.swanlab.record.v1.record_pb2 import Record
    from swanlab.sdk.internal.core_python.store import DataStoreReader

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run-fuzz.swanlab"
        path.write_bytes(data)
        got: set[Point] = set()
        try:
            reader = DataStoreReader()
            reader.open(path)
            for raw in reader:
                rec = Record.FromString(raw)
                s = rec.scalar
                if rec.WhichOneof("record_type") == "scalar":
                    got.add((s.key, s.step, s.value.number))
        except Exception:
            return got, True
    return got, False


PEERS = {
    "tensorboard": ("TensorBoard EventAccumulator", _tb_peer),
    "tensorboardx": ("TensorBoard EventAccumulator", _tb_peer),
    "swanlab": ("SwanLab DataStoreReader", _swanlab_peer),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=3200, help="damaged inputs in all")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--quick", action="store_true", help="600 inputs")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer readers")
    args = parser.parse_args()
    total = 600 if args.quick else args.inputs
    logging.disable(logging.CRITICAL)  # the peers log every damaged record
    try:
        from loguru import logger  # SwanLab's reader logs through loguru

        logger.remove()
    except ImportError:
        pass
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-") as tmp:
        t0 = time.perf_counter()
        corpus = build_corpus(Path(tmp))
        print(f"corpus written by the real writers in {time.perf_counter() - t0:.1f} s:")
        for c in corpus.values():
            print(f"  {c.format:<14} {c.name:<42} {len(c.data):>7} bytes {len(c.points):>4} points")
    rows = []
    failures: list[str] = []
    start = time.perf_counter()
    per_format = -(-total // len(FORMATS))
    for fmt in FORMATS:
        c = corpus[fmt]
        counts: Counter[str] = Counter()
        peer_name, peer = PEERS.get(fmt, ("", None))
        recovered = expected = peer_recovered = peer_raised = 0
        for _ in range(per_format):
            dmg = random_damage(c.data, rng)
            outcome = check(c, dmg, args.deadline)
            counts[outcome.verdict] += 1
            if outcome.verdict == "ok" and outcome.detail:
                counts["one_line_error"] += 1
            elif outcome.verdict == "ok" and outcome.missing:
                counts["warned_loss"] += 1
            if outcome.verdict in BAD:
                failures.append(f"{fmt}: {outcome.verdict}: {outcome.detail}")
            if peer is not None and not args.no_peers:
                untouched = set(untouched_points(c, dmg))
                expected += len(untouched)
                if outcome.verdict != "ok" or not outcome.detail:
                    recovered += len(untouched) - outcome.untouched_missing
                got, raised = peer(dmg.data)
                peer_recovered += len(untouched & got)
                peer_raised += raised
        rows.append(
            (fmt, per_format, counts, peer_name, expected, recovered, peer_recovered, peer_raised)
        )
    elapsed = time.perf_counter() - start
    _print(rows, elapsed)
    for line in failures[:20]:
        print("  " + line)
    return 1 if failures else 0


def _print(rows: list, elapsed: float) -> None:
    print()
    head = (
        "| format | inputs | tracebacks | hangs | silent drops | lost before damage "
        "| one-line errors | losses with a warning |"
    )
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    totals: Counter[str] = Counter()
    n_all = 0
    for fmt, n, counts, *_ in rows:
        n_all += n
        totals.update(counts)
        print(
            f"| {fmt} | {n} | {counts['traceback']} | {counts['hang']} | "
            f"{counts['silent_drop']} | {counts['lost_before_damage']} | "
            f"{counts['one_line_error']} | {counts['warned_loss']} |"
        )
    print(
        f"| **all** | **{n_all}** | **{totals['traceback']}** | **{totals['hang']}** | "
        f"**{totals['silent_drop']}** | **{totals['lost_before_damage']}** | "
        f"{totals['one_line_error']} | {totals['warned_loss']} |"
    )
    print(f"\n{n_all} inputs in {elapsed:.0f} s ({1000 * elapsed / max(n_all, 1):.0f} ms each)")
    peers = [r for r in rows if r[3] and r[4]]
    if not peers:
        return
    print(
        "\nIntact points recovered from the same damaged files (points the damage did not touch):"
    )
    print("\n| format | warmup-monitor | peer | peer recovered | peer exceptions | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for fmt, n, _, name, expected, ours, theirs, raised in peers:
        ratio = ours / theirs if theirs else float("inf")
        print(
            f"| {fmt} | {100 * ours / expected:.1f}% | {name} | {100 * theirs / expected:.1f}% | "
            f"{raised}/{n} | {ratio:.2f}x |"
        )


if __name__ == "__main__":
    sys.exit(main())
