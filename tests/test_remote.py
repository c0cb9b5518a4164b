"""Logs in object storage: ``report``/``read_run`` on ``s3://`` served by a real S3 API
(moto in server mode on 127.0.0.1, started and stopped here)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import warmup_monitor as wm
from warmup_monitor.errors import InputError
from warmup_monitor.remote import RemoteTree, is_url
from warmup_monitor.report import build_report

pytest.importorskip("s3fs", reason="the s3 extra (s3fs) is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
boto3 = pytest.importorskip("boto3")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client of the local S3 API, with the environment the tool reads credentials from."""
    for key, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Never ask a cloud metadata service, never read the user's own AWS files.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    return client


def _upload(client: Any, bucket: str, root: Path, prefix: str) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")


def _bucket(client: Any, name: str) -> str:
    client.create_bucket(Bucket=name)
    return name


def test_report_on_an_s3_prefix_matches_the_same_runs_on_disk(
    tmp_path: Path, s3: Any, write_tb_run: Any, torch_writer: Any
) -> None:
    local = tmp_path / "sweep"
    write_tb_run(local / "good")
    writer = torch_writer(local / "bad")
    for step in range(1, 61):
        writer.add_scalar("train/loss", float("nan") if step >= 30 else 4.0 - 0.02 * step, step)
        writer.add_scalar("train/learning_rate", 1e-3 * min(step / 10, 1.0), step)
    writer.flush()
    # A checkpoint beside the logs is never downloaded.
    (local / "good" / "model.safetensors").write_bytes(b"\0" * 4096)
    bucket = _bucket(s3, "sweep-logs")
    _upload(s3, bucket, local, "exp1")

    remote = build_report([f"s3://{bucket}/exp1/"])
    on_disk = build_report([local])
    assert [(r.name, r.diagnosis.verdict) for r in remote.worst_first()] == [
        (r.name, r.diagnosis.verdict) for r in on_disk.worst_first()
    ]
    paths = {r.name: str(r.path) for r in remote.runs}
    assert paths == {"bad": f"s3://{bucket}/exp1/bad", "good": f"s3://{bucket}/exp1/good"}
    assert str(remote.runs[0].run.path).startswith(f"s3://{bucket}/exp1/")

    with RemoteTree(f"s3://{bucket}/exp1") as tree:
        tree.sync()
        assert not (tree.local_root / "good" / "model.safetensors").exists()
        assert tree.stats.listings == 1 and tree.stats.reads == 2  # the two event files
        mirror = tree.local_root
    assert not mirror.exists()  # the mirror is deleted with the tree

    run = wm.read_run(f"s3://{bucket}/exp1/bad")
    assert run.name == "bad" and str(run.path) == f"s3://{bucket}/exp1/bad"
    steps, loss = run.series("loss")
    assert len(steps) == 60 and loss[-1] != loss[-1]  # the NaN made it through


def test_compare_on_an_s3_prefix_ranks_like_on_disk(s3: Any) -> None:
    from warmup_monitor.compare import build_comparison

    sweep = Path(__file__).parent / "fixtures" / "sweep"
    bucket = _bucket(s3, "sweep")
    _upload(s3, bucket, sweep, "warmups")
    remote = build_comparison([f"s3://{bucket}/warmups"]).to_dict()
    local = build_comparison([sweep]).to_dict()
    assert remote["runs"] and [r["name"] for r in remote["runs"]] == [
        r["name"] for r in local["runs"]
    ]
    assert all(r["path"].startswith(f"s3://{bucket}/warmups/") for r in remote["runs"])


def test_sync_fetches_only_appended_bytes_and_refetches_a_rewritten_object(s3: Any) -> None:
    bucket = _bucket(s3, "growing")
    lines = [
        json.dumps({"current_steps": i, "loss": 3.0 - 0.01 * i, "lr": 1e-4}) for i in range(1, 41)
    ]
    body = "\n".join(lines[:20]) + "\n"
    s3.put_object(Bucket=bucket, Key="run/trainer_log.jsonl", Body=body.encode())
    with RemoteTree(f"s3://{bucket}/run") as tree:
        assert tree.sync() == ["trainer_log.jsonl"]
        source = wm.open_source(tree.local_path)
        assert len(source.poll()) > 0
        first = tree.stats.bytes
        assert first == len(body)

        assert tree.sync() == [] and tree.stats.bytes == first  # nothing changed: no read
        more = "\n".join(lines[20:]) + "\n"
        s3.put_object(Bucket=bucket, Key="run/trainer_log.jsonl", Body=(body + more).encode())
        assert tree.sync() == ["trainer_log.jsonl"]
        assert tree.stats.bytes - first == len(more) + 64  # the appended bytes and the overlap
        new = source.poll()
        assert sorted(set(new.steps.tolist())) == list(range(21, 41))

        # Rewritten, not appended (longer, other bytes at the old end): fetched whole again.
        rewritten = (body + more).replace("2.6,", "9.6,") + more
        s3.put_object(Bucket=bucket, Key="run/trainer_log.jsonl", Body=rewritten.encode())
        before = tree.stats.bytes
        tree.sync()
        assert tree.stats.bytes - before == len(more) + 64 + len(rewritten)
        assert (tree.local_path / "trainer_log.jsonl").read_text() == rewritten
        source.close()


def test_a_rewritten_trainer_state_is_fetched_whole(s3: Any) -> None:
    bucket = _bucket(s3, "rewritten")
    key = "run/trainer_state.json"
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"log_history": []}')
    with RemoteTree(f"s3://{bucket}/run") as tree:
        tree.sync()
        state = b'{"log_history": [{"step": 1, "loss": 2.0}], "max_steps": 10}'
        s3.put_object(Bucket=bucket, Key=key, Body=state)
        before = tree.stats.bytes
        assert tree.sync() == ["trainer_state.json"]
        assert tree.stats.bytes - before == len(state)
        assert (tree.local_path / "trainer_state.json").read_bytes() == state


def test_urls_are_told_from_paths() -> None:
    assert is_url("s3://b/p") and is_url("file:///tmp/x") and is_url("hf://datasets/x")
    assert not is_url("runs/s3:/x") and not is_url(Path("s3://b"))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmup_monitor.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_bad_remote_input_is_one_line_with_the_fix_and_exit_2(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(s3, "present")
    s3.put_object(
        Bucket=bucket, Key="r/trainer_log.jsonl", Body=b'{"current_steps": 1, "loss": 1}\n'
    )
    result = _cli("report", "-q", "s3://absent-bucket/x")
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("Error: 's3://absent-bucket/x' does not exist")
    assert "Check the bucket name" in err
    with pytest.raises(InputError, match=r"no log files under 's3://present/nothing'"):
        build_report(["s3://present/nothing"])

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(InputError, match=r"cannot reach the storage endpoint.*AWS_ENDPOINT_URL"):
        build_report(["s3://present/r"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(InputError, match=r"no credentials to read 's3://present/r'.*AWS_PROFILE"):
        build_report(["s3://present/r"])


# ------------------------------------------------------------------------------ watch s3://
def _jsonl(start: int, stop: int, nan_at: int | None = None) -> str:
    rows = []
    for step in range(start, stop):
        loss = float("nan") if step == nan_at else 3.0 - 0.01 * step
        rows.append(
            json.dumps({"current_steps": step, "total_steps": 200, "loss": loss, "lr": 1e-4})
        )
    return "".join(r + "\n" for r in rows)


def _follow(watcher: Any) -> tuple[list[tuple[float, Any]], threading.Thread]:
    seen: list[tuple[float, Any]] = []

    def run() -> None:
        for event in watcher.follow():
            seen.append((time.monotonic(), event))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return seen, thread


def _wait_for(seen: list[tuple[float, Any]], pred: Any, timeout: float) -> tuple[float, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t, event in list(seen):
            if pred(event):
                return t, event
        time.sleep(0.02)
    raise AssertionError(f"no such event within {timeout} s: {[e for _, e in seen]}")


def test_watch_on_an_s3_prefix_alerts_a_nan_within_two_intervals(s3: Any) -> None:
    from warmup_monitor.watch.remote import RemoteWatcher

    bucket = _bucket(s3, "live")
    key = "team/run1/trainer_log.jsonl"
    body = _jsonl(1, 30)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    interval = 0.5
    watcher = RemoteWatcher(f"s3://{bucket}/team/", interval=interval, diagnose_every=0.0)
    watcher.check()
    seen, thread = _follow(watcher)
    try:
        _, added = _wait_for(seen, lambda e: e.event == "run_added", 10)
        assert added.run == "run1" and added.path == f"s3://{bucket}/team/run1"
        time.sleep(2 * interval)  # let it settle: later polls find nothing new
        reads = watcher.tree.stats.bytes
        updated = time.monotonic()
        s3.put_object(Bucket=bucket, Key=key, Body=(body + _jsonl(30, 35, nan_at=33)).encode())
        t, alert = _wait_for(
            seen, lambda e: e.event == "finding" and e.detector == "non_finite", 4 * interval + 5
        )
        assert alert.step == 33 and alert.is_alert
        latency = t - updated
        print(f"NaN alerted {latency:.2f} s after the object update (interval {interval} s)")
        assert latency <= 2 * interval, f"alerted {latency:.2f} s after the update"
        # Only the appended lines (and the overlap) were fetched.
        assert watcher.tree.stats.bytes - reads == len(_jsonl(30, 35, nan_at=33)) + 64
        # The exporter shows the run's URL, never the mirror.
        (snap,) = watcher.snapshot()
        assert snap.path == f"s3://{bucket}/team/run1" and snap.last_step == 34
    finally:
        watcher.stop()
        thread.join(timeout=10)
        watcher.close()


def test_watch_survives_a_storage_outage_and_says_so(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warmup_monitor.watch.remote import RemoteWatcher

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    bucket = _bucket(boto3.client("s3"), "flaky")
    client = boto3.client("s3")
    client.put_object(Bucket=bucket, Key="r/trainer_log.jsonl", Body=_jsonl(1, 20).encode())
    watcher = RemoteWatcher(f"s3://{bucket}", interval=0.3, diagnose_every=0.0)
    watcher.check()
    seen, thread = _follow(watcher)
    try:
        _wait_for(seen, lambda e: e.event == "run_added", 10)
        server.stop()  # the endpoint goes away mid-watch
        _, down = _wait_for(seen, lambda e: "cannot sync" in e.message, 30)
        assert down.severity is not None and "retrying every 0.3 s" in down.message
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # moto keeps its buckets in the process: the data is back
        _wait_for(seen, lambda e: e.message == f"reading 's3://{bucket}' again", 30)
        client.put_object(
            Bucket=bucket,
            Key="r/trainer_log.jsonl",
            Body=(_jsonl(1, 20) + _jsonl(20, 25, 22)).encode(),
        )
        _wait_for(seen, lambda e: e.event == "finding" and e.step == 22, 10)
        assert thread.is_alive()
        assert sum("cannot sync" in e.message for _, e in seen) == 1  # said once, not per poll
    finally:
        watcher.stop()
        thread.join(timeout=10)
        watcher.close()
        server.stop()
