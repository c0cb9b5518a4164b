"""Plots as SVG strings: panels with axes, ticks and grid, curves, bands, lines and labels.

Built as text with numpy doing the arithmetic: a figure costs well under a millisecond per
thousand points, where a plotting library's figure costs a few hundred milliseconds. Coordinates
are written as integers in tenths of a pixel, curves as relative path moves, so a curve costs
about six bytes a point. No ids, no ``<text>`` (text is drawn with :mod:`._glyphs`), nothing read
from the logs: several figures can share a page and none can carry markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._glyphs import text_path
from ._glyphs import width as text_width

# Width of every figure in pixels (it scales with the page: width="100%").
WIDTH = 1000.0
# Colours of the axes, grid and text.
INK = "#55606e"
GRID = "#e3e6ea"
TICK_SIZE = 7.0
LABEL_SIZE = 8.0


def _t(v: float) -> int:
    """A pixel coordinate in the SVG's units (tenths of a pixel)."""
    return round(v * 10)


def _nice_step(raw: float) -> float:
    exp = math.floor(math.log10(raw))
    base = 10.0**exp
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * base * (1 + 1e-9):
            return m * base
    return 10.0 * base


def _fmt_ticks(values: list[float], step: float) -> list[str]:
    """Labels of evenly spaced ticks, all in one style: plain decimals for values from 0.01 to
    ten million, otherwise mantissa and exponent (``2.5e-4``), the way learning rates are
    written."""
    largest = max(abs(v) for v in values)
    if 1e-2 <= largest < 1e7:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        if abs(step / 10.0 ** math.floor(math.log10(step) + 1e-9) - 2.5) < 1e-6:
            decimals += 1
        return [f"{v:.{decimals}f}" for v in values]
    out = []
    for v in values:
        if abs(v) < step * 1e-6:
            out.append("0")
            continue
        exp = math.floor(math.log10(abs(v)) + 1e-9)
        out.append(f"{v / 10.0**exp:.3g}e{exp}")
    return out


@dataclass
class Axis:
    """One axis' data range and scale; maps values to pixels between ``p0`` and ``p1``."""

    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def __post_init__(self) -> None:
        if self.log:
            self.lo, self.hi = math.log10(self.lo), math.log10(self.hi)
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            self.lo, self.hi = 0.0, 1.0
        if self.hi <= self.lo:
            pad = abs(self.lo) * 0.05 or 0.5
            self.lo, self.hi = self.lo - pad, self.hi + pad
        self._k = (self.p1 - self.p0) / (self.hi - self.lo)

    def __call__(self, values: np.ndarray | float) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
        return self.p0 + (v - self.lo) * self._k

    def at(self, value: float) -> float:
        return float(self(value))

    def ticks(self, count: int = 4) -> list[tuple[float, str]]:
        """``(value, label)`` of the ticks inside the range."""
        if self.log:
            first, last = math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9)
            stride = max(1, math.ceil((last - first + 1) / 6))
            decades = list(range(first, last + 1, stride))
            values = [10.0**d for d in decades]
            if len(values) < 2:
                values = [
                    m * 10.0**d
                    for d in range(first - 1, last + 1)
                    for m in (1, 2, 5)
                    if self.lo - 1e-9 <= math.log10(m * 10.0**d) <= self.hi + 1e-9
                ]
            out = []
            for v in values:
                exp = math.floor(math.log10(v) + 1e-9)
                mant = v / 10.0**exp
                if -3 <= exp < 5:
                    label = f"{v:.{max(0, -exp)}f}"
                else:
                    label = f"{round(mant)}e{exp}" if round(mant) != 1 else f"1e{exp}"
                out.append((v, label))
            return out
        step = _nice_step((self.hi - self.lo) / count)
        start = math.ceil(self.lo / step - 1e-9)
        stop = math.floor(self.hi / step + 1e-9)
        values = [i * step for i in range(start, stop + 1)]
        if not values:
            return []
        return list(zip(values, _fmt_ticks(values, step), strict=True))


def value_range(
    arrays: Sequence[np.ndarray], log: bool = False, pad: float = 0.05
) -> tuple[float, float]:
    """Lowest and highest finite value of ``arrays`` (positive only on a log axis), padded."""
    lo, hi = math.inf, -math.inf
    for a in arrays:
        f = a[np.isfinite(a)]
        if log:
            f = f[f > 0]
        if len(f):
            lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
    if not math.isfinite(lo):
        return (1.0, 10.0) if log else (0.0, 1.0)
    if log:
        span = math.log10(hi) - math.log10(lo)
        factor = 10.0 ** (pad * (span or 1.0))
        return lo / factor, hi * factor
    margin = pad * ((hi - lo) or abs(hi) or 1.0)
    return lo - margin, hi + margin


def path_data(xs: np.ndarray, ys: np.ndarray) -> str:
    """One path's data for a polyline in pixels, broken wherever a coordinate is NaN.

    A point alone between breaks becomes a zero-length stroke, which a round cap draws as a dot.
    """
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return ""
    X = np.rint(np.where(ok, xs, 0.0) * 10).astype(np.int64)
    Y = np.rint(np.where(ok, ys, 0.0) * 10).astype(np.int64)
    edges = np.diff(np.concatenate(([0], ok.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    out = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        out.append(f"M{X[a]} {Y[a]}")
        if b - a == 1:
            out.append("h0")
            continue
        dx, dy = np.diff(X[a:b]), np.diff(Y[a:b])
        moved = (dx != 0) | (dy != 0)
        if not moved.any():
            out.append("h0")
            continue
        flat = np.column_stack((dx[moved], dy[moved])).ravel()
        out.append("l" + " ".join(map(str, flat.tolist())))
    return "".join(out).replace(" -", "-")


@dataclass
class Panel:
    """A plotting area: pixel box, axes, and a title drawn above it on the left."""

    left: float
    top: float
    width: float
    height: float
    x: Axis
    y: Axis
    title: str = ""

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


@dataclass
class Canvas:
    """An SVG being built: elements are appended in drawing order (later ones on top)."""

    height: float
    width: float = WIDTH
    parts: list[str] = field(default_factory=list)
    label: str = ""

    def path(
        self,
        d: str,
        colour: str,
        width: float = 1.0,
        *,
        dash: str | None = None,
        opacity: float | None = None,
        fill: str | None = None,
        cap: str | None = "round",
    ) -> None:
        if not d:
            return
        attrs = [f'd="{d}"']
        if fill is not None:
            attrs.append(f'fill="{fill}"')
            if colour != "none":
                attrs.append(f'stroke="{colour}" stroke-width="{_t(width)}"')
        else:
            attrs.append(f'fill="none" stroke="{colour}" stroke-width="{_t(width)}"')
            if cap:
                attrs.append(f'stroke-linecap="{cap}" stroke-linejoin="round"')
        if dash:
            attrs.append(f'stroke-dasharray="{dash}"')
        if opacity is not None:
            attrs.append(f'opacity="{opacity:g}"')
        self.parts.append(f"<path {' '.join(attrs)}/>")

    def curve(
        self,
        panel: Panel,
        steps: np.ndarray,
        values: np.ndarray,
        colour: str,
        width: float = 1.0,
        opacity: float | None = None,
    ) -> None:
        """A line through the points, broken at NaN/Inf (and at values a log axis cannot show)."""
        self.path(path_data(panel.x(steps), panel.y(values)), colour, width, opacity=opacity)

    def curves(
        self, panel: Panel, series: Sequence[tuple[np.ndarray, np.ndarray]], colour: str, w: float
    ) -> None:
        """Many lines of one colour as one path."""
        d = "".join(path_data(panel.x(s), panel.y(v)) for s, v in series)
        self.path(d, colour, w)

    def dots(
        self, panel: Panel, steps: np.ndarray, values: np.ndarray, colour: str, size: float
    ) -> None:
        xs, ys = panel.x(steps), panel.y(values)
        ok = np.isfinite(xs) & np.isfinite(ys)
        d = "".join(
            f"M{_t(x)} {_t(y)}h0" for x, y in zip(xs[ok].tolist(), ys[ok].tolist(), strict=True)
        )
        self.path(d, colour, size)

    def band(
        self,
        panel: Panel,
        steps: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        colour: str,
        opacity: float,
    ) -> None:
        """The area between ``low`` and ``high`` (all finite, on common steps)."""
        xs = panel.x(steps)
        lo, hi = panel.y(low), panel.y(high)
        ok = np.isfinite(xs) & np.isfinite(lo) & np.isfinite(hi)
        if ok.sum() < 2:
            return
        xs, lo, hi = xs[ok], lo[ok], hi[ok]
        ring_x = np.concatenate((xs, xs[::-1]))
        ring_y = np.concatenate((hi, lo[::-1]))
        d = path_data(ring_x, ring_y) + "z"
        self.path(d, "none", fill=colour, opacity=opacity)

    def vline(
        self,
        panel: Panel,
        step: float,
        colour: str,
        width: float = 1.0,
        *,
        dash: str | None = None,
        opacity: float | None = None,
    ) -> None:
        x = panel.x.at(step)
        if not (panel.left - 0.5 <= x <= panel.right + 0.5):
            return
        d = f"M{_t(x)} {_t(panel.top)}V{_t(panel.bottom)}"
        self.path(d, colour, width, dash=dash, opacity=opacity, cap=None)

    def hline(
        self,
        panel: Panel,
        value: float,
        colour: str,
        width: float = 1.0,
        *,
        dash: str | None = None,
    ) -> None:
        y = panel.y.at(value)
        if not (math.isfinite(y) and panel.top - 0.5 <= y <= panel.bottom + 0.5):
            return
        d = f"M{_t(panel.left)} {_t(y)}H{_t(panel.right)}"
        self.path(d, colour, width, dash=dash, cap=None)

    def spans(
        self, panel: Panel, ranges: Sequence[tuple[float, float]], colour: str, opacity: float
    ) -> None:
        """Shaded vertical bands over ``[start, end]`` step ranges, as one path."""
        out = []
        for a, b in ranges:
            x0 = max(panel.left, panel.x.at(a))
            x1 = min(panel.right, panel.x.at(b))
            if x1 <= x0:
                continue
            out.append(f"M{_t(x0)} {_t(panel.top)}H{_t(x1)}V{_t(panel.bottom)}H{_t(x0)}z")
        self.path("".join(out), "none", fill=colour, opacity=opacity)

    def text(
        self,
        text: str,
        x: float,
        y: float,
        *,
        size: float = TICK_SIZE,
        colour: str = INK,
        anchor: str = "start",
        width: float = 0.9,
    ) -> None:
        """The plot's own words and numbers, drawn as strokes (never text read from the logs)."""
        d = text_path(text, x, y, size, anchor)
        self.path(d, colour, width)

    def badge(self, text: str, x: float, y: float, colour: str) -> None:
        """White text on a rounded box centred on ``x``, its top at ``y``."""
        w = text_width(text, 6.0) + 7
        self.parts.append(
            f'<rect x="{_t(x - w / 2)}" y="{_t(y)}" width="{_t(w)}" height="110" rx="30" '
            f'fill="{colour}"/>'
        )
        self.text(text, x, y + 8.5, size=6.0, colour="#fff", anchor="middle", width=0.9)

    def axes(self, panel: Panel, *, x_labels: bool, y_count: int = 4) -> None:
        """Grid, frame (left and bottom), y tick labels, the title; x tick labels if asked."""
        grid, ticks, labels = [], [], []
        for v, label in panel.y.ticks(y_count):
            y = panel.y.at(v)
            if not panel.top - 0.5 <= y <= panel.bottom + 0.5:
                continue
            grid.append(f"M{_t(panel.left)} {_t(y)}H{_t(panel.right)}")
            ticks.append(f"M{_t(panel.left - 3)} {_t(y)}H{_t(panel.left)}")
            labels.append((label, panel.left - 5, y + TICK_SIZE / 2, "end"))
        for v, label in panel.x.ticks(8):
            x = panel.x.at(v)
            if not panel.left - 0.5 <= x <= panel.right + 0.5:
                continue
            grid.append(f"M{_t(x)} {_t(panel.top)}V{_t(panel.bottom)}")
            ticks.append(f"M{_t(x)} {_t(panel.bottom)}v30")
            if x_labels:
                labels.append((label, x, panel.bottom + 6 + TICK_SIZE, "middle"))
        self.path("".join(grid), GRID, 0.8, cap=None)
        frame = f"M{_t(panel.left)} {_t(panel.top)}V{_t(panel.bottom)}H{_t(panel.right)}"
        self.path(frame + "".join(ticks), INK, 0.8, cap=None)
        d = "".join(text_path(t, x, y, TICK_SIZE, a) for t, x, y, a in labels)
        self.path(d, INK, 0.8)
        if panel.title:
            self.text(panel.title, panel.left, panel.top - 6, size=LABEL_SIZE, colour="#1c2430")

    def svg(self) -> str:
        w, h = _t(self.width), _t(self.height)
        label = f' aria-label="{self.label}"' if self.label else ""
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
            f'role="img"{label}>{"".join(self.parts)}</svg>'
        )
