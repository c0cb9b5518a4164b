"""Accuracy of ``diagnose`` on every labelled run, beside three baselines on the same runs.

    python benchmarks/bench_accuracy.py                 # every set, baselines, live replay
    python benchmarks/bench_accuracy.py --no-stream     # skip the point-by-point replay
    python benchmarks/bench_accuracy.py --no-peers      # diagnose and the rule of thumb only
    python benchmarks/bench_accuracy.py --markdown      # the tables only
    python benchmarks/bench_accuracy.py --jobs 2        # runs evaluated in 2 processes
    python benchmarks/bench_accuracy.py --no-cadence    # skip the re-logged sweep runs
    python benchmarks/bench_accuracy.py --no-bare       # skip the sweep runs without config

Labelled sets:

* ``sweep-calibration`` / ``sweep-test``: the sweep corpus (``benchmarks/sweeps/labels.json``),
  runs labelled by a script from sibling runs that differ only in warmup, split by regime into
  two fixed halves. Thresholds are tuned on the calibration half only; the test half is the
  honest figure.
* ``sample``: ``sample_logs/MANIFEST.json`` (the shipped sample runs).
* ``realworld``: ``../shared/realworld/*/case.json`` beside the repository root, when present
  (real runs from public repositories, labelled by a careful human reading; ``unclear`` runs
  only must not crash).

Every run gets a *kind* from its acceptable verdicts: ``strictly healthy`` (only ``healthy`` is
right: any other verdict is a false alarm), ``problem`` (``healthy`` is wrong), ``borderline``
(``healthy`` and a problem verdict are both right) and ``unclear`` (anything but a crash). The
baselines (``benchmarks/baselines.py``: a three-line rule of thumb, ``trainpulse`` and
``training-doctor``, each mapped to the verdict vocabulary as documented there) see the same
series.

It prints per set: false alarms on strictly-healthy runs and the share of problem runs whose
verdict is acceptable, for ``diagnose`` and each baseline; the confusion table of ``diagnose``;
a reliability table (for verdicts given at confidence c, the share that is right); the sweep by
architecture family, optimizer and starting point (where the rules hold and where they do not);
and, replaying runs point by point (``run.prefix``), the prefixes of strictly-healthy runs that
ever show a problem verdict and how many logged points after the onset an unstable run is flagged.

Logging cadence: every sweep run keeps its per-step loss, LR and grad norm (``truth.json.gz``), so
each one is also logged again as the HF Trainer would at ``logging_steps`` of 1, 2, 5, 10 and 20
(the mean loss of each window, the LR and grad norm of its last step), and as Lightning would
every 10 and 25 steps (the logged step's own loss), and diagnosed with the same labels: a rule
that only holds at the cadence a regime happened to be logged at shows up there.

Bare logs: every sweep run is also diagnosed with its config dropped (no run length, warmup or
peak from a config; an event file or log on its own), complete as the post-run report reads it
and replayed point by point for the strictly-healthy ones.
A benchmark, not a test: it reports, it does not fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "sweeps"))

import generate  # noqa: E402
from baselines import BASELINES, baseline_verdicts  # noqa: E402

from warmup_monitor import Points, diagnose, read_run  # noqa: E402
from warmup_monitor.diagnosis import Verdict  # noqa: E402
from warmup_monitor.run import Run  # noqa: E402

SAMPLES = ROOT / "sample_logs"
REALWORLD = ROOT / ".." / "shared" / "realworld"
SWEEP = HERE / "sweeps"
UNSTABLE = {
    Verdict.WARMUP_TOO_SHORT.value,
    Verdict.LR_TOO_HIGH.value,
    Verdict.NUMERICAL_INSTABILITY.value,
}
VERDICTS = [v.value for v in Verdict]
GROUPS = ("sweep-calibration", "sweep-test", "sample", "realworld")
STREAM_WINDOW = 40  # logged points replayed after the onset before giving up
LIVE_PREFIXES = 250  # at most this many prefixes of a strictly-healthy run (all if fewer)
CONFIDENCE_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 1.01)
# (logging_steps, how): the sweep runs are logged again as the Trainer logs (the window mean)
# and as Lightning logs (the logged step's own loss; its config says so, as its hparams.yaml does)
CADENCES = (
    (1, "mean"),
    (2, "mean"),
    (5, "mean"),
    (10, "mean"),
    (20, "mean"),
    (10, "single"),
    (25, "single"),
)
# The sweep's architectures by family, for the per-family breakdown.
FAMILY = {
    "gpt2": "pre-LN decoder",
    "llama": "pre-LN decoder",
    "mixtral": "pre-LN decoder",
    "neox": "pre-LN decoder",
    "opt": "pre-LN decoder",
    "bloom": "pre-LN decoder",
    "phi": "pre-LN decoder",
    "falcon": "pre-LN decoder",
    "gemma": "pre-LN decoder",
    "qwen2": "pre-LN decoder",
    "gptj": "pre-LN decoder",
    "gpt1": "post-LN decoder",
    "mamba": "state-space",
    "bert": "encoder / seq2seq",
    "bart": "encoder / seq2seq",
    "t5": "encoder / seq2seq",
    "lstm": "recurrent",
    "gru": "recurrent",
    "cnn": "image classifier",
    "resnet": "image classifier",
    "vit": "image classifier",
    "mixer": "image classifier",
    "mlp": "image classifier",
    "denoiser": "diffusion (noise prediction)",
}


@dataclass
class Case:
    """One labelled run."""

    name: str
    group: str
    label: str
    acceptable: frozenset[str] | None  # None: unclear, anything but a crash
    path: Path
    onset: int | None = None  # training step of the first anomaly, when the label gives it

    @property
    def kind(self) -> str:
        if self.acceptable is None:
            return "unclear"
        if self.acceptable == {"healthy"}:
            return "strictly healthy"
        return "borderline" if "healthy" in self.acceptable else "problem"


@dataclass
class Result:
    case: Case
    verdict: str | None
    confidence: float | None
    summary: str
    first_problem_step: int | None
    seconds: float
    error: str | None = None
    baselines: dict[str, str] = field(default_factory=dict)
    latency: int | None = None  # logged points after the onset until the verdict appears
    latency_note: str = ""
    live_alarms: int | None = None  # prefixes of a strictly-healthy run with a problem verdict
    live_checked: int = 0
    live_first: str = ""


# ---------------------------------------------------------------------------------- the cases
def _sweep_cases() -> list[Case]:
    labels = SWEEP / "labels.json"
    if not labels.is_file():
        return []
    out = []
    for x in json.loads(labels.read_text(encoding="utf-8"))["runs"]:
        path = SWEEP / x["run"]
        if not path.is_dir():
            continue
        acc = frozenset(x["acceptable_verdicts"])
        label = x["label"] + (" (borderline)" if len(acc) > 1 else "")
        out.append(Case(x["run"][5:], f"sweep-{x['split']}", label, acc, path, x.get("onset_step")))
    return out


def _sample_cases() -> list[Case]:
    manifest = SAMPLES / "MANIFEST.json"
    if not manifest.is_file():
        return []
    out = []
    for entry in json.loads(manifest.read_text(encoding="utf-8"))["scenarios"]:
        label = entry["label"]
        acc = entry.get("acceptable_verdicts") or [label]
        onset = entry.get("onset_step") or entry.get("first_problem_step")
        out.append(
            Case(
                entry["name"],
                "sample",
                label,
                frozenset(acc),
                SAMPLES / entry.get("path", entry["name"]),
                int(onset) if onset else None,
            )
        )
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
                frozenset(acc) if acc else None,
                case_file.parent / "raw",
            )
        )
    return out


# ---------------------------------------------------------------------------------- evaluation
def _loss_steps(run: Run) -> np.ndarray:
    for name in ("loss", "eval_loss"):
        if run.has(name):
            return run.series(name)[0]
    return np.asarray(sorted(set(run.scalars["step"].tolist())))


def _replay(run: Run, case: Case, onset: int) -> tuple[int | None, str]:
    """Feed the run point by point from the onset; points until an acceptable verdict."""
    steps = _loss_steps(run)
    start = int(np.searchsorted(steps, onset))
    accept = case.acceptable or frozenset(UNSTABLE)
    for k, step in enumerate(steps[start : start + STREAM_WINDOW + 1]):
        d = diagnose(run.prefix(int(step)))
        if d.verdict.value in accept:
            return k, f"step {int(step)}: {d.verdict.value}"
    return None, f"not within {STREAM_WINDOW} points of step {onset}"


def _live_alarms(run: Run) -> tuple[int, int, str]:
    """Replay every prefix (evenly spaced ones for long runs); count those with a problem
    verdict (false alarms)."""
    steps = _loss_steps(run)
    if steps.size == 0:
        return 0, 0, ""
    picks = np.unique(np.linspace(0, steps.size - 1, min(LIVE_PREFIXES, steps.size)).astype(int))
    alarms, first = 0, ""
    for i in picks:
        d = diagnose(run.prefix(int(steps[i])))
        if d.is_problem:
            alarms += 1
            first = first or f"step {int(steps[i])}: {d.summary}"
    return alarms, len(picks), first


def _evaluate(args: tuple[Case, bool, tuple[str, ...]]) -> Result:
    case, stream, peers = args
    t0 = time.perf_counter()
    try:
        run = read_run(case.path)
        # What the post-run report says: a log that records no end is complete.
        d = diagnose(run, ended=True)
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
    res.baselines = baseline_verdicts(run, only=peers)
    if stream and case.kind == "strictly healthy":
        res.live_alarms, res.live_checked, res.live_first = _live_alarms(run)
    if stream and case.acceptable is not None and case.acceptable <= UNSTABLE:
        onset = case.onset if case.onset is not None else d.first_problem_step
        if onset is None:
            res.latency_note = "no anomaly found in the full run"
        else:
            try:
                res.latency, res.latency_note = _replay(run, case, onset)
            except Exception as err:
                res.latency_note = f"replay crashed: {err!r}"
    return res


def _right(case: Case, verdict: str | None) -> bool | None:
    if case.acceptable is None:
        return None if verdict not in (None, "crash") else False
    return verdict in case.acceptable


def _relogged(case: Case, every: int, how: str = "mean") -> Run | None:
    """The sweep run's per-step record logged every ``every`` steps: as the Trainer logs it
    (``how="mean"``: the mean loss of the window) or as Lightning does (``"single"``: the loss
    of the logged step, with the ``loss_window`` its hparams.yaml gives the config)."""
    truth = generate.read_truth(case.path)
    if truth.get("format") == "eval":
        return None  # no training loss to log
    loss = np.asarray(truth["loss"], dtype=np.float64)
    lr = np.asarray(truth["learning_rate"], dtype=np.float64)
    grad = np.asarray(truth["grad_norm"], dtype=np.float64)
    rows = []
    for end in range(every, loss.size + 1, every):
        value = loss[end - 1] if how == "single" else loss[end - every : end].mean()
        rows.append(("train/loss", end, float(value), float(end)))
        rows.append(("train/learning_rate", end, float(lr[end - 1]), float(end)))
        rows.append(("train/grad_norm", end, float(grad[end - 1]), float(end)))
    config = {**truth["config"], "logging_steps": every}
    if how == "single":
        config["loss_window"] = 1
    points = Points.from_rows(rows)
    return Run.from_points(points, name=case.name, path=case.path, source="relogged", config=config)


def _cadence(case: Case) -> list[str | None]:
    """The verdict at each of :data:`CADENCES` (``None``: no training loss to log)."""
    out: list[str | None] = []
    for every, how in CADENCES:
        run = _relogged(case, every, how)
        out.append(diagnose(run, ended=True).verdict.value if run is not None else None)
    return out


def _bare(case: Case) -> tuple[str | None, bool | None]:
    """The run with its config dropped: the complete run's verdict (as the post-run report
    reads a log that records no end) and, for a strictly-healthy run, whether any prefix shows
    a problem verdict."""
    try:
        run = dataclasses.replace(read_run(case.path), config={})
        verdict = diagnose(run, ended=True).verdict.value
    except Exception:  # a benchmark reports crashes instead of stopping
        return None, None
    live = _live_alarms(run)[0] > 0 if case.kind == "strictly healthy" else None
    return verdict, live


def _half_counts(pairs: list[tuple[Case, str | None]]) -> tuple[int, int, int, int]:
    """``(false alarms, strictly-healthy runs, problem runs right, problem runs)`` over
    ``(case, verdict)`` pairs; a ``None`` verdict (a crash, or no run to judge) is left out."""
    judged = [(c, v) for c, v in pairs if v is not None]
    healthy = [v for c, v in judged if c.kind == "strictly healthy"]
    problems = [(c, v) for c, v in judged if c.kind == "problem"]
    right = sum(1 for c, v in problems if _right(c, v))
    return sum(1 for v in healthy if v != "healthy"), len(healthy), right, len(problems)


def _bare_table(cases: list[Case], got: list[tuple[str | None, bool | None]]) -> str:
    lines = [
        "| half | false alarms on strictly-healthy | problem runs right "
        "| strictly-healthy runs with a live problem verdict | crashes |",
        "|---|---:|---:|---:|---:|",
    ]
    for half in ("sweep-calibration", "sweep-test"):
        mine = [(c, v) for c, v in zip(cases, got, strict=True) if c.group == half]
        crashes = sum(1 for _, (verdict, _) in mine if verdict is None)
        fa, healthy, right, problems = _half_counts([(c, v) for c, (v, _) in mine])
        strict = [
            alarmed for c, (v, alarmed) in mine if v is not None and c.kind == "strictly healthy"
        ]
        live = sum(1 for alarmed in strict if alarmed)
        lines.append(
            f"| {half[6:]} | {fa}/{healthy} | {_pct(right, problems)} | {live}/{healthy} "
            f"| {crashes} |"
        )
    return "\n".join(lines)


def _cadence_table(cases: list[Case], verdicts: list[list[str | None]]) -> str:
    lines = [
        "| half | logged every | loss logged | false alarms on strictly-healthy "
        "| problem runs right |",
        "|---|---:|---|---:|---:|",
    ]
    logged = {"mean": "window mean (Trainer)", "single": "the step's own (Lightning)"}
    for half in ("sweep-calibration", "sweep-test"):
        for k, (every, how) in enumerate(CADENCES):
            pairs = [(c, vs[k]) for c, vs in zip(cases, verdicts, strict=True)]
            fa, healthy, right, problems = _half_counts([p for p in pairs if p[0].group == half])
            lines.append(
                f"| {half[6:] if k == 0 else ''} | {every} | {logged[how]} | {fa}/{healthy} "
                f"| {_pct(right, problems)} |"
            )
    alarms = [
        f"- {case.group} {case.name} logged every {every} ({how}): {verdict}"
        for case, vs in zip(cases, verdicts, strict=True)
        if case.kind == "strictly healthy"
        for (every, how), verdict in zip(CADENCES, vs, strict=True)
        if verdict not in (None, "healthy")
    ]
    if alarms:
        lines += ["", "False alarms at other cadences:", *alarms]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- the tables
def _scores(rs: list[Result], who: str) -> dict[str, Any]:
    def verdict(r: Result) -> str | None:
        return r.verdict if who == "diagnose" else r.baselines.get(who)

    healthy = [r for r in rs if r.case.kind == "strictly healthy"]
    problems = [r for r in rs if r.case.kind == "problem"]
    border = [r for r in rs if r.case.kind == "borderline"]
    return {
        "false_alarms": sum(1 for r in healthy if verdict(r) != "healthy"),
        "healthy": len(healthy),
        "problems_right": sum(1 for r in problems if _right(r.case, verdict(r))),
        "problems": len(problems),
        "border_right": sum(1 for r in border if _right(r.case, verdict(r))),
        "border": len(border),
        "crashes": sum(1 for r in rs if verdict(r) in (None, "crash")),
    }


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.0f}%)" if b else "–"


def _comparison(results: list[Result], peers: tuple[str, ...]) -> str:
    who = ("diagnose", *peers)
    lines = [
        "| set | runs | method | false alarms on strictly-healthy | problem runs right "
        "| borderline right | crashes |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for group in (*GROUPS, "all"):
        rs = results if group == "all" else [r for r in results if r.case.group == group]
        if not rs:
            continue
        for i, w in enumerate(who):
            s = _scores(rs, w)
            lines.append(
                f"| {group if i == 0 else ''} | {len(rs) if i == 0 else ''} | {w} "
                f"| {s['false_alarms']}/{s['healthy']} | {_pct(s['problems_right'], s['problems'])}"
                f" | {_pct(s['border_right'], s['border'])} | {s['crashes']} |"
            )
    return "\n".join(lines)


def _confusion(results: list[Result]) -> str:
    labels = sorted({r.case.label for r in results})
    cols = [v for v in VERDICTS if any(r.verdict == v for r in results)] + (
        ["crash"] if any(r.error for r in results) else []
    )
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        counts[r.case.label][r.verdict or "crash"] += 1
    lines = [
        "| label \\ verdict | " + " | ".join(cols) + " | right |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for lab in labels:
        rs = [r for r in results if r.case.label == lab]
        hits = [_right(r.case, r.verdict) for r in rs]
        scored = [h for h in hits if h is not None]
        acc = (
            f"{sum(scored)}/{len(scored)}"
            if scored
            else "n/a (no crash: " + (f"{sum(1 for r in rs if not r.error)}/{len(rs)})")
        )
        row = " | ".join(str(counts[lab][c]) if counts[lab][c] else "" for c in cols)
        lines.append(f"| {lab} | {row} | {acc} |")
    return "\n".join(lines)


def _reliability(results: list[Result]) -> str:
    scored = [r for r in results if r.confidence is not None and r.case.acceptable is not None]
    lines = ["| confidence | verdicts | right |", "|---|---:|---:|"]
    for lo, hi in itertools.pairwise(CONFIDENCE_BINS):
        rs = [r for r in scored if lo <= (r.confidence or 0) < hi]
        if not rs:
            continue
        right = sum(1 for r in rs if _right(r.case, r.verdict))
        hi_txt = "1.0" if hi > 1 else f"{hi:.1f}"
        lines.append(f"| {lo:.1f}–{hi_txt} | {len(rs)} | {_pct(right, len(rs))} |")
    return "\n".join(lines)


def _families(results: list[Result]) -> str:
    """Both sweep halves by architecture family, optimizer and starting point.

    A diagnostic view (where the rules hold and where they do not), not a tuning target: the
    thresholds are tuned on the calibration half only.
    """
    regimes = {r.name: r for r in generate.REGIMES}
    sweep = [r for r in results if r.case.group.startswith("sweep")]
    lines = [
        "| by | value | runs | false alarms on strictly-healthy | problem runs right "
        "| rule of thumb: problem runs right |",
        "|---|---|---:|---:|---:|---:|",
    ]
    keys = {
        "family": lambda g: FAMILY.get(g.arch, g.arch),
        "optimizer": lambda g: (
            g.optimizer
            + (" (Nesterov)" if g.nesterov else "")
            + (" (no momentum)" if g.optimizer == "sgd" and g.momentum == 0 else "")
            + (" (AMSGrad)" if g.amsgrad else "")
        ),
        "start": lambda g: {"full_ft": "full fine-tuning", "lora": "LoRA"}.get(g.init, g.init),
    }
    for by, key in keys.items():
        groups: dict[str, list[Result]] = defaultdict(list)
        for r in sweep:
            regime = regimes.get(r.case.name.split("__")[0])
            if regime is not None:
                groups[key(regime)].append(r)
        for i, (value, rs) in enumerate(sorted(groups.items())):
            d, rot = _scores(rs, "diagnose"), _scores(rs, "rule_of_thumb")
            lines.append(
                f"| {by if i == 0 else ''} | {value} | {len(rs)} | {d['false_alarms']}/"
                f"{d['healthy']} | {_pct(d['problems_right'], d['problems'])} "
                f"| {_pct(rot['problems_right'], rot['problems'])} |"
            )
    return "\n".join(lines)


def _live(results: list[Result]) -> list[str]:
    out = []
    live = [r for r in results if r.live_alarms is not None]
    if live:
        flagged = sum(1 for r in live if r.live_alarms)
        total = sum(r.live_checked for r in live)
        alarms = sum(r.live_alarms or 0 for r in live)
        out.append(
            f"strictly-healthy runs replayed live that ever show a problem verdict: "
            f"{flagged}/{len(live)} ({alarms} of {total} prefixes)"
        )
    lat = [r.latency for r in results if r.latency is not None]
    missed = sum(1 for r in results if r.latency is None and r.latency_note)
    if lat or missed:
        within = sum(1 for x in lat if x <= 2)
        med = f"median {int(np.median(lat))}, " if lat else ""
        out.append(
            "unstable runs flagged within 2 logged points of the onset: "
            f"{within}/{len(lat) + missed} ({med}not flagged within {STREAM_WINDOW} points: "
            f"{missed})"
        )
    return out


def _map(func: Any, items: list[Any], jobs: int, chunksize: int = 8) -> list[Any]:
    """``func`` over ``items`` in order, in ``jobs`` processes when more than one."""
    if jobs <= 1:
        return [func(x) for x in items]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(func, items, chunksize=chunksize))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-stream", action="store_true", help="skip the point-by-point replay")
    ap.add_argument("--no-peers", action="store_true", help="skip trainpulse and training-doctor")
    ap.add_argument("--markdown", action="store_true", help="print the Markdown tables only")
    ap.add_argument("--jobs", type=int, default=1, help="evaluate runs in N processes")
    ap.add_argument("--only", choices=GROUPS, action="append", help="evaluate only these sets")
    ap.add_argument(
        "--no-cadence",
        action="store_true",
        help="skip the sweep runs logged again at other cadences",
    )
    ap.add_argument(
        "--no-bare", action="store_true", help="skip the sweep runs diagnosed without their config"
    )
    args = ap.parse_args(argv)
    cases = _sweep_cases() + _sample_cases() + _realworld_cases()
    if args.only:
        cases = [c for c in cases if c.group in args.only]
    if not cases:
        print("no labelled runs found (benchmarks/sweeps, sample_logs, ../shared/realworld)")
        return 0
    peers = ("rule_of_thumb",) if args.no_peers else tuple(BASELINES)
    t0 = time.perf_counter()
    work = [(c, not args.no_stream, peers) for c in cases]
    results = _map(_evaluate, work, args.jobs, chunksize=4)
    print(f"{len(results)} labelled runs evaluated in {time.perf_counter() - t0:.0f} s\n")
    print("### diagnose beside the baselines\n")
    print(_comparison(results, peers))
    for group in GROUPS:
        rs = [r for r in results if r.case.group == group]
        if not rs:
            continue
        print(f"\n### {group} ({len(rs)} runs): diagnose\n")
        print(_confusion(rs))
        print()
        for line in _live(rs):
            print(f"- {line}")
    test = [r for r in results if r.case.group == "sweep-test"]
    print("\n### reliability of the confidence" + (" (sweep test half)" if test else "") + "\n")
    print(_reliability(test or results))
    if any(r.case.group.startswith("sweep") for r in results):
        print("\n### the sweep by family, optimizer and start (both halves)\n")
        print(_families(results))
    print("\n### live replay, all sets\n")
    for line in _live(results):
        print(f"- {line}")
    sweep = [c for c in cases if c.group.startswith("sweep")]
    if sweep and not args.no_cadence:
        relogged = _map(_cadence, sweep, args.jobs)
        print("\n### the sweep runs logged again at other cadences\n")
        print(_cadence_table(sweep, relogged))
    if sweep and not args.no_bare:
        bare = _map(_bare, sweep, args.jobs)
        print("\n### the sweep runs without their config (bare logs)\n")
        print(_bare_table(sweep, bare))
    if args.markdown:
        return 0
    print("\n### per run\n")
    for r in results:
        mark = {True: "ok  ", False: "MISS", None: "·   "}[_right(r.case, r.verdict)]
        lat = f" latency={r.latency}" if r.latency is not None else ""
        base = " ".join(f"{k}={v}" for k, v in r.baselines.items())
        print(
            f"{mark} {r.case.group:17s} {r.case.name[:42]:42s} {r.case.label:30s} -> "
            f"{r.verdict or 'CRASH'} ({r.confidence}){lat}  [{base}]"
        )
    misses = [r for r in results if _right(r.case, r.verdict) is False]
    if misses:
        print("\n### misses\n")
        for r in misses:
            print(
                f"- {r.case.group} {r.case.name}: expected one of "
                f"{sorted(r.case.acceptable or [])}, got {r.verdict}"
            )
            print(f"    {r.error or r.summary}")
    noisy = [r for r in results if r.live_alarms]
    if noisy:
        print("\n### live false alarms on strictly-healthy runs\n")
        for r in noisy:
            print(f"- {r.case.name}: {r.live_alarms}/{r.live_checked} prefixes; {r.live_first}")
    slow = [r for r in results if r.latency_note and (r.latency is None or r.latency > 2)]
    if slow:
        print("\n### late or missing live detection\n")
        for r in slow:
            print(f"- {r.case.group} {r.case.name}: {r.latency_note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
