"""Where watch events go: human lines, JSON lines, a command per alert, a webhook.

The command runner and the webhook poster each work in a background thread behind a bounded
queue, so a slow command or an unreachable server never holds up the watch loop; when a queue
is full the alert is dropped for that output (and counted) rather than waiting.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import queue
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import IO, Any

from detectors._types import Severity

from .errors import ConfigError
from .safe_text import for_terminal
from .watch.events import WatchEvent, fmt_value

__all__ = [
    "ENV_PREFIX",
    "AlertCommand",
    "Outputs",
    "Webhook",
    "event_env",
    "format_human",
    "format_json",
    "webhook_text",
]

#: Prefix of the environment variables an ``--on-alert`` command receives.
ENV_PREFIX = "WARMUP_MONITOR_"

_LABELS = {"finding": "", "verdict": "VERDICT", "run_added": "RUN", "run_removed": "GONE"}


# ---------------------------------------------------------------------------------- formatting
def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _lag(event: WatchEvent) -> str:
    lag = event.lag
    if lag is None:
        return ""
    return f" [logged {lag:.1f} s ago]"


def _advice_text(event: WatchEvent) -> str:
    if not event.advice:
        return ""
    return " Advice: " + _sentence(str(event.advice[0].get("text", "")))


def _where(event: WatchEvent) -> str:
    parts = []
    if event.step is not None:
        parts.append(f"step {event.step}")
    if event.metric == "learning_rate":
        pass  # the LR part below says it
    elif event.metric:
        parts.append(f"{event.metric} {fmt_value(event.value)}")
    elif event.value is not None:
        parts.append(f"value {fmt_value(event.value)}")
    if event.lr is not None:
        parts.append(f"LR {event.lr:.3g} in {event.lr_phase or 'unknown'} phase")
    elif event.lr_phase and event.lr_phase != "unknown":
        parts.append(f"{event.lr_phase} phase")
    return ", ".join(parts)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def format_human(event: WatchEvent) -> str:
    """One line for a terminal: time, level, run, what happened, where (step, value, LR and
    its phase), the advice and how long ago the point was logged. Control characters from run
    names, tags or messages are shown as escapes (``\\x1b``, ``\\n``): one event, one line."""
    return for_terminal(_human(event))


def _human(event: WatchEvent) -> str:
    stamp = _clock(event.time)
    run = f"[{event.run}] " if event.run else ""
    if event.event in ("finding", "verdict"):
        if event.event == "finding":
            level = (event.severity.value if event.severity else "info").upper()
            head = f"{event.detector}: {_sentence(event.message)}"
        else:
            level = "VERDICT"
            confidence = "" if event.confidence is None else f" ({event.confidence:.0%} confident)"
            summary = event.message
            if event.verdict and summary.startswith(f"{event.verdict}:"):
                summary = summary[len(event.verdict) + 1 :]
            head = f"{event.verdict}{confidence}: {_sentence(summary)}"
        where = _where(event)
        where = f" At {where}." if where else ""
        return f"{stamp} {level:<8} {run}{head}{where}{_advice_text(event)}{_lag(event)}".rstrip()
    if event.event == "summary":
        return f"{stamp} SUMMARY  {event.message}"
    if event.event == "notice":
        warn = event.severity is not None and event.severity >= Severity.WARNING
        level = "WARNING" if warn else "NOTE"
        return f"{stamp} {level:<8} {run}{event.message}"
    return f"{stamp} {_LABELS.get(event.event, event.event.upper()):<8} {event.message}"


def format_json(event: WatchEvent) -> str:
    """One JSON object (see :meth:`WatchEvent.to_dict`); NaN is ``null``."""
    return json.dumps(event.to_dict(), allow_nan=False, ensure_ascii=False, default=str)


def event_env(event: WatchEvent) -> dict[str, str]:
    """The ``WARMUP_MONITOR_*`` variables describing an alert to an ``--on-alert`` command."""
    kind = event.detector or event.event  # "verdict" for verdict events
    value = "" if event.value is None else repr(float(event.value))
    return {
        f"{ENV_PREFIX}EVENT": event.event,
        f"{ENV_PREFIX}RUN": event.run,
        f"{ENV_PREFIX}SEVERITY": event.severity.value if event.severity else "",
        f"{ENV_PREFIX}KIND": kind,
        f"{ENV_PREFIX}METRIC": event.metric or "",
        f"{ENV_PREFIX}STEP": "" if event.step is None else str(event.step),
        f"{ENV_PREFIX}VALUE": value,
        f"{ENV_PREFIX}MESSAGE": event.message,
        f"{ENV_PREFIX}VERDICT": event.verdict or "",
        f"{ENV_PREFIX}JSON": format_json(event),
    }


def webhook_text(event: WatchEvent) -> str:
    """The Slack-style ``text`` of an alert: one sentence or three, no markup."""
    level = (event.severity.value if event.severity else "info").upper()
    if event.event == "verdict":
        head = f"warmup-monitor {level}: run '{event.run}' verdict {event.verdict}"
    else:
        head = f"warmup-monitor {level}: run '{event.run}' {event.detector}"
    where = _where(event)
    where = f" At {where}." if where else ""
    return f"{head}: {_sentence(event.message)}{where}{_advice_text(event)}"


# ---------------------------------------------------------------------------------- workers
class _Worker:
    """A daemon thread draining a bounded queue; ``submit`` never blocks."""

    def __init__(self, name: str, report: Callable[[str], None], maxsize: int = 100) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._report = report
        self._reported: set[str] = set()
        self._closing = threading.Event()
        self.dropped = 0
        self.done = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Queue ``item``; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self._once(f"{self._thread.name}: queue full, alert dropped (slow consumer)")
            return False
        return True

    def _once(self, message: str) -> None:
        # Repeating the same failure for every alert would drown the alerts themselves.
        if message not in self._reported:
            self._reported.add(message)
            self._report(message)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if self._handle(item):
                    self.done += 1
                else:
                    self.failed += 1
            except Exception as err:  # a bad alert must not kill the worker
                self.failed += 1
                self._once(f"{self._thread.name}: {type(err).__name__}: {err}")

    def _handle(self, item: Any) -> bool:
        raise NotImplementedError

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (waiting at most ``timeout`` seconds), then stop."""
        self._closing.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.05)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    return
        self._thread.join(max(0.0, deadline - time.monotonic()))


class AlertCommand(_Worker):
    """Runs ``command`` once per alert, without a shell, with the alert in ``WARMUP_MONITOR_*``
    environment variables.

    ``command`` is split with :func:`shlex.split` here, once; log content only ever reaches
    the child through its environment, never its command line. The child's output goes to
    ``output`` (our stderr by default, so it never mixes with ``--format jsonl`` on stdout).
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        report: Callable[[str], None],
        timeout: float = 60.0,
        output: IO[Any] | None = None,
    ) -> None:
        try:
            argv = shlex.split(command) if isinstance(command, str) else list(command)
        except ValueError as err:  # unbalanced quotes
            raise ConfigError(
                f"--on-alert command cannot be split into words ({err})", "Check its quotes"
            ) from None
        if not argv:
            raise ConfigError(
                "--on-alert is empty", "Pass a command, e.g. --on-alert 'notify-send warmup'"
            )
        if shutil.which(argv[0]) is None:
            raise ConfigError(
                f"--on-alert command '{argv[0]}' not found or not executable",
                "Give the full path of an executable",
            )
        self.argv = argv
        self.timeout = timeout
        self._output = _fileno_or_devnull(output if output is not None else sys.stderr)
        super().__init__("on-alert", report, maxsize=100)

    def _handle(self, item: Any) -> bool:
        env = dict(os.environ)
        env.update(item)
        try:
            proc = subprocess.run(
                self.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=self._output,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self._once(f"on-alert: '{self.argv[0]}' ran longer than {self.timeout:g} s; killed")
            return False
        except OSError as err:
            self._once(f"on-alert: cannot run '{self.argv[0]}': {err.strerror or err}")
            return False
        if proc.returncode != 0:
            self._once(f"on-alert: '{self.argv[0]}' exited with status {proc.returncode}")
            return False
        return True

    def send(self, event: WatchEvent) -> bool:
        return self.submit(event_env(event))


class Webhook(_Worker):
    """POSTs ``{"text": …}`` (Slack incoming-webhook format, also read by Mattermost, Discord's
    ``/slack`` endpoint, Rocket.Chat …), retrying network errors, HTTP 429 and 5xx with
    exponential backoff.

    A slow server never stalls delivery: each POST has a total deadline of ``timeout`` seconds
    (not only per socket read: a server answering a byte at a time is cut off), and the alerts
    that queued up meanwhile go out together in the next POST, one line each (up to
    ``max_batch``). A POST whose answer does not come in time is not retried (the server has
    the text; a retry could repeat it) and is reported. :meth:`close` sends what is still queued
    within its timeout and reports how many alerts were not delivered or not confirmed.
    """

    #: Most alerts in one POST, and most characters (Slack cuts a message at 40,000).
    max_batch = 50
    max_chars = 30_000

    def __init__(
        self,
        url: str,
        *,
        report: Callable[[str], None],
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or not parsed.hostname:
            raise ConfigError(
                f"--webhook '{url}' is not an http(s) URL",
                "Pass the full URL, e.g. https://hooks.slack.com/services/…",
            )
        self.url = url
        self._parsed = parsed
        # Webhook URLs carry secrets in their path: messages name the host only.
        self.host = parsed.netloc.rsplit("@", 1)[-1]
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.unconfirmed = 0  # alerts sent whose answer did not come in time
        self._close_by = math.inf  # time.monotonic() by which close() must be done
        self._conn: http.client.HTTPConnection | None = None
        self._in_flight = 0
        self._lock = threading.Lock()
        super().__init__("webhook", report, maxsize=100)

    def send(self, event: WatchEvent) -> bool:
        return self.submit(webhook_text(event))

    # -------------------------------------------------------------- delivery
    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch, stop = self._gather(item)
            try:
                self._deliver(batch)
            except Exception as err:  # a bad alert must not kill the worker
                self.failed += len(batch)
                self._once(f"webhook: {type(err).__name__}: {err}")
            if stop:
                return

    def _gather(self, first: str) -> tuple[list[str], bool]:
        """``first`` and whatever else is queued (within the batch limits); True at the end."""
        batch, size = [first], len(first)
        while len(batch) < self.max_batch and size < self.max_chars:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            size += len(item) + 1
        return batch, False

    def _deliver(self, batch: list[str]) -> None:
        body = json.dumps({"text": "\n".join(batch)}).encode()
        problem = ""
        for attempt in range(self.retries + 1):
            deadline = min(time.monotonic() + self.timeout, self._close_by)
            with self._lock:
                self._in_flight = len(batch)
            status, problem, answered = self._post(body, deadline)
            with self._lock:
                self._in_flight = 0
            if status is not None and 200 <= status < 300:
                self.done += len(batch)
                return
            if not answered:
                # Sent, but no answer in time: a retry could post the alerts twice.
                self.unconfirmed += len(batch)
                self._once(
                    f"webhook: {self.host} did not answer within {self.timeout:g} s; alerts "
                    "that queue up meanwhile are sent together"
                )
                return
            if status is not None and status != 429 and status < 500:
                break  # the request itself is wrong: retrying will not help
            if attempt < self.retries and not self._closing.is_set():
                self._closing.wait(self.backoff * (2**attempt))
        self.failed += len(batch)
        self._once(f"webhook: POST to {self.host} failed after retries: {problem}")

    def _post(self, body: bytes, deadline: float) -> tuple[int | None, str, bool]:
        """One POST, given up at ``deadline`` (``time.monotonic()``) whatever the server does:
        ``(status, problem, answered)``; ``answered`` is False when the request went out (or
        may have) but no answer came in time."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "no time left", False
        conn = _connection(self._parsed, remaining)
        with self._lock:
            self._conn = conn
        # The socket timeout bounds each read; the timer bounds the whole exchange.
        timer = threading.Timer(remaining, _abort, args=(conn,))
        timer.daemon = True
        timer.start()
        sent = False
        try:
            conn.request("POST", _target(self._parsed, conn), body=body, headers=_HEADERS)
            sent = True
            response = conn.getresponse()
            response.read()
            return response.status, f"HTTP {response.status}", True
        except (OSError, http.client.HTTPException) as err:
            if time.monotonic() >= deadline - 0.05 or (sent and self._closing.is_set()):
                return None, f"no answer within {self.timeout:g} s", False
            return None, str(getattr(err, "strerror", None) or err or type(err).__name__), True
        finally:
            timer.cancel()
            with self._lock:
                self._conn = None
            conn.close()

    # -------------------------------------------------------------- closing
    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued within ``timeout`` seconds, then stop; report what was not
        delivered or not confirmed."""
        self._close_by = time.monotonic() + timeout
        self._closing.set()
        with self._lock:
            busy = self._conn is not None
        if busy and not self._queue.empty():
            # A slow answer must not keep the queued alerts from going out before we exit.
            self._abort_in_flight()
        super().close(timeout)
        if self._thread.is_alive():
            self._abort_in_flight()
            self._thread.join(0.5)
        with self._lock:
            stuck = self._in_flight
        left = self._queue.qsize() + stuck
        lost = self.failed + self.dropped + left
        if self.unconfirmed:
            self._report(
                f"webhook: {self.unconfirmed} alert{'s' * (self.unconfirmed != 1)} not confirmed "
                f"by {self.host} (sent, no answer in time)"
            )
        if lost:
            self._report(
                f"webhook: {lost} alert{'s' * (lost != 1)} not delivered to {self.host} "
                f"({self.failed} failed, {self.dropped} dropped with the queue full, {left} "
                "still queued at exit)"
            )

    def _abort_in_flight(self) -> None:
        with self._lock:
            conn = self._conn
        if conn is not None:
            _abort(conn)


_HEADERS = {"Content-Type": "application/json", "User-Agent": "warmup-monitor"}


def _connection(parsed: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    """A connection to the webhook's host, through the proxy the environment names (as urllib
    would use) when there is one."""
    https = parsed.scheme == "https"
    port = parsed.port or (443 if https else 80)
    host = parsed.hostname or ""
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if https:
            conn = http.client.HTTPSConnection(p.hostname or "", p.port or 80, timeout=timeout)
            conn.set_tunnel(host, port)
            return conn
        return http.client.HTTPConnection(p.hostname or "", p.port or 80, timeout=timeout)
    cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
    return cls(host, port, timeout=timeout)


def _target(parsed: urllib.parse.SplitResult, conn: http.client.HTTPConnection) -> str:
    path = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
    if parsed.scheme == "http" and conn.host != parsed.hostname:  # through a plain proxy
        return urllib.parse.urlunsplit(parsed._replace(fragment=""))
    return path


def _abort(conn: http.client.HTTPConnection) -> None:
    """Make a blocked send or read on ``conn`` return now (from another thread)."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _fileno_or_devnull(stream: IO[Any]) -> Any:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL
    return stream


# ---------------------------------------------------------------------------------- outputs
class Outputs:
    """Writes every event to ``stream`` (``"human"`` or ``"jsonl"``) and hands alerts to the
    command runner and the webhook. ``exit_reached`` turns True once an alert at or above
    ``exit_on`` has been emitted."""

    def __init__(
        self,
        stream: IO[str],
        *,
        fmt: str = "human",
        command: AlertCommand | None = None,
        webhook: Webhook | None = None,
        exit_on: Severity | None = None,
    ) -> None:
        if fmt not in ("human", "jsonl"):
            raise ConfigError(f"unknown output format '{fmt}'", "Use human or jsonl")
        self.stream = stream
        self.fmt = fmt
        self.command = command
        self.webhook = webhook
        self.exit_on = exit_on
        self.exit_reached = False
        self.alerts = 0

    def emit(self, event: WatchEvent) -> None:
        line = format_json(event) if self.fmt == "jsonl" else format_human(event)
        self.stream.write(line + "\n")
        # Flushed per event: a reader at the other end of a pipe sees the alert now.
        self.stream.flush()
        if not event.is_alert:
            return
        self.alerts += 1
        if self.command is not None:
            self.command.send(event)
        if self.webhook is not None:
            self.webhook.send(event)
        if (
            self.exit_on is not None
            and event.severity is not None
            and event.severity >= self.exit_on
        ):
            self.exit_reached = True

    def close(self, timeout: float = 5.0) -> None:
        """Wait (``timeout`` seconds at most, in all) for queued commands and webhook posts;
        both are closed at once, so a slow command does not eat the webhook's time."""
        closers = [
            threading.Thread(target=worker.close, args=(timeout,), daemon=True)
            for worker in (self.command, self.webhook)
            if worker is not None
        ]
        for closer in closers:
            closer.start()
        deadline = time.monotonic() + timeout + 1.0  # each close is bounded by ``timeout``
        for closer in closers:
            closer.join(max(0.0, deadline - time.monotonic()))
