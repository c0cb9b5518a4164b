"""The SwanLab reader, on runs written by SwanLab itself (offline mode, in subprocesses)."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from warmup_monitor.discover import find_runs, read_run
from warmup_monitor.errors import FormatError, InputError
from warmup_monitor.points import Points
from warmup_monitor.readers import swanlab as reader

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "swanlab_old"

# SwanLab keeps global run state, and a crash or a kill must end the writing process: runs that
# finish normally share one process, the others get their own.
_PRELUDE = """
import math, os, signal, sys
import swanlab

# Probing hardware, git and pip packages takes SwanLab a second; the runtime probe (pid,
# hostname) is what the reader uses, so it stays on.
probe = swanlab.Settings.Probe(hardware=False, requirements=False, git=False, monitor=False)


def start(name):
    swanlab.init(mode="offline", log_dir=os.path.join(sys.argv[1], name), project="warmup",
                 name=name + "-run", config=CONFIG, settings=swanlab.Settings(probe=probe))
"""
_SCRIPTS = {
    "finishing": """
start("basic")
special = {5: math.nan, 6: math.inf, 7: -math.inf}
for step in range(12):
    swanlab.log({"train/loss": 2.0 / (step + 1), "train/learning_rate": 3e-5 * step,
                 "train/rewards/chosen": special.get(step, 0.0)}, step=step)
swanlab.log({"train/loss": 99.0}, step=3)  # a repeated step: SwanLab keeps the first value
swanlab.log({"eval/loss": 0.5})  # implicit steps continue after the last one
swanlab.log({"eval/loss": 0.25})
swanlab.finish()

start("long")
for step in range(900):
    swanlab.log({"train/loss": 1.0 / (step + 1), "train/learning_rate": 1e-6 * step}, step=step)
swanlab.finish()

start("crashed")
for step in range(8):
    swanlab.log({"train/loss": 1.0 if step < 7 else math.nan}, step=step)
swanlab.finish(state="crashed", error="train/loss is nan at step 7")

start("aborted")
swanlab.log({"train/loss": 1.0}, step=0)
swanlab.finish(state="aborted")
""",
    "exception": """
start("exception")
swanlab.log({"train/loss": 1.0}, step=0)
raise ValueError("grad_norm exploded at step 0")
""",
    "killed": """
start("killed")
for step in range(5):
    swanlab.log({"train/loss": 1.0}, step=step)
os.kill(os.getpid(), signal.SIGKILL)
""",
}
_RUNS = ("basic", "long", "crashed", "aborted", "exception", "killed")
_CONFIG = {
    "learning_rate": 3e-4,
    "warmup_steps": 10,
    "lr_scheduler_type": "cosine",
    "training_args": {
        "max_steps": 100,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 4,
        "max_grad_norm": 1.0,
        "model_name_or_path": "tiny-llama",
    },
}


def _script(body: str) -> str:
    return _PRELUDE.replace("CONFIG", repr(_CONFIG)) + textwrap.dedent(body)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real SwanLab run folder per scenario, written once for this module."""
    pytest.importorskip("swanlab")
    root = tmp_path_factory.mktemp("swanlog")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _script(body), str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        for name, body in _SCRIPTS.items()
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        if name == "finishing":
            assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    out = {}
    for name in _RUNS:
        folders = sorted((root / name).glob("run-*"))
        assert len(folders) == 1, f"{name}: {folders}"
        out[name] = folders[0]
    return out


def _record_file(run_dir: Path) -> Path:
    return next(run_dir.glob("run-*.swanlab"))


def _rows(points: Points) -> list[tuple[str, int, float]]:
    return [
        (points.tags[c], int(s), float(v))
        for c, s, v in zip(points.tag_codes, points.steps, points.values, strict=True)
    ]


def _same_rows(a: list[tuple[str, int, float]], b: list[tuple[str, int, float]]) -> bool:
    return len(a) == len(b) and all(
        x[:2] == y[:2] and (x[2] == y[2] or (math.isnan(x[2]) and math.isnan(y[2])))
        for x, y in zip(a, b, strict=True)
    )


def _oracle(record_file: Path) -> list[tuple[int, tuple[str, int, float]]]:
    """(end offset, scalar) of every user scalar, read with SwanLab's own reader and protobufs."""
    store = pytest.importorskip("swanlab.sdk.internal.core_python.store")
    record_pb2 = pytest.importorskip("swanlab.proto.swanlab.record.v1.record_pb2")
    rd = store.DataStoreReader()
    rd.open(record_file)
    out = []
    try:
        while (data := rd.scan()) is not None:
            rec = record_pb2.Record.FromString(data)
            if rec.WhichOneof("record_type") == "scalar":
                s = rec.scalar
                out.append((rd._index, (s.key, s.step, s.value.number)))
    finally:
        rd.close()
    return out


# ----------------------------------------------------------------------------- claims


def test_claims_run_folder_and_record_file_only(runs: dict[str, Path]) -> None:
    """A run folder and its .swanlab file are claimed; its inner folders and swanlog/ are not."""
    run = runs["basic"]
    assert reader.claims(run)
    assert reader.claims(_record_file(run))
    for inner in ("files", "media", "debug"):
        assert (run / inner).is_dir()
        assert not reader.claims(run / inner)
    assert not reader.claims(run.parent)
    assert not reader.claims(run / "files" / "config.yaml")


def test_find_runs_lists_each_run_of_a_swanlog_folder_once(runs: dict[str, Path]) -> None:
    """Discovery over a folder of runs finds every run folder once, as swanlab."""
    root = runs["basic"].parent.parent
    refs = [r for r in find_runs(root) if r.format == "swanlab"]
    assert sorted(r.path for r in refs) == sorted(runs.values())


def test_local_mode_folder_is_claimed_but_not_its_logs() -> None:
    """A 0.4 local-mode run-*/ with logs/ is claimed; logs/ and logs/<kid>/ are not."""
    run = next((FIXTURES / "v0_4" / "swanlog").glob("run-*"))
    assert reader.claims(run)
    assert not reader.claims(run / "logs")
    assert not reader.claims(run / "logs" / "0")
    assert not reader.claims(FIXTURES / "v0_4" / "swanlog")
    assert not reader.claims(FIXTURES / "v0_4" / "swanlog" / "runs.swanlab")


def test_open_source_rejects_a_folder_without_records(tmp_path: Path) -> None:
    """A folder with no SwanLab records is an InputError naming what was looked for."""
    with pytest.raises(InputError, match=r"run-\*\.swanlab"):
        reader.open_source(tmp_path)


# ----------------------------------------------------------------------------- values


def test_values_match_swanlabs_own_reader(runs: dict[str, Path]) -> None:
    """Every scalar decodes as SwanLab's own reader decodes it, in write order."""
    for name in ("basic", "long"):
        expected = [row for _, row in _oracle(_record_file(runs[name]))]
        with reader.open_source(runs[name]) as src:
            got = _rows(src.poll())
        assert _same_rows(got, expected), name


def test_special_values_defaults_and_slashes(runs: dict[str, Path]) -> None:
    """NaN/±Inf survive, step 0 and 0.0 (omitted on the wire) decode, slashed keys are kept."""
    run = read_run(runs["basic"])
    steps, values = run.series("train/rewards/chosen")
    by_step = dict(zip(steps.tolist(), values.tolist(), strict=True))
    assert math.isnan(by_step[5])
    assert by_step[6] == math.inf
    assert by_step[7] == -math.inf
    assert by_step[0] == 0.0
    lr_steps, lrs = run.series("train/learning_rate")
    assert lr_steps[0] == 0 and lrs[0] == 0.0
    assert lrs[11] == pytest.approx(3.3e-4)


def test_repeated_step_keeps_first_value(runs: dict[str, Path]) -> None:
    """A step logged twice for one key keeps the first value, as SwanLab shows it."""
    steps, values = read_run(runs["basic"]).series("train/loss")
    assert values[steps == 3].tolist() == [0.5]


def test_implicit_steps_continue_after_explicit_ones(runs: dict[str, Path]) -> None:
    """swanlab.log() without a step gets the next step, which is read back as written."""
    steps, values = read_run(runs["basic"]).series("eval/loss")
    assert steps.tolist() == [12, 13]
    assert values.tolist() == [0.5, 0.25]


def test_start_record_and_config(runs: dict[str, Path]) -> None:
    """Experiment name, project, run id, status and canonical config come from the run."""
    with reader.open_source(runs["basic"]) as src:
        src.poll()
        assert src.display_name == "basic-run"
        assert src.project == "warmup"
        assert src.run_id and runs["basic"].name.endswith(src.run_id)
        assert src.status == "finished"
        assert src.warnings == []
        assert src.config == {
            "learning_rate": 3e-4,
            "warmup_steps": 10,
            "lr_scheduler_type": "cosine",
            "max_steps": 100,
            "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 4,
            "max_grad_norm": 1.0,
            "model_name_or_path": "tiny-llama",
        }
    assert read_run(runs["basic"]).name == "basic-run"


def test_config_read_retries_while_the_file_is_being_rewritten(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty config.yaml (SwanLab rewrites it in place) is read again until it has content."""
    run = tmp_path / runs["basic"].name
    shutil.copytree(runs["basic"], run)
    config = run / "files" / "config.yaml"
    content = config.read_text()
    config.write_text("")

    class _Clock:
        calls = 0

        @staticmethod
        def sleep(seconds: float) -> None:
            _Clock.calls += 1
            config.write_text(content)  # the writer finishes while we wait

    monkeypatch.setattr(reader, "time", _Clock)
    src = reader.open_source(run)
    assert _Clock.calls == 1
    assert src.config["learning_rate"] == 3e-4
    assert not any("config" in w for w in src.warnings)


# ----------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("crashed", "crashed", "run crashed: train/loss is nan at step 7"),
        ("aborted", "aborted", "run aborted"),
        ("exception", "crashed", "run crashed: ValueError: grad_norm exploded at step 0"),
    ],
)
def test_finish_record_gives_status_and_error(
    runs: dict[str, Path], name: str, status: str, message: str
) -> None:
    """The finish record's state becomes the status and its error text a warning."""
    with reader.open_source(runs[name]) as src:
        points = src.poll()
        assert src.status == status
        assert any(w.startswith(message) for w in src.warnings), src.warnings
    if name == "crashed":
        assert math.isnan(points.values[-1]) and points.steps[-1] == 7


def test_killed_run_is_unknown_with_a_warning(runs: dict[str, Path]) -> None:
    """No finish record and a dead writer: status unknown and a 'probably killed' warning."""
    with reader.open_source(runs["killed"]) as src:
        points = src.poll()
        assert src.status == "unknown"
        assert any("probably killed" in w for w in src.warnings)
        # SwanLab does not flush before exit: whatever reached the disk is whole records only.
        assert set(points.steps.tolist()) <= set(range(5))


def test_live_run_is_running_then_finished(tmp_path: Path) -> None:
    """While the writer is alive the status is running; after finish() every point appears."""
    pytest.importorskip("swanlab")
    body = """
start("live")
for step in range(20):
    swanlab.log({"train/loss": 1.0 / (step + 1)}, step=step)
sys.stdout.write("logged\\n"); sys.stdout.flush()
sys.stdin.readline()
swanlab.finish()
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", _script(body), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        while b"logged" not in proc.stdout.readline():
            assert proc.poll() is None, "the writer exited early"
        run = next(tmp_path.glob("live/run-*"))
        src = reader.open_source(run)
        first = src.poll()
        assert src.status == "running"
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = src.poll()
    assert src.status == "finished"
    steps = np.concatenate([first.steps, rest.steps])
    assert sorted(steps.tolist()) == list(range(20))
    assert len(src.poll()) == 0


# ----------------------------------------------------------------------------- tailing


def test_file_grown_chunk_by_chunk_yields_each_record_once_never_early(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """A real file copied piece by piece: each poll returns exactly the records newly complete."""
    source = _record_file(runs["long"])
    data = source.read_bytes()
    assert len(data) > 2 * 32768  # records are split across block boundaries
    ends = _oracle(source)
    run = tmp_path / "run-grow"
    (run / "files").mkdir(parents=True)
    target = run / source.name
    target.write_bytes(b"")
    src = reader.open_source(run)
    seen: list[tuple[str, int, float]] = []
    cuts = [*range(0, 40), *range(40, len(data), 2999), len(data)]
    for size in cuts:
        target.write_bytes(data[:size])
        seen += _rows(src.poll())
        expected = [row for end, row in ends if end <= size]
        assert _same_rows(seen, expected), f"after {size} bytes"
    assert src.status == "finished"
    assert src.warnings == []


def test_tiny_file_is_not_started(runs: dict[str, Path], tmp_path: Path) -> None:
    """A record file shorter than its 7-byte header yields nothing and no error."""
    data = _record_file(runs["basic"]).read_bytes()
    run = tmp_path / "run-tiny"
    run.mkdir()
    for size in (0, 3, 6):
        (run / "run-x.swanlab").write_bytes(data[:size])
        src = reader.open_source(run)
        assert len(src.poll()) == 0
        assert src.status == "unknown"


def test_corrupted_chunk_is_skipped_with_a_warning(runs: dict[str, Path], tmp_path: Path) -> None:
    """A flipped byte costs the rest of its 32 KiB block, with a warning; later blocks are read."""
    source = _record_file(runs["long"])
    data = bytearray(source.read_bytes())
    data[1000] ^= 0xFF
    run = tmp_path / "run-bad"
    run.mkdir()
    (run / source.name).write_bytes(bytes(data))
    full = [row for _, row in _oracle(source)]
    src = reader.open_source(run)
    got = _rows(src.poll())
    assert 0 < len(got) < len(full)
    assert got[-1] == full[-1]
    assert all(row in full for row in got)
    assert any("checksum mismatch" in w or "bad chunk header" in w for w in src.warnings)
    assert src.status == "finished"


def test_unknown_version_names_it_and_asks_for_an_upgrade(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    """A header version this reader does not know is a FormatError naming it."""
    data = bytearray(_record_file(runs["basic"]).read_bytes())
    data[6] = 9
    path = tmp_path / "run-x.swanlab"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"version 9.*[Uu]pgrade warmup-monitor"):
        reader.open_source(path).poll()


def test_wrong_header_is_a_format_error(tmp_path: Path) -> None:
    """A .swanlab file that does not start with SwanLab's header is a FormatError."""
    path = tmp_path / "run-x.swanlab"
    path.write_bytes(b"PK\x03\x04 not a swanlab file")
    with pytest.raises(FormatError, match="header"):
        reader.open_source(path).poll()


# ----------------------------------------------------------------------------- old layouts


# (folder, sign of -inf as stored, steps of the two implicit eval points), by SwanLab release
_OLD = [
    pytest.param("v0_8", -1.0, [12, 13], id="swanlab-0.8.5"),
    pytest.param("v0_7", 1.0, [0, 1], id="swanlab-0.7.20"),
    pytest.param("v0_6", 1.0, [0, 1], id="swanlab-0.6.4"),
    pytest.param("v0_4", 1.0, [0, 1], id="swanlab-0.4.12-local"),
]


def _old_run(version: str, name: str) -> Path:
    return next(p for p in (FIXTURES / version / "swanlog").glob("run-*") if _name_of(p) == name)


@pytest.mark.parametrize(("version", "neg_inf_sign", "eval_steps"), _OLD)
def test_older_releases_finished_run(
    version: str, neg_inf_sign: float, eval_steps: list[int]
) -> None:
    """Runs written by SwanLab 0.4 (local mode), 0.6, 0.7 and 0.8 decode to the logged values."""
    run = read_run(_old_run(version, "finished-run"))
    assert run.name == "finished-run"
    assert run.status == "finished"
    assert run.warnings == []
    assert run.config == {"learning_rate": 3e-4, "warmup_steps": 10, "lr_scheduler_type": "cosine"}
    steps, loss = run.series("train/loss")
    assert steps.tolist() == list(range(12))
    assert loss.tolist() == pytest.approx([2.0 / (s + 1) for s in range(12)])
    _, lrs = run.series("train/learning_rate")
    assert lrs[0] == 0.0 and lrs[11] == pytest.approx(3.3e-4)
    _, chosen = run.series("train/rewards/chosen")
    assert chosen[0] == 0.0 and math.isnan(chosen[5]) and chosen[6] == math.inf
    # SwanLab 0.4–0.7 store both infinities as "INF": the sign of -inf is lost on disk.
    assert chosen[7] == neg_inf_sign * math.inf
    # Steps of swanlab.log() without a step: per metric before 0.8, global since.
    assert run.series("eval/loss")[0].tolist() == eval_steps


@pytest.mark.parametrize(("version", "neg_inf_sign", "eval_steps"), _OLD)
def test_older_releases_crashed_run(
    version: str, neg_inf_sign: float, eval_steps: list[int]
) -> None:
    """A crashed run of an older release reports crashed with the exception message."""
    run = read_run(_old_run(version, "crashed-run"))
    assert run.status == "crashed"
    assert [w for w in run.warnings if w.startswith("run crashed: ")] == [
        "run crashed: "
        + ("RuntimeError: " if version == "v0_8" else "")
        + "loss diverged at step 8"
    ]
    assert run.series("train/loss")[0].tolist() == list(range(9))


def test_old_system_metrics_are_skipped() -> None:
    """SwanLab 0.7's hardware monitor scalars (__swanlab__.*) are in the file but not read."""
    for record_file in (FIXTURES / "v0_7" / "swanlog").glob("run-*/backup.swanlab"):
        assert b'"key": "__swanlab__.' in record_file.read_bytes()
        tags = reader.open_source(record_file).poll().tags
        assert tags and not any(t.startswith("__swanlab__") for t in tags)


def _name_of(run_dir: Path) -> str | None:
    with reader.open_source(run_dir) as src:
        src.poll()
        return src.display_name


def test_local_mode_half_written_line_waits(tmp_path: Path) -> None:
    """A local-mode .log line without its newline is returned once it is complete."""
    root = tmp_path / "swanlog"
    shutil.copytree(FIXTURES / "v0_4" / "swanlog", root)
    run = next(p for p in root.glob("run-*") if _name_of(p) == "finished-run")
    log = run / "logs" / "0" / "1000.log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:3]) + lines[3][:10])
    src = reader.open_source(run)
    first = src.poll()
    assert sorted(set(first.steps[first.tag_codes == first.tags.index("train/loss")])) == [0, 1, 2]
    log.write_bytes(b"".join(lines))
    second = src.poll()
    assert second.steps[second.tag_codes == second.tags.index("train/loss")].tolist() == list(
        range(3, 12)
    )
    assert not list(root.glob("runs.swanlab-*")), "reading must not create files"


def test_backup_file_grown_chunk_by_chunk_matches_whole_read(tmp_path: Path) -> None:
    """A 0.6 backup.swanlab copied piecewise yields the whole read's points once each."""
    source = next((FIXTURES / "v0_6" / "swanlog").glob("run-*/backup.swanlab"))
    data = source.read_bytes()
    whole = _rows(reader.open_source(source).poll())
    run = tmp_path / "run-old"
    run.mkdir()
    target = run / "backup.swanlab"
    target.write_bytes(b"")
    src = reader.open_source(run)
    seen: list[tuple[str, int, float]] = []
    for size in [*range(0, len(data), 97), len(data)]:
        target.write_bytes(data[:size])
        seen += _rows(src.poll())
    assert _same_rows(seen, whole)


def test_local_mode_without_database_names_metrics_by_folder(tmp_path: Path) -> None:
    """Without runs.swanlab the metrics are named by folder number, with a warning."""
    src_run = next(
        p for p in (FIXTURES / "v0_4" / "swanlog").glob("run-*") if _name_of(p) == "finished-run"
    )
    run = tmp_path / src_run.name
    shutil.copytree(src_run, run)
    src = reader.open_source(run)
    points = src.poll()
    assert sorted(points.tags) == ["0", "1", "2", "3"]
    assert any("no runs.swanlab" in w for w in src.warnings)
    assert src.status == "unknown"
    assert not any("killed" in w for w in src.warnings)


def test_local_mode_waits_for_a_metric_name_still_in_the_wal(tmp_path: Path) -> None:
    """A logs/ folder not yet named in runs.swanlab is read once its row lands (even in the WAL)."""
    root = tmp_path / "swanlog"
    shutil.copytree(FIXTURES / "v0_4" / "swanlog", root)
    run = next(p for p in root.glob("run-*") if _name_of(p) == "finished-run")
    db = sqlite3.connect(root / "runs.swanlab")
    # Back to how the database looks mid-run: status running, eval/loss not yet named.
    row = db.execute("SELECT * FROM tag WHERE name = 'eval/loss'").fetchone()
    db.execute("DELETE FROM tag WHERE name = 'eval/loss'")
    db.execute("UPDATE experiment SET status = 0 WHERE run_id = ?", (run.name,))
    db.commit()
    src = reader.open_source(run)
    first = src.poll()
    assert "eval/loss" not in first.tags and "3" not in first.tags
    db.execute(f"INSERT INTO tag VALUES ({', '.join('?' * len(row))})", row)
    db.commit()  # the row is in runs.swanlab-wal until a checkpoint
    assert (root / "runs.swanlab-wal").stat().st_size > 0
    second = src.poll()
    assert second.tags == ("eval/loss",)
    assert second.steps.tolist() == [0, 1]
    db.close()
