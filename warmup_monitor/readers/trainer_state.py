"""HF Transformers ``trainer_state.json``: the Trainer's ``log_history``.

Layout: ``{"global_step": .., "max_steps": .., "logging_steps": .., "log_history": [...]}``.
``log_history`` holds training entries ``{step, epoch, loss, learning_rate, grad_norm}``, eval
entries ``{step, epoch, eval_loss, eval_runtime, …}`` and, after ``train()`` returns, one
summary entry ``{train_runtime, train_loss, …}`` that is skipped (it is a run average, not a
logged point). Every numeric key becomes a tag under its own name (``loss``, ``eval_loss`` …).
Python's ``json`` reads the ``NaN``/``Infinity`` the Trainer writes.

A run folder (an ``output_dir``) holds ``trainer_state.json`` once training ended and
``checkpoint-<step>/trainer_state.json`` copies while it runs. The top-level file is read when
present, otherwise the checkpoint with the highest step. The file is rewritten whole at every
save, so :meth:`TrainerStateSource.poll` re-reads it when it changes and returns only the
points that are new or whose value changed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..config import canonical_config
from ..errors import FormatError
from ..points import Points
from ..sources import Source
from ..untrusted import load_json, read_text
from ._whole_file import _Dropped, _Emitted, _number, _signature, _step

__all__ = ["TrainerStateSource", "claims", "open_source", "state_files"]

FILE_NAME = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Top-level keys that describe the run's size; the rest (best_metric, trial_*) is not config.
_CONFIG_KEYS = ("max_steps", "logging_steps", "num_train_epochs", "train_batch_size", "global_step")
# Per-entry keys that are not scalars of the run.
_SKIP_KEYS = frozenset(("step", "total_flos"))
# A checkpoint saved this long after the top-level file belongs to a newer run.
_STALE_AFTER_S = 120.0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def state_files(path: Path) -> list[Path]:
    """The ``trainer_state.json`` files of a run, preferred first.

    The top-level file, then ``checkpoint-*/`` copies from the highest step down. The newest
    checkpoint comes first when it was saved well after the top-level file: a new run writing
    into an old output_dir, whose top-level file is left from the previous run.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    checkpoints = []
    try:
        children = list(path.iterdir())
    except OSError:
        children = []
    for child in children:
        match = _CHECKPOINT.match(child.name)
        if match and (child / FILE_NAME).is_file():
            checkpoints.append((int(match.group(1)), child / FILE_NAME))
    files = [f for _, f in sorted(checkpoints, reverse=True)]
    top = path / FILE_NAME
    if top.is_file():
        # Copies checked out or unpacked together get mtimes seconds apart, never minutes.
        stale = bool(files) and _mtime(files[0]) > _mtime(top) + _STALE_AFTER_S
        files.insert(1 if stale else 0, top)
    return files


def claims(path: Path) -> bool:
    """A ``trainer_state.json`` file, or a folder holding one directly or in ``checkpoint-*/``."""
    path = Path(path)
    if path.is_file():
        return path.name == FILE_NAME
    if (path / FILE_NAME).is_file():
        return True
    return any(_CHECKPOINT.match(p.parent.name) for p in path.glob(f"checkpoint-*/{FILE_NAME}"))


def open_source(path: Path) -> TrainerStateSource:
    """Open the run at ``path`` (see :func:`claims`)."""
    return TrainerStateSource(path)


def _describe(file: Path, root: Path) -> str:
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return file.name


class TrainerStateSource(Source):
    """Reads ``trainer_state.json`` again whenever it (or the newest checkpoint) changes."""

    format = "trainer_state"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._emitted = _Emitted()
        self._file: Path | None = None
        self._signature: tuple[int, int, int] | None = None
        self._read_once = False

    # ------------------------------------------------------------------ reading
    def _parse(self, file: Path) -> tuple[list[tuple[str, int, float]], dict[str, Any], bool]:
        """Rows, top-level config and "finished" of one file; FormatError when undecodable."""
        try:
            text = read_text(file)
        except OSError as err:
            raise FormatError(
                f"cannot read '{file}' ({err.strerror})", "Check the file's permissions"
            ) from None
        if not text.strip():
            raise FormatError(f"'{file}' is empty", "Wait for the Trainer to finish saving it")
        try:
            data = load_json(text)
        except ValueError as err:
            raise FormatError(
                f"'{file}' is not valid JSON ({err}); the file is truncated or corrupted",
                "Point at an intact trainer_state.json or a checkpoint folder",
            ) from None
        history = data.get("log_history") if isinstance(data, dict) else None
        if not isinstance(history, list):
            raise FormatError(
                f"'{file}' has no log_history list; it is not an HF Trainer state",
                "Point at the trainer_state.json the Trainer saved",
            )
        rows: list[tuple[str, int, float]] = []
        finished = False
        skipped = 0
        dropped = _Dropped()
        for entry in history:
            if not isinstance(entry, dict):
                skipped += 1
                continue
            if "train_runtime" in entry:
                finished = True  # the end-of-training summary, not a logged point
                continue
            step = _step(entry.get("step"))
            if step is None:
                skipped += 1
                continue
            for key, value in entry.items():
                if key in _SKIP_KEYS:
                    continue
                number = _number(value)
                if number is None:
                    if not isinstance(value, (dict, list)):
                        dropped.add(str(key), step, value)
                    continue
                rows.append((str(key), step, number))
        message = dropped.message(_describe(file, self.path))
        if message:
            self._warn(message)
        if skipped:
            self._warn(
                f"{_describe(file, self.path)}: skipped {skipped} log_history entries "
                "without an integer step"
            )
        notes: list[str] = []
        config = canonical_config({k: data[k] for k in _CONFIG_KEYS if k in data}, notes)
        for note in notes:
            self._warn(f"{_describe(file, self.path)}: {note}")
        global_step = config.get("global_step")
        max_steps = config.get("max_steps")
        if global_step is not None and max_steps is not None and global_step >= max_steps:
            finished = True
        return rows, config, finished

    def poll(self) -> Points:
        """Points new or changed since the last poll (all of them on the first call)."""
        files = state_files(self.path)
        if not files:
            if not self._read_once:
                raise FormatError(
                    f"no {FILE_NAME} in '{self.path}' or its checkpoint-* folders",
                    "Point at an HF Trainer output_dir or a checkpoint folder",
                )
            return Points.empty()
        first_error: FormatError | None = None
        for file in files:
            signature = _signature(file)
            if file == self._file and signature == self._signature:
                return Points.empty()  # the preferred file did not change
            try:
                rows, config, finished = self._parse(file)
            except FormatError as err:
                # A checkpoint being saved right now is half-written: fall back to an older one.
                first_error = first_error or err
                continue
            if first_error is not None and not self._read_once:
                self._warn(f"{first_error.problem}; read {_describe(file, self.path)} instead")
            if file != self._file and file.parent != self.path and not self.path.is_file():
                note = f"read {_describe(file, self.path)} (the newest checkpoint)"
                self.notes = [n for n in self.notes if not n.startswith("read ")] + [note]
            self._file, self._signature = file, signature
            self.config.update(config)
            self.status = "finished" if finished else "unknown"
            self._read_once = True
            return self._emitted.new_points(rows)
        if not self._read_once and first_error is not None:
            raise first_error
        return Points.empty()  # mid-write: the next poll reads it
