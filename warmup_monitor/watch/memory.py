"""What was already said about a run, so that nothing is said twice."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detectors._types import Finding, Severity

__all__ = ["AlertMemory"]

# Words in a detector's finding kind that mark it as the non-finite detector confirming an
# immediate alert (its key may differ from the immediate one, the alert must not be repeated).
_NON_FINITE_WORDS = ("nan", "finite", "inf")


@dataclass
class AlertMemory:
    """Findings said (per kind, metric and step, with their severity), NaN stretches alerted
    straight from the data, the metrics whose newest value is non-finite, and the last verdict.

    Kept per run name, across a run folder disappearing and coming back.
    """

    emitted: dict[tuple[str, str, int], Severity] = field(default_factory=dict)
    immediate: dict[tuple[str, int], Severity] = field(default_factory=dict)
    in_non_finite: set[str] = field(default_factory=set)
    verdict: str = "insufficient_data"

    def claim_immediate(self, kind: str, metric: str, step: int) -> bool:
        """True (and remembered) the first time a non-finite ``metric`` at ``step`` is seen."""
        if (metric, step) in self.immediate or (kind, metric, step) in self.emitted:
            return False
        self.immediate[(metric, step)] = Severity.CRITICAL
        self.emitted[(kind, metric, step)] = Severity.CRITICAL
        return True

    def is_new(self, finding: Finding) -> bool:
        """Dedup on (kind, metric, step); a finding that got more severe is new again. A
        non-finite finding at a step already alerted from the raw batch only confirms it."""
        key = (finding.kind, finding.metric, int(finding.step))
        before = self.emitted.get(key)
        if before is not None and finding.severity <= before:
            return False
        if before is None and _looks_non_finite(finding):
            end = finding.end_step if finding.end_step is not None else finding.step
            for (metric, step), severity in self.immediate.items():
                if (
                    metric == finding.metric
                    and finding.step <= step <= end
                    and finding.severity <= severity
                ):
                    self.emitted[key] = severity
                    return False
        self.emitted[key] = finding.severity
        return True

    def verdict_changed(self, verdict: str) -> bool:
        """True (and remembered) when ``verdict`` differs from the last one said."""
        if verdict == self.verdict:
            return False
        self.verdict = verdict
        return True


def _looks_non_finite(finding: Finding) -> bool:
    kind = finding.kind.lower()
    if any(word in kind for word in _NON_FINITE_WORDS):
        return True
    value = finding.evidence.get("value")
    return isinstance(value, float) and not math.isfinite(value)
