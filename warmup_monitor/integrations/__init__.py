"""In-process callbacks: alerts from inside the training loop.

* :mod:`.hf` — :class:`~warmup_monitor.integrations.hf.WarmupMonitorCallback` for the HF
  ``Trainer`` (and LLaMA-Factory, which runs on it);
* :mod:`.lightning` — :class:`~warmup_monitor.integrations.lightning.WarmupMonitorCallback`
  for Lightning;
* :mod:`.live` — :class:`LiveMonitor`, what both share and what any other loop can call: it
  feeds each logging step to the watcher's :class:`~warmup_monitor.watch.AlertEngine` (the same
  diagnosis, throttle and memory of what was said as ``warmup-monitor watch``), hands the
  alerts to the printer, a Python callable and a webhook, decides when to stop, checks the
  plan at the start and writes the report at the end.

Importing this package imports no training framework; each framework is imported by its own
module only, which says clearly when the framework is missing.
"""

from __future__ import annotations

from .live import STOP_CHOICES, LiveMonitor

__all__ = ["STOP_CHOICES", "LiveMonitor"]
