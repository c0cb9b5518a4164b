"""LLaMA-Factory ``trainer_log.jsonl``: one JSON object per logging step, appended live.

A line looks like ``{"current_steps": 10, "total_steps": 372, "loss": 1.4566, "lr": 2.4e-05,
"epoch": 0.16, "percentage": 2.69, "elapsed_time": "0:02:32", "remaining_time": "1:31:59"}``;
eval lines carry ``eval_loss``; newer versions add ``throughput`` and ``total_tokens``. The last
line of a finished run repeats the final step with only ``epoch`` and the timings: it is skipped,
as are the progress lines of an evaluation-only run (no metric at all).

Tags: ``loss``, ``learning_rate`` (from ``lr``), ``grad_norm``, ``eval_loss``, ``epoch`` and any
other numeric metric under its own name (``reward``, ``accuracy`` …). ``total_steps`` becomes the
config's ``max_steps``.

:meth:`TrainerLogSource.poll` tails the file: it reads only the bytes appended since the last
poll, keeps a partial last line for later, skips a malformed line with a warning naming its line
number, and starts over (with a warning) when the file shrinks or is replaced. Steps written
twice (a resumed run) are emitted in file order, so the later line wins in the Run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

from ..config import canonical_config
from ..errors import FormatError
from ..points import Points
from ..sources import Source
from ..untrusted import BOM, load_json, open_regular
from ._whole_file import _Dropped, _number, _step

__all__ = ["TrainerLogSource", "claims", "open_source"]

# Rows parsed before they are packed into a columnar batch.
_BATCH_ROWS = 20_000


def _lines(chunk: bytes) -> Iterator[bytes]:
    """The lines of ``chunk`` one at a time (a list of a long backlog's lines costs memory)."""
    start = 0
    while start < len(chunk):
        end = chunk.find(b"\n", start)
        if end < 0:
            end = len(chunk)
        yield chunk[start:end]
        start = end + 1


FILE_NAME = "trainer_log.jsonl"
# Progress bookkeeping, not metrics of the run.
_SKIP_KEYS = frozenset(
    (
        "current_steps",
        "total_steps",
        "percentage",
        "elapsed_time",
        "remaining_time",
        "throughput",
        "total_tokens",
        "vram_allocated",
        "vram_reserved",
    )
)
_RENAME = {"lr": "learning_rate"}
_MAX_LINE_WARNINGS = 10  # then one summary line, so a garbage file cannot flood the report


def _is_whole_record(tail: bytes) -> bool:
    try:
        return isinstance(load_json(tail.decode("utf-8", errors="strict")), dict)
    except ValueError:
        return False


def claims(path: Path) -> bool:
    """A ``trainer_log.jsonl`` file, or a folder holding one."""
    path = Path(path)
    if path.is_file():
        return path.name == FILE_NAME
    return (path / FILE_NAME).is_file()


def open_source(path: Path) -> TrainerLogSource:
    """Open the run at ``path`` (see :func:`claims`)."""
    return TrainerLogSource(path)


class TrainerLogSource(Source):
    """Tails ``trainer_log.jsonl``: each poll returns the points of the lines completed since."""

    format = "trainer_log"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.file = self.path if self.path.is_file() else self.path / FILE_NAME
        self._offset = 0  # bytes consumed: always just after a newline
        self._line_no = 0  # lines consumed
        self._inode: int | None = None
        self._bad_lines = 0
        self._polled = False
        self._unterminated = False  # the last record read had no newline yet
        self._total: float | None = None  # the last total_steps turned into config
        self._dropped = _Dropped()
        self._dropped_reported = 0
        self._held = 0  # bytes of a partial last line left for a later poll

    def pending(self) -> list[str]:
        if not self._held:
            return []
        return [
            f"{FILE_NAME} ends with a partial line ({self._held} bytes after line "
            f"{self._line_no}, no newline and not a whole JSON object); not read"
        ]

    def _bad_line(self, message: str) -> None:
        self._bad_lines += 1
        if self._bad_lines <= _MAX_LINE_WARNINGS:
            self.warnings.append(f"{FILE_NAME} line {self._line_no}: {message}; skipped")
            return
        summary = (
            f"{FILE_NAME}: {self._bad_lines - _MAX_LINE_WARNINGS} more malformed lines skipped"
        )
        if self.warnings and self.warnings[-1].endswith("more malformed lines skipped"):
            self.warnings[-1] = summary
        else:
            self.warnings.append(summary)

    def _restart(self, why: str) -> None:
        self.warnings.append(f"{FILE_NAME} was {why}; reading it again from the start")
        self._offset = 0
        self._line_no = 0
        self._unterminated = False
        self._dropped = _Dropped()
        self._dropped_reported = 0
        self.status = "unknown"

    def poll(self) -> Points:
        """Points of the lines completed since the last poll."""
        try:
            st = os.stat(self.file)
        except OSError as err:
            if not self._polled:
                raise FormatError(
                    f"cannot read '{self.file}' ({err.strerror})",
                    "Point at a LLaMA-Factory output_dir holding trainer_log.jsonl",
                ) from None
            return Points.empty()  # removed while watching: a new run may recreate it
        self._polled = True
        if self._inode is not None and st.st_ino != self._inode:
            self._restart("replaced")
        elif st.st_size < self._offset:
            self._restart("truncated")
        self._inode = st.st_ino
        if st.st_size == self._offset:
            self._held = 0
            return Points.empty()
        try:
            with open_regular(self.file) as fh:
                fh.seek(self._offset)
                data = fh.read(st.st_size - self._offset)
        except OSError as err:
            message = f"cannot read '{self.file}' ({err.strerror})"
            if self._offset == 0 and not self._line_no:
                raise FormatError(message, "Check the file's permissions") from None
            self._warn(f"{message}; will try again")
            return Points.empty()
        if self._offset == 0 and data.startswith(BOM):
            # A byte-order mark (an editor's or Windows tool's UTF-8): not part of the record.
            self._offset = len(BOM)
            data = data[len(BOM) :]
        if self._unterminated and data.startswith(b"\n"):
            # The newline of a record already read without it.
            self._offset += 1
            data = data[1:]
        self._unterminated = False
        end = data.rfind(b"\n") + 1
        if end < len(data) and _is_whole_record(data[end:]):
            # A complete object still waiting for its newline (or a file saved without the
            # final newline): a half-written line never parses, the closing brace comes last.
            end = len(data)
            self._unterminated = True
        self._held = len(data) - end
        if end == 0:
            return Points.empty()  # a partial line: it is completed by a later write
        chunk = data[:end]
        self._offset += end
        lines = _lines(chunk)
        # A backlog (a watcher that fell behind, a first read of a long log) is turned into
        # columnar batches every few thousand lines, so the Python row objects never pile up.
        batches: list[Points] = []
        rows: list[tuple[str, int, float, float]] = []
        for raw in lines:
            self._line_no += 1
            if raw.strip():
                self._parse_line(raw, rows)
            if len(rows) >= _BATCH_ROWS:
                batches.append(Points.from_rows(rows))
                rows = []
        batches.append(Points.from_rows(rows))
        if self._dropped.count > self._dropped_reported:
            self._dropped_reported = self._dropped.count
            message = self._dropped.message(FILE_NAME)
            prefix = f"{FILE_NAME}: skipped "
            self.warnings[:] = [w for w in self.warnings if not w.startswith(prefix)]
            if message:
                self.warnings.append(message)
        return Points.concat(batches)

    def _parse_line(self, raw: bytes, rows: list[tuple[str, int, float, float]]) -> None:
        try:
            record = load_json(raw.decode("utf-8", errors="replace"))
        except ValueError:
            self._bad_line("not valid JSON")
            return
        if not isinstance(record, dict):
            self._bad_line(f"a JSON {type(record).__name__}, not an object")
            return
        step = _step(record.get("current_steps"))
        if step is None:
            self._bad_line("no integer current_steps")
            return
        metrics = []
        for key, value in record.items():
            if key in _SKIP_KEYS:
                continue
            number = _number(value)
            if number is None:
                if not isinstance(value, (dict, list)):
                    self._dropped.add(str(key), step, value)
                continue
            metrics.append((_RENAME.get(key, key), number))
        if not metrics:
            # Evaluation-only progress lines: total_steps counts eval batches, not training.
            return
        total = _number(record.get("total_steps"))
        if total is not None:
            if total != self._total:  # every line repeats it: convert it once
                self._total = total
                self.config.update(canonical_config({"max_steps": total}))
            if total > 0 and step >= total:
                self.status = "finished"
        if all(tag == "epoch" for tag, _ in metrics):
            return  # the end-of-training line: only the timings and the epoch
        rows.extend((tag, step, number, math.nan) for tag, number in metrics)
