"""Shared fixtures: real writers (TensorBoard, the HF Trainer), kept single-threaded."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

os.environ.setdefault("OMP_NUM_THREADS", "1")

# Timing is not what the properties test: no per-example deadline on a loaded 2-core machine
# (tests that guard against hangs set their own). CI replays the same examples every run, so a
# result does not depend on the draw; locally every run explores new ones.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


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


def _write_tb_run(path: Path, steps: int = 60, loss_tag: str = "train/loss") -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(path))
    for step in range(1, steps + 1):
        writer.add_scalar(loss_tag, 4.0 - 0.02 * step, step)
        writer.add_scalar("train/learning_rate", 1e-3 * min(step / 10, 1.0), step)
    writer.close()


@pytest.fixture(scope="session")
def write_tb_run() -> Callable[..., None]:
    """``write_tb_run(path, steps=60, loss_tag="train/loss")``: a short run written by torch's
    SummaryWriter, falling loss and an LR with a 10-step warmup."""
    return _write_tb_run


def _train_tiny_hf(
    output_dir: Path,
    *,
    max_steps: int = 12,
    logging_steps: int = 2,
    eval_steps: int = 6,
    report_to: str | list[str] = "none",
) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.set_num_threads(1)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 1)

        def forward(self, x, labels):
            return {"loss": torch.nn.functional.mse_loss(self.lin(x).squeeze(-1), labels)}

    class Data(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
            self.y = self.x.sum(1)

        def __len__(self) -> int:
            return 64

        def __getitem__(self, i: int) -> dict:
            return {"x": self.x[i], "labels": self.y[i]}

    args = transformers.TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        warmup_steps=4,
        logging_steps=logging_steps,
        save_steps=5,
        eval_strategy="steps",
        eval_steps=eval_steps,
        report_to=report_to,
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model=Tiny(), args=args, train_dataset=Data(), eval_dataset=Data()
    )
    trainer.train()
    trainer.save_state()
    return output_dir


@pytest.fixture(scope="session")
def train_tiny_hf() -> Callable[..., Path]:
    """``train_tiny_hf(output_dir, max_steps=12, logging_steps=2, eval_steps=6, report_to="none")``:
    run a real HF Trainer for a few steps on CPU (saving checkpoints every 5 steps and the final
    ``trainer_state.json``) and return its output_dir."""
    return _train_tiny_hf
