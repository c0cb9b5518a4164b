"""The HF Trainer callback on real tiny Trainer runs (CPU, a few seconds each)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.conftest import generator, onset_step

pytest.importorskip("transformers")

from warmup_monitor.errors import ConfigError
from warmup_monitor.integrations.hf import WarmupMonitorCallback


def _logged(trainer: Any, key: str = "loss") -> tuple[list[int], list[float]]:
    rows = [r for r in trainer.state.log_history if key in r and "train_runtime" not in r]
    return [int(r["step"]) for r in rows], [float(r[key]) for r in rows]


@pytest.mark.parametrize("name", ["warmup_too_short_spikes", "warmup_too_short_nan"])
def test_too_short_warmup_is_stopped_within_two_logged_steps(
    hf_train: Any, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []
    cb = WarmupMonitorCallback(on_alert=seen.append)
    trainer = hf_train(tmp_path, name, [cb], max_steps=60)
    steps, losses = _logged(trainer)
    onset = onset_step(steps, losses)
    assert onset is not None, (steps, losses)
    assert cb.stop_reason is not None and cb.stop_reason.startswith("critical ")
    stopped = trainer.state.global_step
    assert stopped < 60
    assert steps.index(stopped) - steps.index(onset) <= 2, (onset, stopped, losses)
    # The stop is said, with the alert that caused it; the callable saw that alert.
    err = capsys.readouterr().err
    assert "stopping the training: critical" in err
    assert any(e.severity is not None and e.severity.value == "critical" for e in seen)
    # The final report says the same as the live alerts.
    report = json.loads((tmp_path / "warmup_report.json").read_text())
    assert report["runs"][0]["verdict"] == "warmup_too_short"
    assert report["runs"][0]["status"] == "aborted"
    assert (tmp_path / "warmup_report.html").read_text().startswith("<!DOCTYPE html>")


def test_healthy_run_is_not_stopped_and_gets_its_report(
    hf_train: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from warmup_monitor.render import load_schema

    cb = WarmupMonitorCallback(stop_on="critical")
    trainer = hf_train(tmp_path, "healthy", [cb], max_steps=30)
    assert trainer.state.global_step == 30
    assert cb.stop_reason is None
    err = capsys.readouterr().err
    # The plan ran on the real arguments with the Trainer's own total.
    assert "warmup-monitor plan: 30 total steps" in err
    assert cb.plan is not None and cb.plan.steps.total_steps == 30 and cb.plan.warmup.steps == 3
    doc = json.loads((tmp_path / "warmup_report.json").read_text())
    jsonschema.validate(doc, load_schema())
    run = doc["runs"][0]
    assert run["verdict"] == "healthy"
    assert run["last_step"] == 30
    assert run["config"]["max_steps"] == 30 and run["config"]["max_grad_norm"] == 1.0


def test_hidden_nan_loss_is_read_from_the_forward_pass(
    hf_train: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """adam_epsilon=0 turns the model NaN from step 2; logged every 10 steps, the Trainer's
    NaN filter logs a finite loss at step 10 (only step 1's loss was finite), with a NaN
    grad_norm. The callback reads the forward passes and alerts on the loss itself."""
    cb = WarmupMonitorCallback(stop_on=None)
    trainer = hf_train(tmp_path, "numerical_instability_adam_eps0", [cb], 20, logging_steps=10)
    steps, losses = _logged(trainer)
    assert steps[0] == 10 and math.isfinite(losses[0]) and losses[0] != 0.0
    loss_alerts = [
        a for a in cb.alerts if a.event == "finding" and a.metric == "loss" and a.step == 10
    ]
    assert loss_alerts and loss_alerts[0].detector == "non_finite"
    err = capsys.readouterr().err
    assert f"loss logged as {losses[0]:.4g} at step 10, but 9 of the 10 training forward" in err
    assert trainer.state.global_step == 20  # stop_on=None never stops


def test_llamafactory_style_callback_list(hf_train: Any, tmp_path: Path) -> None:
    """LLaMA-Factory passes ``run_exp(callbacks=[...])`` to its Trainer next to its own
    ``LogCallback``: both run, and trainer_log.jsonl and the report are written."""
    lf_log, _ = generator()._callbacks()  # the generator's copy of LLaMA-Factory's LogCallback
    cb = WarmupMonitorCallback()
    hf_train(tmp_path, "warmup_too_short_spikes", [lf_log(), cb], max_steps=60)
    lines = (tmp_path / "trainer_log.jsonl").read_text().splitlines()
    assert cb.stop_reason is not None
    assert json.loads(lines[-1])["current_steps"] <= 8
    assert (tmp_path / "warmup_report.json").exists()


def test_a_failing_on_alert_is_reported_and_training_goes_on(
    hf_train: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(event: Any) -> None:
        raise RuntimeError("no network")

    cb = WarmupMonitorCallback(on_alert=boom, stop_on="warning", write_report=False)
    trainer = hf_train(tmp_path, "warmup_too_short_spikes", [cb], max_steps=60)
    err = capsys.readouterr().err
    assert err.count("on_alert raised RuntimeError: no network") == 1
    assert cb.stop_reason is not None and trainer.state.global_step < 60
    assert not (tmp_path / "warmup_report.json").exists()


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="stop_on must be 'critical', 'warning' or None"):
        WarmupMonitorCallback(stop_on="error")
    with pytest.raises(ConfigError, match="on_alert must be a callable"):
        WarmupMonitorCallback(on_alert="notify-send")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is not an http"):
        WarmupMonitorCallback(webhook="hooks.example.com/x")


def test_a_run_resumed_from_its_checkpoint_is_not_judged_from_the_resume(
    hf_train: Any, tmp_path: Path
) -> None:
    """``trainer.train(resume_from_checkpoint=...)``: the callback sees the run from the
    checkpoint's step on, past the warmup, with a trained loss. A healthy run's late, slower
    progress there is not a stalled start: no problem alert, a healthy report that says where
    the log starts."""
    from transformers import TrainerCallback

    class StopAt60(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            control.should_training_stop = state.global_step >= 60

    settings = {"logging_steps": 2, "warmup_steps": 20, "lr_scheduler_type": "linear"}
    settings |= {"save_strategy": "steps", "save_steps": 60}
    hf_train(tmp_path, "healthy", [StopAt60()], 200, **settings)
    cb = WarmupMonitorCallback()
    resume = str(tmp_path / "checkpoint-60")
    trainer = hf_train(tmp_path, "healthy", [cb], 200, resume=resume, **settings)
    assert trainer.state.global_step == 200
    assert not [a for a in cb.alerts if "lr_too_high" in str(a.message)], cb.alerts
    report = json.loads((tmp_path / "warmup_report.json").read_text())
    run = report["runs"][0]
    assert run["verdict"] == "healthy", run["summary"]
    assert any("mid-training" in f["message"] for f in run["findings"])
