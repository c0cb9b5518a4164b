"""Readers: one module per log format, each providing ``claims(path)`` and ``open_source(path)``.

``claims(path) -> bool`` says whether ``path`` (a file or a directory) *is* one run in that
format, looking only at that path and its direct children; ``open_source(path) -> Source``
opens it for incremental reading. ``FORMATS`` lists them by richness: when two formats
describe the same run, the earlier one is preferred.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..sources import Source

__all__ = ["FORMATS", "Format", "available_formats"]


_MODULES: dict[str, ModuleType] = {}


@dataclass(frozen=True)
class Format:
    name: str
    module: str
    description: str

    def _mod(self) -> ModuleType:
        # Looked up for every run read: resolving a relative import each time adds up.
        module = _MODULES.get(self.module)
        if module is None:
            module = _MODULES[self.module] = importlib.import_module(self.module, __name__)
        return module

    @property
    def claims(self) -> Callable[[Path], bool]:
        return self._mod().claims

    @property
    def open_source(self) -> Callable[[Path], Source]:
        return self._mod().open_source


FORMATS: tuple[Format, ...] = (
    Format("tensorboard", ".tensorboard", "TensorBoard event files (*tfevents*)"),
    Format("swanlab", ".swanlab", "SwanLab run folders (run-*/ with *.swanlab or logs/)"),
    Format("trainer_state", ".trainer_state", "HF Trainer trainer_state.json"),
    Format("trainer_log", ".llamafactory", "LLaMA-Factory trainer_log.jsonl"),
    Format("lightning_csv", ".lightning", "Lightning CSVLogger metrics.csv"),
)


def available_formats() -> list[Format]:
    """The formats whose reader modules import (all of them in a complete install)."""
    out = []
    for fmt in FORMATS:
        try:
            fmt._mod()
        except ImportError:
            continue
        out.append(fmt)
    return out
