"""Shared fixtures: real TensorBoard writers, single-threaded so the suite stays light."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def torch_writer() -> Iterator[Callable[..., Any]]:
    """Factory for torch ``SummaryWriter``s (closed at teardown): ``torch_writer(logdir, **kw)``."""
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    writers: list[Any] = []

    def make(logdir: Path | str, **kwargs: Any) -> Any:
        writer = SummaryWriter(str(logdir), **kwargs)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close()
