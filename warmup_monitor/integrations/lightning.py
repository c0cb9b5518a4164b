"""A Lightning callback: the watcher's alerts from inside ``Trainer.fit``.

    from warmup_monitor.integrations.lightning import WarmupMonitorCallback

    trainer = lightning.Trainer(..., callbacks=[WarmupMonitorCallback(stop_on="critical")])

At every ``log_every_n_steps``-th optimizer step (``on_train_batch_end``) the callback feeds the
watcher's alert engine one logging step: the loss the ``training_step`` returned (the raw value
of that batch, before any logger aggregates it), the first optimizer's learning rate, and the
step metrics the module logged with ``self.log`` (``grad_norm`` …); validation metrics are fed
once per validation (``on_validation_end``). A non-finite loss in any batch since the previous
logging step is counted on the device and fed as NaN, so it is never averaged away. The total
steps (``estimated_stepping_batches``), ``gradient_clip_val`` and the optimizer's LR are the
run's config. ``stop_on`` sets ``trainer.should_stop``; the report (JSON and HTML page) is
written into the logger's folder at the end of ``fit``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError as _err:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "warmup_monitor.integrations.lightning needs the lightning package, which is not "
        f"installed ({_err}). Install it with: pip install lightning"
    ) from None

from .live import AlertCallable, LiveMonitor

__all__ = ["WarmupMonitorCallback"]

# Logged names that are aggregates over an epoch or belong to evaluation, not a training step.
_NOT_STEP = ("val", "eval", "test")


class WarmupMonitorCallback(pl.Callback):  # type: ignore[misc]
    """Alerts on warmup problems during ``fit``, and stops the run if asked.

    Options as for the HF callback: ``stop_on`` (``"critical"``, ``"warning"`` or ``None``),
    ``on_alert`` (a callable receiving each alert), ``webhook`` (a Slack-compatible URL),
    ``print_alerts``, ``write_report`` / ``report_dir`` (default: ``trainer.log_dir``, else
    ``default_root_dir``), ``name`` (default: the module's class name).
    """

    def __init__(
        self,
        *,
        stop_on: str | None = "critical",
        on_alert: AlertCallable | None = None,
        webhook: str | None = None,
        print_alerts: bool = True,
        write_report: bool = True,
        report_dir: str | Path | None = None,
        name: str | None = None,
        diagnose_every: float = 0.2,
    ) -> None:
        super().__init__()
        self.monitor = LiveMonitor(
            name or "train",
            source="lightning",
            stop_on=stop_on,
            on_alert=on_alert,
            webhook=webhook,
            print_alerts=print_alerts,
            metrics={"loss": "loss", "learning_rate": "learning_rate"},
            diagnose_every=diagnose_every,
        )
        self._name = name
        self.write_report = write_report
        self.report_dir = report_dir
        self.report_files: list[Path] = []
        self._bad: Any = 0  # non-finite batch losses since the last logging step (on device)
        self._last_step = -1

    @property
    def stop_reason(self) -> str | None:
        """Why the callback stopped the training (None when it did not)."""
        return self.monitor.stop_reason

    @property
    def alerts(self) -> list[Any]:
        return list(self.monitor.alerts)

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        total = trainer.estimated_stepping_batches
        finite = isinstance(total, int | float) and math.isfinite(total)
        lr = _first_lr(trainer, initial=True)
        raw = {
            "max_steps": int(total) if finite else None,
            "max_grad_norm": trainer.gradient_clip_val,
            "logging_steps": trainer.log_every_n_steps,
            "gradient_accumulation_steps": trainer.accumulate_grad_batches,
            "learning_rate": lr,
        }
        name = self._name or type(pl_module).__name__
        self.monitor.configure(
            {k: v for k, v in raw.items() if v is not None}, name=name, path=_folder(trainer)
        )

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is not None and hasattr(loss, "detach") and loss.numel() == 1:
            # Stays on the device: no synchronisation per batch.
            self._bad = self._bad + (~loss.detach().isfinite()).sum()
        step = int(trainer.global_step)
        every = max(int(trainer.log_every_n_steps or 1), 1)
        if step == self._last_step or step % every != 0 or step == 0:
            return
        self._last_step = step
        values: dict[str, Any] = {}
        if loss is not None and hasattr(loss, "detach") and loss.numel() == 1:
            bad = int(self._bad) if not isinstance(self._bad, int) else self._bad
            values["loss"] = math.nan if bad else float(loss.detach())
        self._bad = 0
        lr = _first_lr(trainer)
        if lr is not None:
            values["learning_rate"] = lr
        for key, value in trainer.callback_metrics.items():
            if key in ("loss", "learning_rate") or key.endswith("_epoch"):
                continue
            if key.lower().startswith(_NOT_STEP):
                continue
            values[key] = _scalar(value)
        self.monitor.log(step, {k: v for k, v in values.items() if v is not None})
        self._maybe_stop(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        values = {
            k: _scalar(v)
            for k, v in trainer.callback_metrics.items()
            if k.lower().startswith(_NOT_STEP[:2]) and not k.endswith("_step")
        }
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            self.monitor.log(int(trainer.global_step), values)
            self._maybe_stop(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        folder = self.report_dir if self.report_dir is not None else _folder(trainer)
        self.report_files = self.monitor.finish(folder if self.write_report else None)

    # ------------------------------------------------------------------ internals
    def _maybe_stop(self, trainer: Any) -> None:
        if self.monitor.should_stop and not trainer.should_stop:
            trainer.should_stop = True
            self.monitor.say(f"stopping the training: {self.monitor.stop_reason}")


def _first_lr(trainer: Any, *, initial: bool = False) -> float | None:
    try:
        group = trainer.optimizers[0].param_groups[0]
    except (AttributeError, IndexError, KeyError):
        return None
    value = group.get("initial_lr", group.get("lr")) if initial else group.get("lr")
    return _scalar(value)


def _scalar(value: Any) -> float | None:
    try:
        if hasattr(value, "numel"):
            if value.numel() != 1:
                return None
            value = value.item()
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _folder(trainer: Any) -> str:
    return str(trainer.log_dir or trainer.default_root_dir)
