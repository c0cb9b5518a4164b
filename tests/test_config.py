"""Canonical config keys and the config files found next to a run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmup_monitor.config import CANONICAL_KEYS, canonical_config, read_config_near


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"learning_rate": "1e-4"}, {"learning_rate": 1e-4}),
        (
            {"learning_rate": 2e-5, "warmup_steps": "100"},
            {"learning_rate": 2e-5, "warmup_steps": 100},
        ),
        (
            {"warmup_ratio": "0.1", "lr_scheduler_type": "cosine"},
            {"warmup_ratio": 0.1, "lr_scheduler_type": "cosine"},
        ),
        ({"lr_scheduler_type": "SchedulerType.LINEAR"}, {"lr_scheduler_type": "linear"}),
        ({"max_steps": -1, "num_train_epochs": 3}, {"num_train_epochs": 3.0}),
        ({"num_train_epochs": 9223372036854775807, "max_steps": 100}, {"max_steps": 100}),
        ({"warmup_steps": 0.05}, {"warmup_ratio": 0.05}),
        ({"warmup_steps": 0, "warmup_ratio": 0.0}, {"warmup_steps": 0}),
        ({"warmup_steps": 0, "warmup_ratio": 0.1}, {"warmup_ratio": 0.1}),
        ({"warmup_steps": 30, "warmup_ratio": 0.1}, {"warmup_steps": 30, "warmup_ratio": 0.1}),
        (
            {"lr": 3e-4, "batch_size": 16, "max_epochs": 5},
            {"learning_rate": 3e-4, "per_device_train_batch_size": 16, "num_train_epochs": 5.0},
        ),
        ({"lr": 1.0, "learning_rate": 2.0}, {"learning_rate": 2.0}),
        (
            {"quantization_bit": 4, "finetuning_type": "lora"},
            {"quantization_bit": 4, "finetuning_type": "lora"},
        ),
        ({"learning_rate": {"value": "5e-5", "desc": None, "sort": 3}}, {"learning_rate": 5e-5}),
        (
            {"optimizer": {"lr": 0.001}, "trainer": {"max_steps": 500}},
            {"learning_rate": 0.001, "max_steps": 500},
        ),
        ({"optim": "paged_adamw_8bit"}, {"optim": "paged_adamw_8bit"}),
        ({"optimizer": "sgd", "trainer": {"max_steps": 500}}, {"optim": "sgd", "max_steps": 500}),
        ({"learning_rate": None, "model_name_or_path": ""}, {}),
        ({"unrelated": 1, "output_dir": "x"}, {}),
        (
            {
                "lr_scheduler_type": "warmup_stable_decay",
                "lr_scheduler_kwargs": {"num_decay_steps": 40},
            },
            {
                "lr_scheduler_type": "warmup_stable_decay",
                "lr_scheduler_kwargs": {"num_decay_steps": 40},
            },
        ),
        # A command line leaves the JSON text; SwanLab wraps it as {"value": ...}; a section.
        (
            {"lr_scheduler_kwargs": '{"min_lr_rate": 0.1}'},
            {"lr_scheduler_kwargs": {"min_lr_rate": 0.1}},
        ),
        (
            {"lr_scheduler_kwargs": {"value": {"num_cycles": 2}, "desc": None}},
            {"lr_scheduler_kwargs": {"num_cycles": 2}},
        ),
        (
            {"train": {"lr_scheduler_kwargs": {"power": 2.0}}},
            {"lr_scheduler_kwargs": {"power": 2.0}},
        ),
        ({"lr_scheduler_kwargs": {}}, {}),
        ({"lr_scheduler_kwargs": ""}, {}),
    ],
)
def test_canonical_config_table(raw: dict, expected: dict) -> None:
    """Aliases, coercion, unwrapping and unset sentinels, one case per row."""
    assert canonical_config(raw) == expected


def test_uncoercible_values_warn() -> None:
    """A value of the wrong type is left out with a warning naming the key and value."""
    warnings: list[str] = []
    out = canonical_config(
        {"learning_rate": "fast", "max_steps": 12.5, "warmup_steps": [1]}, warnings
    )
    assert out == {}
    assert len(warnings) == 3
    assert "learning_rate='fast'" in warnings[0]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("decay=40", "'decay=40' is not a JSON object"),
        ("[1, 2]", "is [1, 2], not a mapping"),
        (7, "is 7, not a mapping"),
        ({"num_decay_steps": [40]}, "'num_decay_steps': [40] is not a number or string"),
        ({"min_lr": float("nan")}, "'min_lr': nan is not a number or string"),
    ],
)
def test_unusable_scheduler_kwargs_warn(value: object, says: str) -> None:
    """Scheduler arguments that are no mapping of numbers and strings are left out, named."""
    warnings: list[str] = []
    out = canonical_config({"learning_rate": 1e-4, "lr_scheduler_kwargs": value}, warnings)
    assert out == {"learning_rate": 1e-4}
    (warning,) = warnings
    assert says in warning and warning.endswith("; ignored"), warning


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from([*CANONICAL_KEYS, "lr", "epochs", "other"]),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
            lambda kids: (
                st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
            ),
            max_leaves=6,
        ),
    )
)
def test_canonical_config_never_raises(raw: dict) -> None:
    """Any JSON/YAML-shaped input gives canonical keys with coerced types, never an exception."""
    out = canonical_config(raw, [])
    assert set(out) <= set(CANONICAL_KEYS)
    for key, value in out.items():
        if key == "lr_scheduler_kwargs":
            assert value and all(isinstance(v, (int, float, str)) for v in value.values())
            continue
        assert isinstance(value, (int, float, str)) and not isinstance(value, bool), key


def _yaml(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def test_precedence_within_a_folder(tmp_path: Path) -> None:
    """Files override in order: hparams, SwanLab, args, training_args, recipes, trainer_state."""
    (tmp_path / "trainer_state.json").write_text(
        json.dumps({"max_steps": 500, "logging_steps": 5, "log_history": [{"learning_rate": 9.0}]})
    )
    _yaml(tmp_path / "zz.yaml", {"learning_rate": 5.5, "max_steps": 100, "logging_steps": 1})
    _yaml(tmp_path / "hparams.yaml", {"lr": 1.0, "warmup_steps": 1})
    _yaml(
        tmp_path / "files" / "config.yaml",
        {
            "learning_rate": {"value": 2.0},
            "warmup_steps": {"value": 2},
            "max_grad_norm": {"value": 0.5},
        },
    )
    (tmp_path / "args.json").write_text(json.dumps({"learning_rate": 3.0, "adam_beta2": 0.95}))
    (tmp_path / "training_args.json").write_text(json.dumps({"learning_rate": 4.0}))
    _yaml(tmp_path / "recipe.yaml", {"learning_rate": 5.0, "lr_scheduler_type": "linear"})
    _yaml(tmp_path / "training_args.yaml", {"learning_rate": 6.0})
    config = read_config_near(tmp_path)
    assert config == {
        "max_steps": 500,
        "logging_steps": 5,
        "learning_rate": 6.0,
        "warmup_steps": 2,
        "max_grad_norm": 0.5,
        "adam_beta2": 0.95,
        "lr_scheduler_type": "linear",
        "loss_window": 1,  # Lightning's hparams.yaml: its losses are single steps
    }


def test_trainer_state_records_what_ran(tmp_path: Path) -> None:
    """The parent's trainer_state.json overrides HF's defaulted num_train_epochs in a run folder."""
    (tmp_path / "trainer_state.json").write_text(
        json.dumps({"max_steps": 300, "num_train_epochs": 1, "log_history": []})
    )
    run = tmp_path / "swanlog" / "run-1"
    _yaml(
        run / "files" / "config.yaml",
        {"num_train_epochs": {"value": 3.0}, "max_steps": {"value": 300}},
    )
    assert read_config_near(run) == {"max_steps": 300, "num_train_epochs": 1.0}


def test_run_folder_wins_over_parent(tmp_path: Path) -> None:
    """An HF output_dir's config reaches its runs/<name>/ TensorBoard folder; nearer files win."""
    _yaml(tmp_path / "training_args.yaml", {"learning_rate": 1e-4, "warmup_ratio": 0.1})
    tb = tmp_path / "runs" / "Nov29_12-00-00_host"
    tb.mkdir(parents=True)
    assert read_config_near(tb) == {"learning_rate": 1e-4, "warmup_ratio": 0.1}
    _yaml(tb / "hparams.yaml", {"learning_rate": 5e-4})
    assert read_config_near(tb)["learning_rate"] == 5e-4


def test_runs_folder_holding_the_events_gets_the_output_dir_config(tmp_path: Path) -> None:
    """``SummaryWriter("out/runs")`` puts the events in ``out/runs`` itself: ``out``'s config
    describes them (the output_dir layout without the per-run subfolder)."""
    (tmp_path / "training_args.json").write_text(json.dumps({"warmup_steps": 300}))
    tb = tmp_path / "runs"
    tb.mkdir()
    assert read_config_near(tb) == {"warmup_steps": 300}


def test_unrelated_folders_are_not_searched(tmp_path: Path) -> None:
    """A parent's config is read only in an output_dir layout, never two levels up."""
    _yaml(tmp_path / "training_args.yaml", {"learning_rate": 1e-4})
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert read_config_near(deep) == {}
    # A stray config in a folder of unrelated runs is not applied to every run below it.
    assert read_config_near(tmp_path / "a") == {}
    # It is once the folder is an output_dir (a trainer_log.jsonl, a checkpoint …).
    (tmp_path / "trainer_log.jsonl").write_text("")
    assert read_config_near(tmp_path / "a") == {"learning_rate": 1e-4}


def test_a_stray_parent_config_does_not_reach_runs_below(
    tmp_path: Path, write_tb_run: Callable[..., None]
) -> None:
    """A folder of repros with one stray training_args.yaml: the runs keep their own config."""
    from warmup_monitor.discover import read_runs

    _yaml(tmp_path / "training_args.yaml", {"learning_rate": 0.5, "warmup_steps": 400})
    write_tb_run(tmp_path / "bug1")
    _yaml(tmp_path / "bug2" / "hparams.yaml", {"learning_rate": 1e-3})
    write_tb_run(tmp_path / "bug2")
    runs = {r.name: r for r in read_runs(tmp_path)}
    assert runs["bug1"].config == {}
    assert runs["bug2"].config == {"learning_rate": 1e-3, "loss_window": 1}
    assert "config read from hparams.yaml (learning_rate, loss_window)" in runs["bug2"].notes


def test_notes_say_which_file_supplied_what(tmp_path: Path) -> None:
    """In an output_dir layout the notes name the file behind each key."""
    _yaml(tmp_path / "training_args.yaml", {"learning_rate": 1e-4, "warmup_ratio": 0.1})
    tb = tmp_path / "runs" / "Nov29_12-00-00_host"
    _yaml(tb / "hparams.yaml", {"learning_rate": 5e-4})
    notes: list[str] = []
    read_config_near(tb, notes=notes)
    assert notes == [
        "config read from hparams.yaml (learning_rate, loss_window); "
        "../../training_args.yaml (warmup_ratio)"
    ]


def test_lightning_hparams_say_the_losses_are_single_steps(tmp_path: Path) -> None:
    """The run folder's own hparams.yaml (Lightning's, even an empty mapping) gives
    ``loss_window`` 1; a parent's does not, nor does a file that holds no mapping."""
    run = tmp_path / "lightning_logs" / "version_0"
    _yaml(run / "hparams.yaml", {})
    assert read_config_near(run) == {"loss_window": 1}
    (run / "sub").mkdir()
    assert "loss_window" not in read_config_near(run / "sub")
    (run / "hparams.yaml").write_text("- a list\n")
    assert read_config_near(run) == {}


def test_unrelated_yaml_is_ignored(tmp_path: Path) -> None:
    """A YAML without training keys (a dataset card, CI config) is not read as config."""
    _yaml(tmp_path / "dataset.yaml", {"max_steps": 3, "name": "x"})
    assert read_config_near(tmp_path) == {}


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("training_args.yaml", "learning_rate: [1e-4\n", "cannot be parsed"),
        ("training_args.json", '{"learning_rate": ', "cannot be parsed"),
        ("hparams.yaml", "", "is empty"),
        ("args.json", "[1, 2]", "does not hold a mapping"),
    ],
)
def test_garbled_files_warn_never_raise(
    tmp_path: Path, name: str, content: str, fragment: str
) -> None:
    """Garbled, empty or oddly shaped config files become a warning naming the file."""
    (tmp_path / name).write_text(content)
    warnings: list[str] = []
    assert read_config_near(tmp_path, warnings) == {}
    assert len(warnings) == 1
    assert name in warnings[0] and fragment in warnings[0]


def test_file_path_reads_its_folder(tmp_path: Path) -> None:
    """Given a log file, the config next to it is read."""
    _yaml(tmp_path / "training_args.yaml", {"warmup_steps": 50})
    log = tmp_path / "trainer_log.jsonl"
    log.write_text("")
    assert read_config_near(log) == {"warmup_steps": 50}


def test_missing_path_gives_empty_config(tmp_path: Path) -> None:
    """A path that does not exist has no config, and no exception."""
    assert read_config_near(tmp_path / "nope") == {}


def test_a_long_runs_trainer_state_is_not_capped(tmp_path: Path) -> None:
    """trainer_state.json of a long run (over 2 MB of log_history) still gives its top level."""
    history = [
        {"step": s, "epoch": s / 1000, "loss": 2.0, "learning_rate": 1e-4, "grad_norm": 1.0}
        for s in range(1, 30_001)
    ]
    state = {"max_steps": 30_000, "logging_steps": 1, "log_history": history}
    (tmp_path / "trainer_state.json").write_text(json.dumps(state), encoding="utf-8")
    assert (tmp_path / "trainer_state.json").stat().st_size > 2_000_000
    warnings: list[str] = []
    config = read_config_near(tmp_path, warnings)
    assert config["max_steps"] == 30_000 and config["logging_steps"] == 1
    assert warnings == []


def test_an_oversized_config_file_is_ignored_with_a_warning(tmp_path: Path) -> None:
    """A YAML config over 2 MB is not a config: it is skipped, and the warning says why."""
    (tmp_path / "training_args.yaml").write_text(
        "learning_rate: 1.0e-4\n" + "# padding\n" * 250_000, encoding="utf-8"
    )
    warnings: list[str] = []
    assert read_config_near(tmp_path, warnings) == {}
    assert warnings == ["config file training_args.yaml is larger than 2 MB; ignored"]


def test_a_shared_parent_is_listed_once_and_again_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs of a sweep share a parent: it is listed once, not once per run (N^2 reads)."""
    import os

    from warmup_monitor import config

    parent = tmp_path / "runs"  # an output_dir's runs/: its config applies to every run
    parent.mkdir()
    (parent / "args.json").write_text(json.dumps({"learning_rate": 0.1}))
    runs = [parent / f"run_{i}" for i in range(5)]
    for run in runs:
        run.mkdir()
    mtime = os.stat(parent).st_mtime_ns
    # The folder was last changed long ago, as far as the cache can tell.
    monkeypatch.setattr(config.time, "time_ns", lambda: mtime + 10 * config._SETTLED_NS)
    listed: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path):  # type: ignore[no-untyped-def]
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(config.os, "scandir", counting_scandir)
    for run in runs:
        assert read_config_near(run)["learning_rate"] == 0.1
    assert listed.count(str(parent)) == 1
    # A new file in the parent changes its mtime: the listing is read again.
    (parent / "training_args.json").write_text(json.dumps({"learning_rate": 0.2}))
    os.utime(parent, ns=(mtime, mtime + 1))
    assert read_config_near(runs[0])["learning_rate"] == 0.2
    assert listed.count(str(parent)) == 2


# ------------------------------------------------------- the Trainer's arguments in TensorBoard
def _hf_tensorboard_run(
    tmp_path: Path, lr_at: Callable[[int], float] | None = None, **args: object
) -> Path:
    """A TensorBoard run written by the HF Trainer's own callback (arguments, then scalars).

    The LR is ``lr_at(step)``, by default a linear warmup to 1e-3 that then stays there."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.integrations import TensorBoardCallback

    targs = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], **args)
    state, control = transformers.TrainerState(), transformers.TrainerControl()
    callback = TensorBoardCallback()
    callback.on_train_begin(targs, state, control)
    warmup = int(args.get("warmup_steps", 0))
    for step in range(5, 201, 5):
        state.global_step = step
        lr = 1e-3 * min(1.0, step / warmup) if warmup else 1e-3
        if lr_at is not None:
            lr = lr_at(step)
        loss = 2.0 + 3.0 * 0.98**step
        callback.on_log(targs, state, control, logs={"loss": loss, "learning_rate": lr})
    callback.on_train_end(targs, state, control)
    (run_dir,) = (tmp_path / "out" / "runs").iterdir()  # the Trainer's <output_dir>/runs/<name>
    return run_dir


def test_trainer_arguments_in_the_event_file_are_config(tmp_path: Path) -> None:
    """A run shared as its event file alone still has its steps, warmup and cadence."""
    run_dir = _hf_tensorboard_run(
        tmp_path,
        max_steps=200,
        warmup_steps=60,
        logging_steps=5,
        lr_scheduler_type="constant_with_warmup",
        max_grad_norm=0.5,
    )
    notes: list[str] = []
    cfg = read_config_near(run_dir, notes=notes)
    assert cfg["max_steps"] == 200 and cfg["warmup_steps"] == 60
    assert cfg["logging_steps"] == 5 and cfg["max_grad_norm"] == 0.5
    assert cfg["lr_scheduler_type"] == "constant_with_warmup"
    assert "tfevents" in notes[0]
    # Without a decay to date the end of the run, only the arguments give the warmup's share.
    from warmup_monitor import diagnose, read_run

    d = diagnose(read_run(run_dir))
    assert d.verdict.value == "warmup_too_long"
    assert "30%" in d.summary


def test_scheduler_arguments_are_read_and_the_log_is_checked_against_them(
    tmp_path: Path,
) -> None:
    """The Trainer's own arguments name a warmup-stable-decay schedule and its decay length:
    they are read (from the event file's arguments and from ``to_json_string``), and a log
    whose LR never decays is reported against them; one that follows them is not."""
    from warmup_monitor import diagnose, read_run

    args = {
        "learning_rate": 1e-3,
        "max_steps": 200,
        "warmup_steps": 20,
        "logging_steps": 5,
        "lr_scheduler_type": "warmup_stable_decay",
        "lr_scheduler_kwargs": {"num_decay_steps": 40},
    }
    flat = _hf_tensorboard_run(tmp_path / "flat", **args)  # its LR stays at the peak
    assert read_config_near(flat)["lr_scheduler_kwargs"] == {"num_decay_steps": 40}
    (found,) = [
        f
        for f in diagnose(read_run(flat)).findings
        if f.evidence.get("problem") == "config_schedule"
    ]
    assert "warmup_stable_decay" in found.message, found.message

    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = transformers.get_scheduler(
        "warmup_stable_decay",
        opt,
        num_warmup_steps=20,
        num_training_steps=200,
        scheduler_specific_kwargs={"num_decay_steps": 40},
    )
    lrs = [sched.get_last_lr()[0]]
    for _ in range(200):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    follows = _hf_tensorboard_run(tmp_path / "follows", lr_at=lambda step: lrs[step], **args)
    targs = transformers.TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], **args)
    (follows / "training_args.json").write_text(targs.to_json_string())
    assert read_config_near(follows)["lr_scheduler_kwargs"] == {"num_decay_steps": 40}
    d = diagnose(read_run(follows))
    assert not [f for f in d.findings if f.evidence.get("problem") == "config_schedule"]


def test_an_argument_file_beside_the_event_file_wins(tmp_path: Path) -> None:
    """The files of the run folder override what the event file says; a parent's event file
    is never read as this run's config."""
    run_dir = _hf_tensorboard_run(tmp_path, max_steps=200, warmup_steps=60)
    (run_dir / "training_args.json").write_text(json.dumps({"warmup_steps": 20}))
    assert read_config_near(run_dir)["warmup_steps"] == 20
    child = run_dir / "sub"
    child.mkdir()
    assert "max_steps" not in read_config_near(child)


def test_damaged_or_foreign_event_files_give_no_config(tmp_path: Path) -> None:
    """Event files without arguments, cut short or overwritten, are no config and no error."""
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    plain = tmp_path / "plain"
    w = SummaryWriter(str(plain))
    for step in range(50):
        w.add_scalar("loss", 1.0, step)
    w.add_text("args", json.dumps({"max_steps": 7}))  # after the scalars: not the Trainer's
    w.close()
    assert read_config_near(plain) == {}
    run_dir = _hf_tensorboard_run(tmp_path / "hf", max_steps=200, warmup_steps=60)
    (event,) = run_dir.glob("*tfevents*")
    data = event.read_bytes()
    for cut in (data[:40], data[:-3], data[:30] + b"\xff" * 64 + data[94:]):
        event.write_bytes(cut)
        warnings: list[str] = []
        cfg = read_config_near(run_dir, warnings)
        assert "max_steps" not in cfg or cfg["max_steps"] == 200
    event.write_bytes(data.replace(b'"max_steps": 200', b'"max_steps": [[[['))
    warnings = []
    cfg = read_config_near(run_dir, warnings)
    assert "max_steps" not in cfg


@pytest.fixture(scope="module")
def hf_event_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One real event file of the HF Trainer's callback: its arguments, then scalars."""
    run_dir = _hf_tensorboard_run(tmp_path_factory.mktemp("hf_bytes"), max_steps=200)
    (event,) = run_dir.glob("*tfevents*")
    return event.read_bytes()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_trainer_arguments_of_any_bytes_is_text_or_none(
    tmp_path_factory: pytest.TempPathFactory, hf_event_bytes: bytes, data: st.DataObject
) -> None:
    """Whatever an event file holds (a real one damaged anywhere, or noise), the scan for the
    Trainer's arguments returns text or ``None``, never raises."""
    from warmup_monitor.readers.tensorboard_args import trainer_arguments

    path = tmp_path_factory.mktemp("damaged") / "events.out.tfevents.1.host"
    base = hf_event_bytes
    if data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(base) - 1))
        junk = data.draw(st.binary(min_size=1, max_size=64))
        raw = base[:at] + junk + base[at + len(junk) :]
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    else:
        raw = b"args/text_summary" + data.draw(st.binary(max_size=512))
    path.write_bytes(raw)
    got = trainer_arguments(path)
    assert got is None or isinstance(got, str)
