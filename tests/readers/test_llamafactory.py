"""LLaMA-Factory ``trainer_log.jsonl``: whole-file reads and live tailing."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmup_monitor.discover import read_run
from warmup_monitor.errors import FormatError
from warmup_monitor.points import Points
from warmup_monitor.readers.llamafactory import TrainerLogSource, claims, open_source

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "llamafactory"


def _lf_line(step: int, total: int = 100, **metrics: float) -> str:
    """One line as LLaMA-Factory's LogCallback writes it (its key order, Nones dropped)."""
    logs = {
        "current_steps": step,
        "total_steps": total,
        "loss": metrics.get("loss"),
        "eval_loss": metrics.get("eval_loss"),
        "lr": metrics.get("lr"),
        "epoch": metrics.get("epoch", step / total),
        "percentage": round(step / total * 100, 2),
        "elapsed_time": "0:00:10",
        "remaining_time": "0:01:00",
    }
    return json.dumps({k: v for k, v in logs.items() if v is not None}) + "\n"


def _append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)


def _rows(points: Points) -> list[tuple[str, int, float]]:
    return [
        (points.tags[c], int(s), float(v))
        for c, s, v in zip(points.tag_codes, points.steps, points.values, strict=True)
    ]


def test_claims(tmp_path: Path) -> None:
    """A trainer_log.jsonl file or a folder holding one is claimed."""
    assert claims(FIXTURE)
    assert claims(FIXTURE / "trainer_log.jsonl")
    assert not claims(tmp_path)
    (tmp_path / "other.jsonl").write_text("{}\n")
    assert not claims(tmp_path / "other.jsonl")


def test_reads_fixture() -> None:
    """loss, learning_rate (from lr), eval_loss and epoch; the final epoch-only line is skipped."""
    run = read_run(FIXTURE / "trainer_log.jsonl")
    assert run.source == "trainer_log"
    steps, loss = run.series("loss")
    assert steps.tolist() == list(range(5, 61, 5))
    assert loss[0] == 2.065
    lr_steps, lr = run.series("learning_rate")
    assert lr_steps.tolist() == steps.tolist()
    assert lr.max() == pytest.approx(1e-4)
    assert run.series("eval_loss")[0].tolist() == [30, 60]
    assert run.series("epoch")[1][-1] == 3.0
    assert "throughput" not in run.tags and "total_tokens" not in run.tags
    assert run.status == "finished"
    assert run.config["max_steps"] == 60


def test_config_from_training_args_yaml() -> None:
    """The training_args.yaml LLaMA-Factory saves beside the log fills the config."""
    run = read_run(FIXTURE)
    assert run.config["learning_rate"] == 1e-4
    assert run.config["warmup_steps"] == 15
    assert run.config["lr_scheduler_type"] == "cosine"
    assert run.config["finetuning_type"] == "lora"
    assert run.config["max_steps"] == 60  # observed total_steps


def test_tail_reads_only_appended_lines(tmp_path: Path) -> None:
    """Each poll returns only the lines appended since the previous one."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, _lf_line(10, loss=2.0, lr=1e-5) + _lf_line(20, loss=1.8, lr=2e-5))
    source = TrainerLogSource(tmp_path)
    assert sorted(set(source.poll().steps.tolist())) == [10, 20]
    assert len(source.poll()) == 0
    _append(log, _lf_line(30, loss=1.7, lr=3e-5))
    batch = source.poll()
    assert set(batch.steps.tolist()) == {30}
    assert ("learning_rate", 30, 3e-5) in _rows(batch)


def test_partial_last_line_waits(tmp_path: Path) -> None:
    """A half-written line is not read until it is complete, written byte by byte."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, _lf_line(10, loss=2.0, lr=1e-5))
    source = TrainerLogSource(tmp_path)
    assert len(source.poll()) > 0
    line = _lf_line(20, loss=1.5, lr=2e-5).encode()
    for i in range(len(line) - 2):
        _append(log, line[i : i + 1])
        assert len(source.poll()) == 0, f"read a partial line after {i + 1} bytes"
    _append(log, line[-2:-1])  # the closing brace: the record is whole
    assert set(source.poll().steps.tolist()) == {20}
    _append(log, line[-1:])  # its newline adds nothing
    assert len(source.poll()) == 0
    _append(log, "oops\n")
    source.poll()
    assert source.warnings == ["trainer_log.jsonl line 3: not valid JSON; skipped"]


def test_last_line_without_newline_in_finished_file(tmp_path: Path) -> None:
    """A file saved without its final newline still yields its last complete record."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, _lf_line(10, loss=2.0) + _lf_line(20, loss=1.5).rstrip("\n"))
    run = read_run(log)
    assert run.series("loss")[0].tolist() == [10, 20]


def test_repeated_steps_last_wins(tmp_path: Path) -> None:
    """A resumed run repeats steps: the later line wins and the resume is recorded."""
    log = tmp_path / "trainer_log.jsonl"
    lines = [_lf_line(s, loss=v) for s, v in ((10, 3.0), (20, 2.5), (30, 2.0))]
    lines += [_lf_line(s, loss=v) for s, v in ((20, 2.4), (30, 1.9), (40, 1.8))]
    _append(log, "".join(lines))
    run = read_run(tmp_path)
    steps, loss = run.series("loss")
    assert steps.tolist() == [10, 20, 30, 40]
    assert loss.tolist() == [3.0, 2.4, 1.9, 1.8]
    assert [r.step for r in run.resumes] == [20]


def test_malformed_line_warns_with_line_number(tmp_path: Path) -> None:
    """A malformed line is skipped with a warning naming its line number; the rest is read."""
    log = tmp_path / "trainer_log.jsonl"
    _append(
        log, _lf_line(10, loss=2.0) + '{"current_steps": 20, "loss": \n' + _lf_line(30, loss=1.0)
    )
    _append(log, "[1, 2]\n" + '{"loss": 1.0}\n')
    source = open_source(log)
    points = source.poll()
    assert sorted(set(points.steps.tolist())) == [10, 30]
    assert source.warnings[0] == "trainer_log.jsonl line 2: not valid JSON; skipped"
    assert "line 4" in source.warnings[1] and "line 5" in source.warnings[2]


def test_many_malformed_lines_are_summarised(tmp_path: Path) -> None:
    """A garbage file gives a bounded number of warnings."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, "garbage\n" * 500 + _lf_line(10, loss=1.0))
    source = open_source(log)
    assert len(source.poll()) > 0
    assert len(source.warnings) == 11
    assert source.warnings[-1].startswith("trainer_log.jsonl: 490 more malformed lines")


def test_truncated_file_is_reread_with_warning(tmp_path: Path) -> None:
    """A file that shrinks (a new run overwrote it) is read again from the start."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, "".join(_lf_line(s, loss=1.0) for s in (10, 20, 30)))
    source = open_source(log)
    source.poll()
    with open(log, "r+b") as fh:
        fh.truncate(0)
    _append(log, _lf_line(10, loss=5.0))
    batch = source.poll()
    assert _rows(batch)[0] == ("loss", 10, 5.0)
    assert any("truncated" in w for w in source.warnings)


def test_replaced_file_is_reread_with_warning(tmp_path: Path) -> None:
    """A file deleted and recreated (LLaMA-Factory with overwrite_output_dir) is re-read."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, "".join(_lf_line(s, loss=1.0) for s in (10, 20)))
    keep = tmp_path / "keep"
    os.link(log, keep)  # hold the inode so the new file cannot reuse its number
    source = open_source(log)
    source.poll()
    log.unlink()
    _append(log, "".join(_lf_line(s, loss=9.0) for s in (10, 20, 30)))
    batch = source.poll()
    assert len(batch) and set(batch.steps.tolist()) == {10, 20, 30}
    assert any("replaced" in w for w in source.warnings)


def test_nan_loss_is_kept(tmp_path: Path) -> None:
    """json.dumps writes NaN for a diverged loss; it stays NaN."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, _lf_line(10, loss=float("nan"), lr=1e-4) + _lf_line(20, loss=float("inf")))
    run = read_run(log)
    values = run.series("loss")[1]
    assert math.isnan(values[0]) and math.isinf(values[1])


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    """Opening a folder whose log vanished raises a one-line FormatError."""
    with pytest.raises(FormatError) as err:
        TrainerLogSource(tmp_path).poll()
    assert "\n" not in str(err.value)


def test_empty_file_gives_no_points(tmp_path: Path) -> None:
    """A log created but not yet written to holds nothing yet."""
    (tmp_path / "trainer_log.jsonl").touch()
    assert len(open_source(tmp_path).poll()) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    losses=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=12
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
)
def test_tailing_in_any_pieces_equals_one_read(
    tmp_path_factory: pytest.TempPathFactory, losses: list[float], cuts: list[int]
) -> None:
    """However the writes are split across polls, the tail yields what one read yields."""
    folder = tmp_path_factory.mktemp("lf")
    data = "".join(
        _lf_line(10 * (i + 1), loss=v, lr=1e-5 * (i + 1)) for i, v in enumerate(losses)
    ).encode()
    log = folder / "trainer_log.jsonl"
    log.touch()
    source = TrainerLogSource(folder)
    parts = []
    pos = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        _append(log, data[pos:cut])
        pos = max(pos, cut)
        parts.append(source.poll())
    tailed = _rows(Points.concat(parts))
    whole = _rows(TrainerLogSource(folder).poll())
    assert len(tailed) == len(whole) == 3 * len(losses)
    for (t1, s1, v1), (t2, s2, v2) in zip(tailed, whole, strict=True):
        assert (t1, s1) == (t2, s2)
        assert v1 == v2 or (np.isnan(v1) and np.isnan(v2))
    assert source.warnings == []


def test_eval_progress_lines_are_not_training_steps(tmp_path: Path) -> None:
    """Lines of an evaluation-only run (no metric) neither add points nor set max_steps."""
    log = tmp_path / "trainer_log.jsonl"
    progress = {"current_steps": 5, "total_steps": 40, "percentage": 12.5}
    _append(log, json.dumps(progress) + "\n" + _lf_line(10, total=300, loss=1.0))
    source = open_source(log)
    points = source.poll()
    assert set(points.steps.tolist()) == {10}
    assert source.config == {"max_steps": 300}
    assert source.warnings == []


def test_max_steps_follows_a_changed_total(tmp_path: Path) -> None:
    """A run resumed with a new length updates max_steps; a repeated total keeps it."""
    log = tmp_path / "trainer_log.jsonl"
    _append(log, _lf_line(1, total=50, loss=2.0) + _lf_line(2, total=50, loss=1.9))
    source = open_source(log)
    source.poll()
    assert source.config == {"max_steps": 50}
    _append(log, _lf_line(3, total=80, loss=1.8))
    source.poll()
    assert source.config == {"max_steps": 80}
    _append(log, _lf_line(4, total=50, loss=1.7) + _lf_line(5, total=50, loss=1.6))
    source.poll()
    assert source.config == {"max_steps": 50}
