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
from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..points import Points
from ..sources import Source
from ..untrusted import open_regular
from ._whole_file import _Dropped, _Emitted, _number, _signature, _step

__all__ = ["LightningCsvSource", "claims", "open_source"]

FILE_NAME = "metrics.csv"
_MAX_ROW_WARNINGS = 10


def _header(file: Path) -> list[str] | None:
    """The header cells; None when there is none. ``OSError`` when the file cannot be read."""
    with open_regular(file) as fh:
        line = fh.readline(65536).decode("utf-8-sig", errors="replace")
    return _cells(line.rstrip("\r\n")) if line else None


def _cells(line: str) -> list[str] | None:
    """The cells of one CSV line; None when a quote is left open."""
    if line.count('"') % 2:
        return None
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # a stray carriage return or NUL inside the line
        return None


def claims(path: Path) -> bool:
    """A ``metrics.csv`` file (or a folder holding one) whose header has a ``step`` column."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    elif path.suffix != ".csv":
        return False
    if not path.is_file():
        return False
    try:
        header = _header(path)
    except OSError:
        # Claimed so that reading it says why it cannot be read ("permission denied").
        return path.name == FILE_NAME
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
        self.pending_bytes = 0  # an incomplete last row held back

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
            with open_regular(self.file) as fh:
                data = fh.read()
        except OSError as err:
            message = f"cannot read '{self.file}' ({err.strerror})"
            if not self._polled:
                raise FormatError(message, "Check the file's permissions") from None
            self._warn(f"{message}; will try again")
            return Points.empty()
        self._polled = True
        text = data.decode("utf-8-sig", errors="replace")
        end = text.rfind("\n") + 1
        if end == 0:
            return Points.empty()  # not even a complete header yet
        self._signature = signature
        self.pending_bytes = 0
        if end < len(text) and self._whole_row(text[:end], text[end:]):
            end = len(text)  # a last row saved without its newline
        elif end < len(text):
            self.pending_bytes = len(text[end:].encode("utf-8", errors="replace"))
        rows = self._parse(text[:end])
        return self._emitted.new_points(rows)

    def pending(self) -> list[str]:
        if not self.pending_bytes:
            return []
        return [
            f"{FILE_NAME} ends with an incomplete row ({self.pending_bytes} bytes without a "
            "newline, fewer cells than the header); not read"
        ]

    @staticmethod
    def _whole_row(head: str, tail: str) -> bool:
        """True when ``tail`` (no newline) has the header's cell count and numeric cells."""
        header = _cells(head[: head.find("\n")])
        cells = _cells(tail)
        if header is None or cells is None or len(cells) != len(header):
            return False
        try:
            [float(c) for c in cells if c.strip()]
        except ValueError:
            return False
        return True

    def _rows(self, text: str) -> Iterator[tuple[int, list[str] | None]]:
        """(line number, cells) of each line; cells None for a line that is not one CSV row.

        Each line is parsed on its own: Lightning writes no quoted newlines, so one unbalanced
        quote breaks one row instead of swallowing every row up to the next quote.
        """
        for line_no, line in enumerate(text.splitlines(), start=1):
            yield line_no, _cells(line)

    def _parse(self, text: str) -> list[tuple[str, int, float]]:
        rows_in = self._rows(text)
        header = [h.strip() for h in next(rows_in, (0, []))[1] or []]
        if "step" not in header:
            shown = ", ".join(header[:20]) or "none"
            raise FormatError(
                f"'{self.file}' has no step column (columns: {shown})",
                "Point at the metrics.csv Lightning's CSVLogger wrote",
            )
        step_col = header.index("step")
        rows: list[tuple[str, int, float]] = []
        bad = 0
        dropped = _Dropped()
        for line_no, cells in rows_in:
            if cells is None:
                bad += 1
                if bad <= _MAX_ROW_WARNINGS:
                    self._warn(
                        f"{FILE_NAME} line {line_no}: not one CSV row (an unbalanced quote "
                        "or a stray control character); skipped"
                    )
                continue
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
            step = _step(_number(cells[step_col]))
            if step is None:
                bad += 1
                if bad <= _MAX_ROW_WARNINGS:
                    self._warn(
                        f"{FILE_NAME} line {line_no}: step {cells[step_col]!r} is not an "
                        "integer; skipped"
                    )
                continue
            for col, cell in enumerate(cells):
                if col == step_col or not cell.strip():
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    dropped.add(header[col], step, cell)
                    continue
                rows.append((header[col], step, value))
        if bad > _MAX_ROW_WARNINGS:
            self._warn(f"{FILE_NAME}: {bad - _MAX_ROW_WARNINGS} more malformed rows skipped")
        message = dropped.message(FILE_NAME)
        if message:
            self._warn(message)
        return rows
