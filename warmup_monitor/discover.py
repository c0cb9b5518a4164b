"""Finding runs under a path and opening them: the one entry point for any path.

Every folder under the searched path (hidden ones excepted) is offered to each reader's
``claims()``; a folder or file claimed by a reader is one run in that format. Then:

* **Checkpoint copies are not runs.** The ``checkpoint-<step>/`` folders of an HF output_dir hold
  copies of ``trainer_state.json``; the output_dir is the run, so they are not searched.
* **One training run, one report.** An HF output_dir — a folder holding ``trainer_state.json``
  (directly or in checkpoints) and/or ``trainer_log.jsonl`` — often also holds the same run as
  TensorBoard events (``runs/<name>/``, the Trainer's ``logging_dir``) and as SwanLab folders
  (``swanlog/run-*/``). Runs found below such a folder belong to it when it holds **exactly one**
  TensorBoard run, and any number of SwanLab runs. They are reported once, under the
  output_dir's name. Several TensorBoard runs under one output_dir are separate attempts
  whose match with the trainer state is unknown: they stay separate runs.
* **The richest source is read.** Of the formats describing one run, :func:`find_runs` names
  the first in the order tensorboard > swanlab > trainer_state > trainer_log as ``format`` and
  lists the others in ``RunRef.also``. :func:`read_run` reads each of them (these are small
  files) and keeps the one with the most points of loss, learning rate, grad norm and eval loss
  (of any tag when none has these), where another format must hold more than 10 % more points
  to displace an earlier one: TensorBoard has every logged scalar, the trainer
  state adds eval entries and config, ``trainer_log.jsonl`` has no grad_norm. Two or more
  SwanLab folders under one output_dir are a resumed run (a new folder whose steps restart at
  0), so SwanLab is then not read; the others cover the whole run. ``Run.notes`` says which
  source was read and what else was found.
* **Config is gathered for every format** from the run folder and its parents
  (:func:`warmup_monitor.config.read_config_near`); the source's own config (e.g. the
  trainer state's ``max_steps``) wins over files.

A path holding nothing known raises a one-line :class:`InputError` listing what was looked for.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import read_config_near
from .errors import FormatError, InputError
from .metrics import resolve_metrics
from .points import Points
from .readers import FORMATS, Format, available_formats
from .run import Run
from .sources import Source

__all__ = ["RunRef", "find_runs", "open_source", "read_run", "read_runs", "shortest_names"]

# Formats that mark an HF/LLaMA-Factory output_dir, and those that may describe the same run
# from a subfolder of it.
_OUTPUT_DIR_FORMATS = ("trainer_state", "trainer_log")
_COMPANION_FORMATS = ("tensorboard", "swanlab")
# The registry lists the formats by richness: the earlier one describing a run is preferred.
_PRIORITY = tuple(f.name for f in FORMATS)
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")
# Another format must hold this many times the points of a preferred one to displace it.
_RICHER_BY = 1.1
# The metrics whose points measure how rich a source is.
_SCORED_METRICS = ("loss", "learning_rate", "grad_norm", "eval_loss")
# A file named like this is the run of the folder holding it: name the run after the folder.
_RUN_FILES = ("trainer_state.json", "trainer_log.jsonl", "metrics.csv")


@dataclass(frozen=True)
class RunRef:
    """A run found on disk: its name relative to the searched path, its location and format.

    ``also`` names other formats found describing the same run; ``alternatives`` gives the
    ``(format, path)`` of those that :func:`read_run` may read instead when they are richer.
    ``folder`` is the folder (or file) the run is named after; ``None`` means ``path``.
    """

    name: str
    path: Path
    format: str
    also: tuple[str, ...] = ()
    alternatives: tuple[tuple[str, Path], ...] = ()
    folder: Path | None = None

    @property
    def location(self) -> Path:
        """The folder (or file) that stands for the run: what its name abbreviates."""
        return self.folder if self.folder is not None else self.path


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


def _rank(fmt: str) -> int:
    return _PRIORITY.index(fmt) if fmt in _PRIORITY else len(_PRIORITY)


def _file_run_folder(path: Path) -> Path:
    """The folder a log file's run is named after (the file itself for an event file)."""
    if path.name not in _RUN_FILES:
        return path
    folder = path.resolve().parent
    if _CHECKPOINT.match(folder.name):
        folder = folder.parent
    return folder if folder.name else path


def _file_run_name(path: Path) -> str:
    return _file_run_folder(path).name or path.name


def shortest_names(paths: Sequence[Path]) -> list[str]:
    """The shortest path suffix, as many components for every path, that tells them apart.

    ``a/x/raw``, ``a/y/raw`` become ``x/raw``, ``y/raw``; ``sweep/w0/seed1``, ``sweep/w30/seed1``
    become ``w0/seed1``, ``w30/seed1``. Paths are resolved first, so ``.`` and ``..`` name the
    folders they stand for.
    """
    parts = [Path(os.path.abspath(p)).parts for p in paths]
    longest = max((len(p) for p in parts), default=1)
    for k in range(1, longest + 1):
        names = ["/".join(p[-k:]) for p in parts]
        if len(set(names)) == len(names):
            return [n.lstrip("/") or "/" for n in names]
    return ["/".join(p).lstrip("/") or "/" for p in parts]


def _walk(root: Path, formats: list[Format]) -> list[tuple[Path, list[str]]]:
    """Every claimed folder under ``root`` with the formats claiming it, in walk order."""
    found: list[tuple[Path, list[str]]] = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        claimed = [f.name for f in _claiming(here, formats)]
        keep = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        if "trainer_state" in claimed:
            keep = [d for d in keep if not _CHECKPOINT.match(d)]
        dirnames[:] = keep
        if claimed:
            found.append((here, claimed))
    return found


def _owner(path: Path, output_dirs: set[Path], root: Path) -> Path | None:
    """The nearest output_dir above ``path`` (within ``root``), if any."""
    for parent in path.parents:
        if parent in output_dirs:
            return parent
        if parent == root:
            break
    return None


def _group(root: Path, found: list[tuple[Path, list[str]]]) -> list[RunRef]:
    """One ref per run: companions of an output_dir join it (rules in the module docstring)."""
    output_dirs = {p for p, fmts in found if set(fmts) & set(_OUTPUT_DIR_FORMATS)}
    companions: dict[Path, dict[str, list[Path]]] = {d: {} for d in output_dirs}
    for path, fmts in found:
        if path in output_dirs:
            continue
        owner = _owner(path, output_dirs, root)
        if owner is None:
            continue
        for fmt in fmts:
            if fmt in _COMPANION_FORMATS:
                companions[owner].setdefault(fmt, []).append(path)
    absorbed: set[Path] = set()
    refs: list[tuple[Path, RunRef]] = []
    for path, fmts in found:
        rel = path.relative_to(root).as_posix()
        name = rel if rel != "." else root.resolve().name
        candidates = [(f, path) for f in fmts]
        also_only: list[str] = []
        if path in output_dirs:
            tb = companions[path].get("tensorboard", [])
            sw = companions[path].get("swanlab", [])
            if len(tb) == 1:
                candidates.append(("tensorboard", tb[0]))
                absorbed.add(tb[0])
            if sw:
                absorbed.update(sw)
                if len(sw) == 1:
                    candidates.append(("swanlab", sw[0]))
                else:
                    also_only.append("swanlab")
        candidates.sort(key=lambda c: _rank(c[0]))
        (fmt, best), rest = candidates[0], candidates[1:]
        also = tuple(f for f, _ in rest) + tuple(also_only)
        refs.append((path, RunRef(name, best, fmt, also, tuple(rest), folder=path)))
    # Companions that joined an output_dir are not runs of their own.
    return [ref for folder, ref in refs if folder not in absorbed]


def find_runs(path: str | os.PathLike[str]) -> list[RunRef]:
    """Every run under ``path`` (itself included), in walk order (sorted by folder name).

    Raises :class:`InputError` when the path is missing, unreadable or holds no run.
    """
    root = Path(path)
    _check_path(root)
    formats = available_formats()
    refs: list[RunRef] = []
    if root.is_file():
        claimed = _claiming(root, formats)
        if claimed:
            refs.append(
                RunRef(
                    _file_run_name(root),
                    root,
                    claimed[0].name,
                    tuple(f.name for f in claimed[1:]),
                    tuple((f.name, root) for f in claimed[1:]),
                    folder=_file_run_folder(root),
                )
            )
    else:
        refs = _group(root, _walk(root, formats))
    if not refs:
        if root.is_dir() and not any(root.iterdir()):
            raise InputError(
                f"'{root}' is an empty directory", "Point at a folder holding training logs"
            )
        raise InputError(
            f"no training logs found in '{root}' (looked for: {_looked_for(formats)})",
            "Point at a run folder, a log file or a folder of runs",
        )
    return refs


def _format_named(name: str) -> Format:
    for fmt in available_formats():
        if fmt.name == name:
            return fmt
    raise InputError(
        f"unknown format '{name}'",
        "Use one of: " + ", ".join(f.name for f in available_formats()),
    )


def _single(path: Path) -> RunRef:
    refs = find_runs(path)
    exact = [r for r in refs if path in (r.path, *(p for _, p in r.alternatives))]
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
    """Open the run at ``path`` for incremental reading (``poll()`` returns what is new).

    The source's ``config`` also holds the config files found next to the run.
    """
    p = Path(path)
    if format is not None:
        _check_path(p)
        fmt, where = _format_named(format), p
    else:
        ref = _single(p)
        fmt, where = _format_named(ref.format), ref.path
    source = fmt.open_source(where)
    source.config = {**read_config_near(where, source.warnings, source.notes), **source.config}
    return source


def _read_all(fmt: str, path: Path) -> tuple[Source, Points]:
    source = _format_named(fmt).open_source(path)
    try:
        return source, source.poll()
    finally:
        source.close()


def _richness(points: Points, metrics: Mapping[str, str] | None) -> tuple[int, int]:
    """(points of the metrics a diagnosis reads, all points), distinct by (tag, step).

    Counting only loss/LR/grad-norm/eval-loss keeps bookkeeping tags (SwanLab's
    ``train/global_step``, TensorBoard's hparams) from making a source look richer.
    """
    if not len(points):
        return (0, 0)
    # Distinct (tag, step) pairs, counted with numpy: a Python set of a million tuples is slow.
    pairs = np.unique(np.stack([points.tag_codes.astype(np.int64), points.steps]), axis=1)
    mapping = resolve_metrics(points.tags, metrics)
    wanted = [
        points.tags.index(tag)
        for name, tag in mapping.items()
        if name in _SCORED_METRICS and tag in points.tags
    ]
    return (int(np.isin(pairs[0], wanted).sum()), int(pairs.shape[1]))


def _richer(new: tuple[int, int], old: tuple[int, int]) -> bool:
    key = 0 if new[0] or old[0] else 1
    return new[key] > old[key] * _RICHER_BY


def read_run(
    path: str | os.PathLike[str] | RunRef,
    *,
    metrics: Mapping[str, str] | None = None,
    format: str | None = None,
    name: str | None = None,
) -> Run:
    """Read a whole run into a :class:`Run`.

    ``path`` may be an fsspec URL (``s3://bucket/run/``): its log files are fetched into a
    temporary mirror (see :mod:`warmup_monitor.remote`) and ``run.path`` is the URL.
    ``metrics`` overrides the canonical-name mapping (``{"loss": "my/loss"}``).
    """
    from .remote import RemoteTree, is_url

    if is_url(path):
        with RemoteTree(str(path)) as tree:
            tree.sync()
            run = read_run(tree.local_path, metrics=metrics, format=format, name=name)
            run.path = tree.url_of(run.path)
            if name is None and run.name == tree.local_path.name:
                run.name = str(path).rstrip("/").rsplit("/", 1)[-1]
            return run
    if isinstance(path, RunRef):
        ref = path
    else:
        p = Path(path)
        if format is not None:
            _check_path(p)
            ref = RunRef(_file_run_name(p) if p.is_file() else p.name, p, format)
        else:
            ref = _single(p)
    source: Source | None = None
    points = Points.empty()
    chosen = (ref.format, ref.path)
    best = (-1, -1)
    others: list[tuple[str, Path, Source]] = []
    failed: list[str] = []
    first_error: FormatError | None = None
    for fmt, where in ((ref.format, ref.path), *ref.alternatives):
        try:
            alt_source, alt_points = _read_all(fmt, where)
        except FormatError as err:
            if not ref.alternatives:
                raise
            first_error = first_error or err
            failed.append(f"{fmt} at '{where}' not read: {err}")
            continue
        # Only a choice between sources needs their richness.
        count = _richness(alt_points, metrics) if ref.alternatives else (0, 0)
        if source is None or _richer(count, best):
            if source is not None:
                others.append((chosen[0], chosen[1], source))
            source, points, chosen, best = alt_source, alt_points, (fmt, where), count
        else:
            others.append((fmt, where, alt_source))
    if source is None:
        assert first_error is not None
        raise first_error
    notes = list(source.notes)
    # A finished read: a partial last record will not complete, so say what was left unread.
    warnings = list(source.warnings) + source.pending() + failed
    status = source.status
    by_rank = sorted([*others, (*chosen, source)], key=lambda o: -_rank(o[0]))
    config: dict[str, Any] = {}
    for _fmt, _, other in by_rank:
        if other is not source:
            config.update(other.config)  # lower-priority sources first
    for _fmt, _, other in reversed(by_rank):
        if status == "unknown":
            status = other.status  # e.g. TensorBoard cannot tell; the trainer state can
    config.update(read_config_near(chosen[1], warnings, notes))
    config.update(source.config)
    # What ran (the trainer state's and the log's step counts) beats what arguments asked for.
    for fmt, _, other in by_rank:
        if fmt in _OUTPUT_DIR_FORMATS:
            config.update(other.config)
    if ref.also:
        read_also = ", ".join(f"{f} ({w.name})" for f, w, _ in others)
        read = {chosen[0]} | {f for f, _, _ in others}
        not_read = [f for f in ref.also if f not in read]
        text = f"read {chosen[0]} ({chosen[1].name}) as the richest source"
        if read_also:
            text += f"; also found {read_also}"
        if not_read:
            text += f"; not read: {', '.join(not_read)}"
        notes.append(text)
    merged = bool(ref.alternatives) or bool(ref.also)
    return Run.from_points(
        points,
        name=name or (ref.name if merged else source.display_name or ref.name),
        path=chosen[1],
        source=chosen[0],
        metrics=metrics,
        config=config,
        status=status,
        warnings=warnings,
        notes=notes,
        consume=True,  # the points were read for this run alone
    )


def read_runs(
    path: str | os.PathLike[str],
    *,
    metrics: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> list[Run]:
    """Read every run under ``path``, in the order :func:`find_runs` lists them.

    From 16 runs up they are read by worker processes, one per CPU (at most 8) unless
    ``workers`` says how many (``1``: all in this process); see :mod:`warmup_monitor._parallel`
    for when forking is avoided. The first error raised by a run is raised, as a loop over
    :func:`read_run` would raise it.
    """
    from ._parallel import ordered_map

    refs = find_runs(path)
    job = functools.partial(_read_ref, metrics=metrics)
    return list(ordered_map(job, refs, workers=workers))


def _read_ref(ref: RunRef, *, metrics: Mapping[str, str] | None) -> Run:
    return read_run(ref, metrics=metrics)
