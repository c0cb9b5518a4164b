"""Decoding SwanLab records: protobuf (file version 2, SwanLab 0.8+) and JSON (versions 0–1).

Plain scalar records are decoded column-wise (``_swanlab_columns``); every other record is
parsed with SwanLab's own ``Record`` message when SwanLab is installed. Without it, a local
declaration of the fields this tool reads is used, built in a private descriptor pool; protobuf
skips the fields left out, so newer writers that add fields still decode.

Field numbers, as SwanLab 0.10 writes them (``swanlab.record.v1.Record``)::

    Record        num=1 int64, timestamp=2 Timestamp,
                  oneof: start=10 StartRecord, finish=11 FinishRecord, column=12, scalar=13,
                         media=14, log=16, save=20
    StartRecord   project=1, workspace=2, name=4 (experiment name), id=10, started_at=12
    FinishRecord  state=1 (1 finished, 2 crashed, 3 aborted), error=2, finished_at=3
    ScalarRecord  key=1, step=2 int64, type=3, timestamp=4, value=5 ScalarValue{number=1 double}
    Timestamp     seconds=1 int64, nanos=2 int32
"""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ..untrusted import load_json
from ._leveldb_frames import checksums_ok
from ._leveldb_log import Batch
from ._swanlab_columns import decode_columns
from ._whole_file import _number

__all__: list[str] = []

_F = descriptor_pb2.FieldDescriptorProto
_SCHEMA: dict[str, list[tuple[str, int, int, str]]] = {
    "Timestamp": [("seconds", 1, _F.TYPE_INT64, ""), ("nanos", 2, _F.TYPE_INT32, "")],
    "ScalarValue": [("number", 1, _F.TYPE_DOUBLE, "")],
    "ScalarRecord": [
        ("key", 1, _F.TYPE_STRING, ""),
        ("step", 2, _F.TYPE_INT64, ""),
        ("timestamp", 4, _F.TYPE_MESSAGE, "Timestamp"),
        ("value", 5, _F.TYPE_MESSAGE, "ScalarValue"),
    ],
    "StartRecord": [
        ("project", 1, _F.TYPE_STRING, ""),
        ("workspace", 2, _F.TYPE_STRING, ""),
        ("name", 4, _F.TYPE_STRING, ""),
        ("id", 10, _F.TYPE_STRING, ""),
        ("started_at", 12, _F.TYPE_MESSAGE, "Timestamp"),
    ],
    "FinishRecord": [
        ("state", 1, _F.TYPE_INT32, ""),  # an enum on the wire: same encoding as int32
        ("error", 2, _F.TYPE_STRING, ""),
        ("finished_at", 3, _F.TYPE_MESSAGE, "Timestamp"),
    ],
    "Record": [
        ("num", 1, _F.TYPE_INT64, ""),
        ("timestamp", 2, _F.TYPE_MESSAGE, "Timestamp"),
        ("start", 10, _F.TYPE_MESSAGE, "StartRecord"),
        ("finish", 11, _F.TYPE_MESSAGE, "FinishRecord"),
        ("scalar", 13, _F.TYPE_MESSAGE, "ScalarRecord"),
    ],
}
_PACKAGE = "warmup_monitor.swanlab_record"
_ONEOF = {"start", "finish", "scalar"}  # members of Record's oneof ``record_type``


def _build() -> type:
    fd = descriptor_pb2.FileDescriptorProto(
        name="warmup_monitor_swanlab_record.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in _SCHEMA.items():
        msg = fd.message_type.add(name=name)
        if name == "Record":
            msg.oneof_decl.add(name="record_type")
        for field_name, number, kind, type_name in fields:
            field = msg.field.add(
                name=field_name, number=number, type=kind, label=_F.LABEL_OPTIONAL
            )
            if name == "Record" and field_name in _ONEOF:
                field.oneof_index = 0
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Record"))


@functools.cache
def record_class() -> type:
    """The ``Record`` message: SwanLab's own (0.8 and later) when installed, else ours.

    Loaded on first use: importing ``swanlab`` takes about half a second, which a report of
    TensorBoard runs must not pay.
    """
    try:
        from swanlab.proto.swanlab.record.v1.record_pb2 import Record
    except Exception:  # not installed, an older release, or one that moved or broke its schema
        return _build()
    return Record  # type: ignore[no-any-return]


_FEW_KEYS = 64  # up to this many keys in a batch, their first points are found key by key

#: FinishRecord.state / JSON footer -> run status.
FINISH_STATES = {1: "finished", 2: "crashed", 3: "aborted"}
#: Keys of SwanLab's own system metrics (hardware monitor), not training metrics.
SYSTEM_PREFIX = "__swanlab__."


class Columns:
    """Scalars being decoded, stored compactly: tag codes, steps, values and wall times.

    ``array`` columns take 8 bytes a point where lists of Python floats take 32, and keys are
    interned once per tag: a million points fit in ~30 MB while decoding.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.codes = array("i")
        self.steps = array("q")
        self.values = array("d")
        self.times = array("d")
        # Columns decoded in bulk, kept as numpy arrays in order with what ``add`` appends.
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._in_parts = 0

    def __len__(self) -> int:
        return self._in_parts + len(self.codes)

    def _flush(self) -> None:
        if len(self.codes):
            self._parts.append(
                (
                    np.frombuffer(self.codes, dtype=np.int32).copy(),
                    np.frombuffer(self.steps, dtype=np.int64).copy(),
                    np.frombuffer(self.values, dtype=np.float64).copy(),
                    np.frombuffer(self.times, dtype=np.float64).copy(),
                )
            )
            self._in_parts += len(self.codes)
            self.codes, self.steps = array("i"), array("q")
            self.values, self.times = array("d"), array("d")

    def extend(
        self, codes: np.ndarray, steps: np.ndarray, values: np.ndarray, times: np.ndarray
    ) -> None:
        """Append whole columns (codes from :meth:`code`), without copying them."""
        self._flush()
        self._parts.append((codes, steps, values, times))
        self._in_parts += len(codes)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Codes (int32), steps (int64), values and wall times (float64), in order."""
        self._flush()
        parts = self._parts
        if not parts:
            e = np.empty(0)
            return e.astype(np.int32), e.astype(np.int64), e, e
        if len(parts) > 1:
            parts[:] = [tuple(np.concatenate(col) for col in zip(*parts, strict=True))]
        codes, steps, values, times = parts[0]
        return codes, steps, values, times

    def code(self, key: str) -> int:
        code = self.index.get(key)
        if code is None:
            code = self.index[key] = len(self.index)
        return code

    def add(self, key: str, step: int, value: float, wall_time: float) -> None:
        self.codes.append(self.code(key))
        self.steps.append(step)
        self.values.append(value)
        self.times.append(wall_time)


@dataclass
class Decoded:
    """What one batch of records holds besides the scalars."""

    project: str | None = None
    name: str | None = None
    run_id: str | None = None
    finish_state: str | None = None  # finished / crashed / aborted / unknown
    finish_error: str | None = None
    undecodable: int = 0
    last_error: str | None = None  # the last ERROR console line (JSON records only)


def decode_protobuf(
    records: Iterable[bytes],
    cols: Columns,
    info: Decoded,
    *,
    indices: Sequence[int] | None = None,
    point_records: array | None = None,
) -> int | None:
    """Append the scalars of protobuf records to ``cols``.

    Stops after a finish record (anything after it is not part of the run). Records that do not
    decode are counted in ``info.undecodable``. System metrics (``__swanlab__.*``) are skipped.
    With ``indices`` (the index of each record), ``point_records`` gets the index of each
    point's record, and the index of the finish record is returned; otherwise its position.
    """
    parse = record_class().FromString
    index = cols.index
    add_code, add_step = cols.codes.append, cols.steps.append
    add_value, add_time = cols.values.append, cols.times.append
    add_record = point_records.append if point_records is not None else None
    nan = math.nan
    for position, raw in enumerate(records):
        try:
            rec = parse(raw)
        except DecodeError:
            info.undecodable += 1
            continue
        kind = rec.WhichOneof("record_type")
        if kind == "scalar":
            scalar = rec.scalar
            key = scalar.key
            code = index.get(key)
            if code is None:
                if key.startswith(SYSTEM_PREFIX):
                    continue
                code = cols.code(key)
            ts = scalar.timestamp
            seconds, nanos = ts.seconds, ts.nanos
            if not seconds:  # no time of its own: the record's
                ts = rec.timestamp
                seconds, nanos = ts.seconds, ts.nanos
            add_code(code)
            add_step(scalar.step)
            add_value(scalar.value.number)
            add_time(seconds + nanos * 1e-9 if seconds or nanos else nan)
            if add_record is not None and indices is not None:
                add_record(indices[position])
        elif kind == "start":
            start = rec.start
            info.project = start.project or info.project
            info.name = start.name or info.name
            info.run_id = start.id or info.run_id
        elif kind == "finish":
            info.finish_state = FINISH_STATES.get(rec.finish.state, "unknown")
            info.finish_error = rec.finish.error or None
            return indices[position] if indices is not None else position
    return None


def decode_protobuf_batch(
    batch: Batch, cols: Columns, info: Decoded, pairs: dict[int, np.ndarray] | None = None
) -> bool:
    """:func:`decode_protobuf` of a batch of records, the plain scalars decoded column-wise.

    Records whose layout ``_swanlab_columns`` does not take go through the exact path; both
    are merged back in record order, so ``cols`` ends up exactly as the exact path makes it.
    Returns False, with ``cols`` and ``info`` untouched, when a checksum the framing left to
    this step fails: the caller reads the batch again with the sequential reader. ``pairs``
    carries checksum tables from one batch to the next (see ``decode_columns``).
    """
    fast = decode_columns(
        batch.buf,
        batch.offsets,
        batch.lengths,
        SYSTEM_PREFIX,
        batch.deferred,
        batch.stored,
        pairs,
    )
    if fast.damaged:
        return False
    unhandled = ~fast.handled
    if batch.deferred is not None:
        left = np.flatnonzero(unhandled & batch.deferred)
        # Whole-record chunks: the chunk header is the 7 bytes before the record.
        if left.size and not checksums_ok(batch.buf, batch.offsets[left] - 7, batch.lengths[left]):
            return False
    rest = np.flatnonzero(unhandled).tolist()
    exact = Columns()
    exact_records = array("q")
    finish = decode_protobuf(
        (batch.record(i) for i in rest),
        exact,
        info,
        indices=rest,
        point_records=exact_records,
    )
    # One slot per record, each giving at most one point: the exact path's points fill the
    # slots of their records, and the slots that hold a point, in record order, are the
    # points in write order.
    local = fast.codes
    if finish is not None:
        local[finish:] = -1  # records after a finish record are not part of the run
    e_rec = np.frombuffer(exact_records, dtype=np.int64)
    if e_rec.size:
        local[e_rec] = np.frombuffer(exact.codes, dtype=np.int32) + len(fast.keys)
        fast.steps[e_rec] = np.frombuffer(exact.steps, dtype=np.int64)
        fast.values[e_rec] = np.frombuffer(exact.values, dtype=np.float64)
        fast.times[e_rec] = np.frombuffer(exact.times, dtype=np.float64)
    gave = local >= 0
    if not gave.any():
        return True
    keys = [*fast.keys, *exact.index]
    if not gave.all():
        local = local[gave]
    # Codes in order of first appearance, as the exact path assigns them.
    if len(keys) <= _FEW_KEYS:
        first = []
        for c in range(len(keys)):
            hits = local == c
            at = int(hits.argmax())  # the first hit (0 when there is none)
            if hits[at]:
                first.append((at, c))
        in_order = [c for _, c in sorted(first)]
    else:
        present, at = np.unique(local, return_index=True)
        in_order = present[np.argsort(at)].tolist()
    remap = np.zeros(len(keys), dtype=np.int32)
    for code in in_order:
        remap[code] = cols.code(keys[code])
    columns = (fast.steps, fast.values, fast.times)
    if not gave.all():
        columns = tuple(column[gave] for column in columns)
    cols.extend(remap[local], *columns)
    return True


def json_number(value: object) -> float | None:
    """A SwanLab JSON metric value: a number, or the strings "NaN"/"INF" SwanLab writes."""
    if isinstance(value, str):
        # SwanLab 0.4–0.7 write both +inf and -inf as "INF": the sign is lost on disk.
        return _SPECIAL.get(value.strip().upper())
    return _number(value)


_SPECIAL = {"NAN": math.nan, "INF": math.inf, "+INF": math.inf, "-INF": -math.inf}


def iso_seconds(text: object) -> float:
    if not isinstance(text, str):
        return math.nan
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return math.nan


def decode_json(records: list[bytes], cols: Columns, info: Decoded) -> None:
    """Like :func:`decode_protobuf` for the JSON records of ``backup.swanlab`` (SwanLab 0.6–0.7).

    Each record is ``{"model_type": ..., "data": {...}}``; scalars are
    ``{"model_type": "Scalar", "data": {"metric": {"data": v, "create_time": iso}, "key", "step"}}``
    and a ``Footer`` ``{"success": bool}`` ends the run.
    """
    for raw in records:
        try:
            rec = load_json(raw)  # deep nesting: ValueError, not RecursionError
            kind = rec["model_type"]
            data = rec["data"]
        except (ValueError, TypeError, KeyError):
            info.undecodable += 1
            continue
        if not isinstance(data, dict):
            info.undecodable += 1
            continue
        if kind == "Scalar":
            metric = data.get("metric")
            key = data.get("key")
            step = data.get("step")
            if not isinstance(metric, dict) or not isinstance(key, str):
                info.undecodable += 1
                continue
            value = json_number(metric.get("data"))
            if value is None or not is_step(step):
                info.undecodable += 1
                continue
            if key.startswith(SYSTEM_PREFIX):
                continue
            cols.add(key, step, value, iso_seconds(metric.get("create_time")))
        elif kind == "Project":
            info.project = _text(data.get("name")) or info.project
        elif kind == "Experiment":
            info.name = _text(data.get("name")) or info.name
        elif kind == "Log":
            if data.get("level") == "ERROR" and isinstance(data.get("message"), str):
                info.last_error = data["message"]
        elif kind == "Footer":
            info.finish_state = "finished" if data.get("success") is True else "crashed"
            if info.finish_state == "crashed" and info.last_error:
                # The footer has no error field; the traceback went to the console records.
                info.finish_error = info.last_error.strip().splitlines()[-1]
            return


def is_step(value: object) -> bool:
    """An int that fits the int64 step column (JSON allows any size)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
