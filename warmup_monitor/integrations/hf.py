"""A ``TrainerCallback`` for the HF ``Trainer`` (and LLaMA-Factory, which trains with it).

    from warmup_monitor.integrations.hf import WarmupMonitorCallback

    trainer = Trainer(..., callbacks=[WarmupMonitorCallback(stop_on="critical")])

Every ``on_log`` (and ``on_evaluate``) is one logging step for the watcher's alert engine:
the same diagnosis, throttle and memory of what was said as ``warmup-monitor watch``, with the
run's config taken from ``TrainingArguments`` and the trainer state. At ``on_train_begin`` the
``plan`` checks run on the real arguments with the Trainer's exact total steps; at
``on_train_end`` the report (JSON and HTML page) is written into ``output_dir``.

The Trainer hides a NaN loss: with ``logging_nan_inf_filter`` (the default) a non-finite
step's loss is replaced by the mean of the window's finite ones, and a window of NaNs only is
logged as ``0.0``. The callback therefore counts non-finite losses where they are made, in a
forward hook on the model (on the device, without a synchronisation per step), and when the
window it logs held one it feeds ``loss`` as NaN and says what the Trainer logged instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as _err:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "warmup_monitor.integrations.hf needs the transformers package, which is not "
        f"installed ({_err}). Install it with: pip install transformers"
    ) from None

from .live import AlertCallable, LiveMonitor

__all__ = ["WarmupMonitorCallback"]

# Keys of a Trainer log that are bookkeeping, not training metrics.
_SKIP_KEYS = frozenset(
    {"epoch", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second"}
)


class WarmupMonitorCallback(TrainerCallback):  # type: ignore[misc]
    """Alerts on warmup problems as the Trainer logs, and stops the run if asked.

    ``stop_on``: ``"critical"`` (default), ``"warning"`` or ``None`` — the alert severity at
    which ``control.should_training_stop`` is set (the reason is printed and kept in
    :attr:`stop_reason`). ``on_alert``: a callable receiving each alert
    (:class:`~warmup_monitor.watch.WatchEvent`). ``webhook``: a Slack-compatible URL.
    ``print_alerts``: write event lines to stderr. ``write_report``: write
    ``warmup_report.json`` and ``warmup_report.html`` into ``output_dir`` at the end of
    training (``report_dir`` overrides the folder). ``check_plan``: run the plan checks at the
    start. ``raw_loss``: count non-finite losses in a forward hook (see the module help).
    ``name``: the run's name in messages (default: ``run_name``, else the output folder's).
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
        check_plan: bool = True,
        raw_loss: bool = True,
        name: str | None = None,
        metrics: Mapping[str, str] | None = None,
        diagnose_every: float = 0.2,
    ) -> None:
        self.monitor = LiveMonitor(
            name or "train",
            source="hf_trainer",
            stop_on=stop_on,
            on_alert=on_alert,
            webhook=webhook,
            print_alerts=print_alerts,
            metrics=metrics,
            diagnose_every=diagnose_every,
        )
        self._name = name
        self.write_report = write_report
        self.report_dir = report_dir
        self.check_plan = check_plan
        self.raw_loss = raw_loss
        self.plan: Any = None
        self.report_files: list[Path] = []
        self._hook: Any = None
        self._bad: Any = 0  # non-finite training losses since the last log (a device tensor)
        self._passes = 0
        self._last_eval_step: int | None = None
        self._hidden_said = False

    @property
    def stop_reason(self) -> str | None:
        """Why the callback stopped the training (None when it did not)."""
        return self.monitor.stop_reason

    @property
    def alerts(self) -> list[Any]:
        """The alerts raised so far (newest 1000)."""
        return list(self.monitor.alerts)

    # ------------------------------------------------------------------ events
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        raw = args.to_dict()
        name = self._name or getattr(args, "run_name", None) or Path(args.output_dir).name
        overrides = {
            "max_steps": state.max_steps if state.max_steps and state.max_steps > 0 else None,
            "logging_steps": state.logging_steps or None,
            "train_batch_size": getattr(state, "train_batch_size", None),
        }
        config = self.monitor.configure(raw, name=name, path=args.output_dir, overrides=overrides)
        if "warmup_steps" not in config and "warmup_ratio" not in config:
            config["warmup_steps"] = 0  # the Trainer's default: no warmup at all
        if self.check_plan:
            dataloader = kwargs.get("train_dataloader")
            self.plan = self.monitor.check_plan(
                raw,
                total_steps=state.max_steps,
                samples=_dataset_size(dataloader),
                gpus=getattr(args, "world_size", 1) or 1,
            )
        model = kwargs.get("model")
        if self.raw_loss and model is not None and hasattr(model, "register_forward_hook"):
            self._hook = model.register_forward_hook(self._count_loss)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs:
            return
        values = {k: v for k, v in logs.items() if k not in _SKIP_KEYS}
        step = int(state.global_step)
        if any(k.startswith("eval_") for k in values):
            self._last_eval_step = step
        if "loss" in values:
            values = self._reveal_hidden_nan(args, step, values)
        self.monitor.log(step, values)
        self._maybe_stop(control)

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        # The Trainer also logs evaluation metrics (on_log); feed them here only when it did not.
        step = int(state.global_step)
        if metrics and self._last_eval_step != step:
            self._last_eval_step = step
            self.monitor.log(step, {k: v for k, v in metrics.items() if k.startswith("eval_")})
            self._maybe_stop(control)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        folder = self.report_dir if self.report_dir is not None else args.output_dir
        files = self.monitor.finish(folder if self.write_report else None)
        self.report_files = files

    # ------------------------------------------------------------------ internals
    def _maybe_stop(self, control: Any) -> None:
        if self.monitor.should_stop and not control.should_training_stop:
            control.should_training_stop = True
            self.monitor.say(f"stopping the training: {self.monitor.stop_reason}")

    def _count_loss(self, module: Any, inputs: Any, output: Any) -> None:
        if not module.training:
            return  # evaluation passes are not training steps
        loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
        if loss is None or not hasattr(loss, "detach") or loss.numel() != 1:
            return
        # Stays on the device: reading it here would synchronise every micro-batch.
        self._bad = self._bad + (~loss.detach().isfinite()).sum()
        self._passes += 1

    def _reveal_hidden_nan(self, args: Any, step: int, values: dict[str, Any]) -> dict[str, Any]:
        bad = int(self._bad) if not isinstance(self._bad, int) else self._bad
        passes, self._bad, self._passes = self._passes, 0, 0
        logged = _float(values.get("loss"))
        if bad == 0 or logged is None or not math.isfinite(logged):
            return values
        # The window held a NaN/Inf loss that the Trainer's NaN filter averaged away.
        values = dict(values)
        values["loss"] = math.nan
        if not self._hidden_said or logged == 0.0:
            self._hidden_said = True
            how = (
                "logging_nan_inf_filter replaced it by the mean of the finite ones"
                if getattr(args, "logging_nan_inf_filter", True)
                else "it was averaged with the finite ones"
            )
            self.monitor.notice(
                f"loss logged as {logged:.4g} at step {step}, but {bad} of the {passes} "
                f"training forward passes since the previous log returned a non-finite loss "
                f"({how}); read as NaN",
                step=step,
            )
        return values


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _dataset_size(dataloader: Any) -> int | None:
    try:
        return len(dataloader.dataset)
    except Exception:  # an iterable dataset has no length
        return None
