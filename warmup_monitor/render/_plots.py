"""The plots of the HTML pages, as inline SVG drawn directly (:mod:`._svg`), in one style.

Text is drawn as strokes, and names read from the logs are never drawn: legends that name runs
are HTML beside the figure, escaped by the page. Long series are thinned for drawing by
:func:`warmup_monitor.downsample.thin` (each column's extremes, every NaN/Inf stretch), so spikes
and NaNs stay visible and a million-point run draws as fast as a short one.

``plan --plot`` writes PNG as well as SVG, so its schedule figure still uses matplotlib, imported
only there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.signal import lfilter

from detectors._types import Finding, Severity

from ..downsample import thin as _thin
from ..report import RunReport, displayed_loss
from ._common import warmup_end
from ._glyphs import width as text_width
from ._svg import LABEL_SIZE, WIDTH, Axis, Canvas, Panel, value_range

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "MAX_COMPARED",
    "MAX_DRAWN",
    "Drawing",
    "Legend",
    "comparison_figure",
    "run_figure",
    "save_figure",
    "schedule_figure",
    "smooth",
    "thin",
]

# Points drawn per series: about one per pixel column of a plot; beyond this a series is thinned.
MAX_DRAWN = 1800

_SEVERITY_COLOUR = {
    Severity.CRITICAL: "#c62828",
    Severity.WARNING: "#ef8f00",
    Severity.INFO: "#1e88e5",
}
_WARMUP = "#00695c"
_PANELS = (
    ("loss", "loss"),
    ("learning_rate", "learning rate"),
    ("grad_norm", "grad norm"),
    ("eval_loss", "eval loss"),
)
_COLOURS = {"learning_rate": _WARMUP, "grad_norm": "#37474f", "eval_loss": "#6a1b9a"}
# Runs drawn in colour in the comparison plot; more colours could not be told apart.
MAX_COMPARED = 10
# The ten colours of the comparison plot (a common categorical palette).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
GREY = "#b0bec5"
# Stretches of NaN/Inf drawn per series; more would only blur into one band.
_MAX_STRETCHES = 200
# Layout, in pixels of a figure WIDTH wide.
LEFT, RIGHT = 62.0, 14.0
TITLE_ROW, GAP, X_LABELS = 20.0, 8.0, 30.0


class Legend(NamedTuple):
    """A figure's legend, for the page to write as (escaped) HTML: ``(colour, label)`` pairs."""

    title: str
    items: list[tuple[str, str]]


class Drawing(NamedTuple):
    """An SVG, its caption and its legend (both plain text, escaped by the page)."""

    svg: str
    caption: str
    legend: Legend


def thin(
    steps: np.ndarray, values: np.ndarray, limit: int = MAX_DRAWN
) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``limit`` points of a series (see :func:`warmup_monitor.downsample.thin`)."""
    return _thin(steps, values, limit)


def smooth(values: np.ndarray) -> np.ndarray:
    """Debiased exponential moving average over finite values (non-finite points stay NaN).

    The span grows with the series (1/50 of its length) so that a long noisy loss reads as a
    trend while a short one is barely changed.
    """
    out = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    x = values[finite]
    if len(x) == 0:
        return out
    span = max(1.0, len(x) / 50.0)
    alpha = 2.0 / (span + 1.0)
    acc = lfilter([alpha], [1.0, alpha - 1.0], x)
    # Dividing by the weight seen so far removes the EMA's pull toward zero at the start.
    res = acc / (1.0 - (1.0 - alpha) ** np.arange(1, len(x) + 1))
    out[finite] = res
    return out


def _series(rr: RunReport, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    run = rr.run
    if run is None or not run.has(name):
        return None
    steps, values = run.series(name)
    if len(steps) == 0:
        return None
    if name == "loss":
        steps, values = displayed_loss(run)
    return steps, values.astype(np.float64, copy=False)


def log_scale(values: np.ndarray) -> bool:
    """A positive series spanning more than two orders of magnitude is drawn on a log axis."""
    finite = values[np.isfinite(values)]
    return bool(len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100)


def _step_range(series: Sequence[np.ndarray]) -> tuple[float, float]:
    lo = min(float(s.min()) for s in series)
    hi = max(float(s.max()) for s in series)
    pad = 0.01 * ((hi - lo) or 1.0)
    return lo - pad, hi + pad


def _stack(count: int, panel_height: float) -> tuple[list[tuple[float, float]], float]:
    """``(top, height)`` of ``count`` panels stacked under their title rows; the figure height."""
    y = 4.0
    boxes = []
    for _ in range(count):
        y += TITLE_ROW
        boxes.append((y, panel_height))
        y += panel_height + GAP
    return boxes, y - GAP + X_LABELS


def _panel(top: float, height: float, x: tuple[float, float], y: Axis | None, title: str) -> Panel:
    width = WIDTH - LEFT - RIGHT
    x_axis = Axis(x[0], x[1], LEFT, LEFT + width)
    y_axis = y if y is not None else Axis(0.0, 1.0, top + height, top)
    return Panel(LEFT, top, width, height, x_axis, y_axis, title)


def _y_axis(
    top: float, height: float, arrays: Sequence[np.ndarray], log: bool, headroom: float = 0.0
) -> Axis:
    """The y axis of a panel; ``headroom`` pixels at the top stay free of data (for labels)."""
    lo, hi = value_range(arrays, log=log)
    return Axis(lo, hi, top + height, top + headroom, log=log)


def _x_label(canvas: Canvas, panel: Panel, text: str) -> None:
    canvas.text(text, panel.right, panel.bottom + 25, size=LABEL_SIZE, anchor="end")


def _cross(x: float, y: float, r: float = 3.0) -> str:
    a, b = round((x - r) * 10), round((x + r) * 10)
    c, d = round((y - r) * 10), round((y + r) * 10)
    return f"M{a} {c}L{b} {d}M{a} {d}L{b} {c}"


def _mark_non_finite(canvas: Canvas, panel: Panel, steps: np.ndarray, values: np.ndarray) -> bool:
    """Shade each stretch of NaN/Inf points and put a cross at its start, along the top edge."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return False
    edges = np.diff(np.concatenate(([0], bad.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)[:_MAX_STRETCHES]
    ends = np.flatnonzero(edges == -1)[:_MAX_STRETCHES] - 1
    colour = _SEVERITY_COLOUR[Severity.CRITICAL]
    ranges = [
        (float(steps[a]), float(steps[b])) for a, b in zip(starts, ends, strict=True) if b > a
    ]
    canvas.spans(panel, ranges, colour, 0.10)
    y = panel.top + 7.0
    xs = panel.x(steps[starts].astype(np.float64))
    canvas.path("".join(_cross(float(x), y) for x in xs), colour, 1.3)
    return True


def _mark_findings(canvas: Canvas, panels: dict[str, Panel], findings: Sequence[Finding]) -> None:
    """A line (and a band for a range) per finding on its metric's panel, numbered as in the
    findings table; numbers of findings that start close together share one label."""
    labels: dict[str, list[tuple[float, list[str], Severity]]] = {}
    for number, f in enumerate(findings, start=1):
        key = (
            f.metric if f.metric in panels else ("loss" if "loss" in panels else next(iter(panels)))
        )
        panel = panels[key]
        colour = _SEVERITY_COLOUR[f.severity]
        if f.end_step is not None and f.end_step > f.step:
            canvas.spans(panel, [(float(f.step), float(f.end_step))], colour, 0.07)
        canvas.vline(panel, f.step, colour, 1.0, opacity=0.9)
        near = 0.02 * (panel.x.hi - panel.x.lo)
        placed = labels.setdefault(key, [])
        for i, (x, numbers, worst) in enumerate(placed):
            if abs(f.step - x) <= near:
                # The shared label takes the colour of its most severe finding.
                placed[i] = (x, [*numbers, str(number)], max(worst, f.severity))
                break
        else:
            placed.append((float(f.step), [str(number)], f.severity))
    for key, placed in labels.items():
        panel = panels[key]
        for x, numbers, severity in placed:
            px = min(max(panel.x.at(x), panel.left), panel.right)
            canvas.badge(",".join(numbers), px, panel.top + 1.5, _SEVERITY_COLOUR[severity])


def _loss_legend(canvas: Canvas, panel: Panel, non_finite: bool) -> None:
    """raw / smoothed (and the NaN/Inf cross) at the right of the loss panel's title row."""
    items: list[tuple[str, str, float]] = [("#90a4ae", "raw", 0.8), ("#1a237e", "smoothed", 1.6)]
    x = panel.right
    y = panel.top - 6
    if non_finite:
        canvas.text("NaN/Inf", x, y, size=LABEL_SIZE - 1, anchor="end")
        x -= text_width("NaN/Inf", LABEL_SIZE - 1) + 4
        canvas.path(_cross(x - 3, y - 3), _SEVERITY_COLOUR[Severity.CRITICAL], 1.3)
        x -= 20
    for colour, label, w in reversed(items):
        canvas.text(label, x, y, size=LABEL_SIZE - 1, anchor="end")
        x -= text_width(label, LABEL_SIZE - 1) + 6
        canvas.path(f"M{round((x - 16) * 10)} {round((y - 3) * 10)}h160", colour, w)
        x -= 26


def run_figure(rr: RunReport) -> str | None:
    """The run's curves as one SVG (loss, LR, grad norm, eval loss), or ``None`` with no data."""
    present = [(key, label, s) for key, label in _PANELS if (s := _series(rr, key)) is not None]
    if not present:
        return None
    d = rr.diagnosis
    fit = d.schedule if d is not None else None
    end = warmup_end(fit) if fit is not None else None
    x_range = _step_range([s[0] for _, _, s in present])
    boxes, height = _stack(len(present), 118.0)
    canvas = Canvas(height, label="training curves")
    panels: dict[str, Panel] = {}
    non_finite = False
    for (top, h), (key, label, (steps, values)) in zip(boxes, present, strict=True):
        log = key != "learning_rate" and log_scale(values)
        s, v = thin(steps, values)
        drawn = [(s, v, _COLOURS.get(key, "#90a4ae"), 0.8 if key == "loss" else 1.2)]
        if key == "loss":
            ss, sv = thin(steps, smooth(values))
            drawn.append((ss, sv, "#1a237e", 1.6))
        # The top 14 px hold the finding numbers and NaN crosses, clear of the curves.
        panel = _panel(top, h, x_range, _y_axis(top, h, [v], log, headroom=14.0), label)
        panels[key] = panel
        last = len(panels) == len(present)
        canvas.axes(panel, x_labels=last)
        non_finite |= _mark_non_finite(canvas, panel, steps, values)
        if end is not None:
            canvas.vline(panel, end, _WARMUP, 1.0, dash="40 25", opacity=0.8)
        for ds, dv, colour, w in drawn:
            canvas.curve(panel, ds, dv, colour, w)
        if key == "eval_loss":
            canvas.dots(panel, s, v, _COLOURS["eval_loss"], 4.5)
        if last:
            _x_label(canvas, panel, "step")
    if end is not None and "learning_rate" in panels:
        panel = panels["learning_rate"]
        x = panel.x.at(end) + 4
        if x < panel.right - 50:
            canvas.text("warmup end", x, panel.bottom - 5, size=LABEL_SIZE - 1, colour=_WARMUP)
    if "loss" in panels:
        _loss_legend(canvas, panels["loss"], non_finite)
    if d is not None and d.findings:
        _mark_findings(canvas, panels, d.findings)
    return canvas.svg()


def _short(name: str, limit: int = 55) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def comparison_figure(runs: Sequence[RunReport]) -> Drawing | None:
    """Smoothed loss and LR of several runs on shared axes, with a caption saying what is drawn.

    Every run with a loss or LR is drawn: the first :data:`MAX_COMPARED` given (pass them worst
    first) in colour, named in the legend, the others as thin grey lines behind them, since more
    colours could not be told apart. Runs of very different lengths are drawn against their
    share of the run instead of steps, and LRs that differ by orders of magnitude on a log
    axis. ``None`` with fewer than two runs to draw.
    """
    curves = [(rr, _series(rr, "loss"), _series(rr, "learning_rate")) for rr in runs]
    blank = [rr.name for rr, loss, lr in curves if loss is None and lr is None]
    curves = [c for c in curves if c[1] is not None or c[2] is not None]
    if len(curves) < 2:
        return None
    shown = curves[:MAX_COMPARED]
    lengths = [max(int(s[0][-1]) for s in (loss, lr) if s is not None) for _, loss, lr in curves]
    relative = max(lengths) > 5 * max(1, min(lengths))
    peaks = [
        float(np.nanmax(lr[1]))
        for _, _, lr in curves
        if lr is not None and np.isfinite(lr[1]).any()
    ]
    positive = [p for p in peaks if p > 0]
    loss_lines: list[tuple[np.ndarray, np.ndarray, str | None]] = []
    lr_lines: list[tuple[np.ndarray, np.ndarray, str | None]] = []
    raw_losses = []
    legend: list[tuple[str, str]] = []
    for i, ((rr, loss, lr), length) in enumerate(zip(curves, lengths, strict=True)):
        scale = 1.0 / length if relative and length > 0 else 1.0
        # Grey lines are background: a quarter of the points is plenty.
        limit = MAX_DRAWN if i < MAX_COMPARED else MAX_DRAWN // 16
        colour = PALETTE[i % len(PALETTE)] if i < MAX_COMPARED else None
        if loss is not None:
            raw_losses.append(loss[1])
            s, v = thin(loss[0], smooth(loss[1]), limit)
            loss_lines.append((s * scale, v, colour))
        if lr is not None:
            s, v = thin(lr[0], lr[1], limit)
            lr_lines.append((s * scale, v, colour))
        if colour is not None:
            legend.append((colour, _short(rr.name)))
    others = len(curves) - len(shown)
    if others:
        legend.append((GREY, f"{others} other runs"))
    x_range = _step_range([s for s, _, _ in loss_lines + lr_lines])
    boxes, height = _stack(2, 170.0)
    canvas = Canvas(height, label="loss and learning rate of the runs")
    log_loss = bool(raw_losses) and log_scale(np.concatenate(raw_losses))
    log_lr = len(positive) > 1 and max(positive) / min(positive) > 20
    for (top, h), lines, title, log in (
        (boxes[0], loss_lines, "loss (smoothed)", log_loss),
        (boxes[1], lr_lines, "learning rate", log_lr),
    ):
        panel = _panel(top, h, x_range, _y_axis(top, h, [v for _, v, _ in lines], log), title)
        canvas.axes(panel, x_labels=top == boxes[1][0])
        grey = [(s, v) for s, v, c in lines if c is None]
        if grey:
            canvas.curves(panel, grey, GREY, 0.7)
        # The worst run last, so that it is drawn on top.
        for s, v, c in reversed(lines):
            if c is not None:
                canvas.curve(panel, s, v, c, 1.4 if panel.title.startswith("loss") else 1.2)
        if top == boxes[1][0]:
            _x_label(canvas, panel, "share of run (step / last step)" if relative else "step")
    caption = f"Smoothed loss and learning rate of all {len(curves)} runs"
    if others:
        caption += (
            f": the {len(shown)} worst in colour, the other {others} in grey (more colours "
            "could not be told apart)"
        )
    if blank:
        caption += f"; not drawn, with neither loss nor LR: {', '.join(blank)}"
    if relative:
        caption += "; runs differ in length, so each is drawn against its share of the run"
    return Drawing(canvas.svg(), caption + ".", Legend("", legend))


# ---------------------------------------------------------------------- plan --plot (matplotlib)
# PNG needs a rasteriser, so the planned schedule is still drawn by matplotlib, in the colours
# and fonts of the pages.
_RC = {
    "svg.fonttype": "path",
    # Fixed salt: the same plan renders to the same bytes.
    "svg.hashsalt": "warmup-monitor",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
# Dates make two renders of the same data differ.
_NO_DATE = {".svg": {"Date": None}, ".png": {}}


def schedule_figure(
    steps: np.ndarray,
    lrs: np.ndarray,
    *,
    warmup: int,
    label: str,
    warmup_label: str,
    title: str,
) -> Figure:
    """A planned LR schedule over the run, in the report's style, the warmup shaded."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        top, bottom, width = 0.3, 0.6, 10.0
        height = 3.2 + top + bottom
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(
            left=0.85 / width, right=1 - 0.15 / width, top=1 - top / height, bottom=bottom / height
        )
        ax = fig.subplots()
        ax.plot(steps, lrs, color=_WARMUP, lw=1.6, label=label)
        if warmup > 0:
            ax.axvline(warmup, color=_WARMUP, ls="--", lw=1.0, alpha=0.8, label=warmup_label)
            ax.axvspan(0, warmup, color=_WARMUP, alpha=0.08, lw=0)
        ax.set_xlim(0, max(int(steps[-1]), 1))
        ax.set_ylim(bottom=0)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("learning rate")
        ax.set_title(title, fontsize=9, loc="left")
        ax.legend(loc="best", fontsize=8, frameon=False)
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    """Write ``fig`` as PNG or SVG (by the extension), with the report's style settings."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig.savefig(
            path, format=path.suffix.lower().lstrip("."), metadata=_NO_DATE[path.suffix.lower()]
        )
