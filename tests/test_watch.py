"""The watcher engine: bounded buffer, LR phase, immediate NaN alerts, dedup, verdict changes."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors._types import Finding, ScheduleFit, Severity
from detectors.schedules import lr_schedule
from warmup_monitor.diagnosis import Diagnosis, Verdict
from warmup_monitor.discover import RunRef
from warmup_monitor.points import Points
from warmup_monitor.run import Run
from warmup_monitor.sources import Source
from warmup_monitor.watch import NON_FINITE_KIND, AlertEngine, PointBuffer, Watcher


# ---------------------------------------------------------------------------------- fixtures
class _QueueSource(Source):
    """A source fed by the test: each ``poll()`` hands out what was queued since the last."""

    format = "test"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.pending: list[Points] = []
        self.closed = False

    def push(self, rows: list[tuple[str, int, float, float]]) -> None:
        self.pending.append(Points.from_rows(rows))

    def poll(self) -> Points:
        batch = Points.concat(self.pending)
        self.pending = []
        return batch

    def close(self) -> None:
        self.closed = True


def _Diag(
    verdict: str = "insufficient_data",
    confidence: float = 0.5,
    summary: str = "",
    schedule: ScheduleFit | None = None,
    findings: tuple[Finding, ...] = (),
    advice: tuple[Any, ...] = (),
    evidence: dict[str, Any] | None = None,
    first_problem_step: int | None = None,
) -> Diagnosis:
    """A real diagnosis with the fields a test chooses."""
    return Diagnosis(
        Verdict(verdict),
        confidence,
        summary,
        schedule,
        findings,
        advice,
        dict(evidence or {}),
        first_problem_step,
    )


class _Scripted:
    """A diagnose function returning whatever the test sets, and recording the runs it saw."""

    def __init__(self) -> None:
        self.result = _Diag()
        self.runs: list[Run] = []

    def __call__(self, run: Run) -> Diagnosis:
        self.runs.append(run)
        return self.result


def _rig(tmp_path: Path, names: tuple[str, ...] = ("a",)):
    """A watcher over ``len(names)`` run folders with queue sources and a scripted diagnosis."""
    sources: dict[str, _QueueSource] = {}
    refs = []
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        refs.append(RunRef(name, folder, "test"))

    def opener(ref: RunRef) -> Source:
        sources[ref.name] = _QueueSource(ref.path)
        return sources[ref.name]

    def find(path: Path) -> list[RunRef]:
        return [r for r in refs if r.path.exists()]

    diag = _Scripted()
    # No shared diagnosis budget: a test that sets diagnose_every=0 means every step diagnoses
    # (the budget has its own test).
    watcher = Watcher(
        tmp_path, notify=False, diagnose=diag, find=find, opener=opener, diagnosis_share=0.0
    )
    return watcher, sources, diag


def _rows(start: int, stop: int, t0: float = 1000.0) -> list[tuple[str, int, float, float]]:
    rows = []
    for s in range(start, stop):
        rows.append(("train/loss", s, 3.0 - 0.001 * s, t0 + s))
        rows.append(("train/learning_rate", s, min(1.0, (s + 1) / 100) * 3e-4, t0 + s))
    return rows


def _settle(watcher: Watcher) -> list[Any]:
    """Step until every run's pending diagnosis has run, however far the throttle put it (a
    slow machine makes the diagnosis, and so the wait after it, longer)."""
    events = watcher.step()

    def deadline() -> float:
        return max((st.engine.next_diagnosis for st in watcher._runs.values()), default=0) + 5

    while any(st.dirty for st in watcher._runs.values()) and time.time() < deadline():
        time.sleep(watcher._timeout())
        events += watcher.step()
    return events


def _finding(kind: str, step: int, severity: Severity, metric: str = "loss") -> Finding:
    return Finding(kind, severity, metric, step, None, f"{metric} {kind} at step {step}", {})


# ---------------------------------------------------------------------------------- buffer
def test_buffer_keeps_every_point_below_the_cap() -> None:
    """Below the cap the buffer returns every point, each tag in write order."""
    buf = PointBuffer(max_points_per_tag=1000)
    buf.add(Points.from_rows(_rows(0, 100)))
    buf.add(Points.from_rows(_rows(100, 200)))
    steps, values, walls = buf.series("train/loss")
    assert steps.tolist() == list(range(200))
    assert values[150] == pytest.approx(3.0 - 0.15)
    assert walls[0] == 1000.0
    assert len(buf.to_points()) == 400
    assert buf.lookup("train/loss", 150) == (pytest.approx(2.85), 1150.0)


def test_buffer_memory_is_flat_and_keeps_spikes_and_first_nan() -> None:
    """Over 1M points the kept count stays under the cap; the spike, the first NaN and the
    latest points survive thinning."""
    cap = 4000
    buf = PointBuffer(max_points_per_tag=cap)
    rng = np.random.default_rng(0)
    total = 1_000_000
    sizes = []
    for start in range(0, total, 10_000):
        steps = np.arange(start, start + 10_000, dtype=np.int64)
        values = 2.0 + 0.01 * rng.standard_normal(10_000)
        if start == 120_000:
            values[37] = 50.0  # a spike
        if start == 300_000:
            values[5:9] = np.nan  # a NaN stretch
        buf.add(
            Points(
                ("loss",),
                np.zeros(10_000, np.int32),
                steps,
                values,
                steps.astype(np.float64),
            )
        )
        sizes.append(len(buf))
    assert buf.total_added == total
    assert max(sizes) <= cap
    steps, values, _ = buf.series("loss")
    assert 120_037 in steps.tolist() and np.nanmax(values) == 50.0
    nan_steps = steps[np.isnan(values)].tolist()
    assert nan_steps and nan_steps[0] == 300_005
    assert steps[-1] == total - 1
    assert np.all(np.diff(steps) > 0)  # write order kept
    # The oldest stretch keeps its resolution: every 1% of the run still has points.
    assert len(np.unique(steps // 10_000)) == 100


def test_buffer_rejects_a_tiny_cap() -> None:
    """A cap too small to thin meaningfully is refused with the value named."""
    with pytest.raises(ValueError, match="got 10"):
        PointBuffer(max_points_per_tag=10)


# ---------------------------------------------------------------------------------- LR phase
@pytest.mark.parametrize("step", [60, 96, 99, 100, 101, 150, 250])
def test_watch_and_diagnosis_share_the_lr_phase(tmp_path: Path, step: int) -> None:
    """A NaN alerted straight from the batch gets the phase the diagnosis gives that step,
    near the peak too (one rule: detectors.schedules.lr_phase)."""
    from warmup_monitor.diagnosis import _schedule

    lrs = lr_schedule("linear", np.arange(0, 300), 1e-3, 100, 300)
    rows = [("train/learning_rate", s, float(lrs[s]), 1000.0 + s) for s in range(step + 1)]
    rows += [("train/loss", s, 3.0 - 0.001 * s, 1000.0 + s) for s in range(step)]
    rows.append(("train/loss", step, math.nan, 1000.0 + step))
    engine = AlertEngine("a", diagnose=lambda run: _Diag())
    (event,) = engine.add(Points.from_rows(rows))
    expected = _schedule(engine.run(), step).phase_at(step)
    assert event.lr_phase == expected


@pytest.mark.parametrize("step", [10, 38, 39, 60])
def test_watch_reads_a_schedule_free_optimizer_s_own_warmup(step: int) -> None:
    """The logged LR is flat, but schedule_free_adamw warms up over warmup_steps 40 itself:
    the NaN alert's LR and phase are those of the LR it applied, as in the diagnosis."""
    from warmup_monitor.diagnosis import _schedule

    config = {"optim": "schedule_free_adamw", "warmup_steps": 40, "max_steps": 300}
    rows = [("train/learning_rate", s, 1e-3, 1000.0 + s) for s in range(step + 1)]
    rows += [("train/loss", s, 3.0 - 0.001 * s, 1000.0 + s) for s in range(step)]
    rows.append(("train/loss", step, math.nan, 1000.0 + step))
    engine = AlertEngine("a", diagnose=lambda run: _Diag(), config=config)
    (event,) = engine.add(Points.from_rows(rows))
    assert event.lr == pytest.approx(1e-3 * min(1.0, (step + 1) / 40))
    assert event.lr_phase == _schedule(engine.run(), step).phase_at(step)
    assert (event.lr_phase == "warmup") == (step < 40)  # live, the peak shows once passed


# ---------------------------------------------------------------------------------- watcher
def test_nan_is_alerted_from_the_batch_before_diagnosis(tmp_path: Path) -> None:
    """A NaN loss is reported straight from the batch with step, value, LR and phase."""
    watcher, sources, _ = _rig(tmp_path)
    diag_calls: list[int] = []

    def failing(run: Run) -> Any:
        diag_calls.append(len(run.scalars))
        raise RuntimeError("diagnosis not ready")

    watcher._diagnose = failing
    watcher.step()
    rows = _rows(0, 40)
    rows.append(("train/loss", 40, math.nan, 1040.0))
    sources["a"].push(rows)
    events = watcher.step()
    nan = [e for e in events if e.event == "finding"]
    assert len(nan) == 1
    ev = nan[0]
    assert (ev.detector, ev.metric, ev.step, ev.severity) == (
        NON_FINITE_KIND,
        "loss",
        40,
        Severity.CRITICAL,
    )
    assert math.isnan(ev.value) and ev.lr_phase == "warmup"
    assert ev.lr == pytest.approx(40 / 100 * 3e-4)
    assert "loss is NaN at step 40" in ev.message
    assert ev.point_time == 1040.0 and ev.is_alert
    # The failing diagnosis is reported once as a notice, and did not hold back the alert.
    notices = [e for e in events if e.event == "notice"]
    assert len(notices) == 1 and "RuntimeError: diagnosis not ready" in notices[0].message
    assert diag_calls


def test_a_nan_stretch_alerts_once_and_a_new_stretch_again(tmp_path: Path) -> None:
    """Consecutive NaN points give one alert; NaN again after finite values is a new alert."""
    watcher, sources, _ = _rig(tmp_path)
    watcher.step()
    src = sources["a"]
    src.push([("loss", s, math.nan, float(s)) for s in range(10, 13)])
    first = [e for e in watcher.step() if e.event == "finding"]
    src.push([("loss", s, math.nan, float(s)) for s in range(13, 16)])
    second = [e for e in watcher.step() if e.event == "finding"]
    src.push([("loss", 16, 1.0, 16.0), ("loss", 17, math.inf, 17.0)])
    third = [e for e in watcher.step() if e.event == "finding"]
    assert [e.step for e in first] == [10]
    assert second == []
    assert [e.step for e in third] == [17]


def test_grad_norm_nan_alerts_even_when_loss_is_finite(tmp_path: Path) -> None:
    """HF hides a NaN loss; a NaN grad norm next to loss 0.0 is still alerted."""
    watcher, sources, _ = _rig(tmp_path)
    watcher.step()
    sources["a"].push([("loss", 5, 0.0, 5.0), ("grad_norm", 5, math.nan, 5.0)])
    (ev,) = [e for e in watcher.step() if e.event == "finding"]
    assert (ev.metric, ev.step) == ("grad_norm", 5)


def test_findings_are_deduplicated_and_reemitted_when_more_severe(tmp_path: Path) -> None:
    """The same (kind, metric, step) is emitted once; a higher severity is emitted again."""
    watcher, sources, diag = _rig(tmp_path)
    watcher.diagnose_every = 0.0
    watcher.step()
    spike = _finding("spike", 30, Severity.WARNING)
    diag.result = _Diag(verdict="healthy", findings=(spike,))
    seen = []
    for k in range(4):
        sources["a"].push(_rows(10 * k, 10 * k + 10))
        seen += [e for e in _settle(watcher) if e.event == "finding"]
    assert [(e.detector, e.step, e.severity) for e in seen] == [("spike", 30, Severity.WARNING)]
    worse = _finding("spike", 30, Severity.CRITICAL)
    diag.result = _Diag(verdict="healthy", findings=(worse, spike))
    sources["a"].push(_rows(40, 50))
    again = [e for e in _settle(watcher) if e.event == "finding"]
    assert [(e.step, e.severity) for e in again] == [(30, Severity.CRITICAL)]
    assert watcher.stats.alerts == 2


def test_detector_confirmation_of_an_immediate_nan_is_not_repeated(tmp_path: Path) -> None:
    """The diagnosis finding the NaN already alerted from the batch does not alert again."""
    watcher, sources, diag = _rig(tmp_path)
    watcher.diagnose_every = 0.0
    watcher.step()
    nan_finding = Finding(
        "non_finite", Severity.CRITICAL, "loss", 40, 42, "loss is NaN from step 40", {}
    )
    diag.result = _Diag(verdict="numerical_instability", findings=(nan_finding,))
    rows = _rows(0, 40) + [("train/loss", s, math.nan, 1000.0 + s) for s in (40, 41, 42)]
    sources["a"].push(rows)
    events = _settle(watcher)
    findings = [e for e in events if e.event == "finding"]
    verdicts = [e for e in events if e.event == "verdict"]
    assert [(e.detector, e.step) for e in findings] == [(NON_FINITE_KIND, 40)]
    assert [e.verdict for e in verdicts] == ["numerical_instability"]


def test_verdict_changes_are_emitted_once_each(tmp_path: Path) -> None:
    """A verdict line appears when the verdict changes, not on every diagnosis."""
    watcher, sources, diag = _rig(tmp_path)
    watcher.diagnose_every = 0.0
    watcher.step()
    advice = ({"text": "Raise warmup_steps to 120", "parameter": "warmup_steps"},)
    sequence = ["insufficient_data", "healthy", "healthy", "warmup_too_short", "warmup_too_short"]
    verdicts = []
    for k, verdict in enumerate(sequence):
        diag.result = _Diag(
            verdict=verdict, confidence=0.8, summary=f"verdict {verdict}", advice=advice
        )
        sources["a"].push(_rows(10 * k, 10 * k + 10))
        verdicts += [e for e in _settle(watcher) if e.event == "verdict"]
    assert [e.verdict for e in verdicts] == ["healthy", "warmup_too_short"]
    assert not verdicts[0].is_alert and verdicts[1].is_alert
    assert verdicts[1].severity == Severity.WARNING  # a problem verdict without findings
    assert verdicts[1].advice[0]["text"] == "Raise warmup_steps to 120"
    assert verdicts[1].confidence == 0.8


def test_problem_verdict_with_only_info_findings_is_a_warning(tmp_path: Path) -> None:
    """A problem verdict reaches warning, as in report --fail-on, even if its findings are info."""
    watcher, sources, diag = _rig(tmp_path)
    watcher.diagnose_every = 0.0
    watcher.step()
    note = _finding("slow_decline", 5, Severity.INFO)
    diag.result = _Diag(verdict="warmup_too_long", summary="too long", findings=(note,))
    sources["a"].push(_rows(0, 10))
    (verdict,) = [e for e in _settle(watcher) if e.event == "verdict"]
    assert verdict.severity == Severity.WARNING and verdict.is_alert


def test_diagnosis_is_throttled_but_sees_everything(tmp_path: Path) -> None:
    """Batches arriving faster than diagnose_every are diagnosed together, later."""
    watcher, sources, diag = _rig(tmp_path)
    watcher.diagnose_every = 1.0
    watcher.step()
    start = time.time()
    for k in range(10):
        sources["a"].push(_rows(10 * k, 10 * k + 10))
        watcher.step()
    took = time.time() - start
    # The first batch is diagnosed at once; the rest waits for the throttle (a machine so
    # slow that the loop outlasted it may have diagnosed once more, never once per batch).
    assert len(diag.runs) <= 1 + took / watcher.diagnose_every
    if took < watcher.diagnose_every:
        assert len(diag.runs) == 1
    diagnosed = len(diag.runs)
    deadline = max(st.engine.next_diagnosis for st in watcher._runs.values()) + 5
    while any(st.dirty for st in watcher._runs.values()) and time.time() < deadline:
        time.sleep(watcher._timeout())
        watcher.step()
    assert len(diag.runs) <= diagnosed + 1
    steps, _ = diag.runs[-1].series("loss")
    assert steps.tolist() == list(range(100))


def test_a_vanished_run_is_reported_once_and_others_continue(tmp_path: Path) -> None:
    """A run folder that disappears gives one run_removed event; the other run is still read."""
    watcher, sources, _ = _rig(tmp_path, ("a", "b"))
    added = [e.run for e in watcher.step() if e.event == "run_added"]
    assert added == ["a", "b"]
    shutil.rmtree(tmp_path / "a")
    watcher._need_rescan = True
    removed = [e for e in watcher.step() if e.event == "run_removed"]
    assert [e.run for e in removed] == ["a"] and "still watching 1 other run" in removed[0].message
    assert sources["a"].closed
    watcher._need_rescan = True
    assert [e for e in watcher.step() if e.event == "run_removed"] == []
    sources["b"].push([("loss", 1, math.nan, 1.0)])
    assert [e.run for e in watcher.step() if e.event == "finding"] == ["b"]
    assert watcher.stats.runs_watched == 2


def test_source_warnings_and_status_become_notices(tmp_path: Path) -> None:
    """New reader warnings and a crashed status are passed on once."""
    watcher, sources, _ = _rig(tmp_path)
    watcher.step()
    src = sources["a"]
    src.warnings.append("file shrank; reading it again from the start")
    src.status = "crashed"
    notices = [e.message for e in watcher.step() if e.event == "notice"]
    assert notices == ["file shrank; reading it again from the start", "run 'a' crashed"]
    assert [e for e in watcher.step() if e.event == "notice"] == []


def test_event_json_has_the_finding_schema_and_null_for_nan(tmp_path: Path) -> None:
    """The JSON form carries the finding schema plus event/run/time, NaN as null."""
    watcher, sources, _ = _rig(tmp_path)
    watcher.step()
    sources["a"].push([("loss", 7, math.nan, 7.0)])
    (ev,) = [e for e in watcher.step() if e.event == "finding"]
    data = ev.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["value"] is None
    for key in ("detector", "severity", "metric", "step", "end_step", "message", "evidence"):
        assert key in data
    assert (data["event"], data["run"], data["severity"]) == ("finding", "a", "critical")


def test_once_reads_everything_and_diagnoses_each_run(tmp_path: Path) -> None:
    """--once: every run is read and diagnosed in one pass, regardless of the throttle."""
    watcher, _, diag = _rig(tmp_path, ("a", "b"))
    watcher.diagnose_every = 100.0
    original = watcher._open

    def opener(ref: RunRef) -> Source:
        src = original(ref)
        src.push(_rows(0, 20))
        return src

    watcher._open = opener
    watcher.once()
    assert sorted(r.name for r in diag.runs) == ["a", "b"]
    assert watcher.stats.points_read == 80


def test_missing_path_is_an_input_error_unless_waiting(tmp_path: Path) -> None:
    """A missing path fails with a hint about --wait; with wait=True it is accepted."""
    from warmup_monitor.errors import InputError

    with pytest.raises(InputError, match=r"does not exist.*--wait"):
        Watcher(tmp_path / "nope").check()
    Watcher(tmp_path / "nope", wait=True).check()


def test_a_failing_source_is_reported_once_and_recovers(tmp_path: Path) -> None:
    """A source whose poll raises is reported once; the watch goes on and reads it later."""
    from warmup_monitor.errors import FormatError

    watcher, sources, _ = _rig(tmp_path)
    watcher.step()
    src = sources["a"]
    original = src.poll
    failures = iter(range(3))

    def flaky() -> Points:
        if next(failures, None) is not None:
            raise FormatError(f"record at byte {time.time_ns()} is corrupted", "Skip it")
        return original()

    src.poll = flaky  # type: ignore[method-assign]
    notices = []
    for _ in range(3):
        notices += [e for e in watcher.step() if e.event == "notice"]
    assert len(notices) == 1 and "cannot read run 'a'" in notices[0].message
    src.push([("loss", 3, math.nan, 3.0)])
    assert [e.step for e in watcher.step() if e.event == "finding"] == [3]


_REALWORLD = Path(__file__).resolve().parents[1] / ".." / "shared" / "realworld"


def test_streaming_a_real_log_ends_with_the_whole_file_verdict(tmp_path: Path) -> None:
    """A real trainer_log.jsonl replayed in chunks: the watcher's last verdict is the verdict
    of the whole file read at once."""
    source = _REALWORLD / "ok_lf_qwen7b_medical" / "raw" / "trainer_log.jsonl"
    if not source.is_file():
        pytest.skip("real-world runs not available")
    from warmup_monitor.diagnosis import diagnose
    from warmup_monitor.discover import open_source, read_run

    lines = source.read_bytes().splitlines(keepends=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    target = run_dir / "trainer_log.jsonl"
    target.write_bytes(b"".join(lines[:50]))
    watcher = Watcher(run_dir, notify=False, diagnose_every=0.0, diagnosis_share=0.0)
    events = watcher.once()
    for start in range(50, len(lines), 97):
        with target.open("ab") as fh:
            fh.write(b"".join(lines[start : start + 97]))
        events += _settle(watcher)
    whole = diagnose(read_run(run_dir)).verdict.value
    assert watcher._memory["run"].verdict == whole
    with open_source(run_dir) as whole_source:
        assert watcher.stats.points_read == len(whole_source.poll())
    keys = [(e.detector, e.metric, e.step) for e in events if e.event == "finding"]
    assert len(keys) == len(set(keys))  # nothing reported twice


# ---------------------------------------------------------------------------------- engine
def test_engine_fed_point_by_point_alerts_once_without_files() -> None:
    """An in-process feed (one logging step at a time, no files): the NaN is alerted at once
    and once, the real diagnosis then turns it into a verdict, said once."""
    engine = AlertEngine("live", config={"max_steps": 300}, diagnose_every=0.0)
    events = []
    for step in range(1, 60):
        lr = min(1.0, step / 30) * 1e-3
        loss = 3.0 - 0.01 * step if step < 50 else math.nan
        events += engine.log(step, {"loss": loss, "learning_rate": lr, "epoch": "n/a"})
    events += engine.diagnose()  # the throttle may have skipped the last points on a busy machine
    nan = [e for e in events if e.event == "finding" and e.detector == NON_FINITE_KIND]
    assert [(e.metric, e.step, e.severity) for e in nan] == [("loss", 50, Severity.CRITICAL)]
    assert nan[0].lr_phase == "constant" and nan[0].is_alert  # flat after the warmup
    verdicts = [e.verdict for e in events if e.event == "verdict"]
    assert verdicts and verdicts[-1] not in ("healthy", "insufficient_data")
    assert len(verdicts) == len(set(verdicts))
    assert engine.stats.points_read == 2 * 59
    engine.log(60, {"loss": math.nan, "learning_rate": 1e-3})
    assert engine.diagnose() == []  # the same NaN stretch, the same verdict: nothing new


class _AlwaysChanged:
    """A notifier reporting every watched folder as written to, as a busy writer would."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = {str(p) for p in paths}
        self.alive = True
        self.muted: set[str] = set()

    def wait(self, timeout: float) -> bool:
        return True

    def take(self) -> tuple[set[str], bool]:
        return set(self.paths), False

    def interrupt(self) -> None:
        pass

    def set_runs(self, paths: Any) -> None:
        pass

    def mute(self, path: str) -> None:
        self.muted.add(path)

    def unmute(self, path: str) -> None:
        self.muted.discard(path)

    def stop(self) -> None:
        pass


def test_a_busy_run_is_read_once_per_interval_and_nothing_is_lost(tmp_path: Path) -> None:
    """However many writes are notified, a run is read at most once per read_every."""
    watcher, sources, _ = _rig(tmp_path)
    watcher.read_every = 0.2
    watcher.interval = 60.0  # no timed full poll during the test
    watcher.step()  # finds the run and reads it once
    watcher._notifier = _AlwaysChanged([tmp_path / "a"])
    polls = []
    source = sources["a"]
    real_poll = source.poll

    def counting_poll() -> Points:
        polls.append(time.time())
        return real_poll()

    source.poll = counting_poll  # type: ignore[method-assign]
    start = time.time()
    for k in range(20):
        source.push(_rows(10 * k, 10 * k + 10))
        watcher.step()
    if time.time() - start < 0.2:
        assert len(polls) <= 1
    assert 0 < watcher._timeout() <= 0.2  # woken again when the next read is due
    time.sleep(watcher._timeout())
    watcher.step()
    assert watcher.stats.points_read == 400  # every point, read in few polls
    assert len(polls) <= 2 + (time.time() - start) / 0.2


def test_busy_runs_share_one_diagnosis_budget(tmp_path: Path) -> None:
    """n busy runs: each waits n times its diagnosis time over the shared budget."""
    watcher, sources, diag = _rig(tmp_path, names=tuple("abcdefghij"))
    watcher.diagnosis_share = 0.02

    def slow(run: Run) -> Diagnosis:
        time.sleep(0.005)
        return diag(run)

    watcher._diagnose = slow
    watcher.step()
    for source in sources.values():
        source.push(_rows(0, 10))
    before = time.time()
    watcher.step()
    assert len(diag.runs) == 10
    # 10 runs x 5 ms / 2% of a core: each run's next diagnosis is at least 2.5 s away.
    waits = [st.engine.next_diagnosis - before for st in watcher._runs.values()]
    assert min(waits) >= 2.5


def test_every_nan_stretch_of_a_batch_is_alerted_at_once() -> None:
    """Two separate NaN stretches read in one batch (a poll that caught several writes) are
    both alerted straight from the data, as they are when read one write at a time: the
    second does not wait for a diagnosis."""
    engine = AlertEngine("a", diagnose=lambda run: _Diag(), diagnose_every=3600.0)
    rows = []
    for step in range(1, 31):
        loss = math.nan if step in (12, 13, 25) else 3.0 - 0.01 * step
        rows.append(("train/loss", step, loss, 1000.0 + step))
    events = engine.add(Points.from_rows(rows))
    assert [(e.metric, e.step) for e in events] == [("loss", 12), ("loss", 25)]
    one_by_one = AlertEngine("b", diagnose=lambda run: _Diag(), diagnose_every=3600.0)
    seen = [e.step for row in rows for e in one_by_one.add(Points.from_rows([row]))]
    assert seen == [12, 25]
