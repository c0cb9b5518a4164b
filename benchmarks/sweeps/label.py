"""Label every run of the sweep corpus from its siblings; write ``labels.json``.

    python benchmarks/sweeps/label.py            # label the runs on disk, write labels.json
    python benchmarks/sweeps/label.py --check    # exit 1 unless labels.json is what the rules give

The rules are in README.md ("How runs are labelled"); this script is their only implementation.
It reads each run's ``truth.json.gz`` (the per-step training loss and LR the generator recorded),
never the logs the diagnosis reads and never the diagnosis itself. Curves are measured with
``detectors.progress``, the same measures ``warmup-monitor compare`` uses.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402

from detectors.progress import ProgressConfig, smooth, steps_to_target, value_at  # noqa: E402

RUNS = HERE / "runs"
SPLIT = {r.name: ("calibration" if i % 2 == 0 else "test") for i, r in enumerate(generate.REGIMES)}
LABELS = HERE / "labels.json"

# --- the rules' numbers (README.md explains each) ---------------------------------------------
SMOOTH = ProgressConfig(smooth_points=5)  # trailing median of 5 per-step losses
CLIMB_SEVERE = 1.5  # smoothed loss at least this multiple of its running minimum: unstable
CLIMB_MILD = 1.2  # a visible rise, severe when it also costs the run its progress
PROGRESS_LOST = 0.25  # share of the achievable progress lost at the end of the run
LR_NEAR_ZERO = 0.02  # a NaN while the LR is at most this share of its peak is numerical
GUIDE_WARMUP = 0.1  # the guide's usual warmup share
GUIDE_MAX = 0.2  # the guide's largest warmup share
SLOWER = 1.5  # too long: needs at least this many times the best sibling's steps
SLOWER_BORDER = 1.25  # borderline too long
TARGET_AT = 0.25  # the target loss is the best sibling's loss at this share of the run
TAIL = 0.1  # the final loss is the mean of the last 10% of the steps


@dataclass
class RunFacts:
    group: str
    regime: str
    name: str
    path: str
    share: float
    warmup_steps: int
    steps: np.ndarray
    loss: np.ndarray
    lr: np.ndarray
    nonfinite_step: int | None = None
    nonfinite_lr_share: float | None = None
    climb: float = 1.0
    climb_step: int | None = None
    start: float = math.nan
    final: float = math.nan
    facts: dict[str, Any] = field(default_factory=dict)


def split_of(regime: str) -> str:
    """The half a regime belongs to: fixed once, before any label was seen.

    Regimes alternate between the halves in the order ``generate.REGIMES`` lists them (which
    keeps neighbours of one family apart); both seeds of a regime fall in the same half, so no
    test group has a calibration sibling of the same regime.
    """
    return SPLIT.get(regime, "test")


def _facts(path: Path) -> RunFacts:
    truth = generate.read_truth(path)
    loss = np.array([math.nan if x is None else x for x in truth["loss"]], dtype=np.float64)
    lr = np.array([math.nan if x is None else x for x in truth["learning_rate"]], dtype=np.float64)
    steps = np.arange(1, loss.size + 1)
    f = RunFacts(
        truth["group"],
        truth["regime"],
        path.name,
        str(path.relative_to(HERE)),
        float(truth["warmup_share"]),
        int(truth["warmup_steps"]),
        steps,
        loss,
        lr,
    )
    bad = np.flatnonzero(~np.isfinite(loss))
    peak = float(np.nanmax(lr)) if np.isfinite(lr).any() else math.nan
    if bad.size:
        f.nonfinite_step = int(steps[bad[0]])
        # The step's own update cannot have caused its loss: the LR that matters is the
        # previous step's (the first step has no previous update: LR 0 counts as ~0).
        prev_lr = float(lr[bad[0] - 1]) if bad[0] > 0 else 0.0
        f.nonfinite_lr_share = prev_lr / peak if peak > 0 else None
    fin = np.isfinite(loss)
    if fin.sum() >= 5:
        f.start = float(np.mean(loss[fin][:5]))
        s, sm = smooth(steps, loss, SMOOTH)
        running_min = np.minimum.accumulate(sm)
        ratio = sm / running_min
        ratio[:5] = 1.0  # the first window is still filling
        k = int(np.argmax(ratio))
        f.climb = float(ratio[k])
        if f.climb >= CLIMB_MILD:
            f.climb_step = int(s[np.flatnonzero(ratio >= CLIMB_MILD)[0]])
        tail = steps >= steps[-1] - TAIL * steps[-1]
        kept = loss[tail & fin]
        # A run whose last tenth is all NaN/Inf ends at an infinite loss.
        f.final = float(kept.mean()) if kept.size else math.inf
    else:
        f.final = math.inf
    return f


def label_group(runs: list[RunFacts]) -> list[dict[str, Any]]:
    """Labels for one group of siblings (same regime and seed, warmups differ)."""
    finals = [r.final for r in runs if math.isfinite(r.final)]
    best_final = min(finals) if finals else math.nan
    severe: dict[str, bool] = {}
    mild: dict[str, bool] = {}
    for r in runs:
        lost = (
            math.isfinite(best_final)
            and math.isfinite(r.start)
            and r.final > best_final + PROGRESS_LOST * max(r.start - best_final, 0.0)
        )
        severe[r.name] = (
            r.nonfinite_step is not None
            or r.climb >= CLIMB_SEVERE
            or (r.climb >= CLIMB_MILD and lost)
            or not math.isfinite(r.final)
        )
        mild[r.name] = not severe[r.name] and r.climb >= CLIMB_MILD
    # The best sibling: the stable one with the lowest loss at a quarter of the run.
    total = int(runs[0].steps[-1])
    at = TARGET_AT * total
    candidates = [r for r in runs if not severe[r.name]]
    best = None
    target = math.nan
    if candidates:
        best = min(candidates, key=lambda r: value_at(r.steps, r.loss, at, SMOOTH))
        target = value_at(best.steps, best.loss, at, SMOOTH)
    best_steps = steps_to_target(best.steps, best.loss, target, SMOOTH) if best else None
    out = []
    for r in runs:
        stt = steps_to_target(r.steps, r.loss, target, SMOOTH) if best is not None else None
        ratio = (stt / best_steps if stt is not None else math.inf) if best_steps else math.nan
        longer_stable = sorted(
            o.share
            for o in runs
            if o.share > r.share and o.share <= 1.0 and not severe[o.name] and not mild[o.name]
        )
        label, acceptable, why = _rule(r, severe[r.name], mild[r.name], longer_stable, ratio)
        onset = r.nonfinite_step
        if r.climb_step is not None and (onset is None or r.climb_step < onset):
            onset = r.climb_step
        out.append(
            {
                "run": r.path,
                "group": r.group,
                "regime": r.regime,
                "split": split_of(r.regime),
                "warmup_share": r.share,
                "warmup_steps": r.warmup_steps,
                "label": label,
                "acceptable_verdicts": acceptable,
                "strictly_healthy": acceptable == ["healthy"],
                "why": why,
                "onset_step": onset
                if label in ("warmup_too_short", "lr_too_high", "numerical_instability")
                else None,
                "numbers": {
                    "climb": round(r.climb, 3),
                    "nonfinite_step": r.nonfinite_step,
                    "start_loss": _r(r.start),
                    "final_loss": _r(r.final),
                    "best_final_loss": _r(best_final),
                    "target_loss": _r(target),
                    "best_sibling": best.name if best else None,
                    "steps_to_target": stt,
                    "best_steps_to_target": best_steps,
                    "slowdown": _r(ratio),
                },
            }
        )
    return out


def _r(x: float) -> float | None:
    return round(float(x), 4) if x is not None and math.isfinite(x) else None


def _rule(
    r: RunFacts, severe: bool, mild: bool, longer_stable: list[float], ratio: float
) -> tuple[str, list[str], str]:
    """(label, acceptable verdicts, the reason in words) for one run."""
    if severe:
        what = (
            f"non-finite loss from step {r.nonfinite_step}"
            if r.nonfinite_step is not None
            else f"smoothed loss climbs to x{r.climb:.2f} its running minimum"
        )
        if (
            r.nonfinite_step is not None
            and r.nonfinite_lr_share is not None
            and r.nonfinite_lr_share <= LR_NEAR_ZERO
        ):
            return (
                "numerical_instability",
                ["numerical_instability"],
                f"{what} while the LR is {100 * r.nonfinite_lr_share:.1f}% of its peak",
            )
        if longer_stable and r.share < GUIDE_WARMUP:
            acc = ["warmup_too_short"]
            if longer_stable[0] >= 0.3:
                acc.append("lr_too_high")  # only a long warmup rescues it: borderline
            return (
                "warmup_too_short",
                acc,
                f"{what}; the sibling with warmup {longer_stable[0]:.0%} is stable",
            )
        if longer_stable:
            return (
                "lr_too_high",
                ["lr_too_high", "warmup_too_short"],
                f"{what} with an already usual warmup; a {longer_stable[0]:.0%} warmup is stable",
            )
        return (
            "lr_too_high",
            ["lr_too_high"],
            f"{what}; no longer warmup that reaches its peak is stable",
        )
    if mild and r.share > GUIDE_MAX:
        # A recovered rise does not hide what a long warmup costs: the warmup rule decides the
        # label, and the rise makes "LR too high" an acceptable reading too.
        label, acc, why = _warmup_rule(r, ratio)
        return (
            label,
            [*acc, "lr_too_high"],
            f"{why}; a recovered rise to x{r.climb:.2f} its running minimum (borderline)",
        )
    if mild:
        if longer_stable and r.share < GUIDE_WARMUP:
            return (
                "warmup_too_short",
                ["warmup_too_short", "healthy"],
                f"a recovered rise to x{r.climb:.2f} its running minimum; the sibling with "
                f"warmup {longer_stable[0]:.0%} has none (borderline)",
            )
        return (
            "healthy",
            ["healthy", "lr_too_high", "warmup_too_short"],
            f"a recovered rise to x{r.climb:.2f} its running minimum that a longer warmup does "
            "not remove (borderline)",
        )
    return _warmup_rule(r, ratio)


def _warmup_rule(r: RunFacts, ratio: float) -> tuple[str, list[str], str]:
    """Rules 6 and 7: a stable run, judged on what its warmup cost against the best sibling."""
    slow = f"needs x{ratio:.2f} the best sibling's steps to its quarter-run loss"
    if r.share > GUIDE_MAX and (ratio >= SLOWER or math.isinf(ratio)):
        return "warmup_too_long", ["warmup_too_long"], f"warmup {r.share:.0%}; {slow}"
    if r.share > GUIDE_MAX and ratio >= SLOWER_BORDER:
        return (
            "warmup_too_long",
            ["warmup_too_long", "healthy"],
            f"warmup {r.share:.0%}; {slow} (borderline)",
        )
    if r.share > GUIDE_MAX:
        return (
            "healthy",
            ["healthy", "warmup_too_long"],
            f"warmup {r.share:.0%} did no measurable harm ({slow})",
        )
    return "healthy", ["healthy"], f"stable; {slow}"


def label_all(runs_dir: Path = RUNS) -> list[dict[str, Any]]:
    groups: dict[str, list[RunFacts]] = {}
    for truth in sorted(runs_dir.glob(f"*/*/{generate.TRUTH}")):
        f = _facts(truth.parent)
        groups.setdefault(f.group, []).append(f)
    out: list[dict[str, Any]] = []
    for name in sorted(groups):
        runs = sorted(groups[name], key=lambda r: r.share)
        if sorted(r.share for r in runs) != sorted(generate.WARMUPS):
            continue  # an incomplete group (still being generated) is not labelled yet
        out += label_group(runs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with labels.json, write nothing")
    args = ap.parse_args(argv)
    labels = label_all()
    doc = {"rules": "README.md#how-runs-are-labelled", "runs": labels}
    text = json.dumps(doc, indent=1) + "\n"
    if args.check:
        same = LABELS.is_file() and LABELS.read_text() == text
        print("labels.json is up to date" if same else "labels.json differs from the rules")
        return 0 if same else 1
    LABELS.write_text(text)
    counts: dict[tuple[str, str], int] = {}
    for x in labels:
        key = (x["split"], x["label"] + ("" if len(x["acceptable_verdicts"]) == 1 else "*"))
        counts[key] = counts.get(key, 0) + 1
    print(f"{len(labels)} runs labelled -> {LABELS.name}")
    for key in sorted(counts):
        print(f"  {key[0]:12s} {key[1]:26s} {counts[key]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
