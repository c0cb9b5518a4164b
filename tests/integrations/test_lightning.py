"""The Lightning callback on real tiny Lightning runs (CPU, a few seconds each)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.conftest import dataset, generator, onset_step, scenario

pl = pytest.importorskip("lightning.pytorch")

from warmup_monitor.integrations.lightning import WarmupMonitorCallback  # noqa: E402


def _fit(out: Path, name: str, cb: Any, max_steps: int) -> tuple[Any, list[int], list[float]]:
    import torch

    gen, s = generator(), scenario(name)
    torch.set_num_threads(1)
    pl.seed_everything(s.seed, verbose=False)
    warmup = s.warmup_steps if s.warmup_ratio is None else math.ceil(s.warmup_ratio * max_steps)
    logged: tuple[list[int], list[float]] = ([], [])

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = gen._model(s)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = self.model(**batch).loss
            logged[0].append(self.global_step + 1)
            logged[1].append(float(loss.detach()))
            return loss

        def configure_optimizers(self) -> Any:
            opt = torch.optim.AdamW(self.parameters(), lr=s.learning_rate, weight_decay=0.0)
            ramp = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda k: min(1.0, k / warmup) if warmup else 1.0
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": ramp, "interval": "step"}}

    loader = torch.utils.data.DataLoader(dataset(), batch_size=s.batch_size, shuffle=False)
    trainer = pl.Trainer(
        max_steps=max_steps,
        log_every_n_steps=1,
        gradient_clip_val=s.max_grad_norm,
        accelerator="cpu",
        logger=pl.loggers.CSVLogger(str(out)),
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    trainer.fit(Module(), loader)
    return trainer, *logged


def test_no_warmup_at_a_high_lr_is_stopped(tmp_path: Path) -> None:
    cb = WarmupMonitorCallback()
    trainer, steps, losses = _fit(tmp_path, "warmup_too_short_spikes", cb, 40)
    onset = onset_step(steps, losses)
    assert onset is not None and cb.stop_reason is not None
    assert cb.stop_reason.startswith("critical ")
    assert trainer.global_step < 40
    assert trainer.global_step - onset <= 2, (onset, trainer.global_step, losses)
    doc = json.loads(cb.report_files[0].read_text())
    assert doc["runs"][0]["verdict"] == "warmup_too_short"
    assert doc["runs"][0]["config"]["max_steps"] == 40


def test_healthy_run_is_not_stopped(tmp_path: Path) -> None:
    cb = WarmupMonitorCallback()
    trainer, _, _ = _fit(tmp_path, "healthy", cb, 30)
    assert trainer.global_step == 30 and cb.stop_reason is None
    doc = json.loads(cb.report_files[0].read_text())
    assert doc["runs"][0]["verdict"] == "healthy"
    assert doc["runs"][0]["last_step"] == 30
