"""The run model: every scalar of one run in a long pandas DataFrame."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import MetricNotFoundError
from .metrics import CANONICAL_METRICS, resolve_metrics
from .points import Points

__all__ = ["Resume", "Run"]


@dataclass(frozen=True)
class Resume:
    """A restart seen in the logs: ``tag`` was written again from ``step`` after ``from_step``.

    The values written after the restart replace the earlier ones for the same steps.
    """

    step: int
    from_step: int
    tag: str


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
    scalars: pd.DataFrame
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
    ) -> Run:
        """Build a run from points in write order (last write of a (tag, step) wins)."""
        frame, resumes = _build_frame(points)
        slices = _slices_of(frame)
        run = cls(
            name=name,
            path=Path(path),
            source=source,
            scalars=frame,
            metric_map=resolve_metrics(slices.keys(), metrics),
            config=dict(config or {}),
            status=status,
            resumes=resumes,
            warnings=list(warnings or []),
            notes=list(notes or []),
            _slices=slices,
        )
        return run

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
        steps = self.scalars["step"].to_numpy()[lo:hi]
        values = self.scalars["value"].to_numpy()[lo:hi]
        return steps, values

    @property
    def last_step(self) -> int | None:
        if self.scalars.empty:
            return None
        return int(self.scalars["step"].max())

    def prefix(self, max_step: int) -> Run:
        """A copy holding only the points at steps ``<= max_step`` (what a live watcher saw)."""
        return self.between(last_step=max_step)

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
        steps = self.scalars["step"].to_numpy()
        mask = np.ones(steps.shape, dtype=bool)
        if first_step is not None:
            mask &= steps >= first_step
        if last_step is not None:
            mask &= steps <= last_step
        frame = self.scalars[mask].reset_index(drop=True)
        if not frame.empty:
            frame["tag"] = frame["tag"].cat.remove_unused_categories()
        return Run(
            name=self.name,
            path=self.path,
            source=self.source,
            scalars=frame,
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
            _slices=_slices_of(frame),
        )


def _slices_of(frame: pd.DataFrame) -> dict[str, tuple[int, int]]:
    if frame.empty:
        return {}
    codes = frame["tag"].cat.codes.to_numpy()
    cats = frame["tag"].cat.categories
    bounds = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(codes)]))
    return {str(cats[codes[s]]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}


def _build_frame(points: Points) -> tuple[pd.DataFrame, list[Resume]]:
    n = len(points)
    if n == 0:
        frame = pd.DataFrame(
            {
                "step": np.empty(0, np.int64),
                "tag": pd.Categorical([], categories=[]),
                "value": np.empty(0, np.float64),
                "wall_time": np.empty(0, np.float64),
            }
        )
        return frame, []
    tags = points.tags
    # Categories sorted by name so that a frame sorted by code is sorted by tag.
    order_of_tag = np.argsort(np.asarray(tags, dtype=object)).astype(np.int32)
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
            keep = np.ones(b - a, dtype=bool)
            keep[:-1] = in_order[1:] != in_order[:-1]
            parts.append(by_tag[a:b][order][keep])
        idx = np.concatenate(parts)
        sel_codes, sel_steps = codes[idx], steps[idx]
    else:
        idx = by_tag  # no step written twice: the grouped columns are the frame's
        sel_codes, sel_steps = g_codes, g_steps
    frame = pd.DataFrame(
        {
            "step": sel_steps,
            "tag": pd.Categorical.from_codes(sel_codes, categories=[tags[i] for i in order_of_tag]),
            "value": points.values[idx],
            "wall_time": points.wall_times[idx],
        },
        # The columns are fresh arrays from the gathers above: no need for pandas to copy them.
        copy=False,
    )
    # One resume per restart point, not one per tag.
    seen: dict[int, Resume] = {}
    for r in resumes:
        seen.setdefault(r.step, r)
    return frame, sorted(seen.values(), key=lambda r: r.step)
