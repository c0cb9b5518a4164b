"""HF Trainer ``trainer_state.json``: files written by a real ``transformers.Trainer`` on CPU."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_monitor.discover import read_run
from warmup_monitor.errors import FormatError
from warmup_monitor.readers import trainer_state
from warmup_monitor.readers.trainer_state import TrainerStateSource, claims, open_source

MAX_STEPS = 12
LOGGING_STEPS = 2
EVAL_STEPS = 6


@pytest.fixture(scope="module")
def hf_out(tmp_path_factory: pytest.TempPathFactory, train_tiny_hf: Callable[..., Path]) -> Path:
    """A real HF output_dir: trainer_state.json and checkpoint-*/ copies of it."""
    return train_tiny_hf(
        tmp_path_factory.mktemp("hf") / "out",
        max_steps=MAX_STEPS,
        logging_steps=LOGGING_STEPS,
        eval_steps=EVAL_STEPS,
    )


def _state(hf_out: Path, checkpoint: int | None = None) -> dict:
    folder = hf_out if checkpoint is None else hf_out / f"checkpoint-{checkpoint}"
    return json.loads((folder / "trainer_state.json").read_text())


def _write_state(folder: Path, state: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2))
    return path


def test_claims_output_dir_file_and_checkpoint(hf_out: Path, tmp_path: Path) -> None:
    """An output_dir, its trainer_state.json and a checkpoint folder are claimed; others are not."""
    assert claims(hf_out)
    assert claims(hf_out / "trainer_state.json")
    assert claims(hf_out / "checkpoint-5")
    assert not claims(tmp_path)
    (tmp_path / "other.json").write_text("{}")
    assert not claims(tmp_path / "other.json")


def test_claims_folder_with_only_checkpoints(hf_out: Path, tmp_path: Path) -> None:
    """A live output_dir has no top-level file yet, only checkpoint-*/trainer_state.json."""
    _write_state(tmp_path / "checkpoint-5", _state(hf_out, 5))
    assert claims(tmp_path)


def test_reads_training_and_eval_entries(hf_out: Path) -> None:
    """Training entries give loss/lr/grad_norm/epoch, eval entries eval_*; no summary entry."""
    run = read_run(hf_out / "trainer_state.json")
    logged = list(range(LOGGING_STEPS, MAX_STEPS + 1, LOGGING_STEPS))
    for name in ("loss", "learning_rate", "grad_norm", "epoch"):
        steps, values = run.series(name)
        assert steps.tolist() == logged, name
        assert np.isfinite(values).all()
    steps, _ = run.series("eval_loss")
    assert steps.tolist() == [EVAL_STEPS, 2 * EVAL_STEPS]
    assert "eval_runtime" in run.tags
    assert "train_loss" not in run.tags and "train_runtime" not in run.tags
    expected = [e["loss"] for e in _state(hf_out)["log_history"] if "loss" in e]
    assert run.series("loss")[1].tolist() == pytest.approx(expected)
    assert run.source == "trainer_state"
    assert run.status == "finished"


def test_top_level_config(hf_out: Path) -> None:
    """max_steps, logging_steps, train_batch_size and global_step become canonical config."""
    source = open_source(hf_out)
    source.poll()
    assert source.config["max_steps"] == MAX_STEPS
    assert source.config["logging_steps"] == LOGGING_STEPS
    assert source.config["train_batch_size"] == 4
    assert source.config["global_step"] == MAX_STEPS


def test_newest_checkpoint_by_step_number(hf_out: Path, tmp_path: Path) -> None:
    """Without a top-level file the highest checkpoint step is read (10 < 12, not text order)."""
    out = tmp_path / "out"
    for step in (5, 10, 12):
        _write_state(out / f"checkpoint-{step}", _state(hf_out, step))
    run = read_run(out)
    assert run.last_step == MAX_STEPS
    assert any("checkpoint-12" in n for n in run.notes)
    assert run.name == "out"


def test_mid_run_checkpoint_status_unknown(hf_out: Path) -> None:
    """A checkpoint before max_steps has no summary entry: the run may still be going."""
    source = open_source(hf_out / "checkpoint-5")
    points = source.poll()
    assert int(points.steps.max()) == 4
    assert source.status == "unknown"


def test_poll_returns_only_new_points(hf_out: Path, tmp_path: Path) -> None:
    """A rewritten file yields only the (tag, step) points not seen before."""
    path = _write_state(tmp_path, _state(hf_out, 5))
    source = TrainerStateSource(tmp_path)
    first = source.poll()
    assert set(first.steps.tolist()) == {2, 4}
    assert len(source.poll()) == 0
    _write_state(tmp_path, _state(hf_out, 10))
    os.utime(path, ns=(1, 1))  # a different mtime, even on coarse clocks
    second = source.poll()
    assert set(second.steps.tolist()) == {6, 8, 10}
    assert "eval_loss" in second.tags


def test_poll_emits_changed_value(hf_out: Path, tmp_path: Path) -> None:
    """A value rewritten at an already-seen step is emitted again (the run keeps the last)."""
    state = _state(hf_out, 5)
    path = _write_state(tmp_path, state)
    source = TrainerStateSource(tmp_path)
    source.poll()
    state["log_history"][0]["loss"] = 123.0
    _write_state(tmp_path, state)
    os.utime(path, ns=(2, 2))
    again = source.poll()
    assert len(again) == 1
    assert again.tags[again.tag_codes[0]] == "loss"
    assert again.values[0] == 123.0


def test_nan_and_infinity(hf_out: Path, tmp_path: Path) -> None:
    """NaN and Infinity, as Python's json writes them, are kept as values."""
    state = _state(hf_out)
    state["log_history"][0]["loss"] = float("nan")
    state["log_history"][1]["grad_norm"] = float("inf")
    _write_state(tmp_path, state)
    assert "NaN" in (tmp_path / "trainer_state.json").read_text()
    run = read_run(tmp_path)
    assert math.isnan(run.series("loss")[1][0])
    assert math.isinf(run.series("grad_norm")[1][1])


def test_truncated_file_is_a_format_error(hf_out: Path, tmp_path: Path) -> None:
    """A cut-off trainer_state.json gives a one-line FormatError, not a traceback."""
    text = (hf_out / "trainer_state.json").read_text()
    (tmp_path / "trainer_state.json").write_text(text[: len(text) // 2])
    with pytest.raises(FormatError) as err:
        open_source(tmp_path).poll()
    assert "\n" not in str(err.value)
    assert "trainer_state.json" in str(err.value)


def test_truncated_newest_checkpoint_falls_back(hf_out: Path, tmp_path: Path) -> None:
    """A half-saved newest checkpoint is passed over for the previous one, with a warning."""
    _write_state(tmp_path / "checkpoint-10", _state(hf_out, 10))
    broken = tmp_path / "checkpoint-12"
    broken.mkdir()
    (broken / "trainer_state.json").write_text('{"log_history": [{"loss": 1.0, "st')
    run = read_run(tmp_path)
    assert run.last_step == 10
    assert any("checkpoint-10" in w for w in run.warnings)


@pytest.mark.parametrize(
    "content",
    ["[1, 2, 3]", '{"global_step": 3}', '{"log_history": {"step": 1}}', "", "not json"],
)
def test_wrong_shapes_are_format_errors(tmp_path: Path, content: str) -> None:
    """Valid JSON of the wrong shape, empty files and garbage raise FormatError."""
    (tmp_path / "trainer_state.json").write_text(content)
    with pytest.raises(FormatError):
        open_source(tmp_path).poll()


def test_entries_of_wrong_type_are_skipped_with_warning(tmp_path: Path) -> None:
    """Entries that are not objects or lack an integer step are skipped and counted."""
    history = [
        {"step": 1, "loss": 2.0, "learning_rate": "1e-4"},
        "junk",
        {"loss": 1.5},
        {"step": 2.5, "loss": 1.0},
        {"step": 3, "loss": 0.5, "learning_rate": 2e-4, "grad_norm": None},
    ]
    _write_state(tmp_path, {"log_history": history, "max_steps": -1})
    source = open_source(tmp_path)
    points = source.poll()
    assert sorted(set(points.steps.tolist())) == [1, 3]
    assert any("skipped 3 log_history entries" in w for w in source.warnings)
    assert "max_steps" not in source.config  # -1 means "not set"


def test_state_files_order(hf_out: Path) -> None:
    """The top-level file comes first, then checkpoints from the highest step down."""
    files = trainer_state.state_files(hf_out)
    assert files[0] == hf_out / "trainer_state.json"
    assert [f.parent.name for f in files[1:]] == ["checkpoint-12", "checkpoint-10", "checkpoint-5"]


def test_source_only_reads(hf_out: Path, tmp_path: Path) -> None:
    """Reading leaves the folder exactly as it was."""
    out = tmp_path / "copy"
    shutil.copytree(hf_out, out)
    before = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*"))
    read_run(out)
    after = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*"))
    assert before == after


_JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
)
_ENTRY = st.dictionaries(
    st.sampled_from(["step", "loss", "learning_rate", "eval_loss", "train_runtime", "epoch", "x"]),
    _JSON_LEAF,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.fixed_dictionaries(
            {"log_history": st.lists(st.one_of(_ENTRY, _JSON_LEAF), max_size=8)},
            optional={"max_steps": _JSON_LEAF, "global_step": _JSON_LEAF},
        ),
        st.recursive(_JSON_LEAF, lambda kids: st.lists(kids, max_size=3), max_leaves=5),
    )
)
def test_any_document_reads_or_raises_format_error(document: object) -> None:
    """Any JSON document gives points with valid steps or a FormatError, nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "trainer_state.json").write_text(json.dumps(document))
        source = open_source(Path(tmp))
        try:
            points = source.poll()
        except FormatError as err:
            assert "\n" not in str(err)
            return
        assert ((points.steps >= 0) & (points.steps < 2**62)).all()
        assert "train_runtime" not in points.tags


def test_stale_top_level_file_loses_to_newer_checkpoint(hf_out: Path, tmp_path: Path) -> None:
    """A new run writing checkpoints into an old output_dir is read from its checkpoints."""
    old = _write_state(tmp_path, _state(hf_out))
    new = _write_state(tmp_path / "checkpoint-5", _state(hf_out, 5))
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (1_000_000 + 3600, 1_000_000 + 3600))
    assert trainer_state.state_files(tmp_path)[0] == new
    os.utime(new, (1_000_000 + 5, 1_000_000 + 5))  # saved together: the final state wins
    assert trainer_state.state_files(tmp_path)[0] == old
