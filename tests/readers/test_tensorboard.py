"""TensorBoard reader: decoding, damaged files and several event files, with real writers."""

from __future__ import annotations

import gzip
import math
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from warmup_monitor import FormatError, find_runs, read_run
from warmup_monitor.points import Points
from warmup_monitor.readers.tensorboard import TensorBoardSource, claims, open_source

pytest.importorskip("tensorboard")

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util


# ------------------------------------------------------------------------------ helpers
def event_files(logdir: Path) -> list[Path]:
    """Event files in creation order: numbers in the names compare as numbers."""

    def key(p: Path) -> list[tuple[int, str]]:
        return [(int(t), "") if t.isdigit() else (-1, t) for t in re.split(r"(\d+)", p.name)]

    return sorted((p for p in logdir.iterdir() if "tfevents" in p.name), key=key)


def records(path: Path) -> list[tuple[int, int]]:
    """(record start, payload length) of every record of a real event file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length))
        pos += length + 16
    return out


def reference(paths: list[Path]) -> list[tuple[str, int, float, float]]:
    """The scalars of event files, read with TensorBoard's own protobufs, record by record."""
    plugins: dict[str, str] = {}
    out = []
    for path in paths:
        data = path.read_bytes()
        for pos, length in records(path):
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            for value in event.summary.value:
                if value.HasField("metadata"):
                    plugins.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = float(value.simple_value)
                elif kind == "tensor" and plugins.get(value.tag) == "scalars":
                    number = float(tensor_util.make_ndarray(value.tensor).reshape(()))
                else:
                    continue
                out.append((value.tag, event.step, number, event.wall_time))
    return out


def rows(points: Points) -> list[tuple[str, int, float, float]]:
    return [
        (points.tags[c], s, v, w)
        for c, s, v, w in zip(
            points.tag_codes.tolist(),
            points.steps.tolist(),
            points.values.tolist(),
            points.wall_times.tolist(),
            strict=True,
        )
    ]


def same(a: list[tuple[str, int, float, float]], b: list[tuple[str, int, float, float]]) -> bool:
    """Equal rows, NaN equal to NaN."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x[0] != y[0] or x[1] != y[1] or x[3] != y[3]:
            return False
        if not (x[2] == y[2] or (math.isnan(x[2]) and math.isnan(y[2]))):
            return False
    return True


def read_all(path: Path) -> tuple[Points, list[str]]:
    source = open_source(path)
    points = source.poll()
    return points, source.warnings


def tensor_event(tag: str, step: int, value: np.ndarray, with_metadata: bool) -> event_pb2.Event:
    """A scalar summary stored as a rank-0 tensor, as tf.summary / tensorboard.summary write it."""
    val = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(value))
    if with_metadata:
        val.metadata.CopyFrom(
            scalar_metadata.create_summary_metadata(display_name=tag, description="")
        )
    return event_pb2.Event(
        step=step, wall_time=1000.0 + step, summary=summary_pb2.Summary(value=[val])
    )


# ------------------------------------------------------------------------------ claims
def test_claims_event_dirs_and_files(tmp_path: Path, torch_writer) -> None:
    """A folder directly holding event files and an event file are runs; their parent is not."""
    run = tmp_path / "runs" / "a"
    w = torch_writer(run)
    w.add_scalar("loss", 1.0, 1)
    w.flush()
    assert claims(run)
    assert claims(event_files(run)[0])
    assert not claims(tmp_path / "runs")
    assert not claims(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    assert not claims(tmp_path / "notes.txt")
    assert open_source(run).format == "tensorboard"
    assert isinstance(open_source(run), TensorBoardSource)


# ------------------------------------------------------------------------------ decoding
def test_torch_scalars_match_protobuf_reading(tmp_path: Path, torch_writer) -> None:
    """Step 0, NaN/±Inf, unicode tags and many steps decode exactly as the protobufs say."""
    w = torch_writer(tmp_path)
    special = [0.5, float("nan"), float("inf"), float("-inf"), -0.0, 1e-30]
    for step in range(300):
        w.add_scalar("train/loss", 2.0 / (step + 1), step)
        w.add_scalar("train/learning_rate", 1e-4 * step, step)
        w.add_scalar("损失/训练", special[step % len(special)], step)
        if step % 50 == 0:
            w.add_scalar("eval/loss", 3.0 - step / 100, step)
    w.close()
    points, warnings = read_all(tmp_path)
    assert warnings == []
    assert same(rows(points), reference(event_files(tmp_path)))
    run = read_run(tmp_path)
    steps, values = run.series("损失/训练")
    assert steps[0] == 0 and np.isnan(values[1]) and values[2] == np.inf and values[3] == -np.inf
    assert run.series("loss")[0].tolist() == list(range(300))
    assert run.series("eval_loss")[0].tolist() == [0, 50, 100, 150, 200, 250]


def test_tensorboardx_and_new_style_tensor_scalars(tmp_path: Path, torch_writer) -> None:
    """tensorboardX simple values and torch new_style rank-0 tensors are both scalars."""
    tbx = pytest.importorskip("tensorboardX")
    a, b = tmp_path / "tbx", tmp_path / "torch"
    wx = tbx.SummaryWriter(str(a))
    for step in range(40):
        wx.add_scalar("train/loss", 1.0 + step, step)
    wx.close()
    w = torch_writer(b)
    for step in range(40):
        w.add_scalar("lr", 0.001 * step, step, new_style=True)
    w.close()
    for logdir, tag in ((a, "train/loss"), (b, "lr")):
        points, warnings = read_all(logdir)
        assert warnings == []
        assert len(points) == 40 and points.tags == (tag,)
        assert same(rows(points), reference(event_files(logdir)))


def test_tensorboard_own_writer_and_same_length_tags(tmp_path: Path) -> None:
    """tensorboard's scalar_pb (metadata in every record) and many same-length tags decode."""
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    w = EventFileWriter(str(tmp_path))
    for step in range(200):
        for layer in range(12):
            summary = scalar_pb(f"grad/l{layer:02d}", layer + step / 1000)
            w.add_event(event_pb2.Event(step=step, wall_time=1e9 + step, summary=summary))
    w.close()
    points, warnings = read_all(tmp_path)
    assert warnings == []
    assert len(points) == 2400 and len(points.tags) == 12
    assert same(rows(points), reference(event_files(tmp_path)))


@pytest.mark.parametrize(
    "dtype", ["int64", "int32", "int16", "int8", "uint8", "float16", "float64", "float32"]
)
def test_tensor_dtypes_with_metadata_in_an_earlier_file(tmp_path: Path, dtype: str) -> None:
    """Rank-0 tensors of any numeric dtype count when the tag's first metadata names scalars."""

    def number(step: int) -> np.ndarray:
        signed = np.dtype(dtype).kind != "u"
        return np.array((step - 15) * 7 if signed else step * 7, dtype=dtype)

    first = EventFileWriter(str(tmp_path))
    first.add_event(tensor_event("m", 0, number(0), with_metadata=True))
    first.close()
    second = EventFileWriter(str(tmp_path))
    for step in range(1, 30):
        second.add_event(tensor_event("m", step, number(step), False))
    second.close()
    assert len(event_files(tmp_path)) == 2
    points, warnings = read_all(tmp_path)
    assert warnings == []
    assert points.steps.tolist() == list(range(30))
    assert points.values.tolist() == [float(number(s)) for s in range(30)]
    assert same(rows(points), reference(event_files(tmp_path)))


def test_tensors_without_scalar_metadata_are_skipped(tmp_path: Path) -> None:
    """A tensor whose tag was first described by another plugin (or never) is not a scalar."""
    w = EventFileWriter(str(tmp_path))
    other = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="histograms")
    )
    for step in range(5):
        ev = tensor_event("h", step, np.array(1.5, dtype="float32"), False)
        if step == 0:
            ev.summary.value[0].metadata.CopyFrom(other)
        w.add_event(ev)
        # Later "scalars" metadata does not change the tag's first description.
        w.add_event(tensor_event("h", step, np.array(2.5, dtype="float32"), step == 2))
        w.add_event(tensor_event("bare", step, np.array(4.0, dtype="float32"), False))
        w.add_event(tensor_event("ok", step, np.array(float(step), dtype="float32"), True))
    w.close()
    points, _ = read_all(tmp_path)
    assert points.tags == ("ok",)
    assert points.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_non_scalar_summaries_are_skipped(tmp_path: Path, torch_writer) -> None:
    """Histograms, images, text and hparams are skipped; hparams make a separate sub-run."""
    w = torch_writer(tmp_path)
    rng = np.random.default_rng(0)
    for step in range(10):
        w.add_scalar("train/loss", 1.0 / (step + 1), step)
        w.add_histogram("weights", rng.normal(size=200), step)
        w.add_text("note", f"step {step}", step)
    w.add_image("img", rng.random((3, 8, 8)), 0)
    w.add_hparams({"lr": 0.1}, {"hparam/score": 1.0})
    w.close()
    points, warnings = read_all(tmp_path)
    assert warnings == []
    assert points.tags == ("train/loss",)
    assert points.steps.tolist() == list(range(10))
    names = [r.name for r in find_runs(tmp_path)]
    assert len(names) == 2 and names[0] == tmp_path.name


def test_add_scalars_sub_runs_are_found(tmp_path: Path, torch_writer) -> None:
    """torch add_scalars writes one folder per series: each is a run with a relative name."""
    logdir = tmp_path / "logs"
    w = torch_writer(logdir)
    for step in range(5):
        w.add_scalar("train/loss", 1.0, step)
        w.add_scalars("loss", {"train": 1.0 + step, "val": 2.0 + step}, step)
    w.close()
    refs = find_runs(logdir)
    assert [r.name for r in refs] == ["logs", "loss_train", "loss_val"]
    assert all(r.format == "tensorboard" for r in refs)
    sub = read_run(refs[2])
    assert sub.tags == ["loss"]
    assert sub.series("loss")[1].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert read_run(refs[0]).tags == ["train/loss"]


def test_one_event_file_can_be_read_alone(tmp_path: Path, torch_writer) -> None:
    """Pointing at one event file reads only that file."""
    w = torch_writer(tmp_path)
    w.add_scalar("a", 1.0, 1)
    w.close()
    w2 = torch_writer(tmp_path)
    w2.add_scalar("b", 2.0, 2)
    w2.close()
    first, _ = event_files(tmp_path)
    points, _ = read_all(first)
    assert points.tags == ("a",)
    assert read_run(tmp_path).tags == ["a", "b"]


# ------------------------------------------------------------------------------ several files
def test_resumed_run_with_purge_step(tmp_path: Path, torch_writer) -> None:
    """A purge_step restart: the later values win, Run.resumes and the warnings say so."""
    w = torch_writer(tmp_path)
    for step in range(20):
        w.add_scalar("train/loss", 1.0, step)
    w.close()
    w = torch_writer(tmp_path, purge_step=10)
    for step in range(10, 25):
        w.add_scalar("train/loss", 2.0, step)
    w.close()
    run = read_run(tmp_path)
    steps, values = run.series("loss")
    assert steps.tolist() == list(range(25))
    assert values.tolist() == [1.0] * 10 + [2.0] * 15
    assert [(r.step, r.from_step, r.tag) for r in run.resumes] == [(10, 19, "train/loss")]
    assert any("restarts the run at step 10" in w for w in run.warnings)


def test_resume_without_marker_is_found_by_steps(tmp_path: Path, torch_writer) -> None:
    """A second writer repeating steps (no purge_step) still wins and shows as a resume."""
    tbx = pytest.importorskip("tensorboardX")
    w = tbx.SummaryWriter(str(tmp_path))
    for step in range(1, 31):
        w.add_scalar("train/learning_rate", 1e-4 * step, step)
    w.close()
    later = torch_writer(tmp_path)
    for step in range(21, 41):
        later.add_scalar("train/learning_rate", 1.0, step)
    later.close()
    run = read_run(tmp_path)
    steps, values = run.series("learning_rate")
    assert steps.tolist() == list(range(1, 41))
    assert values[:20].tolist() == pytest.approx([1e-4 * s for s in range(1, 21)])
    assert values[20:].tolist() == [1.0] * 20
    assert [(r.step, r.from_step) for r in run.resumes] == [(21, 30)]
    assert run.warnings == []


def test_two_writers_in_one_folder_are_both_followed(tmp_path: Path, torch_writer) -> None:
    """Two files written at the same time: every file is read, in creation order."""
    a = torch_writer(tmp_path)
    b = torch_writer(tmp_path)
    for step in range(30):
        a.add_scalar("train/loss", float(step), step)
        b.add_scalar("eval/loss", float(-step), step)
    a.close()
    b.close()
    files = event_files(tmp_path)
    assert len(files) == 2
    points, _ = read_all(tmp_path)
    assert sorted(points.tags) == ["eval/loss", "train/loss"]
    assert len(points) == 60
    assert same(rows(points), reference(files))


# ------------------------------------------------------------------------------ damaged files
@pytest.fixture
def real_file(tmp_path: Path, torch_writer) -> Path:
    """A real torch event file with 3 tags x 50 steps, alone in its folder."""
    logdir = tmp_path / "src"
    w = torch_writer(logdir)
    for step in range(50):
        for tag in ("train/loss", "train/learning_rate", "train/grad_norm"):
            w.add_scalar(tag, step + len(tag) / 10, step)
    w.close()
    return event_files(logdir)[0]


def copy_to(src: Path, folder: Path, data: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / src.name
    dest.write_bytes(src.read_bytes() if data is None else data)
    return dest


def test_bad_payload_crc_skips_that_record(tmp_path: Path, real_file: Path) -> None:
    """A flipped payload byte drops that one record with a warning; reading goes on."""
    recs = records(real_file)
    pos, length = recs[40]
    data = bytearray(real_file.read_bytes())
    data[pos + 12 + length - 3] ^= 0x20  # a byte of the float value
    bad = copy_to(real_file, tmp_path / "bad", bytes(data))
    points, warnings = read_all(bad.parent)
    expected = reference([real_file])
    assert len(points) == len(expected) - 1
    lost = rows(points)
    assert all(r in expected for r in lost)
    assert len(warnings) == 1
    assert f"record at byte {pos}" in warnings[0] and "bad payload checksum" in warnings[0]


def test_many_bad_payloads_are_counted_not_listed(tmp_path: Path, real_file: Path) -> None:
    """Dozens of damaged records give a few messages and a count, not one line each."""
    data = bytearray(real_file.read_bytes())
    recs = records(real_file)
    for pos, length in recs[2:42]:
        data[pos + 12 + length - 1] ^= 0x01
    bad = copy_to(real_file, tmp_path / "bad", bytes(data))
    points, warnings = read_all(bad.parent)
    assert len(points) == len(reference([real_file])) - 40
    assert len(warnings) == 6 and "35 more records" in warnings[-1]


def test_corrupted_length_stops_only_that_file(
    tmp_path: Path, real_file: Path, torch_writer
) -> None:
    """A broken length field ends that file with a warning; other files are still read."""
    recs = records(real_file)
    pos, _ = recs[60]
    data = bytearray(real_file.read_bytes())
    data[pos] ^= 0x04
    folder = tmp_path / "broken"
    copy_to(real_file, folder, bytes(data))
    w = torch_writer(folder)
    w.add_scalar("other", 1.0, 1)
    w.close()
    points, warnings = read_all(folder)
    expected = reference([real_file])
    got = rows(points)
    assert got[:59] == expected[:59]  # record 0 is the file version, not a point
    assert got[59:] == [r for r in reference(event_files(folder)[1:])]
    assert any(f"corrupted record header at byte {pos}" in w for w in warnings)
    assert any("stopped reading this file" in w for w in warnings)


def test_gzip_compressed_files(tmp_path: Path, real_file: Path, torch_writer) -> None:
    """A gzip-only run raises a FormatError saying so; next to a good file it is a warning."""
    folder = tmp_path / "gz"
    folder.mkdir()
    (folder / (real_file.name + ".gz")).write_bytes(gzip.compress(real_file.read_bytes()))
    with pytest.raises(FormatError, match="gzip-compressed") as err:
        read_run(folder)
    assert "Decompress" in str(err.value)
    w = torch_writer(folder)
    w.add_scalar("fine", 1.0, 3)
    w.close()
    run = read_run(folder)
    assert run.tags == ["fine"]
    assert any("gzip-compressed" in w for w in run.warnings)


def test_garbage_file_is_a_format_error(tmp_path: Path) -> None:
    """A file named like an event file that is not one gives a one-line FormatError."""
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"not an event file at all, sorry")
    with pytest.raises(FormatError, match="not a readable TensorBoard event file"):
        read_run(tmp_path)


def test_empty_and_scalar_free_files_give_no_points(tmp_path: Path, torch_writer) -> None:
    """An empty event file or one without scalars yields an empty run, no crash."""
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"")
    points, warnings = read_all(tmp_path)
    assert len(points) == 0 and warnings == []
    w = torch_writer(tmp_path)
    w.add_histogram("w", np.arange(10.0), 0)
    w.close()
    run = read_run(tmp_path)
    assert run.scalars.empty and run.tags == []


def test_dataframe_columns(tmp_path: Path, torch_writer) -> None:
    """read_run gives the long frame: int64 steps, float64 values and wall times."""
    w = torch_writer(tmp_path)
    for step in (5, 1, 3):
        w.add_scalar("loss", float(step), step)
    w.close()
    frame = read_run(tmp_path).scalars
    assert frame["step"].tolist() == [1, 3, 5]
    assert str(frame["step"].dtype) == "int64" and str(frame["value"].dtype) == "float64"
    assert (frame["wall_time"] > 1.6e9).all()


def test_copy_of_file_in_new_folder_reads_the_same(tmp_path: Path, real_file: Path) -> None:
    """Framing prediction and layout matching give exactly the protobuf result."""
    dest = tmp_path / "copy"
    shutil.copytree(real_file.parent, dest)
    points, _ = read_all(dest)
    assert same(rows(points), reference([real_file]))


def test_files_read_in_windows_into_growing_columns(
    tmp_path: Path, torch_writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file then a big one, decoded in small windows with the mapped pages released
    as it goes: the columns sized from the first file grow, and every point is kept in order."""
    from warmup_monitor.readers import tensorboard as tb

    monkeypatch.setattr(tb, "_WINDOW", 64 << 10)
    monkeypatch.setattr(tb, "_RELEASE_MIN", 64 << 10)
    small = torch_writer(tmp_path)
    for step in range(5):
        small.add_scalar("eval/loss", 1.0 / (step + 1), step)
    small.close()
    big = torch_writer(tmp_path)
    for step in range(10_000):
        for tag in ("train/loss", "train/learning_rate", "train/grad_norm"):
            big.add_scalar(tag, step * 0.5 + len(tag), step)
    big.close()
    files = event_files(tmp_path)
    assert len(files) == 2 and files[1].stat().st_size > tb._MMAP_MIN
    points, warnings = read_all(tmp_path)
    assert warnings == []
    assert len(points) == 30_005
    assert same(rows(points), reference(files))
    run = read_run(tmp_path)
    assert len(run.scalars) == 30_005
    steps, values = run.series("train/grad_norm")
    assert steps.tolist() == list(range(10_000))
    assert values.tolist() == [s * 0.5 + len("train/grad_norm") for s in range(10_000)]


# ------------------------------------------------------------------ other trainers' tag names
@pytest.mark.parametrize(
    ("loss_tag", "lr_tag", "grad_tag", "eval_tag"),
    [
        ("lm loss", "learning-rate", "grad-norm", "lm loss validation"),  # Megatron-LM
        ("train/CrossEntropyLoss", "optim/learning_rate_group0", "optim/total_grad_norm", None),
        ("loss", "lr", "gnorm", None),  # fairseq's train_inner folder
        ("reduced_train_loss", "lr", "grad_norm", "val_loss"),  # NeMo
        ("train/lm_loss", "train/lr", "train/grad_norm", None),  # GPT-NeoX-style loops
    ],
)
def test_other_trainers_tags_are_diagnosed(
    tmp_path: Path, loss_tag: str, lr_tag: str, grad_tag: str, eval_tag: str | None
) -> None:
    """Large-scale trainers' own tag names map to the metrics a diagnosis needs.

    Megatron-LM also writes "... vs samples" twins on a samples axis; they are not taken.
    """
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(1)
    w = SummaryWriter(str(tmp_path))
    for step in range(1, 201):
        lr = 3e-4 * min(1.0, step / 20)
        loss = 2.0 + 8.0 * math.exp(-step / 30)
        w.add_scalar(loss_tag, loss, step)
        w.add_scalar(loss_tag + " vs samples", loss, step * 512)
        w.add_scalar(lr_tag, lr, step)
        w.add_scalar(grad_tag, 1.0, step)
        if eval_tag and step % 50 == 0:
            w.add_scalar(eval_tag, loss + 0.1, step)
    w.close()
    run = read_run(tmp_path)
    assert run.metric_map["loss"] == loss_tag
    assert run.metric_map["learning_rate"] == lr_tag
    assert run.metric_map["grad_norm"] == grad_tag
    assert run.metric_map.get("eval_loss") == eval_tag
    from warmup_monitor import diagnose

    assert diagnose(run).verdict.value == "healthy"
