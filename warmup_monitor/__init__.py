"""warmup-monitor: diagnose learning-rate warmup problems from training logs.

Read a run (any supported log: a TensorBoard logdir, a SwanLab run, an HF ``output_dir`` with
``trainer_state.json``, LLaMA-Factory's ``trainer_log.jsonl``, a Lightning ``metrics.csv``) and
diagnose its warmup::

    >>> import warmup_monitor as wm
    >>> run = wm.read_run("sample_logs/warmup_too_short_spikes")
    >>> d = wm.diagnose(run)
    >>> d.verdict.value
    'warmup_too_short'
    >>> d.first_problem_step
    3
    >>> [a.parameter for a in d.advice]
    ['warmup_steps', 'learning_rate']
    >>> sorted(d.to_dict())[:4]
    ['advice', 'confidence', 'evidence', 'findings']

``wm.build_comparison([path])`` ranks the sibling runs of a sweep (``warmup-monitor compare``);
``wm.find_runs(path)`` lists the runs under a folder; ``wm.open_source(path).poll()`` returns only
the points written since the last poll (what ``warmup-monitor watch`` does).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compare import Comparison, build_comparison
    from .diagnosis import Advice, Diagnosis, Verdict, diagnose
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
    "Advice",
    "Comparison",
    "ConfigError",
    "Diagnosis",
    "FormatError",
    "InputError",
    "MetricNotFoundError",
    "Points",
    "Resume",
    "Run",
    "RunRef",
    "Source",
    "Verdict",
    "WarmupMonitorError",
    "__version__",
    "build_comparison",
    "diagnose",
    "find_runs",
    "open_source",
    "read_run",
    "read_runs",
]

# Where each public name lives. They are imported on first use, so that the command line
# (``warmup-monitor --help``, ``plan``) starts without numpy, pandas or scipy.
_HOME = {
    "Comparison": "compare",
    "build_comparison": "compare",
    "Advice": "diagnosis",
    "Diagnosis": "diagnosis",
    "Verdict": "diagnosis",
    "diagnose": "diagnosis",
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
