"""Lightning ``CSVLogger`` output: ``<name>/version_<n>/metrics.csv`` and ``hparams.yaml``.

``metrics.csv`` has a header row (``epoch``, ``step`` and one column per logged key, e.g.
``train_loss_step``, ``train_loss_epoch``, ``val_loss``, ``lr-AdamW``) and sparse rows: each row
fills only the columns logged at that moment, the rest are empty. Every non-empty numeric cell
becomes a point ``(column, step, value)``; ``epoch`` is a tag like any other. ``hparams.yaml``
is read as config by :func:`warmup_monitor.config.read_config_near`.

The logger appends rows, but rewrites the whole file when a new column appears, so
:meth:`LightningCsvSource.poll` re-reads the file when it changes and returns only the points
that are new or changed. A partial last row (no newline yet) waits for the next poll.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..points import Points
from ..sources import Source
from ._whole_file import _Emitted, _signature, _step

__all__ = ["LightningCsvSource", "claims", "open_source"]

FILE_NAME = "metrics.csv"
_MAX_ROW_WARNINGS = 10


def _header(file: Path) -> list[str] | None:
    try:
        with open(file, encoding="utf-8", errors="replace", newline="") as fh:
            line = fh.readline(65536)
    except OSError:
        return None
    return next(csv.reader([line]), None) if line else None


def claims(path: Path) -> bool:
    """A ``metrics.csv`` file (or a folder holding one) whose header has a ``step`` column."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    elif path.suffix != ".csv":
        return False
    if not path.is_file():
        return False
    header = _header(path)
    return header is not None and "step" in [h.strip() for h in header]


def open_source(path: Path) -> LightningCsvSource:
    """Open the run at ``path`` (see :func:`claims`)."""
    return LightningCsvSource(path)


class LightningCsvSource(Source):
    """Re-reads ``metrics.csv`` when it changes; yields only new or changed points."""

    format = "lightning_csv"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.file = self.path / FILE_NAME if self.path.is_dir() else self.path
        self._emitted = _Emitted()
        self._signature: tuple[int, int, int] | None = None
        self._polled = False

    def poll(self) -> Points:
        """Points new or changed since the last poll."""
        signature = _signature(self.file)
        if signature is None:
            if not self._polled:
                raise FormatError(
                    f"cannot read '{self.file}'", "Point at a Lightning CSVLogger version folder"
                )
            return Points.empty()
        if signature == self._signature:
            return Points.empty()
        try:
            with open(self.file, encoding="utf-8", errors="replace", newline="") as fh:
                text = fh.read()
        except OSError:
            return Points.empty()
        self._polled = True
        end = text.rfind("\n") + 1
        if end == 0:
            return Points.empty()  # not even a complete header yet
        self._signature = signature
        rows = self._parse(text[:end])
        return self._emitted.new_points(rows)

    def _rows(self, text: str) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of each row; stops with a warning where the CSV breaks."""
        reader = csv.reader(io.StringIO(text))
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                self._warn(f"{FILE_NAME} line {reader.line_num}: {err}; stopped reading there")
                return
            yield reader.line_num, cells

    def _parse(self, text: str) -> list[tuple[str, int, float]]:
        rows_in = self._rows(text)
        header = [h.strip() for h in next(rows_in, (0, []))[1]]
        if "step" not in header:
            shown = ", ".join(header[:20]) or "none"
            raise FormatError(
                f"'{self.file}' has no step column (columns: {shown})",
                "Point at the metrics.csv Lightning's CSVLogger wrote",
            )
        step_col = header.index("step")
        rows: list[tuple[str, int, float]] = []
        bad = 0
        for line_no, cells in rows_in:
            if not cells:
                continue
            if len(cells) != len(header):
                bad += 1
                if bad <= _MAX_ROW_WARNINGS:
                    self._warn(
                        f"{FILE_NAME} line {line_no}: {len(cells)} cells for "
                        f"{len(header)} columns; skipped"
                    )
                continue
            try:
                step = _step(float(cells[step_col]))
            except ValueError:
                step = None
            if step is None:
                bad += 1
                if bad <= _MAX_ROW_WARNINGS:
                    self._warn(
                        f"{FILE_NAME} line {line_no}: step {cells[step_col]!r} is not an "
                        "integer; skipped"
                    )
                continue
            for col, cell in enumerate(cells):
                if col == step_col or not cell:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    continue  # a text column (Lightning writes none; custom loggers may)
                rows.append((header[col], step, value))
        return rows
