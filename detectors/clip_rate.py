"""Clip rate: the share of logged steps whose (pre-clip) grad norm exceeds ``max_grad_norm``.

Clipping more than half of the updates means the step size is set by the clip threshold rather
than by the learning rate: a sign the LR is too high (Google's tuning playbook). Only runs that
say their ``max_grad_norm`` can be judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import check_float, check_int, finite_series, fmt, quiet
from ._types import Finding, Severity

__all__ = ["ClipRateConfig", "detect_clip_rate"]


@dataclass(frozen=True)
class ClipRateConfig:
    """Thresholds of the clip-rate rule.

    Attributes:
        max_grad_norm: the clip threshold of the run (HF default 1.0); ``None`` (default)
            disables the detector, as an unknown threshold cannot be judged.
        max_share: a trailing window in which more than this share of the logged grad norms
            exceed ``max_grad_norm`` is reported. Default 0.5.
        window: trailing window, in logged points. Default 20.
        min_points: series with fewer finite logged points give no finding. Default 10.
    """

    max_grad_norm: float | None = None
    max_share: float = 0.5
    window: int = 20
    min_points: int = 10

    def __post_init__(self) -> None:
        owner = "ClipRateConfig"
        if self.max_grad_norm is not None:
            check_float(owner, "max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_float(owner, "max_share", self.max_share, 0.0, 1.0, high_open=True)
        check_int(owner, "window", self.window, 2)
        check_int(owner, "min_points", self.min_points, 2)


@quiet
def detect_clip_rate(
    steps: Any,
    values: Any,
    config: ClipRateConfig | None = None,
    *,
    metric: str = "grad_norm",
) -> list[Finding]:
    """One finding at the first window whose clip share exceeds ``max_share``.

    ``step``/``end_step`` bound the first such window; ``evidence`` holds that window's share
    and the share over the whole series. Always a warning: small models and the first
    steps of fine-tuning clip most updates in healthy runs too, so a clip rate is an early sign
    worth seeing, never proof on its own (the diagnosis does not decide a verdict on it).
    """
    cfg = config or ClipRateConfig()
    if cfg.max_grad_norm is None:
        return []
    s, v = finite_series(steps, values)
    if s.size < cfg.min_points:
        return []
    clipped = (v > cfg.max_grad_norm).astype(np.float64)
    w = min(cfg.window, clipped.size)
    csum = np.concatenate(([0.0], np.cumsum(clipped)))
    share_w = (csum[w:] - csum[:-w]) / w  # window ending at index w-1+i
    over = np.flatnonzero(share_w > cfg.max_share)
    if over.size == 0:
        return []
    i0 = int(over[0])
    a, b = i0, i0 + w - 1
    total = float(clipped.mean())
    sev = Severity.WARNING
    return [
        Finding(
            kind="clip_rate",
            severity=sev,
            metric=metric,
            step=int(s[a]),
            end_step=int(s[b]),
            message=(
                f"{metric} exceeds max_grad_norm {fmt(cfg.max_grad_norm)} at "
                f"{100 * float(share_w[i0]):.0f}% of the logged steps {int(s[a])}-{int(s[b])} "
                f"(threshold {100 * cfg.max_share:.0f}%; {100 * total:.0f}% over the run)"
            ),
            evidence={
                "value": float(share_w[i0]),
                "threshold": cfg.max_share,
                "baseline": cfg.max_grad_norm,
                "share_overall": total,
                "window": int(w),
            },
        )
    ]
