"""The source interface every reader implements: ``poll()`` yields only what is new."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

from .points import Points

__all__ = ["RunStatus", "Source"]

# Run status values a source can report.
RunStatus = str  # "running" | "finished" | "crashed" | "aborted" | "unknown"


class Source(abc.ABC):
    """An incremental reader of one run.

    ``poll()`` returns only the points appended since the previous call (all points on the
    first call) and an empty :class:`Points` when nothing changed. A half-written record or
    line is "not yet": it is returned by a later poll once complete. Sources only ever read.
    """

    #: Format name, e.g. ``"tensorboard"``, ``"swanlab"``, ``"trainer_state"``.
    format: str = "unknown"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        #: Human-readable warnings gathered while reading (skipped records, resumes …).
        self.warnings: list[str] = []
        #: What was read, when it is not the obvious file (e.g. the newest checkpoint's copy).
        self.notes: list[str] = []
        #: Canonical config keys found next to the logs (see ``warmup_monitor.config``).
        self.config: dict[str, Any] = {}
        #: ``"running"``, ``"finished"``, ``"crashed"``, ``"aborted"`` or ``"unknown"``.
        self.status: RunStatus = "unknown"
        #: Display name from the log's own metadata (e.g. a SwanLab experiment name), if any.
        self.display_name: str | None = None

    def _warn(self, message: str) -> None:
        """Add a warning once: a file read again repeats the problems already reported."""
        if message not in self.warnings:
            self.warnings.append(message)

    @abc.abstractmethod
    def poll(self) -> Points:
        """Return the points added since the last poll."""

    def pending(self) -> list[str]:
        """What the last poll held back as "not yet" (a partial last record or line).

        While a run is written that is normal; after a finished read (``report``) or once the
        file stopped growing, those bytes will never complete, so the reader says what they are.
        """
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release open files. Sources hold no state that needs flushing."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
