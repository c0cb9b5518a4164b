"""Finding runs: one report per training run, whatever formats describe it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from warmup_monitor.discover import find_runs, open_source, read_run
from warmup_monitor.errors import InputError

MAX_STEPS = 12

_SWANLAB_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import swanlab
    probe = swanlab.Settings.Probe(hardware=False, requirements=False, git=False, monitor=False)
    swanlab.init(mode="offline", log_dir=sys.argv[1], project="warmup", name="tiny",
                 config={"learning_rate": 0.01}, settings=swanlab.Settings(probe=probe))
    # What the Trainer's SwanLab callback logs: the same entries as log_history.
    for e in json.load(open(sys.argv[2]))["log_history"]:
        if "loss" in e:
            swanlab.log({"train/loss": e["loss"], "train/learning_rate": e["learning_rate"],
                         "train/grad_norm": e["grad_norm"], "train/epoch": e["epoch"]},
                        step=e["step"])
    swanlab.finish()
    """
)


@pytest.fixture(scope="module")
def hf_out(tmp_path_factory: pytest.TempPathFactory, train_tiny_hf: Callable[..., Path]) -> Path:
    """A real HF output_dir: trainer_state.json, checkpoint-*/ and one TensorBoard run."""
    return train_tiny_hf(
        tmp_path_factory.mktemp("hf") / "out", max_steps=MAX_STEPS, report_to=["tensorboard"]
    )


@pytest.fixture
def out(hf_out: Path, tmp_path: Path) -> Path:
    """A private copy of the output_dir that a test may add to."""
    dest = tmp_path / "out"
    shutil.copytree(hf_out, dest, ignore=shutil.ignore_patterns("*.safetensors", "*.pt", "*.pth"))
    return dest


def _add_swanlab(out: Path) -> None:
    pytest.importorskip("swanlab")
    subprocess.run(
        [
            sys.executable,
            "-c",
            _SWANLAB_SCRIPT,
            str(out / "swanlog"),
            str(out / "trainer_state.json"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )


def test_output_dir_is_one_run(out: Path) -> None:
    """trainer_state.json, checkpoints and runs/<x>/ TensorBoard are one run named after out/."""
    refs = find_runs(out)
    assert len(refs) == 1
    ref = refs[0]
    assert ref.name == "out"
    assert ref.format == "tensorboard"
    assert ref.path.parent == out / "runs"
    assert ref.also == ("trainer_state",)
    assert not any("checkpoint" in r.name for r in refs)


def test_read_run_reads_richest_and_says_so(out: Path) -> None:
    """The TensorBoard run is read; the note names the trainer state; config comes from both."""
    run = read_run(out)
    assert run.name == "out"
    assert run.source == "tensorboard"
    assert run.has("loss") and run.has("learning_rate") and run.has("grad_norm")
    assert run.series("loss")[0][-1] == MAX_STEPS
    assert any("trainer_state" in n and "tensorboard" in n for n in run.notes)
    assert run.config["max_steps"] == MAX_STEPS
    assert run.config["logging_steps"] == 2
    assert run.status == "finished"


def test_much_richer_source_wins(out: Path) -> None:
    """A TensorBoard run holding far fewer points than the trainer state loses to it."""
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    shutil.rmtree(out / "runs")
    writer = torch_tb.SummaryWriter(log_dir=str(out / "runs" / "aborted"))
    writer.add_scalar("train/loss", 3.0, 2)
    writer.close()
    run = read_run(out)
    assert run.source == "trainer_state"
    assert run.series("loss")[0].tolist() == list(range(2, MAX_STEPS + 1, 2))
    (note,) = [n for n in run.notes if "richest" in n]
    assert note.startswith("read trainer_state (out) as the richest source; also found tensorboard")
    assert "not read" not in note


def test_two_tensorboard_runs_stay_separate(out: Path) -> None:
    """Two TensorBoard runs under one output_dir are separate attempts: three runs."""
    (tb,) = (out / "runs").iterdir()
    shutil.copytree(tb, out / "runs" / "second")
    refs = find_runs(out)
    assert len(refs) == 3
    assert refs[0].name == "out" and refs[0].format == "trainer_state"
    assert {r.format for r in refs[1:]} == {"tensorboard"}


def test_swanlab_joins_output_dir(out: Path) -> None:
    """One SwanLab run under swanlog/ is the same run: still one report."""
    _add_swanlab(out)
    refs = find_runs(out)
    assert len(refs) == 1
    assert set(refs[0].also) == {"swanlab", "trainer_state"}
    run = read_run(refs[0])
    assert run.name == "out"
    assert run.source == "tensorboard"


def test_resumed_swanlab_is_not_read(out: Path) -> None:
    """Two SwanLab folders (a resumed run restarts its steps) are absorbed but not read."""
    _add_swanlab(out)
    _add_swanlab(out)
    refs = find_runs(out)
    assert len(refs) == 1
    assert all(fmt != "swanlab" for fmt, _ in refs[0].alternatives)
    run = read_run(refs[0])
    assert any("not read: swanlab" in n for n in run.notes)


def test_llamafactory_output_dir(hf_out: Path, tmp_path: Path) -> None:
    """trainer_log.jsonl beside trainer_state.json: one run; the state (with grad_norm) is read."""
    state = json.loads((hf_out / "trainer_state.json").read_text())
    lines = [
        json.dumps(
            {
                "current_steps": e["step"],
                "total_steps": MAX_STEPS,
                "loss": e["loss"],
                "lr": e["learning_rate"],
                "epoch": e["epoch"],
                "percentage": round(e["step"] / MAX_STEPS * 100, 2),
                "elapsed_time": "0:00:01",
                "remaining_time": "0:00:01",
            }
        )
        for e in state["log_history"]
        if "loss" in e
    ]
    sft = tmp_path / "saves" / "sft"
    sft.mkdir(parents=True)
    (sft / "trainer_log.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(hf_out / "trainer_state.json", sft)
    refs = find_runs(tmp_path)
    assert [(r.name, r.format, r.also) for r in refs] == [
        ("saves/sft", "trainer_state", ("trainer_log",))
    ]
    run = read_run(tmp_path)
    assert run.source == "trainer_state"
    assert run.has("grad_norm")


def test_folder_of_runs(hf_out: Path, tmp_path: Path) -> None:
    """Several output_dirs under one folder are found, in name order, checkpoints excluded."""
    for name in ("b_run", "a_run"):
        shutil.copytree(hf_out, tmp_path / name, ignore=shutil.ignore_patterns("*.safetensors"))
    refs = find_runs(tmp_path)
    assert [r.name for r in refs] == ["a_run", "b_run"]
    with pytest.raises(InputError) as err:
        read_run(tmp_path)
    assert "holds 2 runs (a_run, b_run)" in str(err.value)


def test_checkpoint_file_path_named_after_output_dir(hf_out: Path) -> None:
    """A checkpoint's trainer_state.json given directly is named after its output_dir."""
    (ref,) = find_runs(hf_out / "checkpoint-10" / "trainer_state.json")
    assert ref.name == "out"
    assert ref.format == "trainer_state"
    assert read_run(ref).last_step == 10


def test_checkpoint_folder_given_directly(hf_out: Path) -> None:
    """Pointing at one checkpoint folder reads that checkpoint."""
    run = read_run(hf_out / "checkpoint-5")
    assert run.source == "trainer_state"
    assert run.last_step == 4


def test_open_source_carries_config(out: Path) -> None:
    """The live source of a run gets the config files found beside it."""
    (out / "training_args.yaml").write_text("learning_rate: 1.0e-2\nwarmup_steps: 4\n")
    source = open_source(out)
    try:
        assert source.format == "tensorboard"
        assert source.config["learning_rate"] == 1e-2
        assert source.config["warmup_steps"] == 4
        assert len(source.poll()) > 0
    finally:
        source.close()


def test_unknown_layout_is_one_line_input_error(tmp_path: Path) -> None:
    """A folder of unrelated files names every format looked for, on one line."""
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError) as err:
        find_runs(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    for looked_for in ("tfevents", "trainer_state.json", "trainer_log.jsonl", "metrics.csv"):
        assert looked_for in message


def test_empty_and_missing_paths(tmp_path: Path) -> None:
    """An empty folder and a missing path are input errors."""
    with pytest.raises(InputError, match="empty directory"):
        find_runs(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        read_run(tmp_path / "missing")


def test_broken_preferred_source_falls_back(tmp_path: Path) -> None:
    """A truncated trainer_state.json beside a good trainer_log.jsonl: the log is read."""
    (tmp_path / "trainer_state.json").write_text('{"log_history": [{"step": 1, "lo')
    (tmp_path / "trainer_log.jsonl").write_text(
        json.dumps({"current_steps": 1, "total_steps": 2, "loss": 1.0, "lr": 1e-5}) + "\n"
    )
    run = read_run(tmp_path)
    assert run.source == "trainer_log"
    assert run.series("loss")[1].tolist() == [1.0]
    assert any(w.startswith("trainer_state at") and "not valid JSON" in w for w in run.warnings)


def test_events_directly_in_logging_dir(out: Path) -> None:
    """With logging_dir=<output_dir>/runs the event files sit in runs/ itself: still one run."""
    (tb,) = (out / "runs").iterdir()
    for event in tb.iterdir():
        event.rename(out / "runs" / event.name)
    tb.rmdir()
    (ref,) = find_runs(out)
    assert (ref.name, ref.format, ref.path) == ("out", "tensorboard", out / "runs")
    assert read_run(out).config["max_steps"] == MAX_STEPS


def test_bookkeeping_tags_do_not_make_a_source_richer(tmp_path: Path) -> None:
    """Equal loss/LR points: extra per-step counters in the trainer state do not displace TB."""
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    history = [
        {"step": s, "loss": 1.0 / s, "learning_rate": 1e-4, "epoch": s / 10, "num_tokens": 512 * s}
        for s in range(1, 21)
    ]
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    writer = torch_tb.SummaryWriter(log_dir=str(tmp_path / "runs" / "x"))
    for s in range(1, 21):
        writer.add_scalar("train/loss", 1.0 / s, s)
        writer.add_scalar("train/learning_rate", 1e-4, s)
    writer.close()
    assert read_run(tmp_path).source == "tensorboard"


def test_garbled_config_is_a_warning_on_the_run(hf_out: Path, tmp_path: Path) -> None:
    """A broken training_args.yaml beside the logs is reported, and the run still loads."""
    shutil.copy(hf_out / "trainer_state.json", tmp_path)
    (tmp_path / "training_args.yaml").write_text("learning_rate: [0.01\n")
    run = read_run(tmp_path)
    assert run.has("loss")
    assert any("training_args.yaml cannot be parsed" in w for w in run.warnings)
    assert run.config["max_steps"] == MAX_STEPS
