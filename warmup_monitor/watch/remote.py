"""Following runs in object storage: ``watch s3://bucket/prefix/`` (any fsspec URL).

:class:`RemoteWatcher` is a polling :class:`Watcher` over the private mirror that a
:class:`~warmup_monitor.remote.RemoteTree` keeps of the URL: every ``interval`` one recursive
listing finds new and grown objects, only their new bytes are fetched (concurrently), and the
usual readers read what was appended. A NaN uploaded with an object update is therefore alerted
within one interval plus one sync. A failed listing or read during the watch is a warning, said
once, and retried at every interval; it never stops the watch.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from detectors._types import Severity

from ..errors import InputError
from ..remote import RemoteTree
from .events import WatchEvent
from .follow import RunSnapshot, Watcher

__all__ = ["RemoteWatcher"]

WARNING = Severity.WARNING


class RemoteWatcher(Watcher):
    """A :class:`Watcher` of the runs under an fsspec ``url`` (polling every ``interval``).

    Events and metrics name the runs' URLs, never the mirror. Other arguments are
    :class:`Watcher`'s (``notify`` is ignored: object stores send no notifications).
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        kwargs["notify"] = False
        self.url = url.rstrip("/")
        self.tree = RemoteTree(url)
        super().__init__(self.tree.local_root, **kwargs)
        self._next_sync = 0.0
        self._sync_failed: str | None = None
        self._failures_seen = 0
        self._synced = False

    # -------------------------------------------------------------- public
    def check(self) -> None:
        """The first sync: a missing bucket, credentials or endpoint raise :class:`InputError`
        (unless waiting for the prefix to appear)."""
        if self._synced:
            return
        try:
            self._sync()
        except InputError:
            if not self.wait_for_path:
                raise

    def once(self) -> list[WatchEvent]:
        self._sync()
        return [self._shown(e) for e in super().once()]

    def step(self) -> list[WatchEvent]:
        now = time.time()
        events: list[WatchEvent] = []
        if now >= self._next_sync:
            self._next_sync = now + self.interval
            events.extend(self._try_sync(now))
        events.extend(self._shown(e) for e in super().step())
        return events

    def snapshot(self) -> list[RunSnapshot]:
        return [
            dataclasses.replace(s, path=str(self.tree.url_of(s.path))) for s in super().snapshot()
        ]

    def close(self) -> None:
        super().close()
        self.tree.close()

    # -------------------------------------------------------------- syncing
    def _sync(self) -> list[WatchEvent]:
        before = set(self.tree._entries)
        self.tree.sync()
        if not self._synced:
            self._synced = True
            self.path = self.tree.local_path
        if set(self.tree._entries) != before:
            self._need_rescan = True
        events = []
        failures = self.tree.stats.failures
        for text in failures[self._failures_seen :]:
            self.health.poll_errors += 1
            events.append(
                WatchEvent(
                    "notice",
                    "",
                    time.time(),
                    message=f"{text}; retrying",
                    severity=Severity.WARNING,
                )
            )
        self._failures_seen = len(failures)
        return events

    def _try_sync(self, now: float) -> list[WatchEvent]:
        try:
            events = self._sync()
        except Exception as err:  # a transient storage error must never stop the watch
            self.health.poll_errors += 1
            kind = type(err).__name__
            if kind == self._sync_failed:
                return []
            self._sync_failed = kind
            text = str(err) if isinstance(err, InputError) else f"{kind}: {err}"
            return [
                WatchEvent(
                    "notice",
                    "",
                    now,
                    message=f"cannot sync '{self.url}' ({text}); retrying every "
                    f"{self.interval:g} s",
                    severity=WARNING,
                    path=self.url,
                )
            ]
        if self._sync_failed is not None:
            self._sync_failed = None
            events.append(
                WatchEvent("notice", "", now, message=f"reading '{self.url}' again", path=self.url)
            )
        return events

    def _shown(self, event: WatchEvent) -> WatchEvent:
        """The event with the mirror's paths replaced by URLs."""
        root = str(self.tree.local_root)
        changes: dict[str, Any] = {}
        if event.path is not None and event.path.startswith(root):
            changes["path"] = str(self.tree.url_of(event.path))
        if root in event.message:
            changes["message"] = event.message.replace(root, self.url)
        return dataclasses.replace(event, **changes) if changes else event
