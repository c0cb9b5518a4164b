"""warmup-monitor: diagnose learning-rate warmup problems from training logs."""

from __future__ import annotations

from .discover import RunRef, find_runs, open_source, read_run, read_runs
from .errors import (
    ConfigError,
    FormatError,
    InputError,
    MetricNotFoundError,
    WarmupMonitorError,
)
from .points import Points
from .run import Resume, Run
from .sources import Source

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FormatError",
    "InputError",
    "MetricNotFoundError",
    "Points",
    "Resume",
    "Run",
    "RunRef",
    "Source",
    "WarmupMonitorError",
    "__version__",
    "find_runs",
    "open_source",
    "read_run",
    "read_runs",
]
