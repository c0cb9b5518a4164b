"""Lightning CSVLogger ``metrics.csv``: sparse rows, hparams.yaml, re-reads while growing."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_monitor.diagnosis import diagnose
from warmup_monitor.discover import find_runs, read_run
from warmup_monitor.errors import FormatError
from warmup_monitor.readers.lightning import LightningCsvSource, claims, open_source

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lightning"
VERSION = FIXTURE / "lightning_logs" / "version_0"


@pytest.fixture
def version(tmp_path: Path) -> Path:
    dest = tmp_path / "lightning_logs" / "version_0"
    shutil.copytree(VERSION, dest)
    return dest


def test_claims(tmp_path: Path) -> None:
    """A version folder or its metrics.csv is claimed; a CSV without a step column is not."""
    assert claims(VERSION)
    assert claims(VERSION / "metrics.csv")
    assert not claims(FIXTURE)
    (tmp_path / "metrics.csv").write_text("a,b\n1,2\n")
    assert not claims(tmp_path)


def test_sparse_rows() -> None:
    """Each non-empty cell is a point; lr-AdamW maps to learning_rate, train_loss_step to loss."""
    run = read_run(VERSION)
    assert run.source == "lightning_csv"
    assert run.metric_map["loss"] == "train_loss_step"
    assert run.metric_map["learning_rate"] == "lr-AdamW"
    steps, _ = run.series("loss")
    assert steps.tolist() == list(range(4, 120, 5))
    assert run.series("learning_rate")[1][0] == pytest.approx(7.5e-05)
    assert run.series("eval_loss")[0].tolist() == [39, 79, 119]
    assert run.series("train_loss_epoch")[0].tolist() == [39, 79, 119]
    assert run.series("epoch")[1].max() == 2


def test_hparams_config() -> None:
    """hparams.yaml is read into canonical config through the aliases Lightning users write."""
    run = read_run(VERSION)
    assert run.config["learning_rate"] == 3e-4
    assert run.config["warmup_steps"] == 20
    assert run.config["max_steps"] == 120
    assert run.config["per_device_train_batch_size"] == 32


def test_find_runs_under_lightning_logs() -> None:
    """The version folder is one run named by its path."""
    refs = find_runs(FIXTURE)
    assert [(r.name, r.format) for r in refs] == [("lightning_logs/version_0", "lightning_csv")]


def test_partial_row_waits_and_appended_rows_are_new(version: Path) -> None:
    """A row without its newline is not read; appended rows come alone in the next poll."""
    csv_path = version / "metrics.csv"
    source = LightningCsvSource(version)
    first = source.poll()
    assert int(first.steps.max()) == 119
    with open(csv_path, "a") as fh:
        fh.write("2,,124,,1.5")
    assert len(source.poll()) == 0
    with open(csv_path, "a") as fh:
        fh.write(",\n")
    batch = source.poll()
    assert sorted(
        zip(batch.steps.tolist(), (batch.tags[c] for c in batch.tag_codes), strict=True)
    ) == [
        (124, "epoch"),
        (124, "train_loss_step"),
    ]


def test_rewrite_with_new_column_yields_only_new_points(version: Path) -> None:
    """Lightning rewrites the file when a column appears: old points are not emitted again."""
    csv_path = version / "metrics.csv"
    source = open_source(version)
    source.poll()
    lines = csv_path.read_text().splitlines()
    header = lines[0] + ",grad_norm"
    body = [line + "," for line in lines[1:]] + ["2,,124,,,,0.5"]
    csv_path.write_text("\n".join([header, *body]) + "\n")
    os.utime(csv_path, ns=(5, 5))
    batch = source.poll()
    got = sorted((batch.tags[c], int(s)) for c, s in zip(batch.tag_codes, batch.steps, strict=True))
    assert got == [("epoch", 124), ("grad_norm", 124)]


def test_bad_rows_warn(tmp_path: Path) -> None:
    """Rows with the wrong cell count or a non-integer step are skipped with a warning."""
    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss\n0,1,2.0\n0,x,1.0\n0,2\n0,3,1.5\n")
    source = open_source(tmp_path)
    points = source.poll()
    assert sorted(set(points.steps.tolist())) == [1, 3]
    assert len(source.warnings) == 2
    assert "line 3" in source.warnings[0] and "line 4" in source.warnings[1]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet='0123456789.,-+eE"\n\r\x00 xnaif', max_size=300))
def test_any_csv_body_reads_or_warns(body: str) -> None:
    """Whatever follows the header, polling returns points or warnings, never an exception."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metrics.csv"
        path.write_text("epoch,step,train_loss,lr-AdamW\n" + body, newline="")
        points = LightningCsvSource(path).poll()
        assert (points.steps >= 0).all()
        assert set(points.tags) <= {"epoch", "train_loss", "lr-AdamW"}


def test_file_without_step_column_is_format_error(tmp_path: Path) -> None:
    """A CSV of another kind opened as Lightning output raises FormatError."""
    (tmp_path / "metrics.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FormatError) as err:
        LightningCsvSource(tmp_path).poll()
    assert "no step column" in str(err.value)


def test_lr_of_the_first_param_group(tmp_path: Path) -> None:
    """A real Lightning run with two param groups: LearningRateMonitor writes lr-SGD/pg1,
    lr-SGD/pg2 and their momentum (lr-SGD/pg1-momentum, ...). The first group's LR is the
    run's LR, and its 20-step warmup is read from it."""
    pl = pytest.importorskip("lightning.pytorch")
    import torch

    torch.manual_seed(0)

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.head = torch.nn.Linear(4, 8), torch.nn.Linear(8, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.head(torch.relu(self.body(x))), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            groups = [
                {"params": self.body.parameters(), "lr": 0.05},
                {"params": self.head.parameters(), "lr": 0.01},
            ]
            opt = torch.optim.SGD(groups, momentum=0.9)
            ramp = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, k / 20))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": ramp, "interval": "step"}}

    x = torch.randn(256, 4)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    trainer = pl.Trainer(
        max_steps=60,
        log_every_n_steps=1,
        accelerator="cpu",
        logger=pl.loggers.CSVLogger(str(tmp_path)),
        callbacks=[pl.callbacks.LearningRateMonitor(log_momentum=True)],
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=8))
    run = read_run(tmp_path / "lightning_logs" / "version_0")
    assert {"lr-SGD/pg1", "lr-SGD/pg2"} <= set(run.tags)
    assert any("momentum" in tag for tag in run.tags)
    assert run.metric_map["learning_rate"] == "lr-SGD/pg1"
    assert run.series("learning_rate")[1].max() == pytest.approx(0.05)
    d = diagnose(run, ended=True)
    assert d.schedule is not None and d.schedule.warmup_steps == 20
