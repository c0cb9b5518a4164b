"""Finding runs under a path and opening them: the one entry point for any path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .readers import Format, available_formats
from .run import Run
from .sources import Source

__all__ = ["RunRef", "find_runs", "open_source", "read_run", "read_runs"]


@dataclass(frozen=True)
class RunRef:
    """A run found on disk: its name relative to the searched path, its location and format.

    ``also`` names other formats found describing the same run (not read: ``format`` was
    preferred as the richer source).
    """

    name: str
    path: Path
    format: str
    also: tuple[str, ...] = ()


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"path '{path}' does not exist", "Check the path and try again")
    if not os.access(path, os.R_OK):
        raise InputError(f"path '{path}' is not readable", "Check its permissions")


def _claiming(path: Path, formats: list[Format]) -> list[Format]:
    out = []
    for fmt in formats:
        try:
            if fmt.claims(path):
                out.append(fmt)
        except OSError:
            continue
    return out


def _looked_for(formats: list[Format]) -> str:
    return "; ".join(f.description for f in formats)


def find_runs(path: str | os.PathLike[str]) -> list[RunRef]:
    """Every run under ``path`` (itself included), sorted by relative name.

    Raises :class:`InputError` when the path is missing, unreadable or holds no run.
    """
    root = Path(path)
    _check_path(root)
    formats = available_formats()
    refs: list[RunRef] = []
    if root.is_file():
        claimed = _claiming(root, formats)
        if claimed:
            refs.append(RunRef(root.name, root, claimed[0].name, tuple(f.name for f in claimed[1:])))
    else:
        for dirpath, dirnames, _ in os.walk(root, onerror=None):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            here = Path(dirpath)
            claimed = _claiming(here, formats)
            if claimed:
                rel = here.relative_to(root).as_posix()
                refs.append(
                    RunRef(
                        rel if rel != "." else root.resolve().name,
                        here,
                        claimed[0].name,
                        tuple(f.name for f in claimed[1:]),
                    )
                )
    if not refs:
        if root.is_dir() and not any(root.iterdir()):
            raise InputError(f"'{root}' is an empty directory", "Point at a folder holding training logs")
        raise InputError(
            f"no training logs found in '{root}' (looked for: {_looked_for(formats)})",
            "Point at a run folder, a log file or a folder of runs",
        )
    return refs


def _format_named(name: str) -> Format:
    for fmt in available_formats():
        if fmt.name == name:
            return fmt
    raise InputError(f"unknown format '{name}'", "Use one of: " + ", ".join(f.name for f in available_formats()))


def _single(path: Path) -> RunRef:
    refs = find_runs(path)
    exact = [r for r in refs if r.path == path]
    if exact:
        return exact[0]
    if len(refs) == 1:
        return refs[0]
    names = ", ".join(r.name for r in refs[:10]) + (" …" if len(refs) > 10 else "")
    raise InputError(
        f"'{path}' holds {len(refs)} runs ({names})",
        "Pass one run folder, or use find_runs()/the report command for all of them",
    )


def open_source(path: str | os.PathLike[str], *, format: str | None = None) -> Source:
    """Open the run at ``path`` for incremental reading (``poll()`` returns what is new)."""
    p = Path(path)
    if format is not None:
        _check_path(p)
        return _format_named(format).open_source(p)
    ref = _single(p)
    return _format_named(ref.format).open_source(ref.path)


def read_run(
    path: str | os.PathLike[str] | RunRef,
    *,
    metrics: Mapping[str, str] | None = None,
    format: str | None = None,
    name: str | None = None,
) -> Run:
    """Read a whole run into a :class:`Run`.

    ``metrics`` overrides the canonical-name mapping (``{"loss": "my/loss"}``).
    """
    if isinstance(path, RunRef):
        ref = path
    else:
        p = Path(path)
        if format is not None:
            _check_path(p)
            ref = RunRef(p.name, p, format)
        else:
            ref = _single(p)
    source = _format_named(ref.format).open_source(ref.path)
    try:
        points = source.poll()
    finally:
        source.close()
    notes = []
    if ref.also:
        notes.append(f"also found {', '.join(ref.also)}; read {ref.format} as the richer source")
    return Run.from_points(
        points,
        name=name or source.display_name or ref.name,
        path=ref.path,
        source=ref.format,
        metrics=metrics,
        config=source.config,
        status=source.status,
        warnings=source.warnings,
        notes=notes,
    )


def read_runs(
    path: str | os.PathLike[str], *, metrics: Mapping[str, str] | None = None
) -> list[Run]:
    """Read every run under ``path``."""
    return [read_run(ref, metrics=metrics) for ref in find_runs(path)]
