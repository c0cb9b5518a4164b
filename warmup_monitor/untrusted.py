"""Reading files the user owns as untrusted input: regular files only, bounded parsing.

Every log and config file is opened through :func:`open_regular`, so a FIFO, a socket or a
device where a file is expected fails at once instead of blocking forever or reading without
end. JSON and YAML go through :func:`load_json` / :func:`load_yaml`, which turn deep nesting and
YAML alias bombs into a ``ValueError`` before they cost a ``RecursionError`` or minutes of work.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path
from typing import IO, Any

import yaml

__all__ = [
    "BOM",
    "MAX_DEPTH",
    "NotRegularFileError",
    "is_regular",
    "load_json",
    "load_yaml",
    "open_regular",
    "read_regular",
    "read_text",
    "to_float",
]

BOM = b"\xef\xbb\xbf"
# Real configs nest a few levels and share a few anchors; anything far beyond is not a config.
MAX_DEPTH = 64
MAX_YAML_NODES = 200_000  # nodes after expanding aliases


class NotRegularFileError(OSError):
    """A FIFO, socket, device or folder where a regular file is expected."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a folder"
            if stat.S_ISDIR(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file"
        )
        super().__init__(errno.EINVAL, f"is {kind}, not a regular file", str(path))


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a regular file for binary reading; :class:`NotRegularFileError` for anything else.

    ``O_NONBLOCK`` makes opening a FIFO return at once (without it ``open`` waits for a writer);
    the type is then checked on the open descriptor, so a file swapped in between is caught too.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of a regular file (at most ``limit``); ``OSError`` when it cannot be read."""
    with open_regular(path) as fh:
        return fh.read() if limit is None else fh.read(limit)


def read_text(path: str | os.PathLike[str], limit: int | None = None) -> str:
    """A regular file as text: UTF-8 with an optional byte-order mark, bad bytes replaced."""
    return read_regular(path, limit).decode("utf-8-sig", errors="replace")


def load_json(text: str | bytes) -> Any:
    """``json.loads`` that raises ``ValueError`` (never ``RecursionError``) on deep nesting."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", errors="replace")
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` bounded in nesting depth and in size after alias expansion.

    The event stream is scanned first (cheap, no objects built): a YAML alias bomb (a few KB
    whose aliases expand to billions of nodes) or thousands of nested levels raise
    ``ValueError`` naming the limit, before anything is built or walked.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    sizes: dict[str, int] = {}  # anchor -> expanded node count
    stack: list[list[Any]] = [[None, 0]]  # [anchor, expanded size] of each open collection
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_DEPTH + 1:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(event, yaml.AliasEvent):
            size = sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        else:
            continue
        stack[-1][1] += size
        if stack[-1][1] > MAX_YAML_NODES:
            raise ValueError(f"expands to more than {MAX_YAML_NODES} values (YAML aliases)")
    try:
        return yaml.load(text, Loader=loader)  # a safe loader
    except RecursionError:
        raise ValueError("nested too deeply") from None


def to_float(value: Any) -> float | None:
    """A JSON/YAML number as a float (NaN/±Inf kept), or None for anything else.

    An integer too large for a float (over ~308 digits) becomes ±inf, as a float literal of that
    size does in ``json.loads``, instead of raising ``OverflowError``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def is_regular(path: Path) -> bool:
    """True for a regular file (not following into FIFOs, devices or folders)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
