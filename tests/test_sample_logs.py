"""The committed sample runs match their manifest and tell the story their labels claim."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"
MANIFEST = SAMPLES / "MANIFEST.json"
LABELS = {"healthy", "warmup_too_short", "warmup_too_long", "lr_too_high", "numerical_instability"}
# The keys LLaMA-Factory users write in their YAML configs and that the scenarios document.
LF_KEYS = {
    "model_name_or_path",
    "finetuning_type",
    "learning_rate",
    "lr_scheduler_type",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_grad_norm",
    "logging_steps",
}
LF_LINE_KEYS = {
    "current_steps",
    "total_steps",
    "epoch",
    "percentage",
    "elapsed_time",
    "remaining_time",
}

manifest: dict[str, Any] = json.loads(MANIFEST.read_text())
SCENARIOS: list[dict[str, Any]] = manifest["scenarios"]
BY_NAME = {s["name"]: s for s in SCENARIOS}
ids = [s["name"] for s in SCENARIOS]


def _train_rows(name: str) -> list[dict[str, Any]]:
    state = json.loads((SAMPLES / name / "trainer_state.json").read_text())
    return [h for h in state["log_history"] if "loss" in h]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_manifest_names_are_unique_and_labels_known() -> None:
    """Every scenario has a unique name and a label from the fixed vocabulary."""
    assert len(ids) == len(set(ids)) >= 6
    assert set(manifest["labels"]) == LABELS
    for s in SCENARIOS:
        assert s["label"] in LABELS, s["name"]
        assert s["description"]
        assert s["sibling"] is None or s["sibling"] in BY_NAME


def test_no_unlisted_scenario_folders() -> None:
    """Each folder beside the manifest is a listed scenario."""
    folders = {
        p.name for p in SAMPLES.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))
    }
    assert folders == set(BY_NAME)


@pytest.mark.parametrize("name", ids)
def test_files_match_manifest(name: str) -> None:
    """The files on disk are exactly the listed ones, with the listed sizes and hashes."""
    listed = {f["path"]: f for f in BY_NAME[name]["files"]}
    on_disk = {
        p.relative_to(SAMPLES).as_posix() for p in (SAMPLES / name).rglob("*") if p.is_file()
    }
    assert on_disk == set(listed)
    for rel, entry in listed.items():
        data = (SAMPLES / rel).read_bytes()
        assert len(data) == entry["size"], rel
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel


@pytest.mark.parametrize("name", ids)
def test_each_scenario_has_all_formats(name: str) -> None:
    """trainer_state.json, trainer_log.jsonl, TensorBoard events, a SwanLab run and the YAML."""
    folder = SAMPLES / name
    assert (folder / "trainer_state.json").is_file()
    assert (folder / "trainer_log.jsonl").is_file()
    assert list((folder / "runs").glob("events.out.tfevents.*"))
    runs = list((folder / "swanlog").glob("run-*"))
    assert runs
    for run in runs:
        assert len(list(run.glob("run-*.swanlab"))) == 1
        assert (run / "files" / "config.yaml").is_file()
        assert (run / "files" / "swanlab-metadata.json").is_file()
    args = yaml.safe_load((folder / "training_args.yaml").read_text())
    assert set(args) >= LF_KEYS
    assert "warmup_steps" in args or "warmup_ratio" in args
    assert "max_steps" in args or "num_train_epochs" in args
    assert args["finetuning_type"] == "full"


@pytest.mark.parametrize("name", ids)
def test_yaml_and_manifest_config_agree(name: str) -> None:
    """training_args.yaml states the same schedule as the manifest config."""
    config = BY_NAME[name]["config"]
    args = yaml.safe_load((SAMPLES / name / "training_args.yaml").read_text())
    for key in ("learning_rate", "max_steps", "lr_scheduler_type"):
        assert args[key] == config[key], key
    if "warmup_ratio" in args:
        assert args["warmup_ratio"] == config["warmup_ratio"]
        assert math.ceil(args["warmup_ratio"] * args["max_steps"]) == config["warmup_steps"]
    else:
        assert args["warmup_steps"] == config["warmup_steps"]
    assert args["per_device_train_batch_size"] == config["batch_size"]
    state = json.loads((SAMPLES / name / "trainer_state.json").read_text())
    assert state["logging_steps"] == config["logging_steps"] == args["logging_steps"]
    assert state["max_steps"] == config["max_steps"]


@pytest.mark.parametrize("name", ids)
def test_log_history_shows_claimed_curve(name: str) -> None:
    """The manifest's curve figures are read back from trainer_state.json's log_history."""
    curve = BY_NAME[name]["curve"]
    rows = _train_rows(name)
    steps = [h["step"] for h in rows]
    assert steps == sorted(set(steps))
    assert len(rows) == curve["logged_steps"]
    assert (steps[0], steps[-1]) == (curve["first_step"], curve["last_step"])
    assert steps[-1] == curve["global_step"] == BY_NAME[name]["config"]["max_steps"]
    bad = [h["step"] for h in rows if not (_finite(h["loss"]) and _finite(h.get("grad_norm")))]
    assert (bad[0] if bad else None) == curve["first_nonfinite_step"]
    assert len(bad) == curve["nonfinite_logged_steps"]
    if bad:
        first_lr = rows[steps.index(bad[0])]["learning_rate"]
        assert first_lr == pytest.approx(curve["first_nonfinite_lr"], rel=1e-3)
    assert rows[0]["loss"] == pytest.approx(curve["loss_first"], rel=1e-3)
    finite = [h["loss"] for h in rows if _finite(h["loss"])]
    assert max(finite) == pytest.approx(curve["loss_max"], rel=1e-3)
    assert min(finite) == pytest.approx(curve["loss_min"], rel=1e-3)
    assert max(h["learning_rate"] for h in rows) == pytest.approx(curve["max_logged_lr"], rel=1e-3)
    for target, claimed in curve["loss_at_step"].items():
        last = [h["loss"] for h in rows if h["step"] <= int(target)][-1]
        assert last == pytest.approx(claimed, rel=1e-3), target


@pytest.mark.parametrize("name", ids)
def test_trainer_log_jsonl_follows_log_history(name: str) -> None:
    """trainer_log.jsonl has LLaMA-Factory's keys and one loss line per logged step."""
    lines = [
        json.loads(line) for line in (SAMPLES / name / "trainer_log.jsonl").read_text().splitlines()
    ]
    assert all(set(line) >= LF_LINE_KEYS for line in lines)
    assert all(re.fullmatch(r"\d+:\d\d:\d\d", line["elapsed_time"]) for line in lines)
    logged = {line["current_steps"]: line for line in lines if "loss" in line}
    rows = _train_rows(name)
    assert set(logged) == {h["step"] for h in rows}
    last = {h["step"]: h for h in rows}
    for step, line in logged.items():
        assert line["total_steps"] == BY_NAME[name]["config"]["max_steps"]
        if _finite(line["loss"]):
            assert line["lr"] == pytest.approx(last[step]["learning_rate"])


def test_label_stories() -> None:
    """Each label's defining feature is visible in the numbers of its run."""
    for s in SCENARIOS:
        c, cfg = s["curve"], s["config"]
        warmup_fraction = cfg["warmup_steps"] / cfg["max_steps"]
        if s["label"] == "healthy":
            assert c["first_nonfinite_step"] is None, s["name"]
            assert c["loss_max"] <= 1.05 * c["loss_first"], s["name"]
            assert c["loss_final"] < c["loss_first"] - 1.0, s["name"]
        elif s["label"] == "warmup_too_short":
            assert cfg["warmup_steps"] <= 2, s["name"]
            spiked = c["loss_max"] > 1.5 * c["loss_first"]
            assert spiked or c["first_nonfinite_step"] is not None, s["name"]
        elif s["label"] == "warmup_too_long":
            assert warmup_fraction >= 0.5, s["name"]
            if warmup_fraction <= 1:
                # The LR peaks within the run, so the cost must be in the curve itself: the
                # loss has hardly left its first value a tenth of the way into the run.
                early = c["loss_at_step"][str(cfg["max_steps"] // 10)]
                assert c["reached_configured_peak"], s["name"]
                assert early >= 0.95 * c["loss_first"], s["name"]
            else:
                assert not c["reached_configured_peak"], s["name"]
        elif s["label"] == "lr_too_high":
            assert 0.05 <= warmup_fraction <= 0.2, s["name"]
            assert c["loss_max_step"] > cfg["warmup_steps"], s["name"]
        elif s["label"] == "numerical_instability":
            assert 0.05 <= warmup_fraction <= 0.2, s["name"]
            assert c["first_nonfinite_step"] is not None, s["name"]
            assert c["first_nonfinite_window_lr_min"] <= 0.02 * c["max_logged_lr"], s["name"]
    labels = {s["label"] for s in SCENARIOS}
    assert labels == LABELS
    assert any(s["curve"]["first_nonfinite_step"] is not None for s in SCENARIOS)
    assert any(
        s["config"]["warmup_steps"] > s["config"]["max_steps"]
        and not s["curve"]["reached_configured_peak"]
        for s in SCENARIOS
    )
    assert any(s["config"]["logging_steps"] == 1 for s in SCENARIOS)


def test_siblings_differ_only_in_warmup() -> None:
    """A sibling pair differs only in the warmup (numerical_instability: only in Adam's eps)."""
    for s in SCENARIOS:
        if s["sibling"] is None:
            continue
        mine, theirs = dict(s["config"]), dict(BY_NAME[s["sibling"]]["config"])
        # A numerical_instability run keeps its sibling's warmup, to show the warmup is no cause.
        changed = "adam_epsilon" if s["label"] == "numerical_instability" else "warmup_steps"
        assert mine.pop(changed) != theirs.pop(changed), s["name"]
        # How the warmup is written and how often the run logs are not training differences.
        for key in ("warmup_ratio", "logging_steps"):
            mine.pop(key, None)
            theirs.pop(key, None)
        assert mine == theirs, s["name"]


def test_siblings_show_the_warmup_effect() -> None:
    """Against its sibling, a too-short warmup spikes higher and a too-long one learns slower."""
    pairs = 0
    for s in SCENARIOS:
        other = BY_NAME.get(s["sibling"] or "")
        if other is None:
            continue
        mine, theirs = s["curve"], other["curve"]
        if s["label"] == "warmup_too_short":
            pairs += 1
            assert mine["loss_max"] > theirs["loss_max"], s["name"]
            if mine["first_nonfinite_step"] is not None:
                assert theirs["first_nonfinite_step"] is None, s["name"]
        elif s["label"] == "warmup_too_long" and other["label"] == "healthy":
            pairs += 1
            early = str(s["config"]["max_steps"] // 10)
            assert mine["loss_at_step"][early] > theirs["loss_at_step"][early] + 0.3, s["name"]
    assert pairs >= 3


def _lr_from(rows: list[dict[str, Any]], step: int) -> float:
    """The LR applied at ``step``, interpolated between logs or followed back along the ramp."""
    steps = [h["step"] for h in rows]
    lrs = [h["learning_rate"] for h in rows]
    if step < steps[0]:
        slope = (lrs[1] - lrs[0]) / (steps[1] - steps[0])
        return max(0.0, lrs[0] - slope * (steps[0] - step))
    i = next(k for k, st in enumerate(steps) if st >= step)
    if steps[i] == step:
        return lrs[i]
    share = (step - steps[i - 1]) / (steps[i] - steps[i - 1])
    return lrs[i - 1] + share * (lrs[i] - lrs[i - 1])


def test_numerical_instability_starts_while_lr_is_near_zero() -> None:
    """NaN first logged from a window whose LR was <= 2% of its peak, with a usual warmup."""
    found = 0
    for s in SCENARIOS:
        if s["label"] != "numerical_instability":
            continue
        found += 1
        cfg = s["config"]
        rows = _train_rows(s["name"])
        steps = [h["step"] for h in rows]
        bad = [h for h in rows if not (_finite(h["loss"]) and _finite(h.get("grad_norm")))]
        assert bad, s["name"]
        onset = steps.index(bad[0]["step"])
        # A value logged at a step reflects every step since the previous log.
        window_start = steps[onset - 1] + 1 if onset else 1
        assert all(_finite(h["grad_norm"]) for h in rows[:onset]), s["name"]
        peak = max(h["learning_rate"] for h in rows)
        assert peak >= 0.95 * cfg["learning_rate"], s["name"]
        assert _lr_from(rows, window_start) <= 0.02 * peak, s["name"]
        assert cfg["warmup_steps"] > window_start, s["name"]  # still in a ramp of 5-20%
        # The sibling has the same warmup and schedule and no non-finite value at all.
        sibling = BY_NAME[s["sibling"]]
        assert sibling["label"] == "healthy"
        assert sibling["config"]["warmup_steps"] == cfg["warmup_steps"]
        assert all(
            _finite(h["loss"]) and _finite(h["grad_norm"]) for h in _train_rows(sibling["name"])
        )
    assert found >= 1


def test_long_warmup_that_peaks_wastes_the_start() -> None:
    """A long warmup whose LR peaks in the run sits near its first loss while its sibling falls."""
    found = 0
    for s in SCENARIOS:
        cfg = s["config"]
        if s["label"] != "warmup_too_long" or cfg["warmup_steps"] > cfg["max_steps"]:
            continue
        found += 1
        sibling = BY_NAME[s["sibling"]]
        assert sibling["label"] == "healthy"
        assert sibling["config"]["warmup_steps"] <= 0.1 * cfg["max_steps"]
        rows = _train_rows(s["name"])
        tenth = cfg["max_steps"] // 10
        # Over the first tenth of the run the LR stays small and the loss near its start.
        assert all(
            h["learning_rate"] < 0.2 * cfg["learning_rate"] for h in rows if h["step"] <= tenth
        )
        assert all(h["loss"] >= 0.95 * rows[0]["loss"] for h in rows if h["step"] <= tenth)
        # Its 10%-warmup sibling has left the start by then and is far lower a fifth of the way in.
        mine, theirs = s["curve"]["loss_at_step"], sibling["curve"]["loss_at_step"]
        assert theirs[str(tenth)] < 0.92 * sibling["curve"]["loss_first"]
        fifth = str(cfg["max_steps"] // 5)
        assert mine[fifth] > theirs[fifth] + 0.5, s["name"]
    assert found >= 1


def test_resumed_scenario_has_two_attempts() -> None:
    """The resumed run has two event files, two SwanLab runs and weightless checkpoints."""
    resumed = [s for s in SCENARIOS if s["config"]["resume_at"] is not None]
    assert resumed
    for s in resumed:
        folder = SAMPLES / s["name"]
        assert len(list((folder / "runs").glob("events.out.tfevents.*"))) == 2
        assert len(list((folder / "swanlog").glob("run-*"))) == 2
        checkpoints = list(folder.glob("checkpoint-*"))
        assert checkpoints
        for ckpt in checkpoints:
            assert [p.name for p in ckpt.iterdir()] == ["trainer_state.json"]
            state = json.loads((ckpt / "trainer_state.json").read_text())
            assert state["global_step"] == int(ckpt.name.split("-")[1])


def test_swanlab_runs_are_readable_and_finished() -> None:
    """SwanLab's own reader walks every run file; the interrupted attempt is marked crashed."""
    # SwanLab's reader and record schema are internal; other SwanLab versions skip this check.
    store_module = pytest.importorskip("swanlab.sdk.internal.core_python.store")
    record_module = pytest.importorskip("swanlab.proto.swanlab.record.v1.record_pb2")
    DataStoreReader, Record = store_module.DataStoreReader, record_module.Record

    for s in SCENARIOS:
        states = []
        for store in sorted((SAMPLES / s["name"] / "swanlog").glob("run-*/run-*.swanlab")):
            reader = DataStoreReader()
            reader.open(store)
            records = [Record.FromString(raw) for raw in reader]
            reader.close()
            keys = {r.scalar.key for r in records if r.WhichOneof("record_type") == "scalar"}
            assert {"train/loss", "train/learning_rate"} <= keys, store.name
            finish = [r.finish for r in records if r.WhichOneof("record_type") == "finish"]
            states.append(finish[-1].state)
        expected = 2 if s["config"]["resume_at"] is not None else 1
        assert len(states) == expected
        assert states[-1] == 1  # RUN_STATE_FINISHED
        if expected == 2:
            assert states[0] == 2  # RUN_STATE_CRASHED


def test_no_machine_paths_or_host_names() -> None:
    """No file holds this checkout's path, the home or temp folder, or the host name."""
    needles = {str(ROOT).encode(), (str(Path.home()) + os.sep).encode()}
    needles.add((tempfile.gettempdir() + os.sep).encode())
    host = socket.gethostname()
    if len(host) >= 6:  # short names occur by chance inside binary data
        needles.add(host.encode())
    for path in SAMPLES.rglob("*"):
        if path.is_file() and path.suffix != ".py":
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"{path.relative_to(SAMPLES)} contains {needle!r}"
