"""The warmup diagnosis: findings + inferred LR schedule + config -> one verdict with advice."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from detectors._types import Finding, ScheduleFit, Severity

from .run import Run

__all__ = ["Advice", "Diagnosis", "Verdict", "diagnose"]


class Verdict(str, enum.Enum):
    HEALTHY = "healthy"
    WARMUP_TOO_SHORT = "warmup_too_short"
    WARMUP_TOO_LONG = "warmup_too_long"
    LR_TOO_HIGH = "lr_too_high"
    NUMERICAL_INSTABILITY = "numerical_instability"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class Advice:
    """One concrete recommendation.

    ``parameter`` is the config key to change (``"warmup_steps"``, ``"learning_rate"`` …) or
    ``None`` for advice that is not a single setting; ``current``/``suggested`` are its values;
    ``reason`` says where the number comes from.
    """

    text: str
    parameter: str | None = None
    current: Any = None
    suggested: Any = None
    reason: str = ""


@dataclass(frozen=True)
class Diagnosis:
    """The verdict for one run (or a prefix of it).

    ``evidence`` is a JSON-serialisable dict of the numbers behind the verdict (first problem
    step, value, LR and LR phase at it …). ``first_problem_step`` is the step of the first
    finding that supports a problem verdict, ``None`` for healthy runs.
    """

    verdict: Verdict
    confidence: float
    summary: str
    schedule: ScheduleFit | None
    findings: tuple[Finding, ...] = ()
    advice: tuple[Advice, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    first_problem_step: int | None = None

    @property
    def worst_severity(self) -> Severity | None:
        if not self.findings:
            return None
        return max(f.severity for f in self.findings)


def diagnose(run: Run) -> Diagnosis:
    """Diagnose ``run``. Deterministic; works on a prefix of a run."""
    raise NotImplementedError("diagnose() is being implemented")
