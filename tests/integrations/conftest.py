"""Tiny real training runs: the sample-log generator's models and data, a few dozen steps."""

from __future__ import annotations

import importlib
import math
from typing import Any

import pytest


def generator() -> Any:
    """``sample_logs/generate.py``: its scenarios, tiny models and character dataset."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return importlib.import_module("sample_logs.generate")


def scenario(name: str) -> Any:
    return {s.name: s for s in generator().SCENARIOS}[name]


_CORPUS: list[Any] = []


def dataset() -> Any:
    gen = generator()
    if not _CORPUS:
        _CORPUS.append(gen._CharDataset(gen._corpus()))
    return _CORPUS[0]


def onset_step(steps: list[int], losses: list[float]) -> int | None:
    """The first logged step whose loss is non-finite or above the divergence detector's
    default ratio times the lowest loss before it: where the problem visibly starts."""
    from detectors.divergence import DivergenceConfig

    best = math.inf
    for step, loss in zip(steps, losses, strict=True):
        if not math.isfinite(loss) or loss > DivergenceConfig().ratio * best:
            return step
        best = min(best, loss)
    return None


@pytest.fixture(scope="session")
def hf_train() -> Any:
    """``hf_train(tmp_path, scenario_name, callback, max_steps=..., logging_steps=...)`` trains
    the scenario's model with the real HF Trainer and returns the trainer. ``resume`` is passed
    to ``trainer.train(resume_from_checkpoint=...)``; other keywords override the scenario's
    ``TrainingArguments``."""

    def train(
        out: Any,
        name: str,
        callbacks: list[Any],
        max_steps: int,
        logging_steps: int = 1,
        resume: str | None = None,
        **overrides: Any,
    ):
        import torch
        from transformers import Trainer, TrainingArguments, default_data_collator, set_seed

        gen, s = generator(), scenario(name)
        torch.set_num_threads(1)
        set_seed(s.seed, deterministic=True)
        kwargs: dict[str, Any] = {
            "output_dir": str(out),
            "run_name": name,
            "max_steps": max_steps,
            "learning_rate": s.learning_rate,
            "warmup_steps": s.warmup_ratio if s.warmup_ratio is not None else s.warmup_steps,
            "lr_scheduler_type": s.lr_scheduler_type,
            "logging_steps": logging_steps,
            "max_grad_norm": s.max_grad_norm,
            "adam_epsilon": s.adam_epsilon,
            "optim": "adamw_torch",
            "per_device_train_batch_size": s.batch_size,
            "use_cpu": True,
            "save_strategy": "no",
            "disable_tqdm": True,
            "report_to": [],
            "seed": s.seed,
        }
        args = TrainingArguments(**{**kwargs, **overrides})
        trainer = Trainer(
            model=gen._model(s),
            args=args,
            train_dataset=dataset(),
            data_collator=default_data_collator,
            callbacks=callbacks,
        )
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    return train
