"""Baselines for the accuracy benchmark: the verdicts of a rule of thumb and of two peers.

``baseline_verdicts(run)`` returns one verdict per baseline, each in the project's vocabulary
(``healthy``, ``warmup_too_short``, ``warmup_too_long``, ``lr_too_high``,
``numerical_instability``, ``insufficient_data``), so they sit beside ``diagnose`` on the same
runs. An exception inside a baseline is reported as the verdict ``crash``.

Input of every baseline: the run's ``loss``, ``learning_rate`` and ``grad_norm`` series, exactly
as logged (NaN/Inf kept, the HF Trainer's ``loss: 0.0`` beside a NaN ``grad_norm`` kept as 0.0).
A run without ``loss`` but with ``eval_loss`` uses ``eval_loss`` as its loss. Nothing is
smoothed, subsampled or re-scaled.

``rule_of_thumb`` — three lines a practitioner would check by hand, in this order:

1. a non-finite loss or grad_norm anywhere (NaN/Inf, or a logged loss of exactly 0.0 at a step
   whose grad_norm is non-finite) → ``numerical_instability``;
2. fewer than 10 finite loss points → ``insufficient_data``;
3. the logged LR peaks after 30% of the run (step of its first maximum / last logged step
   > 0.3) or is still rising at its last point → ``warmup_too_long``;
4. the last finite loss is above the 10th finite loss → ``lr_too_high``;
5. otherwise ``healthy``.

``trainpulse`` (``trainpulse.Monitor``, default ``MonitorConfig``) — each logged step is fed
in step order the way its HF callback's ``on_log`` does: ``monitor.log("loss", step, v)``,
then ``"learning_rate"``, then ``"grad_norm"``. Its alerts map as follows; the most severe
mapped verdict wins (numerical_instability > lr_too_high), no mapped alert → ``healthy``:

=========================================  ==========================  ==========================
trainpulse alert (detector)                verdict                     why
=========================================  ==========================  ==========================
``nan_detector``: metric is NaN / Inf      ``numerical_instability``   it says so
``loss_spike``: loss > 5x rolling mean     ``lr_too_high``             a spike or divergence; it
                                                                       says nothing about warmup,
                                                                       so never warmup_too_short
``gradient``: explosion (norm > 100)       ``lr_too_high``             same
``gradient``: vanishing (norm < 1e-7)      ignored                     not an LR verdict
``plateau``: no improvement for 100 pts    ignored                     not tied to the LR (so not
                                                                       warmup_too_long)
``learning_rate``: LR changes >10x a step  ignored                     a schedule event, not a
                                                                       symptom; every warmup from
                                                                       ~0 triggers it
=========================================  ==========================  ==========================

trainpulse has no notion of too little data: it is ``insufficient_data`` only when the run
has none of the three series.

``training_doctor`` (``training_doctor.Doctor()`` with its default detectors) — each logged
step is fed in step order as one ``doctor.log(step, loss=…, learning_rate=…, grad_norm=…)``
call, as its HF callback does; every diagnosis it returns is kept. Mapping (the most severe
wins: numerical_instability > warmup_too_short > lr_too_high > warmup_too_long; no mapped
diagnosis → ``healthy``):

=====================================  ==========================  ===========================
training_doctor diagnosis (detector)   verdict                     why
=====================================  ==========================  ===========================
any diagnosis with NaN/Inf evidence    ``numerical_instability``   it cites non-finite values
"Learning rate likely too high"        ``warmup_too_short`` if it  its own advice includes
(``lr_too_high``)                      fired before the logged LR  "consider using learning
                                       reached its peak, or the    rate warmup if not
                                       logged LR peaks at its      already": an alarm during
                                       first point (no warmup      the rise, or in a run with
                                       visible); else              no warmup, counts as a
                                       ``lr_too_high``             warmup verdict
"Gradient instability detected"        ``lr_too_high``             its advice is to reduce the
(``gradient_instability``): explosion,                             LR; it says nothing about
spikes, high variance                                              warmup
same, vanishing gradients only         ignored                     not an LR verdict
"Learning rate may be too low"         ``warmup_too_long`` if it   it ties slow progress to a
(``lr_too_low``)                       fired before the logged LR  small LR and advises "warmup
                                       reached its peak (or the    to a higher peak": while the
                                       LR never peaks), else       LR is still climbing that
                                       ignored                     is a too-long warmup
"Training plateau detected"            ignored                     not tied to the LR being
(``plateau``)                                                      small
overfitting                            ignored                     not an LR verdict
=====================================  ==========================  ===========================

It is ``insufficient_data`` when it made no diagnosis and none of its detectors had enough
points to run (``can_run`` false for all at the end), or the run has none of the series.

The peers keep their default thresholds; whatever they print or log is swallowed. The
training_doctor replay costs O(points²) (its store filters the whole history on every query),
so it dominates the time on runs of several thousand points.

    python benchmarks/baselines.py PATH...   # one line per run: the three verdicts and timings
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from warmup_monitor.run import Run  # noqa: E402

if TYPE_CHECKING:
    from training_doctor import Diagnosis
    from trainpulse import Alert

__all__ = ["BASELINES", "baseline_verdicts"]

HEALTHY = "healthy"
TOO_SHORT = "warmup_too_short"
TOO_LONG = "warmup_too_long"
LR_TOO_HIGH = "lr_too_high"
NUMERICAL = "numerical_instability"
INSUFFICIENT = "insufficient_data"
CRASH = "crash"
# Most severe first: when a peer reports several problems, the first of these wins.
SEVERITY = (NUMERICAL, TOO_SHORT, LR_TOO_HIGH, TOO_LONG)

MIN_LOSS_POINTS = 10  # rule of thumb: the loss is compared with its 10th point
LATE_PEAK_SHARE = 0.3  # rule of thumb: an LR peak after 30% of the run is a too-long warmup

Series = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------------- the run's series
def _series(run: Run, name: str) -> Series | None:
    if not run.has(name):
        return None
    steps, values = run.series(name)
    return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)


def _inputs(run: Run) -> dict[str, Series]:
    """``loss`` (eval_loss when the run logs no training loss), ``learning_rate``, ``grad_norm``."""
    out: dict[str, Series] = {}
    loss = _series(run, "loss")
    if loss is None:
        loss = _series(run, "eval_loss")
    for name, s in (
        ("loss", loss),
        ("learning_rate", _series(run, "learning_rate")),
        ("grad_norm", _series(run, "grad_norm")),
    ):
        if s is not None and s[0].size:
            out[name] = s
    return out


def _replay(inputs: dict[str, Series]) -> Iterator[tuple[int, dict[str, float]]]:
    """Every logged step in order with the values logged at it (loss, learning_rate, grad_norm)."""
    steps = np.unique(np.concatenate([s for s, _ in inputs.values()]))
    lookups = {
        name: dict(zip(s.tolist(), v.tolist(), strict=True)) for name, (s, v) in inputs.items()
    }
    for step in steps.tolist():
        logs = {name: table[step] for name, table in lookups.items() if step in table}
        yield step, logs


def _lr_peak(inputs: dict[str, Series]) -> tuple[int, bool] | None:
    """Step of the first maximum of the finite logged LR, and whether that is its first point."""
    lr = inputs.get("learning_rate")
    if lr is None:
        return None
    steps, values = lr
    ok = np.isfinite(values)
    if not ok.any():
        return None
    steps, values = steps[ok], values[ok]
    i = int(np.argmax(values))
    return int(steps[i]), i == 0


def _worst(verdicts: list[str]) -> str:
    for v in SEVERITY:
        if v in verdicts:
            return v
    return HEALTHY


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow whatever a peer prints, logs or warns."""
    sink = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


# ---------------------------------------------------------------------- rule of thumb
def rule_of_thumb(run: Run) -> str:
    """The three-line rule (see the module docstring)."""
    inputs = _inputs(run)
    loss = inputs.get("loss")
    grad = inputs.get("grad_norm")
    if loss is not None and not np.isfinite(loss[1]).all():
        return NUMERICAL
    if grad is not None and not np.isfinite(grad[1]).all():
        # Also covers the HF Trainer's hidden NaN: loss logged as 0.0 beside a NaN grad_norm.
        return NUMERICAL
    if loss is None or loss[1].size < MIN_LOSS_POINTS:
        return INSUFFICIENT
    lr = inputs.get("learning_rate")
    if lr is not None:
        ok = np.isfinite(lr[1])
        lr_steps, lr_values = lr[0][ok], lr[1][ok]
        if lr_values.size >= 2:
            last_step = max(int(lr_steps[-1]), int(loss[0][-1]))
            peak_step = int(lr_steps[int(np.argmax(lr_values))])
            still_rising = lr_values[-1] > lr_values[-2]
            if (last_step > 0 and peak_step / last_step > LATE_PEAK_SHARE) or still_rising:
                return TOO_LONG
    values = loss[1]
    if values[-1] > values[MIN_LOSS_POINTS - 1]:
        return LR_TOO_HIGH
    return HEALTHY


# ---------------------------------------------------------------------- trainpulse
_TRAINPULSE_MAP = {"nan_detector": NUMERICAL, "loss_spike": LR_TOO_HIGH}


def _trainpulse_verdict(alert: Alert) -> str | None:
    if alert.detector == "gradient":
        # One detector for both directions: only an explosion is an LR symptom.
        return LR_TOO_HIGH if "explosion" in alert.message.lower() else None
    return _TRAINPULSE_MAP.get(alert.detector)


def trainpulse_baseline(run: Run) -> str:
    """Replay the run through ``trainpulse.Monitor`` and map its alerts."""
    from trainpulse import Monitor

    inputs = _inputs(run)
    if not inputs:
        return INSUFFICIENT
    with _quiet():
        monitor = Monitor()
        for step, logs in _replay(inputs):
            # The order of its HF callback's on_log.
            for name in ("loss", "learning_rate", "grad_norm"):
                if name in logs:
                    monitor.log(name, step, logs[name])
        alerts = monitor.report().alerts
    return _worst([v for a in alerts if (v := _trainpulse_verdict(a)) is not None])


# ---------------------------------------------------------------------- training-doctor
def _cites_non_finite(diagnosis: Diagnosis) -> bool:
    for e in diagnosis.evidence:
        words = e.observation.replace("/", " ").split()
        if "NaN" in words or "Inf" in words:
            return True
    return False


def _doctor_verdict(diagnosis: Diagnosis, lr_peak: tuple[int, bool] | None) -> str | None:
    if _cites_non_finite(diagnosis):
        return NUMERICAL
    detector, step = diagnosis.detector_name, diagnosis.step
    before_peak = lr_peak is not None and step is not None and step < lr_peak[0]
    if detector == "lr_too_high":
        no_warmup = lr_peak is not None and lr_peak[1]
        return TOO_SHORT if before_peak or no_warmup else LR_TOO_HIGH
    if detector == "gradient_instability":
        if all(e.observation.startswith("Vanishing") for e in diagnosis.evidence):
            return None
        return LR_TOO_HIGH
    if detector == "lr_too_low":
        return TOO_LONG if before_peak else None
    return None  # plateau, overfitting: not an LR verdict


def training_doctor_baseline(run: Run) -> str:
    """Replay the run through ``training_doctor.Doctor`` and map its diagnoses."""
    from training_doctor import Doctor

    inputs = _inputs(run)
    if not inputs:
        return INSUFFICIENT
    peak = _lr_peak(inputs)
    with _quiet():
        doctor = Doctor()
        for step, logs in _replay(inputs):
            doctor.log(step, **logs)
        diagnoses = doctor.diagnoses
        if not diagnoses and not any(d.can_run(doctor.store) for d in doctor.detectors):
            return INSUFFICIENT
    return _worst([v for d in diagnoses if (v := _doctor_verdict(d, peak)) is not None])


# ---------------------------------------------------------------------- all of them
BASELINES: dict[str, Callable[[Run], str]] = {
    "rule_of_thumb": rule_of_thumb,
    "trainpulse": trainpulse_baseline,
    "training_doctor": training_doctor_baseline,
}


def baseline_verdicts(
    run: Run,
    timings: dict[str, float] | None = None,
    only: tuple[str, ...] | None = None,
) -> dict[str, str]:
    """The verdict of every baseline (or of those named in ``only``) on ``run``; ``crash``
    where one raised.

    ``timings``, when given, accumulates each baseline's seconds under its name.
    """
    out: dict[str, str] = {}
    for name, baseline in BASELINES.items():
        if only is not None and name not in only:
            continue
        t0 = time.perf_counter()
        try:
            with _quiet():
                out[name] = baseline(run)
        except Exception:  # a peer's failure is a result, not a stop
            out[name] = CRASH
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
    return out


def main(argv: list[str]) -> int:
    from warmup_monitor import read_run

    if not argv:
        print("usage: python benchmarks/baselines.py PATH...", file=sys.stderr)
        return 2
    timings: dict[str, float] = {}
    print(f"{'RUN':<50} " + " ".join(f"{n:<22}" for n in BASELINES))
    for arg in argv:
        path = Path(arg)
        name = path.parent.name if path.name == "raw" else path.name
        try:
            run = read_run(path)
        except Exception as err:
            print(f"{name:<50} cannot read: {err}")
            continue
        verdicts = baseline_verdicts(run, timings)
        print(f"{name:<50} " + " ".join(f"{verdicts[n]:<22}" for n in BASELINES))
    print("seconds: " + ", ".join(f"{n} {t:.2f}" for n, t in timings.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
