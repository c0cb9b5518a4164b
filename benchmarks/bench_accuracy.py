"""Accuracy of ``diagnose`` on every labeled run: the sample runs and the real-world runs.

    python benchmarks/bench_accuracy.py                # both sets
    python benchmarks/bench_accuracy.py --no-stream    # skip the point-by-point replay
    python benchmarks/bench_accuracy.py --markdown     # the tables as Markdown only

Labeled runs:

* ``sample_logs/MANIFEST.json``: each scenario's ``label`` (or ``acceptable_verdicts``).
* ``../shared/realworld/*/case.json`` beside the repository root, when present:
  ``acceptable_verdicts`` (``null`` for unclear cases, which only must not crash).

For each run it prints the verdict, a confusion table (expected label x verdict), the misses
with the diagnosis summary, and for unstable runs how many logged loss points after the first
anomaly the verdict first appears when the run is replayed point by point (``run.prefix``).
A benchmark, not a test: it reports, it does not fail.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from warmup_monitor import read_run  # noqa: E402
from warmup_monitor.diagnosis import Verdict, diagnose  # noqa: E402
from warmup_monitor.run import Run  # noqa: E402

SAMPLES = ROOT / "sample_logs"
REALWORLD = ROOT / ".." / "shared" / "realworld"
UNSTABLE = {
    Verdict.WARMUP_TOO_SHORT.value,
    Verdict.LR_TOO_HIGH.value,
    Verdict.NUMERICAL_INSTABILITY.value,
}
VERDICTS = [v.value for v in Verdict]
STREAM_WINDOW = 40  # logged points replayed after the onset before giving up
LIVE_PREFIXES = 40  # prefixes of a healthy run replayed to count live false alarms


@dataclass
class Case:
    """One labeled run."""

    name: str
    group: str  # "sample" or "realworld"
    label: str
    acceptable: set[str] | None  # None: unclear, anything goes
    path: Path
    onset: int | None = None  # training step of the first anomaly, when the label gives it


@dataclass
class Result:
    case: Case
    verdict: str | None
    confidence: float | None
    summary: str
    first_problem_step: int | None
    seconds: float
    error: str | None = None
    latency: int | None = None  # logged points after the onset until the verdict appears
    latency_note: str = ""
    live_alarms: int | None = None  # prefixes of a healthy run with a problem verdict
    live_checked: int = 0
    live_first: str = ""


def _sample_cases() -> list[Case]:
    manifest = SAMPLES / "MANIFEST.json"
    if not manifest.is_file():
        return []
    data: Any = json.loads(manifest.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
    if isinstance(data, dict):
        data = [
            dict(v, name=k) if isinstance(v, dict) else {"name": k, "label": v}
            for k, v in data.items()
        ]
    out = []
    for entry in data:
        name = entry.get("name") or entry.get("scenario")
        label = entry.get("label")
        if not name or not label:
            continue
        path = SAMPLES / entry.get("path", name)
        acceptable = entry.get("acceptable_verdicts")
        acc = set(acceptable) if acceptable else ({label} if label in VERDICTS else None)
        onset = entry.get("onset_step") or entry.get("first_problem_step")
        out.append(Case(name, "sample", label, acc, path, int(onset) if onset else None))
    return out


def _realworld_cases() -> list[Case]:
    if not REALWORLD.is_dir():
        return []
    out = []
    for case_file in sorted(REALWORLD.glob("*/case.json")):
        c = json.loads(case_file.read_text(encoding="utf-8"))
        acc = c.get("acceptable_verdicts")
        out.append(
            Case(
                c.get("id", case_file.parent.name),
                "realworld",
                c.get("label", "unclear"),
                set(acc) if acc else None,
                case_file.parent / "raw",
            )
        )
    return out


def _loss_steps(run: Run) -> np.ndarray:
    if not run.has("loss"):
        return np.asarray(sorted(set(run.scalars["step"].tolist())))
    return run.series("loss")[0]


def _replay(run: Run, case: Case, onset: int) -> tuple[int | None, str]:
    """Feed the run point by point from the onset; points until an acceptable verdict."""
    steps = _loss_steps(run)
    start = int(np.searchsorted(steps, onset))
    for k, step in enumerate(steps[start : start + STREAM_WINDOW + 1]):
        d = diagnose(run.prefix(int(step)))
        if d.verdict.value in (case.acceptable or UNSTABLE):
            return k, f"step {int(step)}: {d.verdict.value}"
    return None, f"not within {STREAM_WINDOW} points of step {onset}"


def _live_alarms(run: Run) -> tuple[int, int, str]:
    """Replay evenly spaced prefixes; count those with a problem verdict (false alarms)."""
    steps = _loss_steps(run)
    if steps.size == 0:
        return 0, 0, ""
    picks = np.unique(np.linspace(0, steps.size - 1, min(LIVE_PREFIXES, steps.size)).astype(int))
    alarms, first = 0, ""
    for i in picks:
        d = diagnose(run.prefix(int(steps[i])))
        if d.verdict.value not in ("healthy", "insufficient_data"):
            alarms += 1
            first = first or f"step {int(steps[i])}: {d.summary}"
    return alarms, len(picks), first


def _evaluate(case: Case, stream: bool) -> Result:
    t0 = time.perf_counter()
    try:
        run = read_run(case.path)
        d = diagnose(run)
    except Exception as err:  # a benchmark reports crashes instead of stopping
        return Result(case, None, None, "", None, time.perf_counter() - t0, repr(err))
    res = Result(
        case,
        d.verdict.value,
        d.confidence,
        d.summary,
        d.first_problem_step,
        time.perf_counter() - t0,
    )
    if stream and case.acceptable is not None and "healthy" in case.acceptable:
        res.live_alarms, res.live_checked, res.live_first = _live_alarms(run)
    unstable = case.acceptable is not None and case.acceptable <= UNSTABLE
    if stream and unstable:
        onset = case.onset if case.onset is not None else d.first_problem_step
        if onset is None:
            res.latency_note = "no anomaly found in the full run"
        else:
            try:
                res.latency, res.latency_note = _replay(run, case, onset)
            except Exception as err:
                res.latency_note = f"replay crashed: {err!r}"
    return res


def _hit(r: Result) -> bool | None:
    if r.case.acceptable is None:
        return None if r.error is None else False
    return r.verdict in r.case.acceptable


def _confusion(results: list[Result]) -> str:
    labels = sorted({r.case.label for r in results})
    cols = [v for v in VERDICTS if any(r.verdict == v for r in results)] + (
        ["crash"] if any(r.error for r in results) else []
    )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        counts[r.case.label][r.verdict or "crash"] += 1
    lines = [
        "| label \\ verdict | " + " | ".join(cols) + " | accuracy |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for lab in labels:
        rs = [r for r in results if r.case.label == lab]
        hits = [_hit(r) for r in rs]
        scored = [h for h in hits if h is not None]
        acc = f"{sum(scored)}/{len(scored)}" if scored else "n/a (must not crash)"
        row = " | ".join(str(counts[lab][c]) if counts[lab][c] else "" for c in cols)
        lines.append(f"| {lab} | {row} | {acc} |")
    return "\n".join(lines)


def _summary(results: list[Result]) -> list[str]:
    healthy = [r for r in results if r.case.label == "healthy"]
    problems = [r for r in results if r.case.acceptable and "healthy" not in r.case.acceptable]
    unclear = [r for r in results if r.case.acceptable is None]
    out = []
    if healthy:
        ok = sum(1 for r in healthy if r.verdict == "healthy")
        out.append(f"healthy runs called healthy (no false alarm): {ok}/{len(healthy)}")
    if problems:
        ok = sum(1 for r in problems if _hit(r))
        out.append(
            f"problem runs in their acceptable set: {ok}/{len(problems)} "
            f"({100 * ok / len(problems):.0f}%)"
        )
    if unclear:
        crashed = sum(1 for r in unclear if r.error)
        out.append(f"unclear runs without a crash: {len(unclear) - crashed}/{len(unclear)}")
    live = [r for r in results if r.live_alarms is not None]
    if live:
        flagged = sum(1 for r in live if r.live_alarms)
        total = sum(r.live_checked for r in live)
        alarms = sum(r.live_alarms or 0 for r in live)
        out.append(
            f"healthy runs replayed live: {flagged}/{len(live)} ever show a problem verdict "
            f"({alarms} of {total} prefixes)"
        )
    lat = [r.latency for r in results if r.latency is not None]
    if lat:
        within = sum(1 for x in lat if x <= 2)
        out.append(
            f"unstable runs flagged within 2 logged points of the onset: {within}/{len(lat)} "
            f"(median {int(np.median(lat))}, max {max(lat)})"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-stream", action="store_true", help="skip the point-by-point replay")
    ap.add_argument("--markdown", action="store_true", help="print the Markdown tables only")
    args = ap.parse_args(argv)
    cases = _sample_cases() + _realworld_cases()
    if not cases:
        print("no labeled runs found (sample_logs/MANIFEST.json, ../shared/realworld)")
        return 0
    results = [_evaluate(c, stream=not args.no_stream) for c in cases]
    for group in ("sample", "realworld"):
        rs = [r for r in results if r.case.group == group]
        if not rs:
            continue
        title = "sample_logs" if group == "sample" else "real-world runs"
        print(f"\n### {title} ({len(rs)} runs)\n")
        print(_confusion(rs))
        print()
        for line in _summary(rs):
            print(f"- {line}")
    print("\n### all labeled runs\n")
    print(_confusion(results))
    print()
    for line in _summary(results):
        print(f"- {line}")
    if args.markdown:
        return 0
    print("\n### per run\n")
    for r in results:
        hit = _hit(r)
        mark = {True: "ok ", False: "MISS", None: "·  "}[hit]
        lat = f" latency={r.latency}" if r.latency is not None else ""
        print(
            f"{mark} {r.case.group:9s} {r.case.name[:44]:44s} label={r.case.label:22s} "
            f"-> {r.verdict or 'CRASH'} ({r.confidence}) {1000 * r.seconds:.0f} ms{lat}"
        )
    misses = [r for r in results if _hit(r) is False]
    if misses:
        print("\n### misses\n")
        for r in misses:
            accepted = sorted(r.case.acceptable or [])
            print(f"- {r.case.name}: expected one of {accepted}, got {r.verdict}")
            print(f"    {r.error or r.summary}")
    noisy = [r for r in results if r.live_alarms]
    if noisy:
        print("\n### live false alarms on healthy runs\n")
        for r in noisy:
            print(
                f"- {r.case.name}: {r.live_alarms}/{r.live_checked} prefixes; first {r.live_first}"
            )
    slow = [r for r in results if r.latency_note and (r.latency is None or r.latency > 2)]
    if slow:
        print("\n### late or missing live detection\n")
        for r in slow:
            print(f"- {r.case.name}: {r.latency_note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
