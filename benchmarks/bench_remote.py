"""Object storage benchmark: ``report s3://…`` on 500 runs served by a real S3 API on 127.0.0.1.

Run ``python benchmarks/bench_remote.py``. The runs are ``bench_compare``'s sweep (500
TensorBoard runs written by torch's ``SummaryWriter``, each with its ``args.json``), uploaded
to moto's S3 server started on 127.0.0.1 by this script. Requests are counted by the server
(every HTTP request it answers), by kind. Measured in one process after the imports, best of
``--repeat``:

* ``report`` on the local folder (folder listings and file reads counted from the tree);
* ``report s3://bench/sweep500``: list, fetch, read and diagnose;
* of which the sync alone (``RemoteTree.sync``: one recursive listing, concurrent ranged GETs);
* a re-sync with nothing new (what every ``watch`` poll costs) and one after 10 runs grew;
* peer: TensorBoard's own ``EventAccumulator`` reading the same s3:// runs through its S3
  file system (per run, on ``--peer-runs`` runs: it lists and opens one object at a time).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_compare

DATA = bench_compare.DATA
BUCKET = "bench"


class _Counter:
    """WSGI middleware counting the requests the S3 server answers, by kind."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        kind = environ["REQUEST_METHOD"]
        if kind == "GET" and ("list-type" in query or "prefix=" in query):
            kind = "LIST"
        elif kind == "GET" and environ.get("HTTP_RANGE"):
            kind = "GET (ranged)"
        with self.lock:
            self.counts[kind] += 1
        return self.app(environ, start_response)

    def take(self) -> collections.Counter[str]:
        with self.lock:
            out, self.counts = self.counts, collections.Counter()
        return out


def _serve() -> tuple[Any, _Counter, str]:
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    counter = _Counter(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, counter, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counter, f"http://127.0.0.1:{port}"


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """``(wall seconds, result)`` of the fastest of ``repeat`` calls."""
    wall, _cpu, out = bench_compare._best(fn, repeat)
    return wall, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="best of this many (default 2)")
    parser.add_argument("--peer-runs", type=int, default=20, help="runs read by the peer")
    args = parser.parse_args(argv)
    if not DATA.exists():
        bench_compare._write()
    server, counter, endpoint = _serve()
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    import boto3

    from warmup_monitor.remote import RemoteTree
    from warmup_monitor.report import build_report

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    files = sorted(p for p in DATA.rglob("*") if p.is_file())
    folders = sum(1 for p in DATA.rglob("*") if p.is_dir()) + 1
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda p: client.upload_file(str(p), BUCKET, f"sweep500/{p.relative_to(DATA)}"),
                files,
            )
        )
    size = sum(p.stat().st_size for p in files)
    counter.take()
    url = f"s3://{BUCKET}/sweep500"
    print(f"{len(files)} files ({size / 1e6:.1f} MB) in {folders} folders, served on {endpoint}")

    t_local, local = _best(lambda: build_report([DATA]), args.repeat)
    t_remote, remote = _best(lambda: build_report([url]), args.repeat)
    remote_requests = counter.take()
    per_report = {k: v // args.repeat for k, v in remote_requests.items()}
    assert [r.diagnosis.verdict for r in local.worst_first()] == [
        r.diagnosis.verdict for r in remote.worst_first()
    ], "the s3 report differs from the local one"

    def sync_once() -> RemoteTree:
        tree = RemoteTree(url)
        tree.sync()
        return tree

    t_sync, tree = _best(sync_once, 1)
    first = dataclasses.replace(tree.stats)
    counter.take()
    t_idle, _ = _best(tree.sync, 1)
    idle = counter.take()
    # Ten runs grow: another writer flush appended to their event files.
    grown = [p for p in files if "tfevents" in p.name][:10]
    for p in grown:
        data = p.read_bytes()
        client.put_object(
            Bucket=BUCKET, Key=f"sweep500/{p.relative_to(DATA)}", Body=data + data[-2000:]
        )
    counter.take()
    bytes_before = tree.stats.bytes
    t_grow, changed = _best(tree.sync, 1)
    grow = counter.take()
    grow_bytes = tree.stats.bytes - bytes_before
    tree.close()

    peer = None
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        runs = sorted({p.parent for p in files if "tfevents" in p.name})[: args.peer_runs]
        counter.take()

        def tb_peer() -> None:
            for run in runs:
                acc = EventAccumulator(f"{url}/{run.relative_to(DATA)}")
                acc.Reload()

        t_peer, _ = _best(tb_peer, 1)
        peer = (len(runs), t_peer, counter.take())
    except Exception as err:  # the peer's S3 support needs boto3 and a recent tensorboard
        print(f"TensorBoard peer skipped: {type(err).__name__}: {err}")

    n = len(local.runs)

    def fmt(counts: collections.Counter[str] | dict[str, int]) -> str:
        return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "0"

    print(f"\nload average while measuring: {os.getloadavg()[0]:.1f} (2 cores)\n")
    print(f"| What ({n} runs) | Wall time | vs local `report` | Requests |")
    print("|---|---:|---:|---|")
    print(
        f"| `report` on local disk | {t_local:.2f} s | 1.00x | "
        f"{folders} folder listings, {len(files)} file reads |"
    )
    print(
        f"| `report s3://…` (list, fetch, read, diagnose) | {t_remote:.2f} s | "
        f"{t_remote / t_local:.2f}x | {fmt(per_report)} |"
    )
    print(
        f"| of which the sync (`RemoteTree.sync`) | {t_sync:.2f} s | {t_sync / t_local:.2f}x | "
        f"{first.listings} listing, {first.reads} GETs ({first.bytes / 1e6:.1f} MB) |"
    )
    print(f"| re-sync, nothing new | {t_idle * 1e3:.0f} ms | – | {fmt(idle)} |")
    print(
        f"| re-sync, {len(changed)} event files grew | {t_grow * 1e3:.0f} ms | – | "
        f"{fmt(grow)} ({grow_bytes / 1e3:.1f} kB: appended bytes + 64-byte overlaps) |"
    )
    if peer is not None:
        runs_read, t_peer, counts = peer
        per_run = t_peer / runs_read
        print(
            f"| TensorBoard `EventAccumulator` on s3:// ({runs_read} runs, per run x {n}) | "
            f"{per_run * n:.1f} s (est.) | {per_run * n / t_local:.1f}x | "
            f"{fmt({k: round(v / runs_read * n) for k, v in counts.items()})} (est.) |"
        )
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
