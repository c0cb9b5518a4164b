"""Bad input ends in a warning or a one-line error: never a traceback, a hang or a silent loss.

Each test damages a file written by the real writer (torch's ``SummaryWriter``, SwanLab in
offline mode, the HF ``TrainerState.save_to_json``, LLaMA-Factory's ``json.dumps`` lines,
Lightning's ``metrics.csv``) the way a user's disk, editor or script does.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from damage import records, swanlab_points
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup_monitor.cli import main
from warmup_monitor.config import canonical_config, read_config_near
from warmup_monitor.diagnosis import diagnose
from warmup_monitor.discover import find_runs, open_source, read_run
from warmup_monitor.errors import FormatError, InputError
from warmup_monitor.readers._crc32c import masked_crc32c
from warmup_monitor.readers.lightning import LightningCsvSource
from warmup_monitor.readers.llamafactory import TrainerLogSource
from warmup_monitor.readers.swanlab import SwanLabSource
from warmup_monitor.readers.tensorboard import TensorBoardSource
from warmup_monitor.readers.trainer_state import TrainerStateSource

ROOT = Path(__file__).resolve().parents[1]
LF_FIXTURE = ROOT / "tests" / "fixtures" / "llamafactory"
CSV_FIXTURE = ROOT / "tests" / "fixtures" / "lightning" / "lightning_logs" / "version_0"
HUGE = "1" + "0" * 400  # an integer literal no float can hold
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
        for i in range(8)
    ]
    + ["learning_rate: 1.0e-4"]
)


# --------------------------------------------------------------------------- writers


def write_trainer_state(folder: Path, history: list[dict], **top: object) -> Path:
    """``trainer_state.json`` written by the HF Trainer's own ``TrainerState.save_to_json``."""
    transformers = pytest.importorskip("transformers")
    state = transformers.TrainerState(
        global_step=top.pop("global_step", 0), log_history=history, **top
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trainer_state.json"
    state.save_to_json(str(path))
    return path


def hf_history(steps: int = 20) -> list[dict]:
    return [
        {"step": s, "epoch": s / steps, "loss": 3.0 - 0.05 * s, "learning_rate": 1e-4 * s / steps}
        for s in range(1, steps + 1)
    ]


def jsonl_line(step: int, **metrics: object) -> str:
    """One line as LLaMA-Factory's LogCallback writes it (``json.dumps(logs) + "\\n"``)."""
    logs = {"current_steps": step, "total_steps": 100, **metrics, "elapsed_time": "0:00:01"}
    return json.dumps(logs) + "\n"


_SWANLAB_RUNS = {
    "default": "for s in range(1, 21): swanlab.log({'train/loss': 3.0 - 0.1 * s}, step=s)",
    "sevens": "for s in range(1, 31): swanlab.log({'train/loss': 7.0}, step=s)",
    "nines": "for s in range(1, 6): swanlab.log({'train/loss': 9.0}, step=s)",
}


@pytest.fixture(scope="module")
def swanlab_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Finished SwanLab runs written by SwanLab itself, offline, once for this module."""
    pytest.importorskip("swanlab")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = {}
    for name, body in _SWANLAB_RUNS.items():
        root = tmp_path_factory.mktemp(f"swanlab_{name}")
        code = f"""
import sys, swanlab
probe = swanlab.Settings.Probe(hardware=False, requirements=False, git=False, monitor=False)
swanlab.init(mode="offline", log_dir=sys.argv[1], project="p", name="r",
             config={{"learning_rate": 1e-3}}, settings=swanlab.Settings(probe=probe))
{body}
swanlab.finish()
"""
        subprocess.run(
            [sys.executable, "-c", code, str(root)], check=True, env=env, capture_output=True
        )
        (out[name],) = root.glob("run-*")
    return out


def swanlab_run(runs: dict[str, Path], dest: Path, name: str = "default") -> Path:
    """A private copy of one of the module's SwanLab runs under ``dest``."""
    copy = dest / runs[name].name
    shutil.copytree(runs[name], copy)
    return copy


def _invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def _values(run: object, metric: str) -> dict[int, float]:
    steps, values = run.series(metric)  # type: ignore[attr-defined]
    return dict(zip(steps.tolist(), values.tolist(), strict=True))


# --------------------------------------------------------------------------- 1. huge integers


def test_huge_integer_in_trainer_state_reads_as_inf(tmp_path: Path) -> None:
    """A loss of 10^400 is +inf (as the float literal 1e400 is), not an OverflowError."""
    path = write_trainer_state(tmp_path, hf_history(), max_steps=20, logging_steps=1)
    text = path.read_text().replace('"loss": 2.5,', f'"loss": {HUGE},', 1)
    path.write_text(text)
    run = read_run(tmp_path)
    assert _values(run, "loss")[10] == math.inf
    assert len(_values(run, "loss")) == 20


def test_huge_integer_in_configs_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "training_args.yaml").write_text(f"learning_rate: {HUGE}\nwarmup_steps: 5\n")
    warnings: list[str] = []
    assert read_config_near(tmp_path, warnings) == {"warmup_steps": 5}
    assert any("learning_rate" in w for w in warnings)
    assert canonical_config({"max_steps": int(HUGE)}, warnings) == {}


def test_watcher_survives_a_huge_integer_and_reads_the_nan_after_it(tmp_path: Path) -> None:
    """One appended line with a 400-digit number must not end the tail: the NaN after it counts."""
    log = tmp_path / "trainer_log.jsonl"
    log.write_text(jsonl_line(1, loss=2.0, lr=1e-5))
    source = TrainerLogSource(tmp_path)
    assert len(source.poll()) == 2
    with open(log, "a") as fh:
        fh.write(jsonl_line(2, loss=2.0, lr=1e-5).replace("2.0", HUGE, 1))
        fh.write(jsonl_line(3, loss=math.nan, lr=1e-5))
    points = source.poll()
    got = {
        (points.tags[c], s): v
        for c, s, v in zip(points.tag_codes, points.steps, points.values, strict=True)
    }
    assert got[("loss", 2)] == math.inf
    assert math.isnan(got[("loss", 3)])


def test_plan_rejects_a_huge_integer_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(f"learning_rate: 1.0e-4\nmax_steps: {HUGE}\nwarmup_steps: {HUGE}\n")
    result = _invoke("plan", str(config))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "too large" in result.output


# --------------------------------------------------------------------------- 2. deep nesting


def test_deeply_nested_json_and_yaml(tmp_path: Path, write_tb_run: Callable[..., None]) -> None:
    """Deep nesting in a config is a warning; in trainer_state.json a one-line FormatError."""
    write_tb_run(tmp_path / "run")
    (tmp_path / "run" / "args.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "run" / "training_args.yaml").write_text("a: " + "[" * 5000 + "]" * 5000)
    run = read_run(tmp_path / "run")
    assert any("args.json" in w and "cannot be parsed" in w for w in run.warnings)
    assert any("training_args.yaml" in w and "cannot be parsed" in w for w in run.warnings)
    state = tmp_path / "state"
    state.mkdir()
    (state / "trainer_state.json").write_text('{"log_history": ' + "[" * 100_000)
    with pytest.raises(FormatError):
        read_run(state)
    deep = {"log_history": hf_history(), "x": 0}
    text = json.dumps(deep).replace('"x": 0', '"x": ' + "[" * 50_000 + "]" * 50_000)
    (state / "trainer_state.json").write_text(text)
    result = _invoke("report", str(state))
    assert result.exit_code == 2 and "nested too deeply" in result.output


def test_plan_rejects_deep_nesting_in_one_line(tmp_path: Path) -> None:
    for name, text in (
        ("deep.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000),
    ):
        (tmp_path / name).write_text(text)
        result = _invoke("plan", str(tmp_path / name))
        assert result.exit_code == 2, result.output
        assert "Error:" in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- 3. config values


@pytest.mark.parametrize("where", ["training_args.yaml", "trainer_state"])
def test_negative_logging_steps_is_ignored_with_a_warning(
    tmp_path: Path, write_tb_run: Callable[..., None], where: str
) -> None:
    write_tb_run(tmp_path / "runs" / "x")
    if where == "trainer_state":
        write_trainer_state(tmp_path, hf_history(), max_steps=20, logging_steps=-5)
    else:
        (tmp_path / "trainer_log.jsonl").write_text("")
        (tmp_path / where).write_text("logging_steps: -5\nlearning_rate: 1.0e-3\n")
    run = read_run(tmp_path)
    assert "logging_steps" not in run.config
    assert any("logging_steps=-5" in w and "outside its valid range" in w for w in run.warnings)
    diagnose(run)  # SpikeConfig(averaged_over=-5) raised here


def test_config_values_outside_their_range_are_dropped() -> None:
    warnings: list[str] = []
    raw = {
        "learning_rate": -1,
        "warmup_ratio": 3,
        "per_device_train_batch_size": 0,
        "gradient_accumulation_steps": -2,
        "adam_beta2": 1.5,
        "warmup_steps": -10,
        "max_grad_norm": 0,
        "num_train_epochs": 2,
    }
    assert canonical_config(raw, warnings) == {"num_train_epochs": 2.0}
    assert len(warnings) == 6  # max_grad_norm 0 turns clipping off: no warning


_HOSTILE = [None, True, -1, 0, 0.5, 100, 10**30, math.inf, -math.inf, math.nan, "1e400", "x", []]
_KEYS = [
    "optim",
    "warmup_steps",
    "warmup_ratio",
    "max_steps",
    "learning_rate",
    "logging_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "max_grad_norm",
    "num_train_epochs",
]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), st.sampled_from(_HOSTILE), max_size=6))
def test_a_config_handed_to_the_api_as_it_is_never_breaks_a_diagnosis(config: dict) -> None:
    """A config passed straight to ``Run`` (no reader cleaned it): ``max_steps`` 10**30, a
    warmup of "1e400", an optimizer named by a list... The diagnosis and the watcher's engine
    still answer, live and post-run."""
    from warmup_monitor import Points, Run
    from warmup_monitor.watch import AlertEngine

    rows = []
    for i in range(40):
        step = (i + 1) * 10
        rows += [("train/loss", step, 3.0 * 0.98**i, float(step))]
        rows += [("train/learning_rate", step, 1e-4 * min(1.0, step / 100), float(step))]
    points = Points.from_rows(rows)
    run = Run.from_points(points, name="r", path=Path("r"), source="test", config=config)
    for ended in (False, True):
        json.dumps(diagnose(run, ended=ended).to_dict())
    engine = AlertEngine("r", config=config)
    engine.add(points)
    engine.diagnose()


# --------------------------------------------------------------------------- 4. alias bomb


@pytest.mark.parametrize("where", ["training_args.yaml", "swanlab"])
def test_yaml_alias_bomb_is_refused_quickly(
    tmp_path: Path, where: str, swanlab_runs: dict[str, Path]
) -> None:
    assert len(ALIAS_BOMB) < 3000
    if where == "swanlab":
        run = swanlab_run(swanlab_runs, tmp_path / "swanlog")
        (run / "files" / "config.yaml").write_text(ALIAS_BOMB)
        path = run
    else:
        shutil.copy(LF_FIXTURE / "trainer_log.jsonl", tmp_path)
        (tmp_path / "training_args.yaml").write_text(ALIAS_BOMB)
        path = tmp_path
    start = time.perf_counter()
    run = read_run(path)
    assert time.perf_counter() - start < 5
    assert any("config.yaml" in w or "training_args.yaml" in w for w in run.warnings)
    assert any("expands to more than" in w for w in run.warnings)


# --------------------------------------------------------------------------- 5. FIFOs


def _report_in_subprocess(path: Path, timeout: float = 20) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "warmup_monitor.cli", "report", str(path), "-q"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize(
    "fifo", ["files/config.yaml", "files/swanlab-metadata.json", "run-fifo.swanlab"]
)
def test_a_fifo_in_a_swanlab_run_never_blocks(
    tmp_path: Path, fifo: str, swanlab_runs: dict[str, Path]
) -> None:
    run = swanlab_run(swanlab_runs, tmp_path / "swanlog")
    if fifo.endswith("metadata.json"):
        # Read only for a run without a finish record (is its writer alive?): cut it off.
        (record,) = run.glob("*.swanlab")
        record.write_bytes(record.read_bytes()[: swanlab_points(record.read_bytes())[9][2]])
    target = run / fifo
    target.unlink(missing_ok=True)
    os.mkfifo(target)
    result = _report_in_subprocess(run)  # a hang raises TimeoutExpired
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr


def test_fifos_beside_other_logs_never_block(tmp_path: Path) -> None:
    shutil.copy(LF_FIXTURE / "trainer_log.jsonl", tmp_path)
    for fifo in ("args.json", "training_args.yaml", "metrics.csv", "events.out.tfevents.1.h"):
        os.mkfifo(tmp_path / fifo)
    result = _report_in_subprocess(tmp_path)
    assert result.returncode in (0, 1), result.stderr


def test_open_regular_refuses_fifos_and_devices(tmp_path: Path) -> None:
    from warmup_monitor.untrusted import NotRegularFileError, read_regular

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NotRegularFileError, match="FIFO"):
        read_regular(tmp_path / "pipe")
    with pytest.raises(NotRegularFileError, match="device"):
        read_regular("/dev/zero")


# --------------------------------------------------------------------------- 6. non-UTF-8 names


def test_a_folder_name_that_is_not_utf8_is_written_to_every_output(tmp_path: Path) -> None:
    name = os.fsdecode(b"run\xff")
    shutil.copytree(LF_FIXTURE, tmp_path / "logs" / name)
    logs = str(tmp_path / "logs")
    for args in (
        ("--html", str(tmp_path / "r.html")),
        ("--format", "json", "-o", str(tmp_path / "r.json")),
        ("-o", str(tmp_path / "r.txt")),
    ):
        result = _invoke("report", logs, *args)
        assert result.exit_code in (0, 1), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["runs"][0]["name"] == name  # "\udcff" round-trips through JSON
    assert "run\\udcff" in (tmp_path / "r.txt").read_text(encoding="utf-8")
    assert "run\\udcff" in (tmp_path / "r.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- TensorBoard


def _event_file(folder: Path) -> Path:
    (path,) = (p for p in folder.iterdir() if "tfevents" in p.name)
    return path


def test_a_flipped_bit_in_the_summary_key_is_a_checksum_warning(
    tmp_path: Path, write_tb_run: Callable[..., None]
) -> None:
    """Field 5 (summary) turned into field 7 parses as a record that is skipped: the payload
    CRC must still be checked, so the lost point is reported."""
    write_tb_run(tmp_path, steps=30)
    path = _event_file(tmp_path)
    data = bytearray(path.read_bytes())
    offset, length = records(bytes(data))[5]
    payload = bytes(data[offset + 12 : offset + 12 + length])
    key = payload.index(b"\x2a")  # summary: field 5, length-delimited
    data[offset + 12 + key] ^= 0x10  # -> 0x3a: field 7 (log_message)
    path.write_bytes(bytes(data))
    run = read_run(tmp_path)
    assert len(run.scalars) == 2 * 30 - 1
    assert any("bad payload checksum" in w for w in run.warnings)


def test_a_flipped_bit_in_simple_value_key_is_a_checksum_warning(
    tmp_path: Path, write_tb_run: Callable[..., None]
) -> None:
    write_tb_run(tmp_path, steps=30)
    path = _event_file(tmp_path)
    data = bytearray(path.read_bytes())
    offset, length = records(bytes(data))[7]
    payload = bytes(data[offset + 12 : offset + 12 + length])
    key = payload.rindex(b"\x15")  # simple_value: field 2, 32-bit
    data[offset + 12 + key] ^= 0x08  # -> 0x1d: field 3, a field no scalar has
    path.write_bytes(bytes(data))
    run = read_run(tmp_path)
    assert len(run.scalars) == 2 * 30 - 1
    assert any("bad payload checksum" in w for w in run.warnings)


def _claim_length(data: bytearray, offset: int, length: int) -> None:
    header = struct.pack("<Q", length)
    data[offset : offset + 12] = header + struct.pack("<I", masked_crc32c(header))


@pytest.mark.parametrize("claim", ["file", "2**40"])
def test_a_record_length_past_the_end_is_reported(
    tmp_path: Path, write_tb_run: Callable[..., None], claim: str
) -> None:
    """Valid length CRC, length past the end of the file: ``report`` says the rest of the file
    is unread; a length no record can have (over 2 GiB) is a corrupted header."""
    write_tb_run(tmp_path, steps=30)
    path = _event_file(tmp_path)
    data = bytearray(path.read_bytes())
    offset, _ = records(bytes(data))[21]
    length = len(data) if claim == "file" else 1 << 40
    header = struct.pack("<Q", length)
    data[offset : offset + 12] = header + struct.pack("<I", masked_crc32c(header))
    path.write_bytes(bytes(data))
    run = read_run(tmp_path)
    assert len(run.scalars) == 20
    if claim == "file":
        (warning,) = [w for w in run.warnings if "incomplete record" in w]
        assert f"at byte {offset}" in warning and f"claiming {length} bytes" in warning
    else:
        assert any("corrupted record header" in w and "beyond any real" in w for w in run.warnings)


def test_watch_says_when_a_partial_record_stops_growing(
    tmp_path: Path, write_tb_run: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tb_run(tmp_path, steps=10)
    path = _event_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the writer died mid-record
    source = TensorBoardSource(tmp_path)
    source.poll()
    assert not any("incomplete record" in w for w in source.warnings)  # "not yet"
    later = time.monotonic() + 120
    monkeypatch.setattr(time, "monotonic", lambda: later)
    source.poll()
    assert any("has not grown for 60 s" in w for w in source.warnings)


def test_stray_files_named_like_event_files_are_not_runs(
    tmp_path: Path, write_tb_run: Callable[..., None]
) -> None:
    """``scripts/read_tfevents.py`` is no run, and a source folder is no broken event file."""
    write_tb_run(tmp_path / "runs" / "a")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "read_tfevents.py").write_text("import sys\nprint(sys.argv)\n" * 20)
    assert [r.name for r in find_runs(tmp_path)] == ["runs/a"]
    src = tmp_path / "pkg"
    src.mkdir()
    shutil.copy(ROOT / "warmup_monitor" / "readers" / "_tfevents.py", src)
    with pytest.raises(InputError, match="no training logs found"):
        find_runs(src)
    # A writer's file keeps its claim even when its first record is damaged.
    damaged = _event_file(tmp_path / "runs" / "a")
    data = bytearray(damaged.read_bytes())
    data[8] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="corrupted record header"):
        read_run(tmp_path / "runs" / "a")


# --------------------------------------------------------------------------- 10. SwanLab


def test_a_finished_swanlab_file_replaced_is_read_again(
    tmp_path: Path, swanlab_runs: dict[str, Path]
) -> None:
    first = swanlab_run(swanlab_runs, tmp_path / "a")
    second = swanlab_run(swanlab_runs, tmp_path / "b", "sevens")
    (record,) = first.glob("*.swanlab")
    source = SwanLabSource(first)
    assert len(source.poll()) == 20
    assert source.status == "finished"
    (new,) = second.glob("*.swanlab")
    tmp = record.with_name("tmp")
    shutil.copy(new, tmp)
    os.replace(tmp, record)
    points = source.poll()
    assert len(points) == 30 and set(points.values.tolist()) == {7.0}
    assert any("replaced" in w and "again from the start" in w for w in source.warnings)


def test_a_live_swanlab_file_truncated_is_read_again(
    tmp_path: Path, swanlab_runs: dict[str, Path]
) -> None:
    run = swanlab_run(swanlab_runs, tmp_path / "a")
    (record,) = run.glob("*.swanlab")
    whole = record.read_bytes()
    record.write_bytes(whole[: len(whole) // 2])  # still being written
    source = SwanLabSource(run)
    before = len(source.poll())
    assert 0 < before < 20
    other = swanlab_run(swanlab_runs, tmp_path / "b", "nines")
    (new,) = other.glob("*.swanlab")
    with open(record, "r+b") as fh:  # truncated and rewritten in place: same inode
        fh.truncate(0)
        fh.write(new.read_bytes()[:200])
    source.poll()
    with open(record, "ab") as fh:
        fh.write(new.read_bytes()[200:])
    points = source.poll()
    assert sorted(points.values.tolist()).count(9.0) >= 1
    assert any("again from the start" in w for w in source.warnings)


# --------------------------------------------------------------------------- 11. unreadable


def _drop_dac_capabilities() -> None:  # pragma: no cover - runs in the child
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _report_without_read_permission(path: Path) -> subprocess.CompletedProcess:
    """Run ``report`` where mode 000 really denies reading (as root: without DAC override)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "warmup_monitor.cli", "report", str(path)]
    preexec = _drop_dac_capabilities if os.geteuid() == 0 else None
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=60, preexec_fn=preexec
        )
    except subprocess.SubprocessError as err:
        if "preexec_fn" in str(err):
            pytest.skip("cannot drop CAP_DAC_OVERRIDE here, so mode 000 does not deny reads")
        raise


@pytest.mark.parametrize("name", ["trainer_log.jsonl", "metrics.csv", "trainer_state.json"])
def test_an_unreadable_log_says_permission_denied(tmp_path: Path, name: str) -> None:
    if name == "metrics.csv":
        shutil.copy(CSV_FIXTURE / name, tmp_path)
    elif name == "trainer_state.json":
        write_trainer_state(tmp_path, hf_history(), max_steps=20)
    else:
        shutil.copy(LF_FIXTURE / name, tmp_path)
    (tmp_path / name).chmod(0)
    result = _report_without_read_permission(tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "Permission denied" in result.stderr and name in result.stderr


# --------------------------------------------------------------------------- 12. BOM


def test_a_byte_order_mark_is_accepted_everywhere(tmp_path: Path) -> None:
    state = write_trainer_state(tmp_path / "hf", hf_history(), max_steps=20)
    state.write_bytes(b"\xef\xbb\xbf" + state.read_bytes())
    assert len(_values(read_run(tmp_path / "hf"), "loss")) == 20
    lf = tmp_path / "lf"
    lf.mkdir()
    data = (LF_FIXTURE / "trainer_log.jsonl").read_bytes()
    (lf / "trainer_log.jsonl").write_bytes(b"\xef\xbb\xbf" + data)
    run = read_run(lf)
    assert min(_values(run, "loss")) == 5  # the first line is kept
    assert not run.warnings
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "metrics.csv").write_bytes(
        b"\xef\xbb\xbf" + (CSV_FIXTURE / "metrics.csv").read_bytes()
    )
    run = read_run(csv_dir / "metrics.csv")
    assert "epoch" in run.scalars["tag"].cat.categories
    (tmp_path / "hf" / "training_args.yaml").write_bytes(b"\xef\xbb\xbfwarmup_steps: 3\n")
    assert read_config_near(tmp_path / "hf")["warmup_steps"] == 3


# --------------------------------------------------------------------------- 13. non-numbers


def test_numbers_written_as_strings_are_read_and_the_rest_counted(tmp_path: Path) -> None:
    history = hf_history()
    history[3]["loss"] = "1.5"
    history[4]["loss"] = None
    history[5]["loss"] = "n/a"
    write_trainer_state(tmp_path, history, max_steps=20)
    source = TrainerStateSource(tmp_path)
    points = source.poll()
    is_loss = points.tag_codes == points.tags.index("loss")
    got = dict(zip(points.steps[is_loss].tolist(), points.values[is_loss].tolist(), strict=True))
    assert got[4] == 1.5 and 5 not in got and 6 not in got
    assert any("skipped 2 value(s) that are not numbers" in w for w in source.warnings)

    log = tmp_path / "lf" / "trainer_log.jsonl"
    log.parent.mkdir()
    log.write_text(
        jsonl_line(1, loss="2.5", lr=1e-5) + jsonl_line(2, loss=None, lr=1e-5) + jsonl_line(3)
    )
    source2 = TrainerLogSource(log.parent)
    points = source2.poll()
    assert len(points) == 3  # loss 2.5 at 1, lr at 1 and 2
    assert any("skipped 1 value(s)" in w for w in source2.warnings)


def test_csv_damage_is_counted_not_swallowed(tmp_path: Path) -> None:
    lines = (CSV_FIXTURE / "metrics.csv").read_text().splitlines()
    header, body = lines[0], lines[1:]
    body[2] = body[2].replace("0.00015", "oops")
    body[5] = body[5].replace(",,", ',"', 1)  # an unbalanced quote
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join([header, *body]))  # and no final newline
    source = LightningCsvSource(path)
    points = source.poll()
    intact = tmp_path / "intact.csv"
    shutil.copy(CSV_FIXTURE / "metrics.csv", intact)

    # Lost: the "oops" cell, and the loss of the row with the quote (its epoch is on the row
    # before); nothing else.
    def pairs(p: object) -> set[tuple[str, int]]:
        return {(p.tags[c], s) for c, s in zip(p.tag_codes.tolist(), p.steps.tolist(), strict=True)}

    lost = pairs(LightningCsvSource(intact).poll()) - pairs(points)
    assert lost == {("lr-AdamW", 9), ("train_loss_step", 14)}
    assert points.steps.max() == int(body[-1].split(",")[2])  # the row without a newline
    assert any("line 7" in w and "unbalanced quote" in w for w in source.warnings)
    assert any("skipped 1 value(s) that are not numbers" in w for w in source.warnings)


def test_an_incomplete_last_row_is_reported_by_report(tmp_path: Path) -> None:
    text = (CSV_FIXTURE / "metrics.csv").read_text()
    (tmp_path / "metrics.csv").write_text(text + "2,0.0003")
    run = read_run(tmp_path)
    assert any("incomplete row" in w for w in run.warnings)


def test_open_source_keeps_the_config_notes(tmp_path: Path) -> None:
    shutil.copy(LF_FIXTURE / "trainer_log.jsonl", tmp_path)
    shutil.copy(LF_FIXTURE / "training_args.yaml", tmp_path)
    source = open_source(tmp_path)
    assert any(n.startswith("config read from training_args.yaml") for n in source.notes)


def test_watch_survives_a_huge_integer_line(tmp_path: Path) -> None:
    """``watch`` on a log whose appended line holds a 400-digit number alerts and goes on."""
    log = tmp_path / "trainer_log.jsonl"
    lines = [jsonl_line(s, loss=2.0, lr=1e-5) for s in range(1, 6)]
    lines.append(jsonl_line(6, loss=2.0, lr=1e-5).replace('"loss": 2.0', f'"loss": {HUGE}'))
    lines.append(jsonl_line(7, loss=math.nan, lr=1e-5))
    log.write_text("".join(lines))
    result = _invoke("watch", str(tmp_path), "--once", "--format", "jsonl")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert any(e["event"] == "finding" and e.get("detector") == "non_finite" for e in events)
    assert events[-1]["event"] == "summary"


def test_deeply_nested_swanlab_json_records_are_counted(tmp_path: Path) -> None:
    """SwanLab 0.4–0.7 JSON records nested thousands deep are undecodable records, counted."""
    old = ROOT / "tests" / "readers" / "fixtures" / "swanlab_old"
    swanlog = tmp_path / "swanlog"
    shutil.copytree(old / "v0_4" / "swanlog", swanlog)
    run = sorted(swanlog.glob("run-*"))[0]
    log = sorted(run.glob("logs/*/*.log"))[0]
    with open(log, "a") as fh:
        fh.write('{"index": 5, "data": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    assert any("do not decode" in w for w in read_run(run).warnings)

    store = pytest.importorskip("swanlab.sdk.internal.core_python.store")
    path = tmp_path / "v06" / "backup.swanlab"
    path.parent.mkdir()
    writer = store.DataStoreWriter()
    writer.open(path)
    scalar = {"model_type": "Scalar", "data": {"metric": {"data": 1.5}, "key": "loss", "step": 1}}
    writer.write(json.dumps(scalar).encode())
    writer.write(b'{"model_type": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    writer.close()
    data = bytearray(path.read_bytes())
    data[6] = 1  # the JSON records of SwanLab 0.6–0.7 (file version 1)
    path.write_bytes(bytes(data))
    source = SwanLabSource(path)
    points = source.poll()
    assert points.values.tolist() == [1.5]
    assert any("skipped 1 SwanLab record(s) that do not decode" in w for w in source.warnings)


def test_a_swanlab_file_ending_in_zeros_is_reported(
    tmp_path: Path, swanlab_runs: dict[str, Path]
) -> None:
    """A crash that left zeros where the last records were: ``report`` says what was not read."""
    run = swanlab_run(swanlab_runs, tmp_path)
    (record,) = run.glob("*.swanlab")
    data = record.read_bytes()
    cut = swanlab_points(data)[9][2]  # where the 10th scalar's record ends
    record.write_bytes(data[:cut] + b"\x00" * (len(data) - cut))
    read = read_run(run)
    assert 0 < len(read.scalars) < 20
    assert any("hold no complete record" in w for w in read.warnings)
