"""Errors the library raises for bad input. Each renders as one line: the problem, then the fix."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FormatError",
    "InputError",
    "MetricNotFoundError",
    "WarmupMonitorError",
    "one_line",
    "printable",
]


class WarmupMonitorError(Exception):
    """Base class: ``str(err)`` is one line naming the problem and, when known, the fix."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}. {fix}")


class InputError(WarmupMonitorError):
    """A path is missing, empty, unreadable or holds no logs this tool knows."""


class FormatError(WarmupMonitorError):
    """A file is of a known kind but cannot be decoded (corrupted, compressed, unknown version)."""


class MetricNotFoundError(WarmupMonitorError):
    """A canonical metric or a user-given tag is not in the run."""


class ConfigError(WarmupMonitorError):
    """A configuration file or option is invalid."""


def one_line(err: BaseException) -> str:
    """Any exception as one line; a missing or unreadable file says what to check."""
    if isinstance(err, PermissionError):
        return f"permission denied: '{err.filename}'. Check its permissions"
    if isinstance(err, FileNotFoundError):
        return f"'{err.filename}' does not exist. Check the path"
    text = " ".join(str(err).split())
    return text or type(err).__name__


def printable(text: str) -> str:
    """``text`` with the lone surrogates of undecodable file names shown as ``\\udcff`` escapes.

    A folder name that is not valid UTF-8 reaches Python as lone surrogates, which no UTF-8
    stream or file accepts; the escape is readable, and valid inside a JSON string.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
