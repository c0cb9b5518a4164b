"""The run model: every scalar of one run in a long pandas DataFrame.

The frame is built on first use of :attr:`Run.scalars`: diagnosing, reporting and comparing
read the run's columns as numpy arrays, a pandas frame costs more to build than a small run
costs to diagnose, and a process that never asks for one never imports pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .errors import MetricNotFoundError
from .metrics import CANONICAL_METRICS, resolve_metrics
from .points import Points

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Resume", "Run"]


@dataclass(frozen=True)
class Resume:
    """A restart seen in the logs: ``tag`` was written again from ``step`` after ``from_step``.

    The values written after the restart replace the earlier ones for the same steps.
    """

    step: int
    from_step: int
    tag: str


class _Columns(NamedTuple):
    """The frame's columns: rows grouped by tag (``tags`` sorted, ``codes`` into it), then step."""

    steps: np.ndarray  # int64
    codes: np.ndarray  # int32
    tags: tuple[str, ...]
    values: np.ndarray  # float64
    wall_times: np.ndarray  # float64


@dataclass
class Run:
    """One training run.

    ``scalars`` has columns ``step`` (int64), ``tag`` (categorical), ``value`` (float64, NaN/±Inf
    kept) and ``wall_time`` (float64), one row per (tag, step), sorted by tag then step. Where a
    step was written more than once (a resumed run) the value written last wins, as the
    TensorBoard UI shows it, and :attr:`resumes` says where that happened.
    """

    name: str
    path: Path
    source: str
    scalars: pd.DataFrame  # a property below: built on first use
    metric_map: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "unknown"
    resumes: list[Resume] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _slices: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_points(
        cls,
        points: Points,
        *,
        name: str,
        path: Path,
        source: str,
        metrics: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        status: str = "unknown",
        warnings: list[str] | None = None,
        notes: list[str] | None = None,
        consume: bool = False,
    ) -> Run:
        """Build a run from points in write order (last write of a (tag, step) wins).

        ``consume=True`` hands the points' arrays over: the run may reuse their memory, so
        nothing may read ``points`` afterwards (``read_run`` does this with its own).
        """
        columns, resumes, replaced = _build_columns(points, consume)
        slices = _slices_of(columns)
        notes = list(notes or [])
        if replaced:
            # Not lost input: a restarted run (or a writer that logs a step twice) means its
            # later write of a step. Said with a count all the same.
            notes.append(
                f"{replaced} value{'s' if replaced != 1 else ''} replaced by a later write of "
                "the same step (the last write of each step is used)"
            )
        return cls(
            name=name,
            path=Path(path),
            source=source,
            scalars=columns,  # type: ignore[arg-type]  # the frame is built on first use
            metric_map=resolve_metrics(slices.keys(), metrics),
            config=dict(config or {}),
            status=status,
            resumes=resumes,
            warnings=list(warnings or []),
            notes=notes,
            _slices=slices,
        )

    def _get_scalars(self) -> pd.DataFrame:
        frame: pd.DataFrame | None = self.__dict__.get("_frame")
        if frame is None:
            frame = self.__dict__["_frame"] = _frame_of(self.__dict__["_columns"])
        return frame

    def _set_scalars(self, value: pd.DataFrame | _Columns) -> None:
        if isinstance(value, _Columns):
            self.__dict__["_columns"], self.__dict__["_frame"] = value, None
        else:
            self.__dict__["_columns"], self.__dict__["_frame"] = None, value

    def _cols(self) -> _Columns:
        columns: _Columns | None = self.__dict__.get("_columns")
        if columns is None:
            columns = self.__dict__["_columns"] = _columns_of(self.__dict__["_frame"])
        return columns

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (to or from a worker process) as its numpy columns, not as a pandas frame.
        state = dict(self.__dict__)
        if state.get("_columns") is not None:
            state["_frame"] = None
        return state

    # ------------------------------------------------------------------ access
    @property
    def tags(self) -> list[str]:
        """Every tag in the run, in sorted order."""
        return sorted(self._slices)

    def has(self, name: str) -> bool:
        """True when the canonical metric (or raw tag) ``name`` has at least one point."""
        tag = self.metric_map.get(name, name)
        return tag in self._slices

    def tag_for(self, name: str) -> str:
        """The tag a canonical metric name (or a raw tag) reads from."""
        tag = self.metric_map.get(name, name)
        if tag not in self._slices:
            available = ", ".join(self.tags) or "none"
            if name in CANONICAL_METRICS and name not in self.metric_map:
                problem = f"metric '{name}' not found in run '{self.name}'"
            else:
                problem = f"tag '{tag}' for metric '{name}' not found in run '{self.name}'"
            raise MetricNotFoundError(
                f"{problem} (available tags: {available})",
                f"Map it with --metric {name}=TAG",
            )
        return tag

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of a canonical metric or raw tag, sorted by step.

        Raises :class:`MetricNotFoundError` listing the available tags when absent.
        """
        tag = self.tag_for(name)
        lo, hi = self._slices[tag]
        columns = self._cols()
        return columns.steps[lo:hi], columns.values[lo:hi]

    @property
    def last_step(self) -> int | None:
        steps = self._cols().steps
        if not len(steps):
            return None
        return int(steps.max())

    def prefix(self, max_step: int) -> Run:
        """A copy holding only the points at steps ``<= max_step`` (what a live watcher saw).

        A prefix that stops before the run's last logged step was taken while the run was
        still going: its status is ``"running"``, not the finished (or crashed) run's.
        """
        cut = self.between(last_step=max_step)
        last = self.last_step
        if self.status != "unknown" and last is not None and max_step < last:
            cut.status = "running"
        return cut

    def between(
        self,
        first_step: int | None = None,
        last_step: int | None = None,
        *,
        note: str | None = None,
    ) -> Run:
        """A copy holding only the points at steps in ``[first_step, last_step]`` (either open).

        ``note`` is added to the copy's notes, to say why points are missing.
        """
        columns = self._cols()
        steps = columns.steps
        mask = np.ones(steps.shape, dtype=bool)
        if first_step is not None:
            mask &= steps >= first_step
        if last_step is not None:
            mask &= steps <= last_step
        kept = _Columns(
            steps[mask],
            columns.codes[mask],
            columns.tags,
            columns.values[mask],
            columns.wall_times[mask],
        )
        if len(kept.steps):
            kept = _without_unused_tags(kept)
        return Run(
            name=self.name,
            path=self.path,
            source=self.source,
            scalars=kept,  # type: ignore[arg-type]
            metric_map=dict(self.metric_map),
            config=dict(self.config),
            status=self.status,
            resumes=[
                r
                for r in self.resumes
                if (first_step is None or r.step >= first_step)
                and (last_step is None or r.step <= last_step)
            ],
            warnings=list(self.warnings),
            notes=[*self.notes, note] if note else list(self.notes),
            _slices=_slices_of(kept),
        )


# ``Run.scalars`` is a dataclass field (the constructor takes a frame) read through a property
# that builds the frame on first use.
Run.scalars = property(  # type: ignore[assignment,method-assign]
    Run._get_scalars, Run._set_scalars, doc="Every point: the long frame described above."
)


_EMPTY_FRAME_COLUMNS = _Columns(
    np.empty(0, np.int64),
    np.empty(0, np.int32),
    (),
    np.empty(0, np.float64),
    np.empty(0, np.float64),
)

# One categorical dtype per set of tags: the runs of a sweep share theirs, and checking the
# categories of a new dtype costs more than building the rest of a small frame.
_DTYPES: dict[tuple[str, ...], pd.CategoricalDtype] = {}
_MAX_DTYPES = 256


def _dtype(tags: tuple[str, ...]) -> pd.CategoricalDtype:
    import pandas as pd

    dtype = _DTYPES.get(tags)
    if dtype is None:
        if len(_DTYPES) >= _MAX_DTYPES:
            _DTYPES.clear()
        dtype = _DTYPES[tags] = pd.CategoricalDtype(list(tags))
    return dtype


def _frame_of(columns: _Columns) -> pd.DataFrame:
    import pandas as pd

    if not len(columns.steps) and not columns.tags:
        tag = pd.Categorical([], categories=[])
    else:
        tag = pd.Categorical.from_codes(columns.codes, dtype=_dtype(columns.tags))
    return pd.DataFrame(
        {
            "step": columns.steps,
            "tag": tag,
            "value": columns.values,
            "wall_time": columns.wall_times,
        },
        # The columns are arrays no one else writes to: no need for pandas to copy them.
        copy=False,
    )


def _columns_of(frame: pd.DataFrame) -> _Columns:
    """The columns of a frame given to the constructor (sorted by tag, then step)."""
    import pandas as pd

    tag = frame["tag"]
    if isinstance(tag.dtype, pd.CategoricalDtype):
        codes = tag.cat.codes.to_numpy().astype(np.int32)
        tags = tuple(str(t) for t in tag.cat.categories)
    else:
        tags = tuple(sorted({str(t) for t in tag}))
        codes = np.searchsorted(np.asarray(tags, dtype=object), tag.astype(str).to_numpy())
        codes = codes.astype(np.int32)
    return _Columns(
        frame["step"].to_numpy(dtype=np.int64),
        codes,
        tags,
        frame["value"].to_numpy(dtype=np.float64),
        frame["wall_time"].to_numpy(dtype=np.float64),
    )


def _without_unused_tags(columns: _Columns) -> _Columns:
    present = np.zeros(len(columns.tags), dtype=bool)
    present[columns.codes] = True
    if present.all():
        return columns
    remap = np.cumsum(present, dtype=np.int32) - 1
    tags = tuple(t for t, p in zip(columns.tags, present.tolist(), strict=True) if p)
    return columns._replace(codes=remap[columns.codes], tags=tags)


def _slices_of(columns: _Columns) -> dict[str, tuple[int, int]]:
    codes = columns.codes
    if not len(codes):
        return {}
    bounds = (np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist()
    starts = [0, *bounds]
    ends = [*bounds, len(codes)]
    tags = columns.tags
    firsts = codes[starts].tolist()
    return {tags[c]: (s, e) for c, s, e in zip(firsts, starts, ends, strict=True)}


_FEW_TAGS = 16  # up to this many tags, the columns are built tag by tag, without a sort


def _columns_by_tag(points: Points, order_of_tag: np.ndarray, consume: bool) -> _Columns | None:
    """The columns of a run with few tags and no step written twice, or None (a resume).

    Each tag's positions are found once and its points taken in write order, tag after tag
    in name order: no sort, no permutation of every column. With ``consume``, the values,
    wall times and codes are written over the points' own step, value and code arrays (each
    read in full before it is overwritten), so 10M points cost one new column instead of
    four: fresh memory is slow to fault in, as slow as decoding it on some machines.
    """
    tag_codes = points.tag_codes
    n = len(tag_codes)
    steps = np.empty(n, dtype=np.int64)
    reuse = consume and _reusable(points)
    if not reuse:
        codes = np.empty(n, dtype=np.int32)
        values = np.empty(n, dtype=np.float64)
        times = np.empty(n, dtype=np.float64)
    # Each tag's positions: a slice when the tags repeat in one order (a step logs each once),
    # else int64 positions (``take`` converts any other index type to a new array).
    periodic = _periodic(tag_codes, order_of_tag)
    places: list[tuple[slice | np.ndarray, int, int]] = []  # (positions, start, count)
    at = 0
    for new_code, code in enumerate(order_of_tag.tolist()):
        if periodic is not None:
            where: slice | np.ndarray = periodic[new_code]
        elif len(order_of_tag) > 1:
            where = np.flatnonzero(tag_codes == code)
        else:
            where = slice(None)
        seg = steps[at : at + _count(where, n)]
        _take(points.steps, where, seg)
        if len(seg) > 1 and not (seg[1:] > seg[:-1]).all():
            return None  # a step written again: the general path keeps the last write
        if reuse:
            places.append((where, at, len(seg)))
        else:
            _take(points.values, where, values[at : at + len(seg)])
            _take(points.wall_times, where, times[at : at + len(seg)])
            codes[at : at + len(seg)] = new_code
        del where
        at += len(seg)
    if reuse:
        # The steps are grouped already, so the step array takes the values, the value array
        # (read in full just before) the wall times, and the code array the new codes.
        values = points.steps.view(np.float64)
        times = points.values
        for source, out in ((points.values, values), (points.wall_times, times)):
            for where, at, k in places:
                _take(source, where, out[at : at + k])
        codes = tag_codes if _writable(tag_codes, np.int32) else np.empty(n, dtype=np.int32)
        for new_code, (_, at, k) in enumerate(places):
            codes[at : at + k] = new_code
        del places
    return _Columns(
        steps, codes, tuple(points.tags[i] for i in order_of_tag.tolist()), values, times
    )


def _periodic(tag_codes: np.ndarray, order_of_tag: np.ndarray) -> list[slice] | None:
    """Each tag's positions as a slice, in ``order_of_tag``, when the codes repeat one period
    holding every tag once (every step logs every tag in the same order); else None."""
    k = len(order_of_tag)
    n = len(tag_codes)
    if k < 2 or n % k or n < 2 * k:
        return None
    head = tag_codes[:k]
    if len(set(head.tolist())) != k or not (tag_codes.reshape(-1, k) == head).all():
        return None
    first = {code: j for j, code in enumerate(head.tolist())}
    return [slice(first[code], n, k) for code in order_of_tag.tolist()]


def _count(where: slice | np.ndarray, n: int) -> int:
    return len(range(*where.indices(n))) if isinstance(where, slice) else len(where)


def _take(source: np.ndarray, where: slice | np.ndarray, out: np.ndarray) -> None:
    if isinstance(where, slice):
        np.copyto(out, source[where])
    else:
        # Valid positions, so ``take`` may skip its bounds check ("clip"), which would also
        # buffer its output.
        np.take(source, where, out=out, mode="clip")


def _writable(column: np.ndarray, dtype: type) -> bool:
    return bool(column.flags.writeable and column.flags.c_contiguous and column.dtype == dtype)


def _reusable(points: Points) -> bool:
    """Whether the step and value arrays can be overwritten: writable, contiguous, unshared."""
    cols = (points.steps, points.values, points.wall_times, points.tag_codes)
    if not (_writable(points.steps, np.int64) and _writable(points.values, np.float64)):
        return False
    return not any(np.may_share_memory(a, b) for i, a in enumerate(cols) for b in cols[i + 1 :])


def _build_columns(points: Points, consume: bool = False) -> tuple[_Columns, list[Resume], int]:
    """The frame's columns, the restarts seen, and how many values later writes replaced."""
    n = len(points)
    if n == 0:
        return _EMPTY_FRAME_COLUMNS, [], 0
    tags = points.tags
    # Categories sorted by name so that a frame sorted by code is sorted by tag.
    order_of_tag = np.argsort(np.asarray(tags, dtype=object)).astype(np.int32)
    if len(tags) <= _FEW_TAGS:
        columns = _columns_by_tag(points, order_of_tag, consume)
        if columns is not None:
            return columns, [], 0
    rank = np.empty(len(tags), dtype=np.int32)
    rank[order_of_tag] = np.arange(len(tags), dtype=np.int32)
    codes = rank[points.tag_codes]
    steps = points.steps
    # Stable grouping by tag keeps write order inside each tag. With 16-bit keys numpy's
    # stable sort is a radix sort: linear in the points, where a comparison sort is not.
    keys = codes.astype(np.uint16) if len(tags) <= 1 << 16 else codes
    by_tag = np.argsort(keys, kind="stable")
    g_codes = codes[by_tag]
    g_steps = steps[by_tag]
    same_tag = g_codes[1:] == g_codes[:-1]
    backwards = same_tag & (g_steps[1:] <= g_steps[:-1])
    resumes: list[Resume] = []
    replaced = 0
    if backwards.any():
        sorted_tags = [tags[i] for i in order_of_tag]
        for i in np.flatnonzero(same_tag & (g_steps[1:] < g_steps[:-1])):
            resumes.append(
                Resume(
                    step=int(g_steps[i + 1]), from_step=int(g_steps[i]), tag=sorted_tags[g_codes[i]]
                )
            )
        # Last write wins: sort each tag's steps (stable: write order among equal steps) and
        # keep the last of each step. Only tags that went back are sorted, with timsort, which
        # is linear on the few sorted stretches a resume leaves.
        bounds = np.flatnonzero(~same_tag) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [len(g_codes)]))
        went_back = np.zeros(len(g_codes), dtype=bool)
        went_back[1:] = backwards
        parts = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if not went_back[a + 1 : b].any():
                parts.append(by_tag[a:b])
                continue
            order = np.argsort(g_steps[a:b], kind="stable")
            in_order = g_steps[a:b][order]
            rows = by_tag[a:b][order]
            keep = np.ones(b - a, dtype=bool)
            keep[:-1] = in_order[1:] != in_order[:-1]
            # A value written again unchanged (the Trainer's last epoch, logged twice) replaces
            # nothing; one that differs was superseded.
            vals = points.values[rows]
            same = (vals[1:] == vals[:-1]) | (np.isnan(vals[1:]) & np.isnan(vals[:-1]))
            replaced += int(np.sum(~keep[:-1] & ~same))
            parts.append(rows[keep])
        idx = np.concatenate(parts)
        sel_codes, sel_steps = codes[idx], steps[idx]
    else:
        idx = by_tag  # no step written twice: the grouped columns are the frame's
        sel_codes, sel_steps = g_codes, g_steps
    columns = _Columns(
        sel_steps,
        sel_codes,
        tuple(tags[i] for i in order_of_tag.tolist()),
        points.values[idx],
        points.wall_times[idx],
    )
    # One resume per restart point, not one per tag.
    seen: dict[int, Resume] = {}
    for r in resumes:
        seen.setdefault(r.step, r)
    return columns, sorted(seen.values(), key=lambda r: r.step), replaced
