"""The warmup diagnosis: findings + inferred LR schedule + config -> one verdict with advice.

Order of the checks (the first that applies decides the verdict):

1. No loss, or fewer than :data:`MIN_POINTS` finite loss points and no hard evidence ->
   ``insufficient_data``.
2. A problem finding (non-finite loss, hidden NaN or a grad norm non-finite beyond an isolated
   fp16 skip; a loss that climbs well above its best; a window-averaged loss that shoots up as
   the LR reaches its peak; a spike that does not come back) decides by *when* it starts:

   * while the LR is still ~0 (at most :data:`LR_NEAR_ZERO` of its peak) ->
     ``numerical_instability``: precision, kernels or data, not the warmup;
   * while the LR climbs or soon after its peak -> ``warmup_too_short`` when the warmup is
     shorter than the usual share of the run; ``lr_too_high`` when it already has the usual
     length or more (a longer warmup would not help);
   * long after the peak -> ``lr_too_high``.

   Without an LR trace or a configured warmup the position in the run decides, with lower
   confidence (a non-finite value then reads as numerical first). In a log that starts after
   its warmup (a resumed run's new log) with no configured warmup, it is ``lr_too_high``, and a
   stall measured from its first, already trained, loss is no failure.
3. A long warmup (above :data:`LONG_WARMUP_SHARE` of the run, or longer than the run) ->
   ``warmup_too_long``. What it cost is estimated from the run (the LR never reaches its peak;
   progress tracked the LR; the loss sat at its starting level; the schedule needs many more
   steps than the usual warmup to reach the same cumulative LR) and goes into the summary; when
   the curve shows no cost (a loss that fell fast even at a small LR) the verdict stands on the
   share alone, at :data:`UNSEEN_COST_CONFIDENCE`. Mid-warmup with an unknown warmup length a
   long warmup is only a note (``healthy`` with advice).
4. Otherwise ``healthy``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from detectors import (
    CatapultConfig,
    ClipRateConfig,
    CollapseConfig,
    DivergenceConfig,
    Finding,
    ScheduleFit,
    Severity,
    SlowDeclineConfig,
    SpikeConfig,
    compare_schedule,
    detect_catapult,
    detect_clip_rate,
    detect_divergence,
    detect_hidden_nan,
    detect_no_progress,
    detect_nonfinite,
    detect_scaler_skips,
    detect_slow_decline,
    detect_spikes,
    detect_sustained_rise,
    detect_zeroed_loss,
    flat_start,
    infer_lr_schedule,
    lr_at,
    lr_phase,
    median_spacing,
    optimizer_warmup,
    schedule_findings,
    shared_work,
)
from detectors.schedules.infer import ROUGH_DROP
from detectors.warmup_cost import WarmupCost, estimate_warmup_cost

from . import guide
from .errors import InputError
from .run import Run

__all__ = [
    "ADEQUATE_WARMUP_SHARE",
    "CATAPULT_LR_SHARE",
    "CATAPULT_POINTS_AFTER_PEAK",
    "DIVERGENCE_RATIO",
    "EARLY_PROGRESS",
    "FLAT_MIN_POINTS",
    "FLAT_SHARE_OF_RUN",
    "FLAT_SHARE_OF_WARMUP",
    "LONG_WARMUP_DOUBT",
    "LONG_WARMUP_SHARE",
    "LR_NEAR_ZERO",
    "LR_TRACKING",
    "MIN_POINTS",
    "SCHEDULE_SLOWDOWN",
    "SOON_AFTER_SHARE",
    "STALL_LR_SHARE",
    "STALL_MIN_POINTS",
    "UNSEEN_COST_CONFIDENCE",
    "Advice",
    "Diagnosis",
    "Verdict",
    "diagnose",
]

MIN_POINTS = 4  # finite logged loss points needed for any verdict but hard evidence
# Writers whose logged training loss is the loss of the logged step itself: Lightning's loggers
# (``self.log`` on steps, every ``log_every_n_steps``) and its in-process callback. The HF
# Trainer and LLaMA-Factory log the mean over the ``logging_steps`` since the previous log.
SINGLE_STEP_LOSS_SOURCES = frozenset({"lightning_csv", "lightning"})
# Lightning writes other loggers' files too (TensorBoard, SwanLab). Beside the hparams.yaml it
# leaves in the log folder (the config's ``loss_window``), its marks in the tags are the
# ``hp_metric`` its TensorBoardLogger logs at the start and LearningRateMonitor's LR names.
LIGHTNING_TAG = "hp_metric"
LIGHTNING_LR_PREFIX = "lr-"
DIVERGENCE_RATIO = 1.5  # the loss must climb to this multiple of its best to diverge
LR_NEAR_ZERO = 0.02  # an LR at most this share of its peak is "still ~0"
LONG_WARMUP_SHARE = guide.GUIDE_MAX_RATIO  # warmup share of the run above which it is long
# A long warmup "cost" something when the loss sat at its starting level for at least this
# share of the warmup and this share of the run.
FLAT_SHARE_OF_WARMUP = 0.15
FLAT_SHARE_OF_RUN = 0.05
# ... and the flat stretch must span at least this many logged loss points.
FLAT_MIN_POINTS = 3
# A warmup of at least this share of the run is already about the usual 10%: instability
# despite it points at the peak LR rather than at the warmup length.
ADEQUATE_WARMUP_SHARE = 0.08
# A long warmup cost steps when the loss fell at least this many times as much over the second
# half of the warmup as over the first (progress per step tracks the LR: the run is
# LR-limited). A linear ramp gives the second half three times the LR of the first.
LR_TRACKING = 1.0
# ... or when the schedule needs at least SCHEDULE_SLOWDOWN times the usual warmup's steps to
# reach the same cumulative LR, unless the loss had made at least EARLY_PROGRESS of its progress
# by the time the LR reached a third of its peak (an LR-limited run makes ~10% by then; a run the
# small LRs did not hold back, most of it). Tuned on the sweep corpus's calibration half.
EARLY_PROGRESS = 0.7
SCHEDULE_SLOWDOWN = 1.5
# Confidence of a too-long verdict that rests on the warmup's share alone (the curve did not
# show the cost). On the sweep's calibration half 30 of 118 such runs needed >= 1.25x the steps
# of their best sibling (141 of 227 when the curve shows a cost), and their 10% sibling was
# stable in 108: the verdict says the warmup is longer than it needs to be, not that steps were
# lost.
UNSEEN_COST_CONFIDENCE = 0.55
# Confidence taken off a healthy verdict on a run with a long warmup (see ``_healthy``).
LONG_WARMUP_DOUBT = 0.15
# A window-averaged loss that shoots up (``detectors.catapult``) counts from where the LR is
# at least this share of its peak to this many logged points after the peak.
CATAPULT_LR_SHARE = 0.5
CATAPULT_POINTS_AFTER_PEAK = 3
# Instability within this share of the run after the LR peaked still counts as "soon after".
SOON_AFTER_SHARE = 0.15
# A stall counts as a failure only once the LR has reached this share of its peak (a loss that
# sits still while the LR is still small is what a long warmup looks like).
STALL_LR_SHARE = 0.5
# ... and once the stall spans this many logged loss points (fewer cannot tell a stall from
# the noise of the first points of a live run).
STALL_MIN_POINTS = 20
# A log whose first point comes this many logging intervals (and at least the guide's minimum
# warmup) after step 0, with no warmup in it, starts mid-training: a resumed run's new log.
RESUMED_INTERVALS = 5
# Without a configured run length, the one an LR decay implies is used once the decay has this
# many logged points after the peak (one or two fit a line, a cosine or an inverse square root
# alike) and has taken the LR down by ``ROUGH_DROP`` (less, and the fit calls its length rough).
DECAY_POINTS = 3


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

    @property
    def is_problem(self) -> bool:
        """True for a verdict that says something is wrong (not healthy/insufficient_data)."""
        return Verdict(self.verdict) not in (Verdict.HEALTHY, Verdict.INSUFFICIENT_DATA)

    @property
    def level(self) -> Severity | None:
        """The severity this diagnosis reaches (for ``report --fail-on`` and ``watch --exit-on``).

        The worst finding's severity; a problem verdict counts at least as ``warning`` even
        when no finding of that severity supports it (e.g. a warmup longer than the run, seen
        from the schedule alone).
        """
        level = self.worst_severity
        if self.is_problem and (level is None or level < Severity.WARNING):
            level = Severity.WARNING
        return level

    def to_dict(self) -> dict[str, Any]:
        """JSON types only: the fields of a run in ``report --format json`` that describe the
        diagnosis (NaN/Inf written as ``null`` and listed under ``non_finite``)."""
        from .render.jsonout import diagnosis_to_dict

        return diagnosis_to_dict(self)


# --------------------------------------------------------------------------------------- helpers
def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3g}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@dataclass
class _Schedule:
    """What is known of the LR schedule, from the logged LR trace and/or the config."""

    total: int | None  # planned total steps (config, else implied by the decay)
    # Where ``total`` comes from: "config", "decay" (implied by the logged LR decay),
    # "last_step" (a run that is over) or "" (unknown).
    total_source: str
    peak_lr: float | None
    configured_warmup: int | None  # the warmup steps the config asks for (None: unknown)
    source: str = "none"  # "log", "config" or "none"
    fit: ScheduleFit | None = None
    lr_steps: np.ndarray | None = None
    lr_values: np.ndarray | None = None
    warmup_end: int | None = None  # training step at which the LR peaks (None: unknown)
    warmup_steps: int | None = None  # warmup length in steps (a lower bound when still rising)
    still_rising: bool = False  # the LR was still rising at the last logged step
    warmup_exact: bool = True  # False when ``warmup_steps`` is only a lower bound
    # Steps the optimizer warms up over by itself (schedule-free), which ``lr_values`` include
    # and the logged LR does not; None: none.
    own_warmup: int | None = None
    # Where the logged warmup starts: 0, unless the log starts mid-training with a warmup of its
    # own (a second stage that keeps counting steps); shares of the run count from here.
    start: int = 0
    # The first logged step of a log that starts mid-training after its warmup (a resumed run
    # logging anew); None for a log that starts at the start of training.
    resumed_at: int | None = None

    def lr_at(self, step: int) -> float | None:
        if self.lr_steps is None or self.lr_values is None or self.lr_steps.size == 0:
            return None
        return lr_at(self.lr_steps, self.lr_values, step)

    def lowest_lr_between(self, after: int, upto: int) -> float | None:
        """The lowest LR over training steps ``after + 1 .. upto`` (a logging window)."""
        first = self.lr_at(after + 1)
        if first is None or self.lr_steps is None or self.lr_values is None:
            return first
        inside = (self.lr_steps > after) & (self.lr_steps <= upto) & np.isfinite(self.lr_values)
        values = [first, *self.lr_values[inside].tolist()]
        return float(min(values))

    def phase_at(self, step: int) -> str | None:
        return lr_phase(self.fit, step, self.lr_at(step), warmup_end=self.warmup_end)

    @property
    def span(self) -> int | None:
        """Planned steps from :attr:`start` to the end of the run (``None``: unknown)."""
        return self.total - self.start if self.total is not None else None

    @property
    def share(self) -> float | None:
        if self.warmup_steps is None or not self.span or self.span <= 0:
            return None
        return self.warmup_steps / self.span


def _schedule(run: Run, last_step: int) -> _Schedule:
    cfg = run.config
    fit = None
    lr_s = lr_v = None
    own = guide.optimizer_warmup_steps(cfg)
    if run.has("learning_rate"):
        lr_s, logged = run.series("learning_rate")
        lr_v = _times_own_warmup(lr_s, logged, own)
        fit = infer_lr_schedule(lr_s, lr_v)
    total = guide.planned_total_steps(cfg)
    total_source = "config" if total else ""
    if (
        total is None
        and fit is not None
        and fit.total_steps
        and _decay_pins_length(lr_s, lr_v, fit)
    ):
        total, total_source = fit.total_steps, "decay"
    cfg_warmup = guide.configured_warmup(cfg, total)
    peak_lr = fit.peak_lr if fit is not None else _num(cfg.get("learning_rate"))
    known = _Schedule(total, total_source, peak_lr, cfg_warmup, own_warmup=own)
    if fit is not None:
        logged = replace(known, source="log", fit=fit, lr_steps=lr_s, lr_values=lr_v)
        if fit.lr_never_moves:
            return replace(logged, warmup_end=fit.first_step, warmup_steps=0)
        if fit.reached_peak:
            w = fit.warmup_steps if fit.warmup_steps is not None else fit.peak_step
            if w == 0 and cfg_warmup and cfg_warmup <= fit.first_step:
                # At its peak from the first log: a warmup shorter than the logging interval
                # is invisible in the trace, the config says how long it was.
                w = cfg_warmup
            start = fit.warmup_start
            return replace(logged, warmup_end=fit.peak_step, warmup_steps=w, start=start)
        # Still rising: the config may say how long the warmup is, or where the LR is heading
        # (extrapolate the linear ramp to the configured peak); else it is >= the trace.
        w, exact = _rising_warmup(lr_s, lr_v, cfg, cfg_warmup, last_step)
        return replace(logged, warmup_steps=w, still_rising=True, warmup_exact=exact)
    if cfg_warmup is not None:
        return replace(known, source="config", warmup_end=cfg_warmup, warmup_steps=cfg_warmup)
    return known


def applied_lr(steps: np.ndarray, values: np.ndarray, config: Mapping[str, Any]) -> np.ndarray:
    """The logged LR, times the optimizer's own warmup when it does one (schedule-free AdamW
    and SGD), which the logged LR never shows. The diagnosis and the watcher both read the
    schedule from this."""
    return _times_own_warmup(steps, values, guide.optimizer_warmup_steps(config))


def _times_own_warmup(steps: np.ndarray, values: np.ndarray, own: int | None) -> np.ndarray:
    if own is None:
        return values
    return np.asarray(values, dtype=np.float64) * optimizer_warmup(steps, own)


def _own_warmup_note(run: Run, sched: _Schedule) -> list[Finding]:
    """Say when the LR read is not the logged one: the optimizer warms up by itself."""
    own = sched.own_warmup
    if own is None or sched.lr_steps is None or sched.lr_steps.size == 0:
        return []
    steps = sched.lr_steps
    optim = str(run.config.get("optim")).strip()
    message = (
        f"learning_rate: {optim} warms up by itself over warmup_steps {own}, which the logged "
        f"LR does not show; the schedule is read as the logged LR x min(1, (step + 1) / {own})"
    )
    evidence = {"value": own, "problem": "optimizer_warmup", "optimizer": optim}
    return [
        Finding("schedule", Severity.INFO, "learning_rate", int(steps[0]), own, message, evidence)
    ]


def _late_start_note(sched: _Schedule) -> list[Finding]:
    """Say when the run is measured from where its logged warmup starts rather than step 0."""
    if not sched.start:
        return []
    message = (
        f"learning_rate warms up from 0 at step {sched.start}, not at step 0: the log starts "
        "mid-training (a stage that keeps counting steps), so shares of the run count from "
        f"step {sched.start}"
    )
    evidence = {"value": sched.start, "problem": "late_start"}
    return [
        Finding("schedule", Severity.INFO, "learning_rate", sched.start, None, message, evidence)
    ]


def _resumed(
    sched: _Schedule, loss: tuple[np.ndarray, np.ndarray] | None, configured_lr: float | None
) -> _Schedule:
    """Mark a log that starts mid-training, after its warmup: a resumed run's new log (a new
    TensorBoard folder or Lightning version that keeps counting steps from the checkpoint).

    Its first point comes :data:`RESUMED_INTERVALS` logging intervals and the guide's minimum
    warmup after step 0, the LR it logs starts at its highest value (or is not logged), and
    the configured warmup, if known, ended before it. The warmup is then not in the log: the
    first logged LR is not the run's peak (the configured ``learning_rate`` is, when known) and
    the first logged loss is not its untrained one.
    """
    if loss is None or loss[0].size < 2:
        return sched
    first = int(loss[0][0])
    fit = sched.fit
    if fit is not None:
        first = min(first, fit.first_step)
    if first < max(RESUMED_INTERVALS * median_spacing(loss[0]), guide.GUIDE_MIN_STEPS):
        return sched
    if sched.still_rising or sched.start:
        return sched  # a warmup is in the log
    if fit is not None and not fit.lr_never_moves and fit.peak_step > fit.first_step:
        return sched
    cfg_warmup = sched.configured_warmup
    if cfg_warmup is not None and cfg_warmup > first:
        return sched
    # The warmup ended where the config says, else somewhere before the log: unknown.
    return replace(
        sched,
        resumed_at=first,
        warmup_end=cfg_warmup,
        warmup_steps=cfg_warmup,
        peak_lr=configured_lr,
    )


def _resumed_note(sched: _Schedule) -> list[Finding]:
    """Say when the log starts mid-training after its warmup (see :func:`_resumed`)."""
    if sched.resumed_at is None:
        return []
    lr_part = "the first logged LR is not the peak and " if sched.lr_steps is not None else ""
    message = (
        f"the log starts at step {sched.resumed_at}, mid-training (a resumed run): its warmup "
        f"ended before the first logged point, so {lr_part}the first logged loss is no starting "
        "level to measure progress from"
    )
    evidence = {"value": sched.resumed_at, "problem": "resumed"}
    metric = "learning_rate" if sched.lr_steps is not None else "loss"
    return [Finding("schedule", Severity.INFO, metric, sched.resumed_at, None, message, evidence)]


def _decay_pins_length(lr_s: np.ndarray | None, lr_v: np.ndarray | None, fit: ScheduleFit) -> bool:
    """Whether the logged decay pins down the run length it implies: at least
    :data:`DECAY_POINTS` logged LRs after the peak, down by :data:`ROUGH_DROP` of it or more."""
    if lr_s is None or lr_v is None or not fit.peak_lr:
        return False
    after = (lr_s > fit.peak_step) & np.isfinite(lr_v)
    if int(after.sum()) < DECAY_POINTS:
        return False
    return 1.0 - float(lr_v[after].min()) / fit.peak_lr >= ROUGH_DROP


def _against_config(run: Run, sched: _Schedule) -> list[Finding]:
    """The logged LR against the schedule the config asks for, when the config says enough:
    nothing when it follows, a warning when the configured warmup is missing or differs, a
    note when the peak or the shape differs."""
    cfg = run.config
    total, peak = guide.planned_total_steps(cfg), _num(cfg.get("learning_rate"))
    warmup = guide.configured_warmup(cfg, total)
    kwargs = cfg.get("lr_scheduler_kwargs")
    if sched.lr_steps is None or not total or peak is None or warmup is None:
        return []
    # The scheduler's formula against what the scheduler logged (not the optimizer's LR).
    lr_steps, lr_values = run.series("learning_rate")
    by_ratio = not _num(cfg.get("warmup_steps")) and bool(_num(cfg.get("warmup_ratio")))
    got = compare_schedule(
        lr_steps,
        lr_values,
        kind=str(cfg.get("lr_scheduler_type") or "linear"),
        peak_lr=peak,
        warmup_steps=warmup,
        total_steps=total,
        kwargs=kwargs if isinstance(kwargs, dict) else None,
        warmup_setting="warmup_ratio" if by_ratio else "warmup_steps",
        fit=sched.fit,
    )
    if got is None or got.follows:
        return []
    bad = got.agreement in ("warmup_missing", "warmup_differs")
    evidence = {k: v for k, v in got.to_dict().items() if k not in ("message", "tolerance")}
    evidence.update(value=got.max_error, threshold=got.tolerance, problem="config_schedule")
    first, last = int(sched.lr_steps[0]), int(sched.lr_steps[-1])
    severity = Severity.WARNING if bad else Severity.INFO
    return [Finding("schedule", severity, "learning_rate", first, last, got.message, evidence)]


def _rising_warmup(
    lr_s: np.ndarray, lr_v: np.ndarray, cfg: dict[str, Any], cfg_warmup: int | None, last: int
) -> tuple[int, bool]:
    """Warmup length of a run whose LR is still rising: ``(steps, exact)``."""
    if cfg_warmup is not None and cfg_warmup >= last:
        return cfg_warmup, True
    target = _num(cfg.get("learning_rate"))
    ok = np.isfinite(lr_v)
    s, v = lr_s[ok], lr_v[ok]
    if target is not None and s.size >= 2 and s[-1] > s[0] and target > v[-1]:
        slope = (v[-1] - v[0]) / (s[-1] - s[0])
        if slope > 0:
            # A linear ramp from ``v[0]`` at ``s[0]`` reaches the configured peak at:
            end = s[0] + (target - v[0]) / slope
            if math.isfinite(end):
                return max(last, round(end)), True
    return last, False


def _series(run: Run, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not run.has(name):
        return None
    s, v = run.series(name)
    return (s, v) if s.size else None


def _mask_steps(
    series: tuple[np.ndarray, np.ndarray], found: list[Finding]
) -> tuple[np.ndarray, np.ndarray]:
    """``series`` with NaN at the steps the findings cover."""
    s, v = series
    v = v.copy()
    for f in found:
        v[(s >= f.step) & (s <= (f.end_step if f.end_step is not None else f.step))] = np.nan
    return s, v


# A problem finding: evidence for a verdict other than healthy. A warning that says the run
# failed (it stopped learning, or its loss went back above where it started) is one too: such
# a run is never ``healthy``.
def _is_problem(f: Finding, loss_metric: str = "loss") -> bool:
    if f.kind == "non_finite":
        return f.severity >= Severity.CRITICAL and not f.metric.startswith("eval")
    if f.metric != loss_metric:
        return False
    if f.kind in ("divergence", "catapult", "no_progress"):
        return f.severity >= Severity.WARNING
    if f.kind in ("spike", "sustained_rise"):
        return f.severity >= Severity.CRITICAL
    return False


def _unrecovered(f: Finding) -> bool:
    """A problem the run did not come back from (it decides the verdict over a transient)."""
    if f.kind in ("non_finite", "no_progress", "sustained_rise"):
        return True
    return f.severity >= Severity.CRITICAL


def _deciding(problems: list[Finding]) -> Finding:
    """The finding a verdict rests on: the first one the run did not recover from.

    An earlier transient that came back down is context, not the cause: the climb that ended
    the run is what the verdict, its step and its summary cite. With only transients, the
    first of them.
    """
    # A stall's step is where it began, not an onset: any other problem comes first.
    for pool in (
        [f for f in problems if _unrecovered(f) and f.kind != "no_progress"],
        [f for f in problems if f.kind != "no_progress"],
        problems,
    ):
        if pool:
            return min(pool, key=lambda f: (f.step, -f.severity.rank))
    raise ValueError("no problem finding to decide on")


def _not_a_failure(f: Finding, sched: _Schedule, loss_steps: np.ndarray | None) -> bool:
    """A no-progress stall that does not say the run failed: too short to judge yet (a few
    logged points of a live run), or while the LR never got near its peak (a long warmup)."""
    if f.kind != "no_progress":
        return False
    end = f.end_step if f.end_step is not None else f.step
    if loss_steps is not None:
        points = int(np.sum((loss_steps >= f.step) & (loss_steps <= end)))
        if points < STALL_MIN_POINTS:
            return True
    peak = sched.peak_lr
    if not peak or sched.lr_steps is None:
        return False
    lrs = [sched.lr_at(x) for x in (f.step, (f.step + end) // 2, end)]
    top = max((x for x in lrs if x is not None), default=None)
    return top is not None and top < STALL_LR_SHARE * peak


# ------------------------------------------------------------------------------------ diagnose
def diagnose(run: Run, *, ended: bool = False, loss_window: int | None = None) -> Diagnosis:
    """Diagnose ``run``: one verdict with its evidence and advice.

    Deterministic, and works on any prefix of a run (``run.prefix(step)``), which is how the
    live watcher uses it. A run that logs no training loss but enough eval-loss points is
    judged from its eval loss.

    ``ended`` says the log is complete when the log itself cannot say so (status
    ``"unknown"`` and no planned run length: TensorBoard and CSV logs record no end). The
    post-run report passes it; then an LR still rising at the last step means the warmup
    outlasted the run, where a live watch would only see a run still warming up.

    ``loss_window`` says how many training steps one logged training-loss value stands for
    when the log cannot say: ``1`` for a loop that logs the loss of the logged step itself,
    ``N`` for a mean over the last ``N`` steps. By default a Lightning log's values are single
    steps, an HF Trainer's or LLaMA-Factory's are means over their ``logging_steps``, and any
    other log's are means over its step spacing.

    >>> import warmup_monitor as wm  # doctest: +SKIP
    >>> d = wm.diagnose(wm.read_run("output/"))  # doctest: +SKIP
    >>> d.verdict.value, d.first_problem_step, d.summary  # doctest: +SKIP
    ('warmup_too_short', 3, 'warmup_too_short: loss climbs from its best 4.08 ...')
    """
    check_loss_window(loss_window)
    # The detectors share the cleaned loss and its trailing medians instead of each redoing them.
    with shared_work():
        return _diagnose(run, ended, loss_window)


def check_loss_window(value: int | None) -> None:
    """Raise :class:`InputError` unless ``value`` is ``None`` or a whole number of steps >= 1."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(
            f"loss window must be a whole number of training steps >= 1; got {value!r}",
            "Pass 1 for single-step losses, or the number of steps each logged loss averages",
        )


def _diagnose(run: Run, ended: bool = False, stated_window: int | None = None) -> Diagnosis:
    loss = _series(run, "loss")
    grad = _series(run, "grad_norm")
    evl = _series(run, "eval_loss")
    cfg = run.config
    last_step = run.last_step or 0
    sched = _schedule(run, last_step)
    over = _run_is_over(run, sched, last_step, ended)
    if sched.total is None and last_step > 0 and over:
        # A run that is over, with no planned length in its config or LR decay, was as long as
        # its last logged step.
        sched = replace(sched, total=last_step, total_source="last_step")
    fit = sched.fit
    findings: list[Finding] = []
    loss_metric = "loss"
    if _finite_count(loss) < MIN_POINTS and _finite_count(evl) >= MIN_POINTS:
        # Eval-only logs: the eval loss is the only curve there is; judge the warmup on it.
        loss, loss_metric = evl, "eval_loss"
    sched = _resumed(sched, loss, _num(cfg.get("learning_rate")))

    # --- detectors ---------------------------------------------------------------------------
    if loss is not None and loss_metric == "loss":
        findings += detect_nonfinite(*loss, metric="loss")
    if grad is not None:
        grad_found = detect_nonfinite(*grad, metric="grad_norm")
        if grad_found and loss is not None and loss_metric == "loss":
            # fp16 loss-scaler skips: a non-finite grad norm the run shrugs off is no failure.
            skips = detect_scaler_skips(*loss, *grad)
            grad_found = [f for f in grad_found if not _covered(f, skips)] + skips
        findings += grad_found
        if loss is not None and loss_metric == "loss":
            hidden = detect_hidden_nan(*loss, *grad, metric="loss")
            findings += hidden
            if hidden:
                # Those 0.0 losses stand for NaN: keep them out of the curve-shape detectors.
                loss = _mask_steps(loss, hidden)
    elif loss is not None and loss_metric == "loss":
        # No grad norm to tell a hidden NaN for sure: a loss that jumps to exactly 0.0 is
        # still worth a warning, and is no real loss for the curve-shape detectors either.
        zeroed = detect_zeroed_loss(*loss, metric="loss")
        findings += zeroed
        if zeroed:
            loss = _mask_steps(loss, zeroed)
    n_loss = _finite_count(loss)
    if evl is not None:
        findings += detect_nonfinite(*evl, metric="eval_loss")
    if loss is not None and n_loss >= MIN_POINTS:
        after = None
        if sched.warmup_end is not None:
            after = int(sched.warmup_end + max(sched.warmup_steps or 0, 0))
        elif sched.resumed_at is not None:
            after = sched.resumed_at  # the warmup ended before the log began
        averaged = _loss_window(run, stated_window)
        div_cfg = DivergenceConfig(
            ratio=DIVERGENCE_RATIO,
            after_step=after,
            averaged_over=averaged if loss_metric == "loss" else None,
        )
        diverged = detect_divergence(*loss, div_cfg, metric=loss_metric)
        findings += diverged
        # A climb the divergence rule already reports is not reported twice.
        findings += [
            f for f in detect_sustained_rise(*loss, metric=loss_metric) if not _covered(f, diverged)
        ]
        if loss_metric == "loss":
            findings += [f for f in _catapult(loss, sched, averaged) if not _overlaps(f, diverged)]
            # Once the run is over, a spike in its last points is the state it ended in.
            spike_cfg = SpikeConfig(averaged_over=averaged, complete=over)
            findings += detect_spikes(*loss, spike_cfg, metric="loss")
        # An eval loss is one evaluation per point, not a window mean: its first three count.
        # While the run goes on, a stall is judged against its planned length: an early
        # plateau is most of what a live watch has seen, not yet most of the run.
        going = not ended and run.status in ("running", "unknown")
        stall_cfg = CollapseConfig(
            averaged_over=averaged if loss_metric == "loss" else 1,
            planned_last_step=sched.total if going else None,
        )
        findings += detect_no_progress(*loss, stall_cfg, metric=loss_metric)
        slow_cfg = SlowDeclineConfig(
            warmup_end_step=sched.warmup_end if sched.warmup_end and sched.warmup_end > 0 else None
        )
        findings += detect_slow_decline(*loss, slow_cfg, metric=loss_metric)
    if grad is not None:
        findings += detect_spikes(*grad, metric="grad_norm")
        mgn = _num(cfg.get("max_grad_norm"))
        if mgn is not None and mgn > 0:
            findings += detect_clip_rate(*grad, ClipRateConfig(max_grad_norm=mgn))
    if fit is not None:
        findings += _while_running(schedule_findings(fit), over)
        findings += _against_config(run, sched)
        findings += _own_warmup_note(run, sched)
        findings += _late_start_note(sched)
    findings += _resumed_note(sched)
    if sched.resumed_at is not None:
        # Both measure from the first logged loss, which a resumed log starts from trained: a
        # late run's slow progress, not a stalled start.
        findings = [
            replace(f, severity=Severity.INFO) if f.kind in ("slow_decline", "no_progress") else f
            for f in findings
        ]
    findings.sort(key=lambda f: (f.step, -f.severity.rank, f.kind, f.metric))

    problems = [
        f
        for f in findings
        if _is_problem(f, loss_metric)
        and not _not_a_failure(f, sched, loss[0] if loss is not None else None)
    ]
    # --- 1. too little data ------------------------------------------------------------------
    if not problems and n_loss < MIN_POINTS:
        what = "no loss series" if loss is None else f"{n_loss} finite loss points"
        n_eval = _finite_count(evl)
        if n_eval:
            # An eval-only log is judged on its eval loss: say that it, too, falls short.
            what = f"{what} and {n_eval} finite eval_loss points"
        return Diagnosis(
            Verdict.INSUFFICIENT_DATA,
            0.9,
            f"insufficient_data: {what} (at least {MIN_POINTS} are needed)",
            fit,
            tuple(findings),
            (),
            {"loss_points": n_loss, "min_points": MIN_POINTS, "last_step": last_step},
            None,
        )
    # --- 2. instability ----------------------------------------------------------------------
    if problems:
        # A slow or stalled loss is then a consequence of the instability, not a second problem.
        # A stall decides only when nothing else went wrong.
        stall_decides = all(f.kind == "no_progress" for f in problems)
        findings = [
            replace(f, severity=Severity.INFO)
            if f.kind == "slow_decline" or (f.kind == "no_progress" and not stall_decides)
            else f
            for f in findings
        ]
        return _instability(run, sched, findings, problems, loss, last_step, loss_metric)
    # --- 3. warmup too long ------------------------------------------------------------------
    long = _long_warmup(run, sched, loss, last_step, findings, over)
    if long is not None and long["cost"]:
        return _too_long(run, sched, findings, long, loss_metric)
    if long is None:
        # A slow start under a normal-length warmup is what warmup is for: a note, not a warning.
        findings = [
            replace(f, severity=Severity.INFO) if f.kind == "slow_decline" else f for f in findings
        ]
    return _healthy(run, sched, findings, long, n_loss, loss_metric)


def _loss_window(run: Run, stated: int | None = None) -> int | None:
    """Training steps one logged training-loss value stands for: what the user ``stated``, else
    what the log says; ``None`` when neither does (the detectors then take the step spacing)."""
    if stated is not None:
        return stated
    said = _num(run.config.get("loss_window"))
    if said is not None and said >= 1:
        return int(said)
    if run.source in SINGLE_STEP_LOSS_SOURCES or _logged_by_lightning(run):
        return 1
    logging_steps = _num(run.config.get("logging_steps"))
    return int(logging_steps) if logging_steps and logging_steps >= 1 else None


def _logged_by_lightning(run: Run) -> bool:
    """The run's tags carry Lightning's marks, whatever logger wrote them."""
    lr_tag = run.metric_map.get("learning_rate", "")
    return lr_tag.startswith(LIGHTNING_LR_PREFIX) or run.has(LIGHTNING_TAG)


def _finite_count(series: tuple[np.ndarray, np.ndarray] | None) -> int:
    return int(np.isfinite(series[1]).sum()) if series is not None else 0


def _overlaps(f: Finding, by: list[Finding]) -> bool:
    """``f``'s steps overlap those of one of the findings ``by``."""
    end = f.end_step if f.end_step is not None else f.step
    return any(g.step <= end and f.step <= (g.end_step or g.step) for g in by)


def _catapult(
    loss: tuple[np.ndarray, np.ndarray], sched: _Schedule, averaged: int | None
) -> list[Finding]:
    """Early climbs of a window-averaged loss from where the LR is near its peak
    (:data:`CATAPULT_LR_SHARE` of it) to a few logged points after the peak."""
    if sched.warmup_end is None:
        return []  # no peak yet (or none known): a climb is the divergence rule's to judge
    peak = sched.peak_lr
    start = None
    if sched.lr_steps is not None and sched.lr_values is not None and peak:
        near = np.flatnonzero(np.asarray(sched.lr_values) >= CATAPULT_LR_SHARE * peak)
        start = int(sched.lr_steps[near[0]]) if near.size else None
    if start is None:
        start = int(CATAPULT_LR_SHARE * sched.warmup_end)  # the usual linear ramp
    until = int(sched.warmup_end + CATAPULT_POINTS_AFTER_PEAK * median_spacing(loss[0]))
    cfg = CatapultConfig(from_step=start, until_step=until, averaged_over=averaged)
    return detect_catapult(*loss, cfg, metric="loss")


def _covered(f: Finding, by: list[Finding]) -> bool:
    """``f``'s steps lie inside one of the findings ``by``."""
    end = f.end_step if f.end_step is not None else f.step
    return any(g.step <= f.step and end <= (g.end_step or g.step) for g in by)


# ------------------------------------------------------------------------------- instability
def _instability(
    run: Run,
    sched: _Schedule,
    findings: list[Finding],
    problems: list[Finding],
    loss: tuple[np.ndarray, np.ndarray] | None,
    last_step: int,
    loss_metric: str = "loss",
) -> Diagnosis:
    first = _deciding(problems)
    onset = first.step
    peak = sched.peak_lr
    # A stall is dated from where the loss last improved, which can be the first logged step
    # of a warmup; what makes it a failure is the LR it then stayed stalled at: the highest.
    at = _highest_lr_step(sched, first) if first.kind == "no_progress" else onset
    lr = sched.lr_at(at)
    phase = sched.phase_at(at)
    frac = lr / peak if (lr is not None and peak) else None
    window_txt = ""
    if first.kind == "non_finite" and peak and frac is not None and frac > LR_NEAR_ZERO:
        # A NaN logged at ``onset`` was caused by an update since the previous log, and the
        # previous log's own update counts: the Trainer measures a step's loss and grad norm
        # before that step's update. If the LR was ~0 for any of those updates (the first
        # steps of a warmup), the LR is not the cause (e.g. Adam with eps=0 turns the very
        # first, LR-0 update into NaN).
        prev = _previous_step(run, first.metric, onset)
        first_update = max(prev, 1)
        low = sched.lowest_lr_between(first_update - 1, onset)
        if low is not None and low / peak <= LR_NEAR_ZERO:
            low = 0.0 if low <= 1e-9 * peak else low  # the ramp's 0, not rounding noise
            lr, frac = low, low / peak
            phase = sched.phase_at(first_update) or phase
            window_txt = f"it appeared between steps {first_update} and {onset}, "
    if frac is None and sched.source == "config" and sched.warmup_end:
        # Only the configured warmup is known: assume the usual linear ramp from 0.
        frac = min(1.0, onset / sched.warmup_end)
        phase = "warmup" if frac < 1.0 else "peak"
    spacing = median_spacing(loss[0]) if loss is not None else 1.0
    w = sched.warmup_steps
    total = sched.span if sched.span is not None else last_step - sched.start
    share = sched.share
    long_warmup = (share is not None and share > LONG_WARMUP_SHARE) or (
        sched.still_rising and sched.span is not None and (w or 0) >= sched.span
    )
    adequate = share is not None and share >= ADEQUATE_WARMUP_SHARE
    nonfinite = first.kind == "non_finite"
    why = ""
    if frac is not None and frac <= LR_NEAR_ZERO:
        verdict = Verdict.NUMERICAL_INSTABILITY
        why = (
            f"{window_txt}while the LR was still {_fmt(lr)} ({_pct(frac)} of its peak), "
            "so the warmup is not the cause"
        )
        conf = 0.85
    elif sched.resumed_at is not None and sched.warmup_end is None:
        # The warmup ended before the log began, at a step nobody logged or configured.
        verdict, conf = Verdict.LR_TOO_HIGH, 0.55
        why = (
            f"the log starts at step {sched.resumed_at}, mid-training (a resumed run), after "
            "its warmup: a longer warmup would not reach this"
        )
    elif sched.warmup_end is None and sched.source == "none":
        # No LR trace and no configured warmup: judge from the position in the run alone.
        if nonfinite:
            verdict, conf = Verdict.NUMERICAL_INSTABILITY, 0.5
            why = "no LR was logged to tie it to the warmup; check the numerics first"
        elif onset <= max(0.1 * total, 3 * spacing):
            verdict, conf = Verdict.WARMUP_TOO_SHORT, 0.45
            why = f"it starts early (step {onset} of {total}) and no LR was logged"
        else:
            verdict, conf = Verdict.LR_TOO_HIGH, 0.45
            why = f"it starts late (step {onset} of {total}) and no LR was logged"
    else:
        w_end = sched.warmup_end if sched.warmup_end is not None else last_step
        soon = max(float(w or 0), SOON_AFTER_SHARE * total, 3 * spacing)
        if onset <= w_end + soon:
            if not w:
                where = f"right away with no warmup (the LR starts at its peak {_fmt(peak)})"
            elif onset < w_end:
                where = "while the LR climbs to its peak"
            else:
                where = f"soon after the LR peaked (step {w_end})"
            if long_warmup or adequate:
                verdict = Verdict.LR_TOO_HIGH
                size = "already long" if long_warmup else "already the usual length"
                why = f"it starts {where}, although the warmup is {size}"
                if share is not None:
                    why += f" ({w} steps, {_pct(share)} of the run)"
                conf = 0.65
            else:
                verdict = Verdict.WARMUP_TOO_SHORT
                why = f"it starts {where}"
                conf = 0.75
        else:
            verdict = Verdict.LR_TOO_HIGH
            why = f"it starts long after the LR peaked (step {w_end})"
            conf = 0.65
        if sched.source == "config":
            conf -= 0.1
    if first.severity < Severity.CRITICAL:
        conf -= 0.1
    conf = round(min(0.95, max(0.3, conf)), 2)

    value = first.evidence.get("value_at_onset", first.evidence.get("value"))
    evidence: dict[str, Any] = {
        "first_problem_step": onset,
        "kind": first.kind,
        "metric": first.metric,
        "value": value,  # NaN/±Inf stays a number: JSON writers make it null and list it
        "baseline": first.evidence.get("baseline"),
        "lr": lr,
        "lr_phase": phase,
        "lr_fraction_of_peak": frac,
        "peak_lr": peak,
        "warmup_steps": w,
        "warmup_end_step": sched.warmup_end,
        "total_steps": sched.total,
        "warmup_share": share,
        "schedule_source": sched.source,
        "message": first.message,
        "window": _window(run, sched, onset),
    }
    if sched.resumed_at is not None:
        # The logged LRs all come after the peak: only the configured one says how far.
        of_peak = f" ({_pct(frac)} of the configured peak)" if frac is not None else ""
        lr_txt = f" at LR {_fmt(lr)}{of_peak}" if lr is not None else ""
    else:
        of_peak = f", {_pct(frac)} of peak" if frac is not None else ""
        lr_txt = f" at LR {_fmt(lr)} ({phase}{of_peak})" if lr is not None else ""
    summary = f"{verdict.value}: {first.message}{lr_txt}; {why}"
    advice = _instability_advice(verdict, run, sched, onset, lr, last_step)
    return Diagnosis(
        verdict, conf, summary, sched.fit, tuple(findings), tuple(advice), evidence, onset
    )


def _highest_lr_step(sched: _Schedule, f: Finding) -> int:
    """The logged step within ``f`` at which the LR was highest (``f.step`` without a trace)."""
    if sched.lr_steps is None or sched.lr_values is None:
        return f.step
    end = f.end_step if f.end_step is not None else f.step
    inside = (sched.lr_steps >= f.step) & (sched.lr_steps <= end) & np.isfinite(sched.lr_values)
    if not inside.any():
        return f.step
    i = int(np.argmax(np.where(inside, sched.lr_values, -np.inf)))
    return int(sched.lr_steps[i])


def _previous_step(run: Run, metric: str, step: int) -> int:
    """The logged step before ``step`` in ``metric`` (0 when ``step`` is its first point)."""
    if not run.has(metric):
        return 0
    steps = run.series(metric)[0]
    i = int(np.searchsorted(steps, step))
    return int(steps[i - 1]) if i > 0 else 0


def _window(run: Run, sched: _Schedule, onset: int, half: int = 5) -> dict[str, list]:
    """The logged loss (and LR) around ``onset``: ``half`` points either side, JSON-ready."""
    if not run.has("loss"):
        return {}
    s, v = run.series("loss")
    i = int(np.searchsorted(s, onset))
    lo, hi = max(0, i - half), min(s.size, i + half + 1)
    steps = [int(x) for x in s[lo:hi]]
    out: dict[str, list] = {
        "steps": steps,
        "loss": [float(x) if math.isfinite(x) else None for x in v[lo:hi]],
    }
    if sched.lr_steps is not None:
        out["learning_rate"] = [sched.lr_at(x) for x in steps]
    return out


def _instability_advice(
    verdict: Verdict,
    run: Run,
    sched: _Schedule,
    onset: int,
    lr: float | None,
    last_step: int,
) -> list[Advice]:
    cfg = run.config
    ft = cfg.get("finetuning_type")
    size = guide.model_size_from_name(cfg.get("model_name_or_path"))
    peak = sched.peak_lr or _num(cfg.get("learning_rate"))
    total = sched.span
    out: list[Advice] = []
    if verdict is Verdict.NUMERICAL_INSTABILITY:
        at = f"at LR {_fmt(lr)} " if lr is not None else ""
        out.append(
            Advice(
                f"The first non-finite value appears at step {onset} {at}before the LR matters: "
                "check the numerics rather than the warmup: bf16 instead of fp16 (or a lower "
                "initial loss scale), a zero or tiny adam_epsilon, the attention kernel (eager "
                "vs. sdpa/flash), and batches with empty or fully masked labels.",
                None,
                reason="NaN while the LR is ~0 is not caused by the LR",
            )
        )
        return out
    w = sched.warmup_steps or 0
    if verdict is Verdict.WARMUP_TOO_SHORT:
        base = total or max(last_step - sched.start, 1)
        rec, reason = guide.recommended_warmup(base, finetuning_type=ft, model_size_b=size)
        if total is None:
            reason += f" (total steps unknown; {base} logged so far)"
        if rec <= w:
            rec, reason = max(2 * w, w + 1), f"twice the current {w} steps"
        out.append(
            Advice(
                f"raise warmup_steps from {w} to {rec} ({reason})",
                "warmup_steps",
                w,
                rec,
                reason,
            )
        )
    if peak:
        new_lr, reason = guide.lower_learning_rate(
            peak, finetuning_type=ft, model_size_b=size, optimizer=cfg.get("optim")
        )
        prefix = "or " if out else ""
        text = f"{prefix}lower learning_rate from {_fmt(peak)} to {_fmt(new_lr)} ({reason})"
        if verdict is Verdict.LR_TOO_HIGH and sched.share and sched.share > LONG_WARMUP_SHARE:
            text += f"; a warmup of {w} steps ({_pct(sched.share)} of the run) did not prevent it"
        out.append(Advice(text, "learning_rate", peak, new_lr, reason))
    elif verdict is Verdict.LR_TOO_HIGH and sched.resumed_at is not None:
        # The fit's peak is the highest finite LR logged: here, past the run's real peak.
        top = sched.fit.peak_lr if sched.fit is not None else None
        seen = f" (the highest in this log is {_fmt(top)})" if top is not None else ""
        out.append(
            Advice(
                f"lower learning_rate: its peak is not in this resumed log{seen}; a third of "
                "the configured learning_rate is the usual first try",
                None,
                reason="the warmup ended before the log began",
            )
        )
    return out


def _run_is_over(run: Run, sched: _Schedule, last_step: int, ended: bool) -> bool:
    # With a planned total the logged steps say whether the run is over (a run that stopped
    # short of it crashed or was stopped: its warmup is not the cause); without one, the
    # writer's status, or the caller's word for a log that cannot say (``ended``).
    if sched.total is not None:
        return last_step >= sched.total
    return run.status == "finished" or (ended and run.status == "unknown")


def _while_running(findings: list[Finding], over: bool) -> list[Finding]:
    """An LR still rising at the last step is expected while a run warms up: say so softly.

    Only once the run is ``over`` does "the warmup never ended" become a warning; otherwise a
    live watch would alert on every run during its warmup.
    """
    if over:
        return findings
    out = []
    for f in findings:
        if f.kind == "schedule" and f.evidence.get("problem") == "still_rising":
            f = replace(
                f,
                severity=Severity.INFO,
                message=f"{f.message} yet (the run has not finished)",
            )
        out.append(f)
    return out


# ------------------------------------------------------------------------------ long warmup
def _long_warmup(
    run: Run,
    sched: _Schedule,
    loss: tuple[np.ndarray, np.ndarray] | None,
    last_step: int,
    findings: list[Finding],
    finished: bool,
) -> dict[str, Any] | None:
    """Facts about a long warmup and its cost, or ``None`` when the warmup is not long;
    ``finished``: the run is over (:func:`_run_is_over`)."""
    w = sched.warmup_steps
    if w is None or w <= 0:
        return None
    total = sched.span
    never_peaked = sched.still_rising and finished
    if total is None:
        if not never_peaked:
            return None
        total = last_step - sched.start
    share = w / total if total and total > 0 else None
    # The guide's share is of the planned run. A length implied by an LR decay the trace has not
    # yet followed to its end is an extrapolation (the first cycle of a cosine with restarts is
    # a whole short cosine): the share alone decides only once the trace has reached it.
    length_known = (
        sched.total_source != "decay"
        or finished
        or last_step - sched.start >= total - _lr_spacing(sched)
    )
    longer_than_run = total is not None and w >= total and (sched.warmup_exact or finished)
    if not (never_peaked or longer_than_run or (share is not None and share > LONG_WARMUP_SHARE)):
        return None
    facts: dict[str, Any] = {
        "warmup_steps": w,
        "total_steps": total,
        "share": share,
        "never_peaked": bool(never_peaked or longer_than_run),
        "finished": bool(finished),
        # A warmup that outlasts the run never lets the LR reach its peak: the whole budget is
        # spent warming up, a cost whatever the curve shows.
        "cost": bool(never_peaked or longer_than_run),
    }
    if loss is None:
        return facts
    # Mid-warmup with an unknown warmup length, the schedule's cost cannot be told yet.
    known = sched.warmup_exact or finished
    cost = _warmup_cost(run, sched, loss, w, total, last_step) if known else None
    if cost is not None:
        facts.update(
            steps_lost=cost.steps_lost,
            slowdown=cost.slowdown if math.isfinite(cost.slowdown) else None,
            tracking=cost.tracking,
            reference_warmup=cost.reference_warmup,
            lr_limited=cost.lr_limited,
        )
        facts["early_progress"] = cost.early_progress
        if cost.tracking is not None and cost.tracking >= LR_TRACKING:
            # Progress per step grew with the LR through the warmup: the small LRs held the run
            # back, so the steps the schedule spent below its peak were lost.
            facts["cost"] = True
        elif cost.slowdown >= SCHEDULE_SLOWDOWN and (
            cost.early_progress is None or cost.early_progress < EARLY_PROGRESS
        ):
            # A schedule that keeps the LR small long enough to need half as many steps again
            # as the usual warmup costs steps, unless the loss shows it was not held back: it
            # had made most of its progress by the time the LR reached a third of its peak.
            facts["cost"] = True
    fs = flat_start(*loss)
    if fs is None:
        return _above_guide(facts, sched, finished, length_known)
    origin = (
        0
        if sched.fit is None or sched.fit.first_step <= 2 * median_spacing(loss[0])
        else sched.fit.first_step
    )
    flat = fs.until - origin
    facts["flat_points"] = int(np.sum(loss[0] <= fs.until))
    facts.update(
        flat_until=fs.until,
        flat_steps=flat,
        flat_moved=fs.moved,
        start_value=fs.start_value,
        value_at_flat_end=fs.value_at_until,
        lr_at_flat_end=sched.lr_at(fs.until),
    )
    slower = [
        f
        for f in findings
        if f.kind == "slow_decline" and f.evidence.get("rule") == "slow_in_warmup"
    ]
    if slower:
        # The loss fell several times more slowly per step while warming up than after it.
        facts["slow_in_warmup"] = slower[0].evidence.get("value")
    if facts["cost"] or slower:
        facts["cost"] = True
    elif facts["flat_points"] < FLAT_MIN_POINTS:
        # A "flat start" that is the first logging interval alone is no evidence.
        facts["cost"] = False
    elif sched.warmup_exact or finished:
        facts["cost"] = (
            flat >= FLAT_SHARE_OF_WARMUP * min(w, total) and flat >= FLAT_SHARE_OF_RUN * total
        )
    else:
        # Mid-warmup with an unknown warmup length: only a flat start that already took a
        # large share of the planned run counts (the share of the warmup is not known yet).
        facts["cost"] = flat >= FLAT_SHARE_OF_WARMUP * total

    return _above_guide(facts, sched, finished, length_known)


def _lr_spacing(sched: _Schedule) -> float:
    return median_spacing(sched.lr_steps) if sched.lr_steps is not None else 1.0


def _above_guide(
    facts: dict[str, Any], sched: _Schedule, finished: bool, length_known: bool
) -> dict[str, Any]:
    """A warmup of known length above the guide's maximum share is too long in itself.

    ``cost_seen`` keeps whether the curve showed what it cost. Spending more than the guide's
    share of the budget below the peak LR is the symptom itself. Where the curve hides the cost
    (a loss that falls fast even at a small LR), sibling runs that differ only in warmup show
    that it was often small and that a 10% warmup was usually as stable (see
    :data:`UNSEEN_COST_CONFIDENCE`), so the verdict stands at a lower confidence. The share
    counts only when the run's length is known (``length_known``), not extrapolated.
    """
    facts["cost_seen"] = bool(facts["cost"])
    share = facts.get("share")
    known = (sched.warmup_exact or finished) and length_known
    if not facts["cost"] and known and share is not None and share > LONG_WARMUP_SHARE:
        facts["cost"] = True
    return facts


def _recommended_warmup(run: Run, total: int) -> tuple[int, str]:
    """The guide's warmup for this run's method and model size: ``(steps, reason)``."""
    return guide.recommended_warmup(
        total,
        finetuning_type=run.config.get("finetuning_type"),
        model_size_b=guide.model_size_from_name(run.config.get("model_name_or_path")),
    )


def _warmup_cost(
    run: Run,
    sched: _Schedule,
    loss: tuple[np.ndarray, np.ndarray],
    w: int,
    total: int,
    last_step: int,
) -> WarmupCost | None:
    """The long warmup's cost against the guide's warmup (see ``detectors.warmup_cost``)."""
    if sched.lr_steps is None or sched.lr_values is None or total <= 0:
        return None
    # Steps count from where the logged warmup starts (0 unless the log starts mid-training).
    at = sched.start
    if sched.still_rising:
        end = max(1, min(w, last_step - at))  # the ramp is followed as far as it was logged
    else:
        end = sched.warmup_end - at if sched.warmup_end is not None else w
    rec, _ = _recommended_warmup(run, total)
    decay = sched.fit.decay if sched.fit is not None else "linear"
    return estimate_warmup_cost(
        loss[0] - at,
        loss[1],
        sched.lr_steps - at,
        sched.lr_values,
        warmup_end=int(end),
        total_steps=int(total),
        reference_warmup=int(min(rec, total)),
        decay=decay,
        peak_lr=_num(run.config.get("learning_rate")) if sched.still_rising else None,
    )


def _too_long(
    run: Run,
    sched: _Schedule,
    findings: list[Finding],
    f: dict[str, Any],
    loss_metric: str = "loss",
) -> Diagnosis:
    w, total, share = f["warmup_steps"], f["total_steps"], f["share"]
    rec, reason = _recommended_warmup(run, total)
    peak = sched.peak_lr
    flat_txt = ""
    if f.get("flat_steps") is not None and f.get("flat_points", 0) >= FLAT_MIN_POINTS:
        flat_txt = (
            f"; the loss stayed near {f['start_value']:.3g} for the first {f['flat_steps']} steps"
        )
        if f.get("flat_moved") and f.get("lr_at_flat_end") is not None:
            flat_txt += f" (LR {_fmt(f['lr_at_flat_end'])} when it started to fall)"
    if f["never_peaked"]:
        last = run.last_step or 0
        if f.get("finished"):
            head = (
                f"the LR never reached its peak: still rising at the last step {last} "
                f"({_fmt(sched.lr_at(last))}), the whole run was spent warming up"
            )
        else:
            head = (
                f"the LR will not reach its peak: a warmup of {w} steps in a {total}-step run "
                f"(LR {_fmt(sched.lr_at(last))} at step {last})"
            )
        warm_txt = f"warmup of at least {w} steps for a {total}-step run"
    else:
        head = f"{_pct(share)} of this run was spent warming up ({w} of {total} steps)"
        warm_txt = f"{w} warmup steps"
    cost_txt = ""
    lost = f.get("steps_lost")
    if lost is not None and lost > 0 and f.get("slowdown"):
        why = ""
        if f.get("tracking") is not None and f["tracking"] >= LR_TRACKING:
            why = (
                f" (the loss fell {f['tracking']:.1f}x as much over the second half of the warmup "
                f"as over the first, threshold x{LR_TRACKING:g}: progress tracked the LR)"
            )
        elif f.get("early_progress") is not None and f["early_progress"] < EARLY_PROGRESS:
            why = (
                f" ({_pct(f['early_progress'])} of its progress was made by the time the LR "
                f"reached a third of its peak, below the {_pct(EARLY_PROGRESS)} that would show "
                "the small LRs did not hold it back)"
            )
        cost_txt = (
            f"; about {lost} steps lost: the run needs ~x{f['slowdown']:.2f} the steps a "
            f"{f.get('reference_warmup')}-step warmup needs to reach the same cumulative LR{why}"
        )
    if not f.get("cost_seen", True):
        # Too long by its share alone: say what the schedule implies, and that the curve does
        # not show it.
        cost_txt = f", above the guide's maximum of {_pct(LONG_WARMUP_SHARE)}"
        if lost is not None and lost > 0 and f.get("slowdown"):
            cost_txt += (
                f"; the schedule needs ~x{f['slowdown']:.2f} the steps a "
                f"{f.get('reference_warmup')}-step warmup needs to reach the same cumulative LR "
                f"(about {lost} steps)"
            )
        cost_txt += (
            "; the loss fell quickly even at the small LRs, so the curve does not show how "
            "many steps it cost"
        )
    summary = f"warmup_too_long: {head}{cost_txt}{flat_txt}"
    cfg_w = sched.configured_warmup
    current = cfg_w if cfg_w is not None else w
    at_least = "" if cfg_w is not None or sched.warmup_exact else "at least "
    advice = [
        Advice(
            f"cut warmup_steps from {at_least}{current} to {rec} ({reason}): {head}"
            + (
                # Measured on the sweep's calibration half: of 118 such runs, the sibling with
                # the advised warmup reached the same loss >= 5% sooner in 22, about as soon in
                # 42, later in 48, went unstable in 6, and ended higher in 92 of 113. So no
                # saving is promised.
                "; the curve does not show a cost, so a shorter warmup may not save steps "
                "(runs like this one were as fast or slower with it more often than faster); if "
                "you cut it, watch the steps after the new peak for a climb"
                if not f.get("cost_seen", True)
                else ""
            ),
            "warmup_steps",
            current,
            rec,
            reason,
        )
    ]
    conf = 0.75 if f["never_peaked"] or (share or 0) > 0.3 else 0.65
    if not f.get("cost_seen", True):
        conf = UNSEEN_COST_CONFIDENCE
    first_flat = sched.fit.first_step if sched.fit is not None else None
    evidence = {
        "warmup_steps": w,
        "warmup_desc": warm_txt,
        "total_steps": total + sched.start,
        "warmup_share": share,
        "never_peaked": f["never_peaked"],
        "flat_until_step": f.get("flat_until"),
        "flat_steps": f.get("flat_steps"),
        "start_value": f.get("start_value"),
        "value_at_flat_end": f.get("value_at_flat_end"),
        "lr_at_flat_end": f.get("lr_at_flat_end"),
        "peak_lr": peak,
        "metric": loss_metric,
        "value": f.get("value_at_flat_end"),
        "lr": f.get("lr_at_flat_end"),
        "lr_phase": "warmup",
        "first_problem_step": first_flat,
        "steps_lost": f.get("steps_lost"),
        "slowdown": f.get("slowdown"),
        "tracking": f.get("tracking"),
        "early_progress": f.get("early_progress"),
        "reference_warmup": f.get("reference_warmup"),
    }
    return Diagnosis(
        Verdict.WARMUP_TOO_LONG,
        conf,
        summary,
        sched.fit,
        tuple(findings),
        tuple(advice),
        evidence,
        first_flat,
    )


# ---------------------------------------------------------------------------------- healthy
def _healthy(
    run: Run,
    sched: _Schedule,
    findings: list[Finding],
    long: dict[str, Any] | None,
    n_loss: int,
    loss_metric: str = "loss",
) -> Diagnosis:
    conf = 0.8
    if sched.source != "log":
        conf -= 0.15
    if n_loss < 20:
        conf -= 0.15
    if long is not None:
        # Only mid-warmup with an unknown warmup length (a known long warmup is too long, see
        # ``_above_guide``): what it will cost cannot be told yet.
        conf -= LONG_WARMUP_DOUBT
    notes = [f for f in findings if f.severity >= Severity.WARNING]
    advice: list[Advice] = []
    evidence: dict[str, Any] = {
        "loss_points": n_loss,
        "warmup_steps": sched.warmup_steps,
        "total_steps": sched.total,
        "warmup_share": sched.share,
        "peak_lr": sched.peak_lr,
        "schedule_source": sched.source,
        "metric": loss_metric,
    }
    tail = ""
    if long is not None:
        total = long["total_steps"]
        rec, reason = _recommended_warmup(run, total)
        share_txt = _pct(long["share"]) if long["share"] is not None else "?"
        tail = (
            f"; note: a long warmup ({long['warmup_steps']} steps, {share_txt} of the run) "
            "did no visible harm"
        )
        cfg_w = sched.configured_warmup
        current = cfg_w if cfg_w is not None else long["warmup_steps"]
        advice.append(
            Advice(
                f"the warmup could be shorter: warmup_steps {rec} ({reason}) instead of "
                f"{current}; the loss fell quickly anyway",
                "warmup_steps",
                current,
                rec,
                reason,
            )
        )
        evidence["long_warmup"] = True
    if notes:
        kinds = ", ".join(sorted({f"{f.kind} ({f.metric})" for f in notes}))
        tail += f"; warnings that do not change the verdict: {kinds}"
    loss_txt = ""
    if run.has(loss_metric):
        _, v = run.series(loss_metric)
        fin = np.isfinite(v)
        if fin.any():
            loss_txt = f" {loss_metric} {v[fin][0]:.4g} -> {v[fin][-1]:.4g} over {n_loss} points"
    summary = f"healthy:{loss_txt or ' no problem found'}{tail}"
    return Diagnosis(
        Verdict.HEALTHY,
        round(max(0.3, conf), 2),
        summary,
        sched.fit,
        tuple(findings),
        tuple(advice),
        evidence,
        None,
    )
