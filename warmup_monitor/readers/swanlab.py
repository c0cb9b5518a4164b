"""SwanLab run folders, read straight from disk (SwanLab has no API to read local metrics back).

A run folder is ``<logdir>/run-<YYYYmmdd_HHMMSS>-<id>/``. Three layouts are read:

- SwanLab 0.8+ : ``run-<id>.swanlab``, LevelDB-log framed protobuf records (file version 2).
- SwanLab 0.6–0.7: ``backup.swanlab``, the same framing with JSON records (versions 0 and 1).
- SwanLab 0.4–0.5 local mode: ``logs/<kid>/<N>.log`` JSON lines, one folder per metric, the
  names kept in ``<logdir>/runs.swanlab`` (SQLite); without it the folder number is the name.

Checked against files written by SwanLab 0.4.12, 0.6.4, 0.7.20, 0.8.5 and 0.10.3. A file header
version above 2 is refused with an "upgrade warmup-monitor" error rather than misread.

Scalars only: media, console lines and SwanLab's own system metrics (``__swanlab__.*``) are
skipped. SwanLab keeps the *first* value logged for a (metric, step) and drops later ones before
writing; a file that still holds a repeat is read the same way (first value kept, a warning
counts the rest). Offline resume starts a new run folder, so each folder is one run.

The run's status comes from its finish record (finished / crashed / aborted, with the error
text as a warning). Without one, the writer is "running" when the process named in
``files/swanlab-metadata.json`` is alive on this host, else "unknown" with a warning.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from ..config import canonical_config
from ..errors import InputError
from ..points import Points
from ..sources import Source
from ..untrusted import load_json, load_yaml, open_regular, read_regular, read_text
from ._leveldb_log import _LevelDBLog
from ._swanlab_columns import MAX_ROW as _MAX_ROW
from ._swanlab_records import (
    SYSTEM_PREFIX,
    Columns,
    Decoded,
    decode_json,
    decode_protobuf_batch,
    is_step,
    iso_seconds,
    json_number,
)
from ._whole_file import _signature

__all__ = ["SwanLabSource", "claims", "open_source"]

_IDENT = b":SWL"
_MAGIC = 0xE1D6
# Header version byte -> record encoding. 0 and 1: SwanLab 0.6–0.7 JSON; 2: SwanLab 0.8+.
_VERSIONS = {0: "json", 1: "json", 2: "protobuf"}
# Protobuf records up to this length have their chunk checksums checked while they are decoded.
_DEFERRED = {2: _MAX_ROW}
_CONFIG_RETRIES = 5  # config.yaml is rewritten in place: an empty read is a write in progress
_CONFIG_RETRY_DELAY = 0.02
_UNSET = object()
_MAX_SMALL_FILE = 2_000_000  # config.yaml, swanlab-metadata.json: a few KB in real runs


# --------------------------------------------------------------------------- claiming


def _is_record_file(path: Path) -> bool:
    """A ``*.swanlab`` record file (not the ``runs.swanlab`` SQLite of local mode)."""
    name = path.name
    if not name.endswith(".swanlab") or name == "runs.swanlab":
        return False
    if name == "backup.swanlab" or name.startswith("run-"):
        return True
    try:
        with open_regular(path) as fh:
            return fh.read(4) == _IDENT
    except OSError:
        return False


def _record_files(folder: Path) -> list[Path]:
    try:
        return sorted(
            p
            for p in folder.iterdir()
            if p.name.endswith(".swanlab") and p.is_file() and _is_record_file(p)
        )
    except OSError:
        return []


def _is_local_mode_run(folder: Path) -> bool:
    # ``logs/`` alone is too common a name; SwanLab's run folders are ``run-*`` and hold
    # ``files/`` (config, metadata) or ``console/`` next to it.
    return (
        folder.name.startswith("run-")
        and (folder / "logs").is_dir()
        and ((folder / "files").is_dir() or (folder / "console").is_dir())
    )


def claims(path: Path) -> bool:
    """True for a SwanLab run folder or a ``*.swanlab`` record file."""
    path = Path(path)
    if path.is_file():
        return _is_record_file(path)
    if not path.is_dir():
        return False
    return bool(_record_files(path)) or _is_local_mode_run(path)


# --------------------------------------------------------------------------- small readers


def _read_text_retrying(path: Path) -> str | None:
    """The file's text, retrying briefly while it reads empty; None when missing."""
    for attempt in range(_CONFIG_RETRIES):
        try:
            text = read_text(path, _MAX_SMALL_FILE)
        except OSError:
            return None
        if text.strip():
            return text
        if attempt + 1 < _CONFIG_RETRIES:
            time.sleep(_CONFIG_RETRY_DELAY)
    return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except (OSError, OverflowError, ValueError):
        return False
    return True


def _writer(run_dir: Path) -> tuple[str | None, int | None]:
    """(hostname, pid) of the process that wrote the run, from ``swanlab-metadata.json``."""
    try:
        meta = load_json(read_regular(run_dir / "files" / "swanlab-metadata.json", _MAX_SMALL_FILE))
    except (OSError, ValueError):
        return None, None
    if not isinstance(meta, dict):
        return None, None
    # SwanLab 0.8+ nests them under "runtime"; 0.4–0.7 keep them at the top level.
    runtime = meta.get("runtime") if isinstance(meta.get("runtime"), dict) else meta
    host = runtime.get("hostname")
    pid = runtime.get("pid")
    return (
        host if isinstance(host, str) else None,
        pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
    )


class _FirstValueKeeper:
    """Drops repeats of a (metric, step) already seen, keeping the first value as SwanLab does.

    SwanLab's writer drops repeats itself, so the usual batch has, per metric, strictly
    increasing steps above every step seen before: that is checked in one vectorised pass and
    costs nothing more. Only a batch breaking it pays for a lookup in the steps seen so far
    (kept per metric as a list of arrays, merged on demand).
    """

    def __init__(self) -> None:
        self._max: dict[str, int] = {}
        self._seen: dict[str, list[np.ndarray]] = {}
        self.dropped = 0
        self.example: tuple[str, int] | None = None

    def keep_mask(self, tags: tuple[str, ...], codes: np.ndarray, steps: np.ndarray) -> np.ndarray:
        keep = np.ones(len(steps), dtype=bool)
        if not len(steps):
            return keep
        # With 16-bit keys numpy's stable sort is a linear radix sort.
        keys = codes.astype(np.uint16) if len(tags) <= 1 << 16 else codes
        order = np.argsort(keys, kind="stable")
        grouped_codes = codes[order]
        grouped = steps[order]
        starts = np.flatnonzero(np.r_[True, grouped_codes[1:] != grouped_codes[:-1]])
        ends = np.r_[starts[1:], len(grouped)]
        rising = np.r_[True, grouped[1:] > grouped[:-1]]
        rising[starts] = True
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            tag = tags[grouped_codes[start]]
            tag_steps = grouped[start:end]
            previous = self._max.get(tag)
            if rising[start:end].all() and (previous is None or tag_steps[0] > previous):
                kept = tag_steps
            else:
                mask = self._first_seen(tag, tag_steps)
                kept = tag_steps[mask]
                bad = order[start:end][~mask]
                keep[bad] = False
                self.dropped += len(bad)
                if self.example is None and len(bad):
                    self.example = (tag, int(steps[bad[0]]))
            if len(kept):
                self._seen.setdefault(tag, []).append(kept)
                top = int(kept.max())
                self._max[tag] = top if previous is None else max(previous, top)
        return keep

    def _first_seen(self, tag: str, tag_steps: np.ndarray) -> np.ndarray:
        """Mask of the steps (in batch order) neither seen before nor earlier in the batch."""
        mask = np.zeros(len(tag_steps), dtype=bool)
        mask[np.unique(tag_steps, return_index=True)[1]] = True
        parts = self._seen.get(tag)
        if parts:
            seen = np.unique(np.concatenate(parts))
            self._seen[tag] = [seen]
            mask &= ~np.isin(tag_steps, seen)
        return mask


# --------------------------------------------------------------------------- the source


class SwanLabSource(Source):
    """Incremental reader of one SwanLab run (any of the three layouts)."""

    format = "swanlab"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        path = Path(path)
        if path.is_file():
            self.run_dir = path.parent
            self.record_file: Path | None = path
        else:
            self.run_dir = path
            self.record_file = self._pick_record_file(path)
        self.local_logs: Path | None = None
        if self.record_file is None:
            if not (path / "logs").is_dir():
                raise InputError(
                    f"'{path}' holds no SwanLab records (run-*.swanlab, backup.swanlab or logs/)",
                    "Point at a run-*/ folder inside SwanLab's log directory (swanlog/)",
                )
            self.local_logs = path / "logs"
        #: SwanLab project and run id, when the records name them.
        self.project: str | None = None
        self.run_id: str | None = None
        self.layout = "local" if self.local_logs is not None else "unknown"
        self._log: _LevelDBLog | None = None
        if self.record_file is not None:
            self._log = _LevelDBLog(self.record_file, _IDENT, _MAGIC, _VERSIONS, _DEFERRED)
        self._local: _LocalLogs | None = None
        if self.local_logs is not None:
            self._local = _LocalLogs(self.local_logs, self.run_dir)
        self._done = False
        self._keeper = _FirstValueKeeper()
        self._config_sig: object = _UNSET
        self._meta_sig: object = _UNSET
        self._writer: tuple[str | None, int | None] = (None, None)
        self._killed_warned = False
        self._dropped_reported = 0
        self._info = Decoded()  # run metadata gathered across polls
        self._file_sig: tuple[int, int, int, int] | None = None
        self._load_config()

    # ---- discovery of the record file

    def _pick_record_file(self, folder: Path) -> Path | None:
        files = _record_files(folder)
        if not files:
            return None
        if len(files) == 1:
            return files[0]
        # Several record files (a copied or merged folder): the one named after the folder's
        # run id, else SwanLab 0.8+'s over the older backup.
        run_id = folder.name.rsplit("-", 1)[-1]
        named = [p for p in files if p.name == f"run-{run_id}.swanlab"]
        chosen = (
            named[0] if named else next((p for p in files if p.name != "backup.swanlab"), files[0])
        )
        others = ", ".join(p.name for p in files if p != chosen)
        self.warnings.append(
            f"several SwanLab record files in {folder.name}; read {chosen.name}, not {others}"
        )
        return chosen

    # ---- config

    def _load_config(self) -> None:
        """SwanLab's ``files/config.yaml``, under canonical keys, re-read when it changes.

        Only the run's own config: config files beside or above the run folder are merged in
        by :func:`warmup_monitor.discover.open_source`, so keys are updated, never cleared.
        """
        config_file = self.run_dir / "files" / "config.yaml"
        sig = _signature(config_file)
        if sig == self._config_sig:
            return
        self._config_sig = sig
        text = _read_text_retrying(config_file)
        if not text:
            return
        try:
            raw = load_yaml(text)
        except (ValueError, yaml.YAMLError):
            return  # read_config_near (run by discover) reports unparsable config files
        if isinstance(raw, dict):
            notes: list[str] = []
            self.config.update(canonical_config(raw, notes))
            for note in notes:
                self._warn(note)

    # ---- status

    def _update_status(self) -> None:
        if self._done:
            return
        meta = self.run_dir / "files" / "swanlab-metadata.json"
        sig = _signature(meta)
        if sig != self._meta_sig:
            self._meta_sig = sig
            self._writer = _writer(self.run_dir)
        host, pid = self._writer
        if pid is not None and host == socket.gethostname() and _pid_alive(pid):
            self.status = "running"
            return
        self.status = "unknown"
        if self._killed_warned or (self._local is not None and not self._local.has_db):
            return  # local mode keeps the status in runs.swanlab: without it, nothing to say
        where = f"pid {pid} on {host}" if pid is not None else None
        if where is None:
            return
        if host == socket.gethostname():
            self.warnings.append(
                f"no finish record and the writing process ({where}) has exited: "
                "the run was probably killed (SIGKILL/SIGTERM leave no finish record)"
            )
        else:
            self.warnings.append(
                f"no finish record yet; the run was written on another host ({where}), "
                "so whether it is still running cannot be checked from here"
            )
        self._killed_warned = True

    def _finish(self, info: Decoded) -> None:
        # Records after a finish record are not part of the run, so a record file is done. The
        # local-mode status lives in a separate database, so its logs are still read.
        self._done = self.local_logs is None
        if self.status == info.finish_state:
            return
        self.status = info.finish_state or "unknown"
        lines = (info.finish_error or "").strip().splitlines()
        if lines:
            # A traceback's last line names the exception; the rest is in SwanLab's own logs.
            self.warnings.append(f"run {self.status}: {lines[-1].strip()}")
        elif self.status in ("crashed", "aborted"):
            self.warnings.append(f"run {self.status} (SwanLab's finish record gives no error text)")

    # ---- polling

    def _check_rewritten(self) -> None:
        """Start over when the record file was truncated or replaced, as the other readers do.

        A finished run's file that is rewritten is a new run in the same folder; a live one
        truncated under the reader would otherwise resume at the old offset and drop the new
        values as repeats of steps already seen.
        """
        log = self._log
        if log is None or self.record_file is None:
            return
        try:
            st = os.stat(self.record_file)
        except OSError:
            return
        sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if sig == self._file_sig:
            return
        old, self._file_sig = self._file_sig, sig
        if old is None or log.offset == 0:
            return
        if old[:2] != sig[:2]:
            why = "was replaced"
        elif st.st_size < log.offset and not log.ahead:
            why = f"shrank from {log.offset} to {st.st_size} bytes"
        elif not log.same_tail():
            why = "was rewritten"
        else:
            return
        self.warnings.append(
            f"{self.record_file.name} {why}: reading it again from the start "
            "(its values replace the ones read before)"
        )
        self._log = _LevelDBLog(self.record_file, _IDENT, _MAGIC, _VERSIONS, _DEFERRED)
        self._keeper = _FirstValueKeeper()
        self._dropped_reported = 0
        self._info = Decoded()
        self._done = False
        self.status = "unknown"

    def pending(self) -> list[str]:
        log = self._log
        if log is None or self.record_file is None or self._done:
            return []
        try:
            held = os.stat(self.record_file).st_size - log.offset
        except OSError:
            return []
        if held <= 0:
            return []
        return [
            f"{self.record_file.name} ends with {held} bytes that hold no complete record "
            f"(a partial write, or zeros) from byte {log.offset}; not read"
        ]

    def poll(self) -> Points:
        self._load_config()
        self._check_rewritten()
        if self._done:
            return Points.empty()
        cols = Columns()
        info = self._info
        info.undecodable = 0
        if self._log is not None:
            log = self._log
            spare = None  # the bytes of the last batch, read over by the next one
            pairs: dict[int, np.ndarray] = {}  # checksum tables, built once for this poll
            while True:
                batch = log.read_batch(spare)
                self.warnings.extend(log.warnings)
                log.warnings.clear()
                if log.version is not None:
                    self.layout = _VERSIONS[log.version]
                if len(batch):
                    # Protobuf records (0.8+) decoded in bulk; JSON records (0.6-0.7) one by one.
                    if self.layout == "protobuf":
                        if not decode_protobuf_batch(batch, cols, info, pairs):
                            # A record checksum failed: the sequential reader skips the damage.
                            batch = log.reread()
                            self.warnings.extend(log.warnings)
                            log.warnings.clear()
                            decode_protobuf_batch(batch, cols, info)
                    else:
                        decode_json([batch.record(i) for i in range(len(batch))], cols, info)
                # Nothing decoded keeps a view of the batch's bytes.
                spare = batch.buf if len(batch.buf) else spare
                del batch
                if not log.more or info.finish_state is not None:
                    break
            del spare, pairs  # not held while the points are put together
        elif self._local is not None:
            self._local.read(cols, info)
            self.warnings.extend(self._local.warnings)
            self._local.warnings.clear()
        self.display_name = info.name or self.display_name
        self.project = info.project or self.project
        self.run_id = info.run_id or self.run_id
        if info.undecodable:
            self.warnings.append(
                f"skipped {info.undecodable} SwanLab record(s) that do not decode "
                f"in {(self.record_file or self.local_logs or self.run_dir).name}"
            )
        if info.finish_state is not None:
            self._finish(info)
        else:
            self._update_status()
        if not len(cols):
            return Points.empty()
        tags = tuple(cols.index)
        codes, step_arr, value_arr, time_arr = cols.arrays()
        keep = self._keeper.keep_mask(tags, codes, step_arr)
        if self._keeper.dropped > self._dropped_reported:
            tag, step = self._keeper.example or ("?", -1)
            self.warnings.append(
                f"{self._keeper.dropped} repeated (metric, step) point(s) ignored, e.g. {tag} "
                f"at step {step}: SwanLab keeps the first value logged for a step"
            )
            self._dropped_reported = self._keeper.dropped
        if not keep.all():
            codes, step_arr, value_arr, time_arr = (
                codes[keep],
                step_arr[keep],
                value_arr[keep],
                time_arr[keep],
            )
        return Points(tags, codes, step_arr, value_arr, time_arr)


# --------------------------------------------------------------------------- local mode


class _LocalLogs:
    """SwanLab 0.4–0.5 local mode: ``logs/<kid>/<N>.log`` JSON lines, appended per point."""

    def __init__(self, logs: Path, run_dir: Path) -> None:
        self.logs = logs
        self.run_dir = run_dir
        self.warnings: list[str] = []
        self._offsets: dict[Path, int] = {}
        self._names: dict[str, str] = {}
        self._status: int | None = None
        self._experiment: str | None = None
        self._db_sig: object = None
        self.has_db = False

    def _read_db(self) -> None:
        """Metric names and run status from ``runs.swanlab`` beside the run folder."""
        db = self.run_dir.parent / "runs.swanlab"
        sig = (_signature(db), _signature(db.with_name("runs.swanlab-wal")))
        if sig == self._db_sig:
            return
        self._db_sig = sig
        self.has_db = sig[0] is not None
        if sig[0] is None:
            self.warnings.append(
                f"metric names of {self.run_dir.name} are unknown (no runs.swanlab beside it); "
                "metrics are named by their logs/ folder number"
            )
            return
        try:
            rows, exp = _query_local_db(db, self.run_dir.name)
        except (sqlite3.Error, OSError) as err:
            self.warnings.append(
                f"cannot read metric names from runs.swanlab ({err}); using folder numbers"
            )
            return
        self._names.update(rows)
        if exp is not None:
            self._experiment, self._status = exp

    def read(self, cols: Columns, info: Decoded) -> None:
        self._read_db()
        try:
            kids = sorted(
                (p for p in self.logs.iterdir() if p.is_dir()), key=lambda p: _num(p.name)
            )
        except OSError:
            kids = []
        ended = self._status in (1, -1)
        for kid in kids:
            name = self._names.get(kid.name)
            if name is None:
                if self.has_db and not ended:
                    # SwanLab creates the folder before the database row naming it: wait for
                    # the name rather than split one metric under two names.
                    continue
                name = kid.name
            if name.startswith(SYSTEM_PREFIX):
                continue
            try:
                files = sorted(
                    (p for p in kid.iterdir() if p.suffix == ".log"), key=lambda p: _num(p.stem)
                )
            except OSError:
                continue
            for file in files:
                for line in self._new_lines(file):
                    try:
                        rec = load_json(line)
                        step = rec["index"]
                        value = json_number(rec["data"])
                    except (ValueError, TypeError, KeyError):
                        info.undecodable += 1
                        continue
                    if value is None or not is_step(step):
                        info.undecodable += 1
                        continue
                    cols.add(name, step, value, iso_seconds(rec.get("create_time")))
        if self._experiment:
            info.name = self._experiment
        if self._status in (1, -1):
            info.finish_state = "finished" if self._status == 1 else "crashed"
            if self._status == -1:
                info.finish_error = _last_line(self.run_dir / "console" / "error.log")

    def _new_lines(self, file: Path) -> list[bytes]:
        start = self._offsets.get(file, 0)
        try:
            with open_regular(file) as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < start:
                    start = 0  # rewritten: read it again; repeats are dropped downstream
                fh.seek(start)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written
        self._offsets[file] = start + end
        return [line for line in data[:end].split(b"\n") if line.strip()]


def _last_line(path: Path) -> str | None:
    """The last non-empty line of a small text file (the exception message of a traceback)."""
    try:
        with open_regular(path) as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 4096))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return None
    return lines[-1].strip() if lines else None


def _num(text: str) -> float:
    try:
        return float(int(text))
    except ValueError:
        return math.inf


def _query_local_db(db: Path, run_folder: str) -> tuple[dict[str, str], tuple[str, int] | None]:
    """(folder -> metric name, (experiment name, status)) for one run, read-only.

    SwanLab's SQLite is in WAL mode: opening it even read-only would create ``-shm``/``-wal``
    files beside it, and "immutable" would miss rows still in the WAL. So the database and its
    WAL are copied to a private temporary folder and read there; the log folder is not touched.
    """
    with tempfile.TemporaryDirectory(prefix="warmup-monitor-") as tmp:
        copy = Path(tmp) / "runs.swanlab"
        shutil.copyfile(db, copy)
        wal = db.with_name("runs.swanlab-wal")
        with contextlib.suppress(OSError):
            shutil.copyfile(wal, copy.with_name("runs.swanlab-wal"))
        conn = sqlite3.connect(copy)
        try:
            exp = conn.execute(
                "SELECT id, name, status FROM experiment WHERE run_id = ?", (run_folder,)
            ).fetchone()
            if exp is None:
                return {}, None
            rows = conn.execute(
                "SELECT folder, name FROM tag WHERE experiment_id = ?", (exp[0],)
            ).fetchall()
        finally:
            conn.close()
    names = {str(folder): str(name) for folder, name in rows if folder is not None}
    return names, (str(exp[1]), int(exp[2]))


def open_source(path: Path) -> SwanLabSource:
    """Open a SwanLab run folder (or one ``*.swanlab`` record file) for incremental reading."""
    return SwanLabSource(Path(path))
