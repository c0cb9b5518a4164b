"""Damaging real log files and checking what the readers make of them.

Shared by the fuzz tests (``tests/test_fuzz_damage.py``, hypothesis draws the damage) and the
fuzz benchmark (``benchmarks/bench_fuzz.py``, a seeded random sweep). The intact files come from
the real writers: torch's and tensorboardX's ``SummaryWriter``, SwanLab in offline mode, the HF
``TrainerState.save_to_json``, LLaMA-Factory's ``json.dumps`` lines and Lightning's
``metrics.csv`` (a file Lightning's ``CSVLogger`` wrote, kept in the test fixtures).

Each damaged input is read with :func:`warmup_monitor.read_run` and diagnosed, and followed as it
grows (appended in three writes, a poll after each, as ``watch`` does), under a deadline; the
outcome is one of:

* ``ok`` — the read succeeded, or failed with a one-line :class:`WarmupMonitorError`;
* ``traceback`` — any other exception escaped;
* ``hang`` — the deadline passed;
* ``silent_drop`` — a point of the intact file is missing from what the reader returned, and
  the reader said nothing (no warning, no error). In the text formats only points the damage
  did not touch count (a digit changed in place is undetectable there); in the checksummed
  ones (event files, SwanLab) every point does;
* ``lost_before_damage`` — a point written wholly before the first damaged byte is missing
  (whatever the warnings say: bytes before the damage must read as before);
* ``false_restart`` — while followed, a file only ever appended to was taken for a rewritten one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("tensorboard", "tensorboardx", "swanlab", "trainer_state", "trainer_log", "csv")
FILE_NAMES = {
    "tensorboard": "events.out.tfevents.1700000000.host.1.0",
    "tensorboardx": "events.out.tfevents.1700000001.host",
    "trainer_state": "trainer_state.json",
    "trainer_log": "trainer_log.jsonl",
    "csv": "metrics.csv",
}
# Formats whose records carry a checksum: a damaged record is always detectable.
CHECKSUMMED = ("tensorboard", "tensorboardx", "swanlab")
IN_PLACE = ("flip", "overwrite", "zero_tail")  # damage that leaves every record's bytes on disk
CSV_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "lightning" / "lightning_logs"
STEPS = 60

Point = tuple[str, int, float]


@dataclass
class Corpus:
    """One intact file: its bytes and every point with the byte offset where its unit ends."""

    format: str
    name: str  # file name (SwanLab: the record file's, inside run_dir)
    data: bytes
    points: list[tuple[Point, int, int]]  # (point, unit start, unit end)
    run_files: dict[str, bytes] = field(default_factory=dict)  # other files of a SwanLab run
    baseline: frozenset[str] | None = None  # what the intact file's read says


# --------------------------------------------------------------------------- writers


def _write_torch(folder: Path) -> Path:
    import torch
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    writer = SummaryWriter(str(folder))
    for step in range(1, STEPS + 1):
        writer.add_scalar("train/loss", 4.0 - 0.05 * step, step)
        writer.add_scalar("train/learning_rate", 1e-3 * min(step / 10, 1.0), step)
        writer.add_scalar("train/grad_norm", 1.0 + 0.01 * step, step, new_style=True)
        if step % 20 == 0:
            writer.add_histogram("weights", torch.arange(8.0), step)
    writer.close()
    (path,) = folder.iterdir()
    return path


def _write_tbx(folder: Path) -> Path:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(folder))
    for step in range(1, STEPS + 1):
        writer.add_scalar("loss", 3.0 - 0.03 * step, step)
        writer.add_scalar("lr", 2e-4 * min(step / 6, 1.0), step)
    writer.close()
    (path,) = (p for p in folder.iterdir() if "tfevents" in p.name)
    return path


def _write_swanlab(folder: Path) -> Path:
    code = f"""
import sys, swanlab
probe = swanlab.Settings.Probe(hardware=False, requirements=False, git=False, monitor=False)
swanlab.init(mode="offline", log_dir=sys.argv[1], project="fuzz", name="fuzz",
             config={{"learning_rate": 1e-3, "warmup_steps": 10}},
             settings=swanlab.Settings(probe=probe))
for step in range(1, {STEPS} + 1):
    swanlab.log({{"train/loss": 4.0 - 0.05 * step,
                 "train/learning_rate": 1e-3 * min(step / 10, 1.0)}}, step=step)
swanlab.finish()
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", code, str(folder)], check=True, env=env, capture_output=True
    )
    (run,) = folder.glob("run-*")
    (path,) = run.glob("*.swanlab")
    return path


def _write_trainer_state(folder: Path) -> Path:
    from transformers import TrainerState

    history: list[dict] = []
    for step in range(1, STEPS + 1):
        history.append(
            {
                "epoch": step / STEPS,
                "grad_norm": 1.0 + 0.01 * step,
                "learning_rate": 1e-4 * min(step / 10, 1.0),
                "loss": 3.0 - 0.02 * step,
                "step": step,
            }
        )
    state = TrainerState(global_step=STEPS, max_steps=STEPS, logging_steps=1, log_history=history)
    path = folder / "trainer_state.json"
    state.save_to_json(str(path))
    return path


def _write_trainer_log(folder: Path) -> Path:
    # LLaMA-Factory's LogCallback: ``f.write(json.dumps(logs) + "\n")`` per logging step.
    path = folder / "trainer_log.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for step in range(1, STEPS + 1):
            logs = {
                "current_steps": step,
                "total_steps": STEPS,
                "loss": 2.0 - 0.01 * step,
                "lr": 1e-4 * min(step / 10, 1.0),
                "epoch": round(step / STEPS, 2),
                "percentage": round(100 * step / STEPS, 2),
                "elapsed_time": "0:00:01",
                "remaining_time": "0:00:10",
            }
            fh.write(json.dumps(logs, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------- ground truth


def records(data: bytes) -> list[tuple[int, int]]:
    """(record start, payload length) of every record of an event file, by its length fields."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length))
        pos += length + 16
    return out


def _tb_points(data: bytes) -> list[tuple[Point, int, int]]:
    """Scalars of an intact event file, decoded with TensorBoard's own protobuf classes."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.util import tensor_util

    out = []
    scalar_tags: set[str] = set()
    for pos, length in records(data):
        end = pos + length + 16
        event = Event.FromString(data[pos + 12 : pos + 12 + length])
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "scalars":
                scalar_tags.add(value.tag)
            kind = value.WhichOneof("value")
            if kind == "simple_value":
                out.append(((value.tag, event.step, float(value.simple_value)), pos, end))
            elif kind == "tensor" and value.tag in scalar_tags:
                number = float(tensor_util.make_ndarray(value.tensor).reshape(()))
                out.append(((value.tag, event.step, number), pos, end))
    return out


def swanlab_points(data: bytes) -> list[tuple[Point, int, int]]:
    """Scalars of an intact SwanLab record file: LevelDB-log chunks, SwanLab's own protobuf."""
    from swanlab.proto.swanlab.record.v1 import record_pb2

    out = []
    pos = 7  # file header
    pieces: list[bytes] = []
    start = pos
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + 7 : pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc
        if kind in (1, 2):
            start = pos
            pieces = []
        pieces.append(chunk)
        pos += 7 + length
        if kind in (1, 4):
            rec = record_pb2.Record.FromString(b"".join(pieces))
            if rec.WhichOneof("record_type") == "scalar" and not rec.scalar.key.startswith(
                "__swanlab__"
            ):
                s = rec.scalar
                out.append(((s.key, s.step, s.value.number), start, pos))
    return out


def _jsonl_points(data: bytes) -> list[tuple[Point, int, int]]:
    out = []
    pos = 0
    for line in data.split(b"\n")[:-1]:
        end = pos + len(line) + 1
        rec = json.loads(line)
        for key, value in rec.items():
            if key in ("current_steps", "total_steps", "percentage"):
                continue
            if isinstance(value, (int, float)):
                tag = "learning_rate" if key == "lr" else key
                out.append(((tag, rec["current_steps"], float(value)), pos, end))
        pos = end
    return out


def _state_points(data: bytes) -> list[tuple[Point, int, int]]:
    # One JSON document: any damage may spoil all of it, so every point spans the whole file.
    state = json.loads(data)
    return [
        ((k, e["step"], float(v)), 0, len(data))
        for e in state["log_history"]
        for k, v in e.items()
        if k != "step" and isinstance(v, (int, float))
    ]


def _csv_points(data: bytes) -> list[tuple[Point, int, int]]:
    lines = data.split(b"\n")
    header = next(csv.reader([lines[0].decode()]))
    step_col = header.index("step")
    out = []
    pos = len(lines[0]) + 1
    for raw in lines[1:-1]:
        end = pos + len(raw) + 1
        cells = next(csv.reader([raw.decode()]))
        for col, cell in enumerate(cells):
            if col != step_col and cell:
                # The header is part of every row: damage there spoils every point.
                out.append(((header[col], int(cells[step_col]), float(cell)), 0, end))
        pos = end
    return out


def build_corpus(root: Path) -> dict[str, Corpus]:
    """Write one intact file per format under ``root`` with the real writers."""
    out: dict[str, Corpus] = {}
    for fmt, write, parse in (
        ("tensorboard", _write_torch, _tb_points),
        ("tensorboardx", _write_tbx, _tb_points),
        ("swanlab", _write_swanlab, swanlab_points),
        ("trainer_state", _write_trainer_state, _state_points),
        ("trainer_log", _write_trainer_log, _jsonl_points),
    ):
        folder = root / fmt
        folder.mkdir(parents=True, exist_ok=True)
        path = write(folder)
        data = path.read_bytes()
        extra = {}
        if fmt == "swanlab":
            extra = {
                str(p.relative_to(path.parent)): p.read_bytes()
                for p in path.parent.rglob("*")
                if p.is_file() and p != path
            }
        out[fmt] = Corpus(fmt, path.name, data, parse(data), extra)
    data = (CSV_FIXTURE / "version_0" / "metrics.csv").read_bytes()
    out["csv"] = Corpus("csv", "metrics.csv", data, _csv_points(data))
    return out


# --------------------------------------------------------------------------- damage


@dataclass(frozen=True)
class Damage:
    """``kind`` at byte ``at``: the new bytes and the first byte that differs from the intact."""

    kind: str
    at: int
    data: bytes
    first: int  # first damaged offset in the intact file (len(data) when only appended)
    last: int  # end of the intact range the damage touched (exclusive)


def damage(data: bytes, kind: str, at: int, size: int, payload: bytes) -> Damage:
    """Apply one kind of damage. ``at`` is taken modulo the length; ``payload`` fills bytes."""
    n = len(data)
    at = at % max(n, 1)
    size = max(1, size)
    if kind == "flip":
        out = bytearray(data)
        out[at] ^= 1 << (size % 8)
        return Damage(kind, at, bytes(out), at, at + 1)
    if kind == "overwrite":
        chunk = (payload or b"\x00") * (size // max(len(payload), 1) + 1)
        chunk = chunk[: min(size, n - at)]
        return Damage(kind, at, data[:at] + chunk + data[at + len(chunk) :], at, at + len(chunk))
    if kind == "truncate":
        return Damage(kind, at, data[:at], at, n)
    if kind == "insert":
        return Damage(kind, at, data[:at] + payload + data[at:], at, at)
    if kind == "delete":
        return Damage(kind, at, data[:at] + data[at + size :], at, min(n, at + size))
    if kind == "append":
        return Damage(kind, n, data + payload, n, n)
    if kind == "duplicate":
        piece = data[at : at + size]
        return Damage(kind, at + len(piece), data[: at + len(piece)] + data[at:], at, at)
    if kind == "zero_tail":  # a crash that left a hole of zeros where the last writes were
        return Damage(kind, at, data[:at] + b"\x00" * (n - at), at, n)
    raise ValueError(kind)


KINDS = ("flip", "overwrite", "truncate", "insert", "delete", "append", "duplicate", "zero_tail")
# Hostile payloads a user's script or disk produces, besides random bytes.
PAYLOADS = (
    b"",
    b"\xef\xbb\xbf",
    b"\n",
    b"\r\n",
    b'"',
    b"\x00" * 16,
    b"\xff" * 12,
    b"NaN",
    b"1" + b"0" * 400,
    b"[" * 5000,
    b'{"current_steps": 1e999, "loss": "1.5"}\n',
    b'{"current_steps": 3, "loss": ' + b"9" * 400 + b"}\n",
    struct.pack("<Q", 1 << 40),
)


def random_damage(data: bytes, rng: random.Random) -> Damage:
    """One seeded random damage (the benchmark's sweep)."""
    kind = rng.choice(KINDS)
    if rng.random() < 0.4:
        payload = rng.choice(PAYLOADS)
    else:
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 24)))
    return damage(data, kind, rng.randrange(max(len(data), 1)), rng.randint(1, 64), payload)


# --------------------------------------------------------------------------- checking


class Deadline(Exception):
    """The per-input deadline passed."""


class FalseRestart(Exception):
    """A file only appended to was taken for a rewritten one and read again from the start."""


@dataclass
class Outcome:
    verdict: str  # ok | traceback | hang | silent_drop | lost_before_damage | false_restart
    detail: str = ""
    points: int = 0
    missing: int = 0
    untouched_missing: int = 0  # of the points the damage did not touch


def _place(corpus: Corpus, data: bytes, folder: Path) -> Path:
    """Write the damaged file where its reader expects it; returns the path to read."""
    if corpus.format == "swanlab":
        run = folder / "swanlog" / "run-20260101_000000-fuzz"
        for rel, content in corpus.run_files.items():
            (run / rel).parent.mkdir(parents=True, exist_ok=True)
            (run / rel).write_bytes(content)
        run.mkdir(parents=True, exist_ok=True)
        (run / corpus.name).write_bytes(data)
        return run
    (folder / corpus.name).write_bytes(data)
    return folder


def _with_deadline(seconds: float, fn: Callable[[], object]) -> object:
    def expire(signum: int, frame: object) -> None:
        raise Deadline

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check(corpus: Corpus, dmg: Damage, deadline: float = 10.0) -> Outcome:
    """Read ``dmg.data`` as ``corpus.format`` and judge the outcome (see the module docstring)."""
    from warmup_monitor import read_run
    from warmup_monitor.diagnosis import diagnose
    from warmup_monitor.discover import open_source
    from warmup_monitor.errors import WarmupMonitorError

    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        path = _place(corpus, dmg.data, Path(tmp))

        def read() -> tuple[set[Point], set[str], str]:
            try:
                run = read_run(path)
                diagnose(run)
            except WarmupMonitorError as err:
                return set(), set(), str(err)
            source = open_source(path)  # every point as written, before "last write wins"
            try:
                points = source.poll()
                said = {*source.warnings, *source.pending(), *run.warnings}
            finally:
                source.close()
            return _as_set(points), said, ""

        try:
            got, said_all, error = _with_deadline(deadline, read)  # type: ignore[misc]
            live = Path(tmp) / "live"
            live.mkdir()
            tailed = _with_deadline(deadline, lambda: _tail(corpus, dmg.data, live))
        except Deadline:
            return Outcome("hang", f"{dmg.kind} at {dmg.at}: over {deadline} s")
        except FalseRestart:
            return Outcome("false_restart", f"{dmg.kind} at {dmg.at}: read again from the start")
        except Exception:
            tb = traceback.format_exc().strip().splitlines()
            return Outcome("traceback", f"{dmg.kind} at {dmg.at}: {tb[-1]}")
    if error:
        return Outcome("ok", error)
    if corpus.baseline is None:
        intact = Damage("none", len(corpus.data), corpus.data, len(corpus.data), len(corpus.data))
        if dmg != intact:
            check(corpus, intact, deadline)
    said = bool(said_all - (corpus.baseline or set()))
    keys = {(t, s) for t, s, _ in got}
    exact = corpus.format in ("csv",)  # a later row may rewrite a value: compare (tag, step)

    def present(p: Point) -> bool:
        return (p[0], p[1]) in keys if exact else _has(got, p)

    untouched = untouched_points(corpus, dmg)
    before = [p for p, _, end in corpus.points if end <= dmg.first]
    lost_before = [p for p in before if not present(p)]
    if not lost_before and corpus.format != "trainer_state":
        # Followed as it grows (as ``watch`` does), the file gives the same points before the
        # damage. (trainer_state.json is rewritten whole, never appended: not tailed.)
        lost_before = [p for p in before if not _has(tailed, p) and not exact]
    if lost_before:
        return Outcome(
            "lost_before_damage",
            f"{dmg.kind} at {dmg.at}: {len(lost_before)} points before byte {dmg.first} "
            f"missing, e.g. {lost_before[0]}",
            len(got),
            len(lost_before),
        )
    missing = [p for p in untouched if not present(p)]
    untouched_missing = len(missing)
    if corpus.format in CHECKSUMMED and dmg.kind in IN_PLACE:
        # Bytes changed in place in a checksummed record are always detectable, so the points
        # of that record too must be read or accounted for by a warning (a line of text changed
        # in place, or records cut off whole, are not detectable).
        missing = [p for p, _, _ in corpus.points if not present(p)]
    if dmg.kind == "none":
        corpus.baseline = frozenset(said_all)
        assert not missing, f"the intact {corpus.format} file reads {len(missing)} points short"
    if missing and not said:
        return Outcome(
            "silent_drop",
            f"{dmg.kind} at {dmg.at}: {len(missing)} points missing, no warning, e.g. {missing[0]}",
            len(got),
            len(missing),
        )
    return Outcome("ok", "", len(got), len(missing), untouched_missing)


def _as_set(points: object) -> set[Point]:
    return {
        (points.tags[c], s, v)  # type: ignore[attr-defined]
        for c, s, v in zip(
            points.tag_codes.tolist(),  # type: ignore[attr-defined]
            points.steps.tolist(),  # type: ignore[attr-defined]
            points.values.tolist(),  # type: ignore[attr-defined]
            strict=True,
        )
    }


def _tail(corpus: Corpus, data: bytes, folder: Path, pieces: int = 3) -> set[Point]:
    """The points polled while ``data`` is appended in ``pieces`` writes, as a watcher sees it.

    A one-line error on a poll is what a watcher reports and retries later; anything else
    escapes to the caller (a traceback).
    """
    from warmup_monitor.discover import open_source
    from warmup_monitor.errors import WarmupMonitorError

    path = _place(corpus, b"", folder)
    target = (path / corpus.name) if path.is_dir() else path
    got: set[Point] = set()
    source = None
    done = 0
    for i in range(1, pieces + 1):
        cut = len(data) * i // pieces
        with open(target, "ab") as fh:
            fh.write(data[done:cut])
        done = cut
        try:
            if source is None:
                source = open_source(path)
            got |= _as_set(source.poll())
        except WarmupMonitorError:
            continue
    if source is not None:
        # A poll with nothing new: a file that was only ever appended to is not "rewritten".
        with contextlib.suppress(WarmupMonitorError):
            got |= _as_set(source.poll())
        if any("again from the start" in w for w in source.warnings):
            raise FalseRestart
        source.close()
    return got


def untouched_points(corpus: Corpus, dmg: Damage) -> list[Point]:
    """Points whose unit the damage left intact: wholly before it, or wholly after it (bytes
    inserted where a unit starts join that unit: a line or a record then no longer begins there).
    """
    after = max(dmg.last, dmg.first + 1)
    return [p for p, start, end in corpus.points if end <= dmg.first or start >= after]


def _has(got: set[Point], p: Point) -> bool:
    if p in got:
        return True
    # NaN never equals itself.
    return p[2] != p[2] and any(t == p[0] and s == p[1] and v != v for t, s, v in got)
