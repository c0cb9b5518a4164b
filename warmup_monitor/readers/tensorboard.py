"""TensorBoard event files (``*tfevents*``): a fast, exact, incremental reader.

A run is a directory that directly holds ``*tfevents*`` files (or one event file). Every file
of the run is followed, ordered by the creation time in its name, then by name, and points are
returned in that order so that a resumed run's later values win (see :class:`~warmup_monitor.Run`).

Scalars are classic ``simple_value`` summaries and rank-0 numeric tensors (float, double,
half, int32, int64 …) whose tag's first metadata seen in the run names the ``scalars`` plugin
(a tensor whose tag has shown no metadata by the end of the poll reading it is skipped).
Other summaries (histograms, images, text, hparams) are skipped. Payload checksums are
verified for every record that is used.

Speed: records are framed by predicting repeating record sizes (a small file: by checking every
offset as a header at once) and decoded column-wise for the layouts real writers produce (see
``_tfrecord`` and ``_tfevents``; the layouts met lately are kept, so the runs of a sweep skip
parsing them); anything else goes through TensorBoard's own protobuf classes, so results are
exact. A poll that finds nothing new costs a few ``stat`` calls; the folder is listed again only
when its mtime moves.

Behaviour on damaged or live files:

* a half-written last record is "not yet": the next poll reads it again from the same offset;
* a record whose payload checksum fails is skipped with a warning and reading goes on;
* a record header whose length checksum fails stops that file with one warning (the framing is
  lost); other files are still read, and if the file changes the header is checked again (a
  header caught mid-write heals, a damaged one stays stopped);
* a gzip-compressed file is skipped with a warning; when every event file of the run is
  compressed (or none is readable at all), :class:`~warmup_monitor.FormatError` is raised;
* a file that shrank or was replaced (new inode) is read again from the start with a warning,
  unless its start and the bytes already read are unchanged (an object store replacing a live
  file by a longer copy), in which case reading simply continues;
* a torch ``purge_step`` restart marker (``SessionLog.START`` with a step) is reported in the
  warnings; nothing is deleted: values written again for the same steps replace the earlier
  ones and :attr:`Run.resumes` names the restart. Points of the crashed attempt beyond the
  steps written again are kept (TensorBoard would hide them).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..points import Points
from ..sources import Source
from ..untrusted import open_regular
from ._crc32c import masked_crc32c
from ._tfevents import Decoded, decode
from ._tfrecord import frame

__all__ = ["TensorBoardSource", "claims", "oldest_first", "open_source"]

_GZIP_MAGIC = b"\x1f\x8b"
_MMAP_MIN = 1 << 20  # read bigger increments through mmap, smaller ones with read()
_WINDOW = 8 << 20  # bytes framed and decoded at a time: bounds the temporary arrays
_RELEASE_MIN = 32 << 20  # release decoded pages of a mapped file in steps of this size
_HEAP_BAR = 30 << 20  # just under glibc's 32 MiB cap on its dynamic mmap threshold
_MAX_RECORD_WARNINGS = 5  # per file and poll; the rest are counted
_STALE_S = 60.0  # a partial last record unchanged this long will not complete by itself
_CREATED = re.compile(r"tfevents\.(\d+)")
_TOKENS = re.compile(r"(\d+)|(\D+)")


def _is_event_file(path: str | os.PathLike[str]) -> bool:
    """An event file by its writer's name (``…tfevents.<time>…``) or, else, by its content.

    A name merely containing ``tfevents`` (``read_tfevents.py``) is claimed only when the file
    starts like one: a record header whose length checksum holds, or gzip's magic bytes. A
    writer's file keeps its claim when its first record is damaged, so the damage is reported.
    """
    name = os.path.basename(path)
    if "tfevents" not in name:
        return False
    if _CREATED.search(name):
        return True
    try:
        with open_regular(path) as fh:
            head = fh.read(12)
    except OSError:
        return False
    if head[:2] == _GZIP_MAGIC:
        return True
    return len(head) == 12 and struct.unpack("<I", head[8:])[0] == masked_crc32c(head[:8])


def claims(path: Path) -> bool:
    """True for an event file, or a directory directly holding event files."""
    path = Path(path)
    if path.is_file():
        return _is_event_file(path)
    if path.is_dir():
        with os.scandir(path) as entries:
            return any(e.is_file() and _is_event_file(e.path) for e in entries)
    return False


def open_source(path: Path) -> TensorBoardSource:
    """Open a run directory (or one event file) for incremental reading."""
    return TensorBoardSource(Path(path))


def _sort_key(name: str) -> tuple[int, list[tuple[int, str]]]:
    """Creation time from the name, then the name with numbers compared as numbers.

    Writers name files ``events.out.tfevents.<unix time>.<host>[.<pid>.<counter>]``, so two
    writers started in the same second are ordered by their counter (``…2`` before ``…10``).
    """
    created = _CREATED.search(name)
    natural = [(int(d), "") if d else (0, t) for d, t in _TOKENS.findall(name)]
    return (int(created.group(1)) if created else 1 << 62, natural)


def oldest_first(names: Iterable[str]) -> list[str]:
    """The writers' event file names (``…tfevents.<time>…``) among ``names``, in the order the
    reader follows a run's files."""
    return sorted((n for n in names if _CREATED.search(n)), key=_sort_key)


@dataclass
class _File:
    path: Path
    ino: tuple[int, int] = (0, 0)
    size: int = -1  # size when last looked at
    offset: int = 0  # start of the first record not read yet
    records: int = 0  # complete records read so far
    stopped: str | None = None  # why reading this file ended for good ("gzip")
    broken_at: int | None = None  # a corrupted record header stops reading here
    head: bytes = b""  # first bytes read, to recognise a replaced file
    tail: bytes = b""  # the bytes just before ``offset``
    claimed: int | None = None  # length the held-back partial record claims, when known
    grown_at: float = 0.0  # monotonic time the file last changed size
    stale_warned: bool = False

    def reset(self) -> None:
        self.offset = self.records = 0
        self.stopped = self.broken_at = self.claimed = None
        self.head = self.tail = b""
        self.stale_warned = False


class TensorBoardSource(Source):
    """Follows every event file of one run; ``poll()`` returns the new scalar points."""

    format = "tensorboard"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._single = self.path.is_file()
        self._files: dict[str, _File] = {}
        self._order: list[_File] = []
        self._dir_mtime = -1
        self._plugins: dict[str, str] = {}  # tag -> plugin of its first metadata
        self._tags: dict[str, int] = {}
        self._tag_list: list[str] = []
        self._gone: set[str] = set()
        if self._single:
            self._add(self.path)

    # ------------------------------------------------------------------ files
    def _add(self, path: Path) -> None:
        f = _File(path)
        self._files[path.name] = f
        self._order.append(f)
        self._order.sort(key=lambda x: _sort_key(x.path.name))

    def _scan(self) -> None:
        """Pick up new event files; only lists the directory when its mtime moved."""
        if self._single:
            return
        mtime = os.stat(self.path).st_mtime_ns
        # A file created in the same clock tick as the last listing leaves mtime unchanged, so
        # keep listing while the directory changed within the last two seconds.
        if mtime == self._dir_mtime and time.time() - mtime / 1e9 > 2.0:
            return
        self._dir_mtime = mtime
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name not in self._files and entry.is_file() and _is_event_file(entry.path):
                    self._add(Path(entry.path))

    # ------------------------------------------------------------------ polling
    def poll(self) -> Points:
        """Return the scalar points written since the last poll, in file order."""
        self._scan()
        sink = _Columns()
        for f in list(self._order):
            try:
                st = os.stat(f.path)
            except FileNotFoundError:
                if f.path.name not in self._gone:
                    self._gone.add(f.path.name)
                    self.warnings.append(f"event file '{f.path.name}' disappeared")
                continue
            ino = (st.st_dev, st.st_ino)
            if st.st_size == f.size and ino == f.ino:
                self._check_stale(f)
                continue
            f.grown_at = time.monotonic()
            f.stale_warned = False
            if f.size >= 0 and (ino != f.ino or st.st_size < f.size):
                self._changed(f, st.st_size, ino != f.ino)
            f.ino = ino
            f.size = st.st_size
            if f.stopped is None and st.st_size > f.offset:
                self._read(f, st.st_size, sink)
        self._check_readable()
        return self._points(sink)

    def _held(self, f: _File) -> str | None:
        """What a file holds beyond the last complete record, when it cannot be read yet."""
        if f.stopped is not None or f.broken_at is not None or f.size <= f.offset:
            return None
        held = f.size - f.offset
        claim = f" claiming {f.claimed} bytes" if f.claimed is not None else ""
        return (
            f"event file '{f.path.name}' ends with an incomplete record at byte {f.offset} "
            f"({held} bytes{claim}); the {held} bytes from there are not read"
        )

    def pending(self) -> list[str]:
        return [m for m in map(self._held, self._order) if m is not None]

    def _check_stale(self, f: _File) -> None:
        # A partial record that stays partial is a writer that died mid-record, or a damaged
        # length that claims more than the file holds: say so once, while watching.
        if f.stale_warned or time.monotonic() - f.grown_at < _STALE_S:
            return
        message = self._held(f)
        if message is not None:
            f.stale_warned = True
            self.warnings.append(f"{message} (the file has not grown for {_STALE_S:.0f} s)")

    def _changed(self, f: _File, size: int, replaced: bool) -> None:
        """A file shrank or was replaced: continue if what was read is unchanged, else restart."""
        what = "was replaced" if replaced else f"shrank from {f.size} to {size} bytes"
        if f.offset and size >= f.offset and self._same_prefix(f):
            return
        if f.offset:
            self.warnings.append(
                f"event file '{f.path.name}' {what}: reading it again from the start "
                "(its values replace the ones read before)"
            )
        f.reset()

    def _same_prefix(self, f: _File) -> bool:
        try:
            with open_regular(f.path) as fh:
                head = fh.read(len(f.head))
                fh.seek(f.offset - len(f.tail))
                tail = fh.read(len(f.tail))
        except OSError:
            return False
        return head == f.head and tail == f.tail

    def _read(self, f: _File, size: int, sink: _Columns) -> None:
        name = f.path.name
        start = f.offset
        try:
            fh = open_regular(f.path)  # closed below, after the mmap
        except OSError as err:
            self.warnings.append(f"event file '{name}' cannot be read: {err.strerror}")
            return
        mm = None
        try:
            if start == 0:
                magic = fh.read(2)
                if magic == _GZIP_MAGIC:
                    f.stopped = "gzip"
                    self.warnings.append(
                        f"event file '{name}' is gzip-compressed: skipped (decompress it first)"
                    )
                    return
            if size - start >= _MMAP_MIN:
                try:
                    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                except (ValueError, OSError):  # emptied since the stat, or not mappable
                    mm = None
            if mm is not None and len(mm) > start:
                if len(mm) - start > 2 * _WINDOW:
                    _keep_window_pages()
                buf = np.frombuffer(mm, dtype=np.uint8)
                base, begin, end = 0, start, len(mm)
            else:
                fh.seek(start)
                data = fh.read(size - start)
                buf = np.frombuffer(data, dtype=np.uint8)
                base, begin, end = start, 0, len(data)
            sink.expect(end - begin)
            self._decode_file(f, buf, base, begin, end, sink, mm)
        finally:
            buf = None  # release the view before unmapping
            if mm is not None:
                # A view still alive somewhere keeps the map: GC unmaps it later.
                with contextlib.suppress(BufferError):
                    mm.close()
            fh.close()

    def _decode_file(
        self,
        f: _File,
        buf: np.ndarray,
        base: int,
        begin: int,
        end: int,
        sink: _Columns,
        mm: mmap.mmap | None,
    ) -> None:
        """Frame and decode ``buf[begin:end]`` window by window (bounds temporary memory).

        The points go straight into ``sink``; the pages of a memory-mapped file are released
        once their window is decoded, so a big file is never resident whole.
        """
        name = f.path.name
        released = 0  # mapped bytes before this offset are no longer resident
        bad: list[int] = []
        undecodable: list[int] = []
        pos = begin
        while pos < end:
            framing = frame(buf, pos, min(end, pos + _WINDOW))
            if framing.stop == pos and framing.error is None and pos + _WINDOW < end:
                framing = frame(buf, pos, end)  # one record bigger than the window
            stop = framing.stop
            if stop > pos:
                if f.offset == 0 and pos == begin:
                    f.head = buf[begin : min(stop, begin + 64)].tobytes()
                f.tail = buf[max(begin, stop - 16) : stop].tobytes()
                f.broken_at = None
            f.offset = base + stop
            f.records += len(framing.offsets)
            decoded = decode(buf, framing.offsets, framing.lengths)
            header_at = base - 12
            bad.extend(header_at + int(framing.offsets[r]) for r in decoded.bad_crc)
            undecodable.extend(header_at + int(framing.offsets[r]) for r in decoded.undecodable)
            for _, step in decoded.restarts:
                self.warnings.append(
                    f"event file '{name}' restarts the run at step {step} (purge_step): values "
                    f"written again from step {step} replace the earlier ones"
                )
            error = framing.error
            del framing
            merged = self._merge(decoded)
            del decoded
            if merged is not None:
                sink.add(*merged, start=base + pos, stop=base + stop)
                del merged
            if mm is not None:
                released = _release(mm, released, stop)
            if error is not None:
                # Reading stops here. The file is tried again from the same byte when it
                # changes (a header caught mid-write heals), but reported only once.
                if f.broken_at != base + stop:
                    f.broken_at = base + stop
                    self.warnings.append(
                        f"event file '{name}': corrupted record header at byte {base + stop} "
                        f"({error}); stopped reading this file"
                    )
                break
            if stop == pos:
                # A half-written record: read it on a later poll.
                f.claimed = int(buf[stop : stop + 8].view("<u8")[0]) if end - stop >= 8 else None
                break
            pos = stop
        self._report(name, sorted(bad), "has a bad payload checksum")
        self._report(name, sorted(undecodable), "cannot be decoded")

    def _report(self, name: str, at: list[int], label: str) -> None:
        for pos in at[:_MAX_RECORD_WARNINGS]:
            self.warnings.append(f"event file '{name}': record at byte {pos} {label}; skipped")
        if len(at) > _MAX_RECORD_WARNINGS:
            more = len(at) - _MAX_RECORD_WARNINGS
            self.warnings.append(f"event file '{name}': {more} more records {label}; skipped")

    def _merge(self, d: Decoded) -> tuple[np.ndarray, ...] | None:
        """Register first metadata in write order, keep scalar tensors, restore write order."""
        for _, tag, plugin in sorted(d.metadata, key=lambda m: m[0]):
            self._plugins.setdefault(tag, plugin)
        parts = []
        while d.tags:  # pop as we go: each part is released once merged
            tags, rec, codes = d.tags.pop(), d.rec.pop(), d.codes.pop()
            steps, values, times, tensor = (
                d.steps.pop(),
                d.values.pop(),
                d.times.pop(),
                d.tensor.pop(),
            )
            remap = np.array([self._code(t) for t in tags], dtype=np.int32)
            if tensor:
                keep = np.array([self._plugins.get(t) == "scalars" for t in tags], dtype=bool)
                sel = keep[codes]
                if not sel.all():
                    rec, codes, steps, values, times = (
                        rec[sel],
                        codes[sel],
                        steps[sel],
                        values[sel],
                        times[sel],
                    )
            if len(rec):
                parts.append((rec, remap[codes], steps, values, times))
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0][1:]
        total = sum(len(p[0]) for p in parts)
        seen = np.zeros(d.records, dtype=bool)
        for p in parts:
            seen[p[0]] = True
        if int(np.count_nonzero(seen)) != total:
            # Several points in one record: a stable sort keeps their order.
            rec = np.concatenate([p[0] for p in parts])
            order = np.argsort(rec, kind="stable")
            return tuple(np.concatenate([p[i] for p in parts])[order] for i in range(1, 5))
        # One point per record (the usual case): scatter each part to its record's rank.
        rank = np.cumsum(seen, dtype=np.int64) - 1
        del seen
        out = (
            np.empty(total, dtype=np.int32),
            np.empty(total, dtype=np.int64),
            np.empty(total, dtype=np.float64),
            np.empty(total, dtype=np.float64),
        )
        while parts:
            p = parts.pop()
            dest = rank[p[0]]
            for column, values in zip(out, p[1:], strict=True):
                column[dest] = values
        return out

    def _code(self, tag: str) -> int:
        code = self._tags.get(tag)
        if code is None:
            code = self._tags[tag] = len(self._tag_list)
            self._tag_list.append(tag)
        return code

    def _check_readable(self) -> None:
        """Raise when no event file of the run can be read at all."""
        live = [f for f in self._order if f.size > 0 and f.path.name not in self._gone]
        if not live or any(f.records or (f.stopped is None and f.broken_at is None) for f in live):
            return
        names = ", ".join(f"'{f.path.name}'" for f in live[:3])
        if all(f.stopped == "gzip" for f in live):
            raise FormatError(
                f"event file {names} is gzip-compressed",
                "Decompress it first (gunzip) and point at the uncompressed event files",
            )
        raise FormatError(
            f"{names} is not a readable TensorBoard event file (corrupted record header)",
            "Check that the file was written by a TensorBoard writer and is not damaged",
        )

    def _points(self, sink: _Columns) -> Points:
        codes, steps, values, times = sink.columns()
        if not len(codes):
            return Points.empty()
        used = np.flatnonzero(sink.used)
        tags = tuple(self._tag_list[i] for i in used.tolist())
        if len(used) < len(self._tag_list) or used[-1] != len(used) - 1:
            # Tags of earlier polls that gave no point now: renumber in place (codes are ours).
            remap = np.zeros(len(self._tag_list), dtype=np.int32)
            remap[used] = np.arange(len(used), dtype=np.int32)
            codes = remap[codes]
        return Points(tags=tags, tag_codes=codes, steps=steps, values=values, wall_times=times)


_heap_bar_raised = False


def _keep_window_pages() -> None:
    """Let the decoding windows reuse one another's heap pages instead of faulting fresh ones.

    glibc hands the top of the heap back to the system whenever more than twice the largest
    freed ``mmap``-ed block is free there; on a fresh process that bar sits below one window's
    temporaries, so every window faulted fresh zeroed pages (half the time of a 10M-point
    read). Freeing a block just under glibc's cap raises the bar the way any freed large array
    would: once per process, an untouched block, no allocator settings changed. Other
    allocators are unaffected.
    """
    global _heap_bar_raised
    if not _heap_bar_raised:
        _heap_bar_raised = True
        block = np.empty(_HEAP_BAR, dtype=np.uint8)
        del block


def _release(mm: mmap.mmap, released: int, upto: int) -> int:
    """Drop the mapped pages below ``upto`` from this process (the page cache keeps them)."""
    page = mmap.PAGESIZE
    upto -= upto % page
    if upto - released >= _RELEASE_MIN and hasattr(mm, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            mm.madvise(mmap.MADV_DONTNEED, released, upto - released)
            return upto
    return released


class _Columns:
    """The points of one poll, written straight into preallocated columns.

    Sized from the bytes still to read and the points per byte seen so far (a first guess
    before any), grown by doubling when a guess falls short; pages of the spare room that
    are never written cost no memory. Avoids holding every window's arrays and a
    concatenated copy at the same time.
    """

    def __init__(self) -> None:
        self.n = 0
        self._cap = 0
        self._bytes_left = 0  # bytes of the files announced by ``expect`` not decoded yet
        self._cols: tuple[np.ndarray, ...] = ()
        self.used = np.zeros(0, dtype=bool)  # tag codes that have a point

    def expect(self, nbytes: int) -> None:
        self._bytes_left += nbytes

    def add(
        self,
        codes: np.ndarray,
        steps: np.ndarray,
        values: np.ndarray,
        times: np.ndarray,
        *,
        start: int,
        stop: int,
    ) -> None:
        k = len(codes)
        self._bytes_left = max(0, self._bytes_left - (stop - start))
        if not k:
            return
        if self.n + k > self._cap:
            per_byte = k / max(1, stop - start)
            self._grow(self.n + k + int(self._bytes_left * per_byte * 1.02) + 1024)
        a, b = self.n, self.n + k
        for col, part in zip(self._cols, (codes, steps, values, times), strict=True):
            col[a:b] = part
        self.n = b
        seen = np.bincount(codes) > 0
        if len(seen) > len(self.used):
            seen[: len(self.used)] |= self.used
            self.used = seen
        else:
            self.used[: len(seen)] |= seen

    def _grow(self, cap: int) -> None:
        cap = max(cap, 2 * self._cap)
        new = (
            np.empty(cap, dtype=np.int32),
            np.empty(cap, dtype=np.int64),
            np.empty(cap, dtype=np.float64),
            np.empty(cap, dtype=np.float64),
        )
        for old, col in zip(self._cols, new, strict=False):  # none before the first points
            col[: self.n] = old[: self.n]
        self._cols, self._cap = new, cap

    def columns(self) -> tuple[np.ndarray, ...]:
        n = self.n
        if not n:
            return (np.empty(0, dtype=np.int32),) * 4
        # A view of the spare room would keep it allocated: copy when much of it is unused.
        return tuple(c[:n] if n >= 0.9 * len(c) else c[:n].copy() for c in self._cols)
