"""File-system notifications for the watcher: which paths changed, and a way to sleep until then.

On Linux, :class:`InotifyNotifier` reads an inotify descriptor directly, in the watch loop's own
thread: no extra threads and no object per event, so ten runs flushing a line every step (a
thousand writes a second) cost a fraction of a percent of a core to hear. It also lets the
watcher stop listening to a run whose next read is already scheduled (:meth:`mute`) and to
folders that hold no run. Elsewhere (macOS, Windows, BSD), :class:`WatchdogNotifier` uses
``watchdog``.

Both listen only to writes, closes after writing, creations, deletions and moves, never to
opens or reads: the watcher's own reads must not wake it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import math
import os
import select
import struct
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

__all__ = ["InotifyNotifier", "Notifier", "WatchdogNotifier", "open_notifier"]


class Notifier(Protocol):
    """What the watch loop needs from a source of file-system notifications."""

    @property
    def alive(self) -> bool:
        """False once notifications can no longer be trusted (the watcher then polls)."""
        ...

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True when woken by a change (or :meth:`interrupt`)."""
        ...

    def take(self) -> tuple[set[str] | None, bool]:
        """The paths changed since the last call (``None``: anything may have changed, e.g.
        events were lost) and whether files or folders came, went or moved."""
        ...

    def interrupt(self) -> None:
        """Wake :meth:`wait` (safe from another thread or a signal handler)."""
        ...

    def set_runs(self, paths: Iterable[str]) -> None:
        """The runs' paths: writes elsewhere need not be heard (creations still are)."""
        ...

    def mute(self, path: str) -> None:
        """The run at ``path`` will be read anyway at its next read: its writes need not
        wake the watcher until :meth:`unmute`."""
        ...

    def unmute(self, path: str) -> None:
        """Hear the run's writes again; called *before* reading it, so no write is missed."""
        ...

    def stop(self) -> None: ...


def open_notifier(root: Path) -> Notifier:
    """Notifications for ``root`` (a folder, watched recursively, or a file).

    Raises ``OSError`` (inotify limits reached, unsupported file system …), ``ImportError``
    or ``RuntimeError`` when no notifications are available: the watcher then polls.
    """
    if sys.platform.startswith("linux"):
        return InotifyNotifier(root)
    return WatchdogNotifier(root)


# ---------------------------------------------------------------------------------- inotify
# <sys/inotify.h>
_IN_MODIFY = 0x002
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_UNMOUNT = 0x2000
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000
_IN_EXCL_UNLINK = 0x04000000
_IN_ISDIR = 0x40000000

# A folder is always watched for entries coming and going; for writes only while it holds a
# run that is not muted.
_STRUCTURE = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_DELETE_SELF
_STRUCTURE |= _IN_MOVE_SELF | _IN_ONLYDIR | _IN_EXCL_UNLINK
_CONTENT = _IN_MODIFY | _IN_CLOSE_WRITE
_CHANGED_ENTRY = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO
_LOST = _IN_Q_OVERFLOW | _IN_UNMOUNT

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name
_READ_SIZE = 64 * 1024
_MAX_READS = 64  # per take(): the rest wakes the next wait at once

_libc: Any = None


def _inotify_libc() -> Any:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_init1.restype = ctypes.c_int
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_add_watch.restype = ctypes.c_int
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.inotify_rm_watch.restype = ctypes.c_int
        _libc = libc
    return _libc


def _skipped(name: str) -> bool:
    # The folders run discovery skips hold no run: their writes are never worth a wake-up.
    return name.startswith(".") or name == "__pycache__"


class InotifyNotifier:
    """inotify read in the caller's thread (Linux).

    A folder root is watched recursively (hidden folders and ``__pycache__`` excepted, as run
    discovery skips them); a file root through its folder. Paths are reported as the watched
    folder joined with the entry name, like ``os.path.join``.
    """

    def __init__(self, root: Path) -> None:
        self._libc = _inotify_libc()
        self._recursive = root.is_dir()
        self._root = os.path.abspath(root if self._recursive else root.parent)
        self._closed = False
        self._broken = False
        # interrupt() may come from another thread or a signal handler while stop() closes
        # the descriptors: never write to a closed (and maybe reused) descriptor number.
        self._close_lock = threading.RLock()
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self._fd = fd
        try:
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            os.close(fd)
            raise
        # poll, not select: a watcher of many runs holds many files open, and select cannot
        # wait on descriptor numbers above 1023.
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)
        self._poller.register(self._wake_r, select.POLLIN)
        self._wd_path: dict[int, str] = {}
        self._path_wd: dict[str, int] = {}
        self._mask: dict[str, int] = {}  # the mask each folder is watched with now
        self._runs: set[str] = set()
        self._file_runs: dict[str, set[str]] = {}  # folder -> runs that are files in it
        self._muted: set[str] = set()
        self._owners: dict[str, set[str]] = {}  # folder -> the runs its writes concern
        self._folders_of: dict[str, set[str]] = {}  # run -> the folders it owns
        self._changed: set[str] = set()
        self._structural = False
        self._lost = False
        try:
            # Until the watcher says where its runs are, every folder is heard in full.
            self._add_tree(self._root, root_watch=True)
        except BaseException:
            self.stop()
            raise

    # -------------------------------------------------------------- Notifier
    @property
    def alive(self) -> bool:
        return not self._closed and not self._broken

    def wait(self, timeout: float) -> bool:
        if self._closed:
            return False
        try:
            ready = self._poller.poll(max(0, math.ceil(timeout * 1000)))
        except OSError:
            return False
        if any(fd == self._wake_r for fd, _ in ready):
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 4096)
        return bool(ready)

    def take(self) -> tuple[set[str] | None, bool]:
        self._read_all()
        changed: set[str] | None = self._changed
        structural = self._structural
        if self._lost:
            changed, structural = None, True
            # Folders made while events were dropped have no watch yet.
            try:
                self._add_tree(self._root, root_watch=True)
            except OSError:
                self._broken = True
        self._changed, self._structural, self._lost = set(), False, False
        return changed, structural

    def interrupt(self) -> None:
        with self._close_lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"!")

    def set_runs(self, paths: Iterable[str]) -> None:
        runs = {os.path.abspath(p) for p in paths}
        if runs == self._runs:
            return
        self._runs = runs
        self._muted &= runs
        file_runs: dict[str, set[str]] = {}
        for run in runs:
            if run not in self._path_wd and not os.path.isdir(run):
                file_runs.setdefault(os.path.dirname(run), set()).add(run)
        self._file_runs = file_runs
        self._owners.clear()
        self._folders_of.clear()
        for folder in list(self._path_wd):
            self._own(folder)
            self._apply(folder)

    def mute(self, path: str) -> None:
        run = os.path.abspath(path)
        if run in self._runs and run not in self._muted:
            self._muted.add(run)
            for folder in list(self._folders_of.get(run, ())):
                self._apply(folder)

    def unmute(self, path: str) -> None:
        run = os.path.abspath(path)
        if run in self._muted:
            self._muted.discard(run)
            for folder in list(self._folders_of.get(run, ())):
                self._apply(folder)

    def stop(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._fd, self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -------------------------------------------------------------- masks
    def _own(self, folder: str) -> None:
        """Index the runs a write in ``folder`` concerns: runs at or above it, and runs that
        are files in it."""
        owners = set(self._file_runs.get(folder, ()))
        path = folder
        while True:
            if path in self._runs:
                owners.add(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        self._owners[folder] = owners
        for run in owners:
            self._folders_of.setdefault(run, set()).add(folder)

    def _disown(self, folder: str) -> None:
        for run in self._owners.pop(folder, ()):
            self._folders_of.get(run, set()).discard(folder)

    def _wanted(self, folder: str) -> int:
        if not self._runs:
            return _STRUCTURE | _CONTENT  # no run known yet: hear everything
        owners = self._owners.get(folder)
        if owners is None:
            self._own(folder)
            owners = self._owners[folder]
        if any(run not in self._muted for run in owners):
            return _STRUCTURE | _CONTENT
        return _STRUCTURE

    def _apply(self, folder: str) -> None:
        mask = self._wanted(folder)
        if self._mask.get(folder) != mask:
            self._watch(folder, mask, root_watch=folder == self._root)

    # -------------------------------------------------------------- watches
    def _watch(self, folder: str, mask: int, *, root_watch: bool = False) -> bool:
        """Watch (or re-mask) one folder; False when it is gone."""
        flags = mask if root_watch else mask | _IN_DONT_FOLLOW
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), flags)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP):
                return False  # gone, replaced or unreadable: the rescan will tell
            # ENOSPC (max_user_watches) or worse: some folders would go unheard.
            raise OSError(err, f"inotify_add_watch '{folder}': {os.strerror(err)}")
        old = self._path_wd.get(folder)
        if old is not None and old != wd and self._wd_path.pop(old, None) is not None:
            # Another folder is now at this path; the old one moved away.
            self._libc.inotify_rm_watch(self._fd, old)
        self._wd_path[wd] = folder
        self._path_wd[folder] = wd
        self._mask[folder] = mask
        return True

    def _add_tree(self, top: str, *, root_watch: bool = False) -> None:
        if not self._watch(top, self._wanted(top), root_watch=root_watch):
            return
        if not self._recursive:
            return
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    subs = [
                        e.path
                        for e in entries
                        if not _skipped(e.name) and e.is_dir(follow_symlinks=False)
                    ]
            except OSError:
                continue
            for sub in subs:
                if sub not in self._path_wd and self._watch(sub, self._wanted(sub)):
                    stack.append(sub)

    def _forget_tree(self, top: str) -> None:
        prefix = top.rstrip(os.sep) + os.sep
        for folder in [f for f in self._path_wd if f == top or f.startswith(prefix)]:
            wd = self._path_wd.pop(folder)
            self._mask.pop(folder, None)
            self._disown(folder)
            if self._wd_path.get(wd) == folder:
                del self._wd_path[wd]
                # A moved folder keeps its watch: drop it (a deleted one is already gone).
                self._libc.inotify_rm_watch(self._fd, wd)

    # -------------------------------------------------------------- events
    def _read_all(self) -> None:
        if self._closed:
            return
        for _ in range(_MAX_READS):
            try:
                buf = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                self._broken = True
                return
            if not buf:
                return
            try:
                self._parse(buf)
            except OSError:
                self._broken = True
                return

    def _parse(self, buf: bytes) -> None:
        unpack = _EVENT.unpack_from
        size = _EVENT.size
        wd_path = self._wd_path
        changed = self._changed
        seen: set[tuple[int, bytes]] = set()  # a busy file sends the same event many times
        offset, end = 0, len(buf)
        while offset < end:
            wd, mask, _cookie, length = unpack(buf, offset)
            raw = buf[offset + size : offset + size + length]
            offset += size + length
            if (wd, raw) in seen and not mask & (_CHANGED_ENTRY | _LOST | _IN_IGNORED):
                continue
            seen.add((wd, raw))
            if mask & _LOST:
                self._lost = True
                continue
            folder = wd_path.get(wd)
            if folder is None:
                continue  # a watch already dropped
            if mask & _IN_IGNORED:
                # The folder is gone (or unmounted): forget its watch.
                del wd_path[wd]
                if self._path_wd.get(folder) == wd:
                    del self._path_wd[folder]
                    self._mask.pop(folder, None)
                    self._disown(folder)
                self._structural = True
                changed.add(folder)
            if mask & (_IN_DELETE_SELF | _IN_MOVE_SELF):
                self._structural = True
                changed.add(folder)
            if mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF):
                if folder == self._root:
                    # Whatever is at the root's path now is not what is watched: the watcher
                    # starts afresh (or polls, or waits for the path to come back).
                    self._broken = True
                continue
            name = raw.split(b"\0", 1)[0]
            path = os.path.join(folder, os.fsdecode(name)) if name else folder
            changed.add(path)
            if not mask & _CHANGED_ENTRY:
                continue
            self._structural = True
            if mask & _IN_ISDIR and self._recursive:
                if mask & (_IN_CREATE | _IN_MOVED_TO):
                    if not _skipped(os.fsdecode(name)):
                        self._add_tree(path)
                else:
                    self._forget_tree(path)


# ---------------------------------------------------------------------------------- watchdog
class WatchdogNotifier:
    """Notifications through ``watchdog``'s observer thread (where inotify is not available)."""

    def __init__(self, root: Path) -> None:
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._structural = False
        notifier = self
        structural_types = (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileMovedEvent,
        )

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                with notifier._lock:
                    notifier._changed.add(os.fsdecode(event.src_path))
                    if isinstance(event, structural_types):
                        notifier._structural = True
                        dest = getattr(event, "dest_path", "")
                        if dest:
                            notifier._changed.add(os.fsdecode(dest))
                notifier._wake.set()

        # watchdog logs a warning when stopped while events are queued; a shutdown is not news.
        logging.getLogger("watchdog").setLevel(logging.ERROR)
        self._observer = Observer()
        target = root if root.is_dir() else root.parent
        self._observer.schedule(
            _Handler(),
            os.path.abspath(target),
            recursive=root.is_dir(),
            event_filter=[
                FileCreatedEvent,
                FileModifiedEvent,
                FileDeletedEvent,
                FileMovedEvent,
                FileClosedEvent,
                DirCreatedEvent,
                DirDeletedEvent,
                DirMovedEvent,
            ],
        )
        self._observer.daemon = True
        self._observer.start()

    @property
    def alive(self) -> bool:
        return self._observer.is_alive()

    def wait(self, timeout: float) -> bool:
        return self._wake.wait(timeout)

    def take(self) -> tuple[set[str] | None, bool]:
        # Cleared before taking the changes: a write after this point wakes us again.
        self._wake.clear()
        with self._lock:
            changed, structural = self._changed, self._structural
            self._changed, self._structural = set(), False
        return changed, structural

    def interrupt(self) -> None:
        self._wake.set()

    def set_runs(self, paths: Iterable[str]) -> None:
        pass  # watchdog's events cannot be narrowed per folder after scheduling

    def mute(self, path: str) -> None:
        pass

    def unmute(self, path: str) -> None:
        pass

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=2)
