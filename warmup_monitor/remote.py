"""Logs in object storage: any fsspec URL (``s3://``, ``gs://``, ``az://``, ``hf://``,
``file://``) read through a local, private mirror of the log files under it.

The readers follow growing files on a local disk (memory-mapped event files, incremental
offsets), so instead of teaching each of them a remote protocol, :class:`RemoteTree` keeps a
copy of the *log* files under the URL in a temporary folder of its own and brings it up to date
with :meth:`RemoteTree.sync`:

* **one recursive listing per prefix and sync** (``fs.find``: S3's ``ListObjectsV2``, paged),
  instead of one call per folder and per file;
* **only the log files** (event files, SwanLab records, JSON/JSONL/CSV/YAML): checkpoints and
  weights under the same prefix are never downloaded;
* **ranged and incremental reads**: a new object is fetched once; an append-only log (event
  file, SwanLab record file, JSONL, CSV) that grew is fetched from a few bytes before its old
  end (a differing overlap means it was rewritten: it is fetched again whole); files that
  their writers rewrite (``trainer_state.json``, configs) are fetched whole when they change;
  an unchanged object costs nothing;
* **concurrent reads**: every range of a sync goes out in one ``cat_ranges`` batch, which the
  async file systems (s3fs, gcsfs, adlfs) send concurrently.

Credentials come from the file system's usual configuration (for S3: ``AWS_PROFILE``,
``~/.aws/credentials``, environment variables, instance roles; the endpoint from
``AWS_ENDPOINT_URL``), never from the command line. Nothing is ever written under the URL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import InputError

__all__ = ["RemotePath", "RemoteTree", "SyncStats", "is_url", "mirrored"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Extras that provide each protocol (``pip install 'warmup-monitor[s3]'``).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}
# Log and config files the readers and the config lookup use; everything else under a prefix
# (checkpoints, weights, media) is never fetched.
_LOG_SUFFIXES = (".swanlab", ".json", ".jsonl", ".csv", ".yaml", ".yml", ".log")
_NOT_LOGS = re.compile(
    r"(^|/)(tokenizer[^/]*|vocab|special_tokens_map|[^/]*\.index|generation_config)\.json$"
)
# Bytes before an object's old end fetched again on growth: equal bytes mean it was appended.
_OVERLAP = 64
# Files their writers only append to; any other file (trainer_state.json, configs) is rewritten
# whole by its writer, so it is fetched whole when it changes.
_APPENDED = re.compile(r"(tfevents|\.swanlab$|\.jsonl$|\.log$|\.csv$)")


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for ``scheme://…`` (an fsspec URL), False for a local path."""
    return isinstance(path, str) and bool(_URL.match(path))


def _wanted(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    if name.startswith("."):
        return False
    if "tfevents" in name:
        return True
    return name.endswith(_LOG_SUFFIXES) and not _NOT_LOGS.search(key)


class RemotePath(PurePosixPath):
    """A location in object storage, printed as its URL wherever a run's path is shown."""

    url: str

    def __str__(self) -> str:
        return self.url

    def as_posix(self) -> str:
        return self.url


def remote_path(url: str) -> RemotePath:
    p = RemotePath(url.split("://", 1)[1])
    p.url = url
    return p


@dataclass
class SyncStats:
    """What syncing cost: listing calls, ranged reads, bytes fetched and failed reads."""

    listings: int = 0
    reads: int = 0
    bytes: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return self.listings + self.reads


@dataclass
class _Entry:
    size: int
    tag: str  # ETag or modification time: changes whenever the object does


class RemoteTree:
    """A private local mirror of the log files under ``url``; :meth:`sync` updates it.

    ``local_root`` is the mirror of ``url`` itself; :meth:`url_of` maps a path inside it back.
    ``storage_options`` go to the fsspec file system (e.g. ``{"anon": True}``). Use as a
    context manager, or call :meth:`close` to delete the mirror.
    """

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = _filesystem(self.url, storage_options or {})
        self.root = self.root.rstrip("/")
        self._tmp = Path(tempfile.mkdtemp(prefix="warmup-monitor-"))
        self.local_root = self._tmp / "mirror"
        self.local_root.mkdir()
        self.stats = SyncStats()
        self._entries: dict[str, _Entry] = {}
        self._single = False  # the URL names one object, not a prefix

    # ------------------------------------------------------------------ mapping
    def url_of(self, local: str | os.PathLike[str]) -> RemotePath:
        rel = os.path.relpath(local, self.local_root)
        if self._single and rel == ".":
            return remote_path(self.url)
        if self._single:
            rel = rel.split("/", 1)[-1]
        return remote_path(self.url if rel == "." else f"{self.url}/{rel}")

    @property
    def local_path(self) -> Path:
        """What to read: the mirror folder, or the mirrored file for a single-object URL."""
        if self._single:
            return self.local_root / self.root.rsplit("/", 1)[-1]
        return self.local_root

    # ------------------------------------------------------------------ syncing
    def sync(self) -> list[str]:
        """Bring the mirror up to date; return the keys that changed.

        Raises :class:`InputError` (one line, with the fix) when the listing fails: missing
        bucket or prefix, missing or refused credentials, unreachable endpoint. A failed read
        of one object is counted in :attr:`stats` (``failures``) and retried at the next sync.
        """
        listing = self._list()
        gone = [k for k in self._entries if k not in listing]
        for key in gone:
            del self._entries[key]
            with contextlib.suppress(OSError):
                os.remove(self._local(key))
        paths, starts, ends, plans = [], [], [], []
        for key, entry in listing.items():
            old = self._entries.get(key)
            if old is not None and old.tag == entry.tag and old.size == entry.size:
                continue
            if old is not None and 0 < old.size < entry.size and _APPENDED.search(key):
                start = max(0, old.size - _OVERLAP)
                plans.append((key, entry, old.size - start))
            else:
                start = 0
                plans.append((key, entry, -1))
            paths.append(f"{self.root}/{key}" if key else self.root)
            starts.append(start)
            ends.append(entry.size)
        if paths:
            datas = self._read(paths, starts, ends)
            # An appended object whose overlap does not match was rewritten: fetch it whole.
            again = []
            for (key, entry, overlap), data in zip(plans, datas, strict=True):
                if isinstance(data, BaseException):
                    self._failed(key, data)
                elif overlap >= 0 and not self._append(key, data, overlap):
                    again.append((key, entry))
                else:
                    if overlap < 0:
                        self._write(key, data)
                    self._entries[key] = entry
            if again:
                whole = self._read(
                    [f"{self.root}/{k}" for k, _ in again],
                    [0] * len(again),
                    [e.size for _, e in again],
                )
                for (key, entry), data in zip(again, whole, strict=True):
                    if isinstance(data, BaseException):
                        self._failed(key, data)
                    else:
                        self._write(key, data)
                        self._entries[key] = entry
        return [p[0] for p in plans] + gone

    def _list(self) -> dict[str, _Entry]:
        self.stats.listings += 1
        try:
            self.fs.invalidate_cache(self.root)
            found = self.fs.find(self.root, withdirs=False, detail=True)
        except Exception as err:
            raise _input_error(self.url, err) from err
        out: dict[str, _Entry] = {}
        prefix = self.root + "/"
        for path, info in found.items():
            if info.get("type", "file") != "file":
                continue
            path = path.rstrip("/")
            if path == self.root:  # the URL names one object
                self._single = True
                key = ""
            elif path.startswith(prefix):
                key = path[len(prefix) :]
            else:
                continue
            if key and not _wanted(key):
                continue
            tag = (
                info.get("ETag")
                or info.get("etag")
                or info.get("mtime")
                or info.get("LastModified")
            )
            out[key] = _Entry(int(info.get("size") or 0), str(tag))
        if not out:
            raise InputError(
                f"no log files under '{self.url}'",
                "Check the bucket and prefix (a prefix ends where the run folders start)",
            )
        return out

    def _read(self, paths: list[str], starts: list[int], ends: list[int]) -> list[Any]:
        self.stats.reads += len(paths)
        try:
            datas = self.fs.cat_ranges(paths, starts, ends, on_error="return")
        except Exception as err:  # the whole batch failed (connection lost …)
            return [err] * len(paths)
        for d in datas:
            if isinstance(d, bytes):
                self.stats.bytes += len(d)
        return list(datas)

    def _failed(self, key: str, err: BaseException) -> None:
        self.stats.failed += 1
        self.stats.failures.append(f"cannot read '{self.url}/{key}': {_describe(err)}")

    def _local(self, key: str) -> Path:
        if not key:
            return self.local_root / self.root.rsplit("/", 1)[-1]
        return self.local_root.joinpath(*[p for p in key.split("/") if p not in ("", ".", "..")])

    def _write(self, key: str, data: bytes) -> None:
        # Replaced, not rewritten in place: a reader holding the old file sees a new file.
        target = self._local(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def _append(self, key: str, data: bytes, overlap: int) -> bool:
        target = self._local(key)
        try:
            with open(target, "rb+") as f:
                f.seek(-overlap, os.SEEK_END)
                if f.read(overlap) != data[:overlap]:
                    return False
                f.write(data[overlap:])
        except OSError:
            return False
        return True

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> RemoteTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def mirrored(
    paths: Sequence[str | os.PathLike[str]],
) -> Iterator[tuple[list[Path], Any]]:
    """``(local paths, to_display)`` for ``paths``, URLs replaced by synced mirrors (deleted on
    exit); ``to_display(local)`` gives the URL of a mirrored path and leaves others alone."""
    trees: list[RemoteTree] = []
    try:
        local: list[Path] = []
        for p in paths:
            if is_url(p):
                tree = RemoteTree(str(p))
                trees.append(tree)
                tree.sync()
                local.append(tree.local_path)
            else:
                local.append(Path(p))

        def to_display(path: Path) -> Any:
            for tree in trees:
                if path == tree.local_root or tree.local_root in path.parents:
                    return tree.url_of(path)
            return path

        yield local, to_display
    finally:
        for tree in trees:
            tree.close()


# ---------------------------------------------------------------------------------- errors
def _filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    protocol = url.split("://", 1)[0].lower()
    try:
        from fsspec.core import url_to_fs

        # A fresh instance: the cached one may hold another endpoint or expired credentials.
        return url_to_fs(url, skip_instance_cache=True, **options)
    except ImportError as err:
        extra = _EXTRAS.get(protocol, protocol)
        raise InputError(
            f"reading {protocol}:// URLs needs a package that is not installed ({err})",
            f"pip install 'warmup-monitor[{extra}]'",
        ) from err
    except ValueError as err:
        raise InputError(
            f"unsupported URL '{url}' ({err})", "Use s3://, gs://, az://, hf:// or file://"
        ) from err


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _input_error(url: str, err: BaseException) -> InputError:
    """One line naming the problem with ``url`` and the fix."""
    name = type(err).__name__
    text = _describe(err)
    if name in ("NoCredentialsError", "PartialCredentialsError") or "credentials" in text.lower():
        return InputError(
            f"no credentials to read '{url}' ({text})",
            "Set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "~/.aws/credentials (never on the command line)",
        )
    if isinstance(err, PermissionError) or "AccessDenied" in text or "InvalidAccessKeyId" in text:
        return InputError(
            f"access to '{url}' was refused ({text})",
            "Check the credentials in use (AWS_PROFILE, ~/.aws/credentials) and the bucket policy",
        )
    if isinstance(err, FileNotFoundError) or "NoSuchBucket" in text:
        return InputError(
            f"'{url}' does not exist ({text})", "Check the bucket name and the prefix"
        )
    if "connect" in text.lower() or "Connection" in name or "Endpoint" in name:
        return InputError(
            f"cannot reach the storage endpoint for '{url}' ({text})",
            "Check AWS_ENDPOINT_URL (or the endpoint in ~/.aws/config) and the network",
        )
    return InputError(f"cannot list '{url}' ({name}: {text})", "Check the URL and credentials")
