"""warmup-monitor: diagnose learning-rate warmup problems from training logs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives. They are imported on first use, so that the command line
# (``warmup-monitor --help``, ``plan``) starts without numpy, pandas or scipy.
_HOME = {
    "RunRef": "discover",
    "find_runs": "discover",
    "open_source": "discover",
    "read_run": "discover",
    "read_runs": "discover",
    "ConfigError": "errors",
    "FormatError": "errors",
    "InputError": "errors",
    "MetricNotFoundError": "errors",
    "WarmupMonitorError": "errors",
    "Points": "points",
    "Resume": "run",
    "Run": "run",
    "Source": "sources",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
