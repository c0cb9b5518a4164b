"""``warmup-monitor watch``: alerts while a run trains.

* :mod:`.engine` — :class:`AlertEngine` decides what to alert from points as they arrive
  (immediate NaN alerts, throttled diagnosis, new findings, verdict changes); no file I/O, so
  an in-process training callback can feed it directly;
* :mod:`.memory` — :class:`AlertMemory`, what was already said about a run;
* :mod:`.buffer` — :class:`PointBuffer`, the points read so far, bounded per tag;
* :mod:`.follow` — :class:`Watcher`, following run folders on disk: discovery, notifications,
  polling, one engine per run;
* :mod:`.notify` — file-system notifications: inotify read directly on Linux, ``watchdog``
  elsewhere;
* :mod:`.events` — :class:`WatchEvent` and the summary counters.

Where the events go (terminal, JSON lines, commands, webhooks) is :mod:`warmup_monitor.alerts`.
"""

from __future__ import annotations

from .buffer import PointBuffer
from .engine import AlertEngine
from .events import EVENT_TYPES, NON_FINITE_KIND, WatchEvent, WatchStats
from .follow import Watcher
from .memory import AlertMemory

__all__ = [
    "EVENT_TYPES",
    "NON_FINITE_KIND",
    "AlertEngine",
    "AlertMemory",
    "PointBuffer",
    "WatchEvent",
    "WatchStats",
    "Watcher",
]
