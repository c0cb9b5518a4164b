"""Non-finite values: NaN/±Inf in the loss, the grad norm or the eval loss.

The HF Trainer hides NaN in the logged ``loss`` (``logging_nan_inf_filter=True`` replaces a
non-finite step loss by the window average), so the visible evidence is often a non-finite
``grad_norm`` or a logged ``loss`` of exactly 0.0 next to a NaN grad norm (every step of the
logging window was NaN): :func:`detect_hidden_nan` reads both series together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import as_series, check_float, check_int, fmt, quiet, true_runs
from ._types import Finding, Severity

__all__ = [
    "NonFiniteConfig",
    "ScalerSkipConfig",
    "ZeroedLossConfig",
    "detect_hidden_nan",
    "detect_nonfinite",
    "detect_scaler_skips",
    "detect_zeroed_loss",
]


@dataclass(frozen=True)
class NonFiniteConfig:
    """When non-finite values are a verdict and when only a warning.

    Attributes:
        isolated_run: a stretch of at most this many consecutive non-finite *grad norm* logged
            points, followed by finite ones, is "isolated" (an fp16 loss-scaler skip). Default 1.
        isolated_share: isolated grad-norm stretches stay a warning unless there are at least 3
            non-finite points and they exceed this share of all logged grad-norm points.
            Default 0.05.
        max_value: a finite loss at or above this value is treated like a non-finite one (an
            overflowing loss, as AUTOTRAINER does); ``inf`` (default) disables the check.
    """

    isolated_run: int = 1
    isolated_share: float = 0.05
    max_value: float = float("inf")

    def __post_init__(self) -> None:
        check_int("NonFiniteConfig", "isolated_run", self.isolated_run, 0)
        check_float("NonFiniteConfig", "isolated_share", self.isolated_share, 0.0, 1.0)
        if not (isinstance(self.max_value, (int, float)) and self.max_value > 0):
            raise ValueError(
                "The 'max_value' parameter of NonFiniteConfig must be a float in the range "
                f"(0, inf]. Got {self.max_value!r} instead."
            )


def _describe(values: np.ndarray) -> str:
    kinds = []
    if np.isnan(values).any():
        kinds.append("NaN")
    if np.isposinf(values).any():
        kinds.append("+Inf")
    if np.isneginf(values).any():
        kinds.append("-Inf")
    if not kinds:
        return "overflowing"
    return "/".join(kinds)


@quiet
def detect_nonfinite(
    steps: Any,
    values: Any,
    config: NonFiniteConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """One finding per stretch of consecutive non-finite logged points of ``metric``.

    Severity: a non-finite training loss is critical. A non-finite grad norm is critical when
    it lasts longer than ``isolated_run`` points, or when isolated ones recur (at least 3 and
    more than ``isolated_share`` of the points); otherwise a warning (a skipped fp16 step, or
    one at the last logged point that cannot be told apart from a skip yet). A non-finite eval
    loss is a warning (evaluation often overflows in fp16 while training is fine).
    """
    cfg = config or NonFiniteConfig()
    s, v = as_series(steps, values)
    if s.size == 0:
        return []
    bad = ~np.isfinite(v)
    if np.isfinite(cfg.max_value):
        with np.errstate(invalid="ignore"):
            bad |= np.abs(v) >= cfg.max_value
    stretches = true_runs(bad)
    if not stretches:
        return []
    share = float(bad.mean())
    is_grad = "grad" in metric.lower()
    is_eval = metric.lower().startswith(("eval", "val")) or "eval" in metric.lower()
    out: list[Finding] = []
    for a, b in stretches:
        length = b - a + 1
        last_finite = v[:a][np.isfinite(v[:a])]
        prev = float(last_finite[-1]) if last_finite.size else None
        recovered = b < s.size - 1
        if is_eval:
            sev = Severity.WARNING
        elif is_grad:
            if length > cfg.isolated_run:
                sev = Severity.CRITICAL
            elif not recovered:
                # One non-finite grad norm at the very end: a loss-scaler skip looks the same
                # until the next log, so it is pending (a warning), not yet a verdict.
                sev = Severity.WARNING
            else:
                repeated = int(bad.sum()) >= 3 and share > cfg.isolated_share
                sev = Severity.CRITICAL if repeated else Severity.WARNING
        else:
            sev = Severity.CRITICAL
        what = _describe(v[a : b + 1])
        where = (
            f"at step {int(s[a])}"
            if a == b
            else f"from step {int(s[a])} to step {int(s[b])} ({length} logged points)"
        )
        tail = (
            f"; last finite value {fmt(prev)}" if prev is not None else "; no finite value before"
        )
        recov = "" if recovered else ", still at the last logged point"
        out.append(
            Finding(
                kind="non_finite",
                severity=sev,
                metric=metric,
                step=int(s[a]),
                end_step=int(s[b]),
                message=f"{metric} is {what} {where}{recov}{tail}",
                evidence={
                    # The first bad value itself (NaN/±Inf, or a finite overflow); JSON
                    # writers turn a non-finite one into null and list it.
                    "value": float(v[a]),
                    "kinds": what,
                    "threshold": None if not np.isfinite(cfg.max_value) else cfg.max_value,
                    "baseline": prev,
                    "points": int(length),
                    "recovered": bool(recovered),
                    "share": share,
                },
            )
        )
    return out


@quiet
def detect_hidden_nan(
    loss_steps: Any,
    loss_values: Any,
    grad_steps: Any,
    grad_values: Any,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """Logged ``loss == 0.0`` at a step whose grad norm is NaN/Inf: the whole window was NaN.

    The HF Trainer's NaN filter leaves the accumulated loss at 0 when every step of a logging
    window was non-finite. One critical finding per stretch of such steps.
    """
    ls, lv = as_series(loss_steps, loss_values)
    gs, gv = as_series(grad_steps, grad_values)
    if ls.size == 0 or gs.size == 0:
        return []
    common, li, gi = np.intersect1d(ls, gs, assume_unique=True, return_indices=True)
    if common.size == 0:
        return []
    mask = (lv[li] == 0.0) & ~np.isfinite(gv[gi])
    out = []
    for a, b in true_runs(mask):
        out.append(
            Finding(
                kind="non_finite",
                severity=Severity.CRITICAL,
                metric=metric,
                step=int(common[a]),
                end_step=int(common[b]),
                message=(
                    f"{metric} is logged as 0.0 with a non-finite grad_norm at step "
                    f"{int(common[a])}"
                    + (f" to step {int(common[b])}" if b > a else "")
                    + ": every step of the logging window was NaN (hidden by the trainer)"
                ),
                evidence={
                    "value": 0.0,
                    "threshold": None,
                    "baseline": None,
                    "points": int(b - a + 1),
                    "hidden": True,
                    "recovered": bool(b < common.size - 1),
                },
            )
        )
    return out


@dataclass(frozen=True)
class ZeroedLossConfig:
    """When a loss that drops to exactly 0.0 looks like the trainer's hidden NaN.

    Attributes:
        min_before: the last logged loss before the zeros must be at least this (loss units).
            A loss that converges toward 0 and is rounded to 0.0 by the logger (LLaMA-Factory
            keeps 4 decimals) falls gradually; one that jumps from a real level straight to
            exactly 0.0 had every step of its logging window filtered out. Default 0.05.
        min_points: consecutive zero logged points needed, unless they run to the end of the
            series. Default 2.
    """

    min_before: float = 0.05
    min_points: int = 2

    def __post_init__(self) -> None:
        check_float("ZeroedLossConfig", "min_before", self.min_before, 0.0, low_open=True)
        check_int("ZeroedLossConfig", "min_points", self.min_points, 1)


@quiet
def detect_zeroed_loss(
    steps: Any,
    values: Any,
    config: ZeroedLossConfig | None = None,
    *,
    metric: str = "loss",
) -> list[Finding]:
    """A loss that jumps from a real level to exactly 0.0 and stays there (no grad norm logged).

    With a grad norm in the logs :func:`detect_hidden_nan` tells a hidden NaN for sure; without
    one (LLaMA-Factory's ``trainer_log.jsonl``) this is the only trace. It cannot be told apart
    from a loss that really became 0 (a masking or data bug), so it is a warning: look at the
    run, or log the grad norm.
    """
    cfg = config or ZeroedLossConfig()
    s, v = as_series(steps, values)
    if s.size < 2:
        return []
    out = []
    for a, b in true_runs(v == 0.0):
        if a == 0:
            continue
        before = v[a - 1]
        if not (np.isfinite(before) and before >= cfg.min_before):
            continue
        points = b - a + 1
        if points < cfg.min_points and b < s.size - 1:
            continue
        out.append(
            Finding(
                kind="non_finite",
                severity=Severity.WARNING,
                metric=metric,
                step=int(s[a]),
                end_step=int(s[b]),
                message=(
                    f"{metric} drops from {fmt(float(before))} at step {int(s[a - 1])} to exactly "
                    f"0.0 at step {int(s[a])} and stays there for {points} logged points "
                    f"(threshold {fmt(cfg.min_before)} before the drop): how the trainer logs a "
                    "window of NaN when no grad norm is logged to tell; log grad_norm to be sure"
                ),
                evidence={
                    "value": 0.0,
                    "threshold": cfg.min_before,
                    "baseline": float(before),
                    "points": int(points),
                    "hidden": True,
                    "rule": "zeroed",
                },
            )
        )
    return out


@dataclass(frozen=True)
class ScalerSkipConfig:
    """When non-finite grad norms are a dynamic loss scaler skipping steps (fp16), not a failure.

    fp16 training with a dynamic loss scaler (torch's ``GradScaler``, DeepSpeed, Apex) starts
    with a large scale; the first steps overflow, the scaler skips them and halves the scale, and
    every so often it grows the scale back until one step overflows again. The trainer logs the
    grad norm of such a step as Inf/NaN while the loss stays finite and the run goes on learning.

    Attributes:
        max_points: a stretch of at most this many consecutive non-finite grad-norm logged
            points can be skips. Default 5.
        max_share: skips stay benign while at most this share of the grad-norm points is
            non-finite; more means the scale never settles. Default 0.1.
        rise_tol: the loss after a stretch may be at most this share above the loss before it
            (the median of up to 3 logged points on each side). Default 0.2.
    """

    max_points: int = 5
    max_share: float = 0.1
    rise_tol: float = 0.2

    def __post_init__(self) -> None:
        check_int("ScalerSkipConfig", "max_points", self.max_points, 1)
        check_float("ScalerSkipConfig", "max_share", self.max_share, 0.0, 1.0)
        check_float("ScalerSkipConfig", "rise_tol", self.rise_tol, 0.0)


@quiet
def detect_scaler_skips(
    loss_steps: Any,
    loss_values: Any,
    grad_steps: Any,
    grad_values: Any,
    config: ScalerSkipConfig | None = None,
) -> list[Finding]:
    """Stretches of non-finite grad norm that look like loss-scaler skips: one info each.

    A stretch qualifies when it is short, the logged loss is finite and non-zero throughout it,
    the grad norm is finite again afterwards, and the loss after it is no higher than before
    it (within ``rise_tol``). Nothing is returned when non-finite grad norms exceed
    ``max_share`` of the points: then they are not isolated skips.
    """
    cfg = config or ScalerSkipConfig()
    ls, lv = as_series(loss_steps, loss_values)
    gs, gv = as_series(grad_steps, grad_values)
    if ls.size == 0 or gs.size == 0:
        return []
    bad = ~np.isfinite(gv)
    if not bad.any() or float(bad.mean()) > cfg.max_share:
        return []
    out = []
    for a, b in true_runs(bad):
        if b - a + 1 > cfg.max_points or b == gs.size - 1:
            continue  # too long, or at the last point (cannot be told from a failure yet)
        first, last = int(gs[a]), int(gs[b])
        # The loss points the stretch's steps contributed to: up to the next grad-norm point.
        upto = int(gs[b + 1])
        inside = (ls >= first) & (ls < upto)
        if not np.all(np.isfinite(lv[inside]) & (lv[inside] != 0.0)):
            continue
        before = lv[(ls < first) & np.isfinite(lv)][-3:]
        after = lv[(ls >= first) & np.isfinite(lv)][:3]
        if after.size == 0:
            continue
        ref = float(np.median(before)) if before.size else float(after[0])
        if float(np.median(after)) > (1.0 + cfg.rise_tol) * ref:
            continue
        where = f"at step {first}" if a == b else f"from step {first} to step {last}"
        out.append(
            Finding(
                kind="loss_scale_skip",
                severity=Severity.INFO,
                metric="grad_norm",
                step=first,
                end_step=last,
                message=(
                    f"grad_norm is {_describe(gv[a : b + 1])} {where} while the loss stays "
                    f"finite and does not climb ({fmt(ref)} -> {fmt(float(np.median(after)))}, "
                    f"threshold +{100 * cfg.rise_tol:.0f}%): a dynamic loss scaler (fp16) "
                    "skipping overflowed steps, not a failure"
                ),
                evidence={
                    "value": None,
                    "threshold": cfg.rise_tol,
                    "baseline": ref,
                    "points": int(b - a + 1),
                    "share": float(bad.mean()),
                },
            )
        )
    return out
