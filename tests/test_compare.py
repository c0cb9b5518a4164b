"""The comparison of sibling runs: settings that differ, seed groups, measures, ranking, sentence.

The number checks use a synthetic sweep written by torch's SummaryWriter whose losses are
piecewise linear with slopes of 1/16 (exact in float32), so every figure can be computed by hand:
run ``(W, seed)`` logs, at steps 0..100, ``4`` until step ``W + d`` and ``4 - (step - W - d)/16``
after it, floored at 1, where the seed's delay ``d`` is 0 for seed 1 and 2 for seed 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_monitor.compare import build_comparison, compare_report, setting_label
from warmup_monitor.diagnosis import diagnose
from warmup_monitor.errors import InputError
from warmup_monitor.points import Points
from warmup_monitor.render.compare import comparison_to_dict
from warmup_monitor.report import Report, RunReport
from warmup_monitor.run import Run

SWEEP = Path(__file__).resolve().parent / "fixtures" / "sweep"
WARMUPS = (0, 8, 16)
SEEDS = {1: 0, 2: 2}  # seed -> delay in steps


def _loss(step: int, warmup: int, delay: int, floor: float = 1.0) -> float:
    return max(floor, 4.0 - max(0, step - warmup - delay) / 16)


def _write(
    writer: Any,
    folder: Path,
    loss: Callable[[int], float],
    *,
    last: int = 100,
    first: int = 0,
    warmup: int | None = None,
    lr: float = 1e-3,
    config: dict[str, Any] | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    w = writer(folder)
    for step in range(first, last + 1):
        w.add_scalar("train/loss", loss(step), step)
        if warmup is not None:
            w.add_scalar("train/learning_rate", lr * min(1.0, step / warmup if warmup else 1), step)
    w.flush()
    if config is not None:
        (folder / "args.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three warmups x two seeds, each run with its ``args.json``."""
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path_factory.mktemp("sweep")
    writers: list[Any] = []

    def make(folder: Path) -> Any:
        writers.append(SummaryWriter(str(folder)))
        return writers[-1]

    for warmup in WARMUPS:
        for seed, delay in SEEDS.items():
            _write(
                make,
                root / f"w{warmup}" / f"s{seed}",
                lambda s, w=warmup, d=delay: _loss(s, w, d),
                warmup=warmup,
                config={"warmup_steps": warmup, "learning_rate": 1e-3, "seed": seed},
            )
    for w in writers:
        w.close()
    return root


def test_hand_computed_sweep(synthetic: Path) -> None:
    """Target, steps to it, steps lost, ratio, final loss and area match a hand computation."""
    c = build_comparison([synthetic], smooth_points=1)
    assert c.varying == ("warmup_steps",)
    assert c.constant == {"learning_rate": 1e-3}
    # At step 25 (25% of 0..100) warmup 0 is at 4 - 25/16 (seed 1) and 4 - 23/16 (seed 2).
    assert c.target == pytest.approx(2.5)
    assert c.target_label == "warmup 0"
    assert [e.label for e in c.entries] == ["warmup 0", "warmup 8", "warmup 16"]
    # Seed 1 reaches 2.5 when (step - W)/16 >= 1.5, i.e. at W + 24; seed 2 two steps later.
    assert [m.steps_to_target for e in c.entries for m in e.runs] == [24, 26, 32, 34, 40, 42]
    steps = [e.steps_to_target for e in c.entries]
    assert [s.mean for s in steps] == [25, 33, 41]  # type: ignore[union-attr]
    assert [(s.min, s.max) for s in steps] == [(24, 26), (32, 34), (40, 42)]  # type: ignore[union-attr]
    assert [e.steps_lost for e in c.entries] == [0, 8, 16]
    assert [e.ratio for e in c.entries] == pytest.approx([1.0, 33 / 25, 41 / 25])
    # Every run is at its floor of 1 over the last 5% (steps 95-100).
    assert all(e.final_loss.mean == 1.0 for e in c.entries)  # type: ignore[union-attr]
    # Area: the trapezoids of a piecewise-linear curve are exact. Warmup 0, seed 1: 48 steps
    # falling from 4 to 1 (area 120) then 52 steps at 1, over 100 steps: 1.72; seed 2 adds 2
    # steps at 4 and loses 2 at 1: 1.78. Warmup 8: 1.96 and 2.02; warmup 16: 2.20 and 2.26.
    areas = [e.area.mean for e in c.entries]  # type: ignore[union-attr]
    assert areas == pytest.approx([1.75, 1.99, 2.23])
    assert c.equal_length and c.common_end == 100
    assert c.conclusion.startswith("warmup 0 reached loss 2.5 in 25 steps; warmup 16 needed 41")
    assert "(1.6x)" in c.conclusion and "shorten it" in c.conclusion


def test_given_target(synthetic: Path) -> None:
    """--target replaces the default: 2.0 is reached at W + d + 32."""
    c = build_comparison([synthetic], smooth_points=1, target=2.0)
    assert c.target_given and c.target_label is None
    assert [e.steps_to_target.mean for e in c.entries] == [33, 41, 49]  # type: ignore[union-attr]


def test_default_smoothing_keeps_the_order_of_a_noisy_sweep(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """Per-step noise of +-0.3 does not reorder settings 20 steps apart; the window is reported."""
    for warmup in (0, 20, 40):
        _write(
            torch_writer,
            tmp_path / f"w{warmup}",
            lambda s, w=warmup: _loss(s, w, 0, floor=0.5) + (0.3 if s % 2 else -0.3),
            last=200,
            config={"warmup_steps": warmup},
        )
    c = build_comparison([tmp_path])
    assert [e.label for e in c.entries] == ["warmup 0", "warmup 20", "warmup 40"]
    assert c.smooth_points == (4, 4)  # 2% of 201 points


def test_runs_of_different_lengths_use_common_steps(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """A 100-step and a 200-step run: measured up to step 100, share of each own run reported."""
    _write(torch_writer, tmp_path / "short", lambda s: _loss(s, 0, 0), config={"max_steps": 100})
    _write(
        torch_writer,
        tmp_path / "long",
        lambda s: _loss(s, 10, 0),
        last=200,
        config={"max_steps": 200},
    )
    c = build_comparison([tmp_path], smooth_points=1)
    assert not c.equal_length and c.common_end == 100
    assert c.varying == ("max_steps",)
    by_label = {e.label: e for e in c.entries}
    # Target: the short run at its step 25 (2.4375); the long run at its step 50 is at 1.5.
    # The long run is lower at a quarter of its own run, so it sets the target: 4 - 40/16 = 1.5.
    assert c.target == pytest.approx(1.5) and c.target_label == "steps 200"
    # Reached at step 40 (short) and 50 (long), both within the common steps.
    assert by_label["steps 100"].steps_to_target.mean == 40  # type: ignore[union-attr]
    assert by_label["steps 200"].steps_to_target.mean == 50  # type: ignore[union-attr]
    assert by_label["steps 100"].share_to_target.mean == pytest.approx(0.40)  # type: ignore[union-attr]
    assert by_label["steps 200"].share_to_target.mean == pytest.approx(0.25)  # type: ignore[union-attr]


def test_high_lr_unstable_at_every_warmup(tmp_path: Path, torch_writer: Callable[..., Any]) -> None:
    """Every warmup at LR 0.01 ends in NaN: it ranks last and the sentence says to lower the LR."""
    for lr in (1e-3, 1e-2):
        for warmup in (0, 10):

            def loss(s: int, lr: float = lr, w: int = warmup) -> float:
                if lr == 1e-2 and s >= 30 + w:
                    return math.nan
                return _loss(s, w, 0)

            _write(
                torch_writer,
                tmp_path / f"lr{lr}" / f"w{warmup}",
                loss,
                warmup=warmup,
                lr=lr,
                config={"learning_rate": lr, "warmup_steps": warmup},
            )
    c = build_comparison([tmp_path], smooth_points=1)
    assert set(c.varying) == {"warmup_steps", "learning_rate"}
    assert [e.unstable for e in c.entries] == [0, 0, 1, 1]
    assert c.entries[0].label == "warmup 0, LR 0.001"
    assert "LR 0.01 was unstable at every warmup (warmup 0, warmup 10): lower the LR" in (
        c.conclusion
    )


def test_settings_inferred_from_the_schedule_without_config(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """Without any config file, the warmup that differs is the one read off the logged LR."""
    for warmup in (10, 40):
        _write(
            torch_writer,
            tmp_path / f"run{warmup}",
            lambda s, w=warmup: _loss(s, w, 0),
            warmup=warmup,
        )
    c = build_comparison([tmp_path], smooth_points=1)
    assert c.varying == ("warmup_steps",) and c.inferred == ("warmup_steps",)
    assert sorted(e.setting["warmup_steps"] for e in c.entries) == [10, 40]


def test_a_warmup_longer_than_the_run_infers_no_lr(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """Its last logged LR is not its peak: the runs share one LR, only the warmup differs."""
    for warmup in (10, 20, 150):
        _write(
            torch_writer,
            tmp_path / f"run{warmup}",
            lambda s, w=warmup: _loss(s, min(w, 40), 0),
            warmup=warmup,
        )
    c = build_comparison([tmp_path], smooth_points=1)
    assert c.varying == ("warmup_steps",)
    long_run = next(e for e in c.entries if e.runs[0].report.name == "run150")
    assert "learning_rate" not in long_run.setting and "LR" not in long_run.label


def test_identical_configs_are_repeats(tmp_path: Path, torch_writer: Callable[..., Any]) -> None:
    """No setting differs: one row per run, and a sentence about their spread."""
    for i, delay in enumerate((0, 4, 8)):
        _write(
            torch_writer,
            tmp_path / f"r{i}",
            lambda s, d=delay: _loss(s, 0, d),
            config={"warmup_steps": 0, "learning_rate": 1e-3},
        )
    c = build_comparison([tmp_path], smooth_points=1)
    assert c.repeats and c.varying == ()
    assert [e.label for e in c.entries] == ["r0", "r1", "r2"]
    assert c.conclusion.startswith("No setting differs between the 3 runs: compared as repeats.")


def test_scheduler_arguments_are_a_setting(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """Runs that differ in ``lr_scheduler_kwargs`` (a mapping) are ranked by it; seeds of the
    same arguments fall together, and the JSON keeps the arguments as an object."""
    for i, (decay, delay) in enumerate(((40, 0), (40, 2), (80, 10))):
        _write(
            torch_writer,
            tmp_path / f"r{i}",
            lambda s, d=delay: _loss(s, 10, d),
            warmup=10,
            config={
                "warmup_steps": 10,
                "lr_scheduler_type": "warmup_stable_decay",
                "lr_scheduler_kwargs": {"num_decay_steps": decay},
            },
        )
    c = build_comparison([tmp_path], smooth_points=1)
    assert c.varying == ("lr_scheduler_kwargs",)
    assert [e.label for e in c.entries] == [
        "lr_scheduler_kwargs num_decay_steps=40",
        "lr_scheduler_kwargs num_decay_steps=80",
    ]
    assert [len(e.runs) for e in c.entries] == [2, 1]
    entries = json.loads(json.dumps(comparison_to_dict(c)))["entries"]
    assert entries[0]["setting"] == {"lr_scheduler_kwargs": {"num_decay_steps": 40}}


def test_one_run_is_an_error(tmp_path: Path, torch_writer: Callable[..., Any]) -> None:
    """A single run cannot be compared: a one-line error says what to pass instead."""
    _write(torch_writer, tmp_path / "only", lambda s: _loss(s, 0, 0))
    with pytest.raises(InputError, match=r"at least two runs with a loss; found 1 \('only'\)"):
        build_comparison([tmp_path])


def test_runs_without_common_loss_steps_are_an_error(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """Two pieces of one run (0-50, 100-150) share no step: the error names both ends."""
    _write(torch_writer, tmp_path / "a", lambda s: _loss(s, 0, 0), last=50)
    _write(torch_writer, tmp_path / "b", lambda s: _loss(s, 0, 0), first=100, last=150)
    with pytest.raises(InputError, match="no loss steps in common: 'a' ends at step 50, 'b' "):
        build_comparison([tmp_path])


def test_setting_label_orders_keys() -> None:
    """Warmup first, then LR, then anything else by name."""
    assert setting_label({"zeta": 1, "learning_rate": 3e-4, "warmup_steps": 30}) == (
        "warmup 30, LR 0.0003, zeta 1"
    )


def test_generator_sweep_is_ranked_by_measured_steps_to_target() -> None:
    """The committed sweep (6 warmups x 2 seeds of real HF Trainer runs): grouped by seed,
    ranked in the order of the measured steps to target, the conclusion naming the best."""
    c = build_comparison([SWEEP])
    assert c.varying == ("warmup_steps",)
    assert len(c.entries) == 6 and all(len(e.runs) == 2 for e in c.entries)
    assert {m.seed for m in c.measures} == {1, 2}
    means = [e.steps_to_target.mean for e in c.entries if e.steps_to_target is not None]
    assert means == sorted(means)
    assert c.conclusion.startswith(f"{c.entries[0].label} reached loss")
    assert {m.name for m in c.measures} == {
        f"w{w}/seed{s}" for w in (0, 15, 30, 45, 75, 120) for s in (1, 2)
    }


def test_unstable_short_warmup_and_slow_long_one(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """No warmup ends in NaN, 8 steps is fastest, 16 slower: keep 8, do not shorten it."""
    for warmup in (0, 8, 16):

        def loss(s: int, w: int = warmup) -> float:
            return math.nan if w == 0 and s >= 60 else _loss(s, w, 0)

        _write(
            torch_writer,
            tmp_path / f"w{warmup}",
            loss,
            warmup=warmup,
            config={"warmup_steps": warmup},
        )
    c = build_comparison([tmp_path], smooth_points=1)
    assert [e.label for e in c.entries] == ["warmup 8", "warmup 16", "warmup 0"]
    assert c.entries[-1].unstable == 1
    # Target: warmup 8 at step 25, 4 - 17/16 = 2.9375; warmup 16 gets there 8 steps later.
    assert c.conclusion == (
        "warmup 8 reached loss 2.938 in 25 steps; warmup 16 needed 33 (1.3x); warmup 0 had "
        "unstable runs: shorter warmups were unstable and longer ones only cost steps: keep "
        "warmup 8."
    )


def test_a_run_ending_in_nan_does_not_shrink_the_common_steps(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """A run that turns NaN at step 30 still logs up to step 100: the others race to 100."""
    _write(torch_writer, tmp_path / "a", lambda s: _loss(s, 0, 0), config={"warmup_steps": 0})
    _write(
        torch_writer,
        tmp_path / "b",
        lambda s: math.nan if s >= 30 else _loss(s, 8, 0),
        config={"warmup_steps": 8},
    )
    _write(torch_writer, tmp_path / "c", lambda s: _loss(s, 16, 0), config={"warmup_steps": 16})
    c = build_comparison([tmp_path], smooth_points=1)
    assert c.common_end == 100 and c.equal_length
    # Target: warmup 0 at step 25 (4 - 25/16); warmup 16 reaches it 16 steps later.
    assert [(e.label, e.steps_to_target and e.steps_to_target.mean) for e in c.entries] == [
        ("warmup 0", 25),
        ("warmup 16", 41),
        ("warmup 8", None),
    ]


_LOSSES = st.lists(
    st.one_of(st.floats(0.01, 20.0), st.just(math.nan), st.just(math.inf)), min_size=1, max_size=40
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(_LOSSES, st.integers(0, 3), st.sampled_from([1e-4, 1e-3])), min_size=2, max_size=5
    ),
    st.one_of(st.none(), st.floats(0.01, 20.0)),
)
def test_any_sweep_is_ranked_or_refused_in_one_line(
    runs: list[tuple[list[float], int, float]], target: float | None
) -> None:
    """Whatever the curves (NaN, Inf, one point), compare ranks every run once (or says why it
    left it out), reached settings by their steps, or refuses with an InputError."""
    reports = []
    for i, (losses, warmup, lr) in enumerate(runs):
        rows = [("train/loss", step, value, 0.0) for step, value in enumerate(losses)]
        run = Run.from_points(
            Points.from_rows(rows),
            name=f"r{i}",
            path=Path(f"r{i}"),
            source="test",
            config={"warmup_steps": warmup, "learning_rate": lr, "seed": i},
        )
        reports.append(RunReport(run.name, run.path, "test", run=run, diagnosis=diagnose(run)))
    report = Report(paths=(Path("."),), runs=tuple(reports))
    try:
        c = compare_report(report, target=target)
    except InputError as err:
        assert "\n" not in str(err)
        return
    # Every run is measured, or left out with a note naming it (no finite loss).
    left_out = {r.name for r in reports if any(f"'{r.name}'" in n for n in c.notes)}
    assert sorted([m.name for m in c.measures] + sorted(left_out)) == sorted(
        r.name for r in reports
    )
    assert [e.rank for e in c.entries] == list(range(1, len(c.entries) + 1))
    fastest = [e.steps_to_target.mean for e in c.entries if e.steps_to_target and not e.unstable]
    assert fastest == sorted(fastest)
    assert c.conclusion and "\n" not in c.conclusion
    assert c.to_dict() == comparison_to_dict(c)
    json.dumps(c.to_dict(), allow_nan=False)


def test_a_slower_setting_that_ends_lower_is_named(
    tmp_path: Path, torch_writer: Callable[..., Any]
) -> None:
    """No warmup is fastest to the target but levels off at 1.5; warmup 16 ends at 1.0."""
    _write(
        torch_writer,
        tmp_path / "w0",
        lambda s: _loss(s, 0, 0, floor=1.5),
        config={"warmup_steps": 0},
    )
    _write(torch_writer, tmp_path / "w16", lambda s: _loss(s, 16, 0), config={"warmup_steps": 16})
    c = build_comparison([tmp_path], smooth_points=1)
    assert [e.label for e in c.entries] == ["warmup 0", "warmup 16"]
    assert c.conclusion.endswith("warmup 16 got there later but ended lower (final loss 1 vs 1.5).")
