"""A comparison as one self-contained HTML page: ranking, conclusion, overlaid curves of every run.

Every run is drawn. Colour follows the varying setting on a sequential scale (viridis, in the
order of its values), so a sweep reads as a gradient rather than ten look-alike colours; a setting
with several seeds is drawn as its mean with a band from the lowest to the highest seed. The loss
drawn is the smoothed loss the measures were taken on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.progress import ProgressConfig, smooth

from .. import __version__
from ..compare import Comparison, Entry, RunMeasures, setting_name
from ..report import displayed_loss
from ._common import fmt_num
from ._plots import Drawing, Legend, _panel, _stack, _step_range, _x_label, _y_axis, thin
from ._svg import INK, LABEL_SIZE, Canvas
from .compare import _columns, _row, _run_row, _text_columns, describe
from .html import _e, _table, figure, page

__all__ = ["comparison_figure", "render_compare_html"]

# Points drawn per curve: 500 runs stay a light page.
_DRAWN = 400
# Points of the common grid a seed band is drawn on.
_BAND_POINTS = 200
# Colours along a perceptually uniform dark-blue-to-yellow scale (viridis' published key
# colours); a value between two of them is interpolated.
_SCALE = (
    "#440154",
    "#482878",
    "#3e4989",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
)
# Legend entries at most: a long sweep is shown at evenly spaced values.
_LEGEND_ENTRIES = 12


def _colour_key(c: Comparison) -> tuple[str | None, list[Any]]:
    """The varying key colours follow (the first with numbers), and its values in order."""
    for key in c.varying:
        values = [e.setting.get(key) for e in c.entries]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return key, sorted(set(values))
    return None, [e.label for e in sorted(c.entries, key=lambda e: e.label)]


def _scale_colour(t: float) -> str:
    rgb = np.array([[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in _SCALE], dtype=float)
    pos = min(max(t, 0.0), 1.0) * (len(_SCALE) - 1)
    i = min(int(pos), len(_SCALE) - 2)
    mix = rgb[i] + (rgb[i + 1] - rgb[i]) * (pos - i)
    return "#" + "".join(f"{round(c):02x}" for c in mix)


def _palette(n: int) -> list[str]:
    # Without the scale's last, palest tenth: every colour stays visible on white.
    return [_scale_colour(0.9 * i / max(n - 1, 1)) for i in range(n)]


def _smoothed(m: RunMeasures, smooth_points: int) -> tuple[np.ndarray, np.ndarray]:
    assert m.report.run is not None
    steps, values = displayed_loss(m.report.run)
    return smooth(steps, values, ProgressConfig(smooth_points=smooth_points))


def _band(
    curves: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean, lowest and highest of several curves on the steps they share."""
    curves = [(s, v) for s, v in curves if len(s) > 1]
    if len(curves) < 2:
        return None
    lo, hi = max(s[0] for s, _ in curves), min(s[-1] for s, _ in curves)
    if hi <= lo:
        return None
    grid = np.linspace(lo, hi, _BAND_POINTS)
    ys = np.vstack([np.interp(grid, s, v) for s, v in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def comparison_figure(c: Comparison) -> Drawing:
    """Loss (smoothed, as measured) and LR of every run, coloured by the varying setting; the
    legend (setting values, read from the runs' configs) is for the page to write as HTML."""
    key, values = _colour_key(c)
    colours = _palette(len(values))
    position = {v: i for i, v in enumerate(values)}

    def colour_of(e: Entry) -> str:
        return colours[position[e.setting.get(key) if key is not None else e.label]]

    lines: list[tuple[np.ndarray, np.ndarray, str]] = []
    bands: list[tuple[np.ndarray, np.ndarray, np.ndarray, str]] = []
    lr_lines: list[tuple[np.ndarray, np.ndarray, str]] = []
    for e in c.entries:
        colour = colour_of(e)
        curves = [_smoothed(m, m.smooth_points) for m in e.runs]
        band = _band(curves) if len(e.runs) > 1 else None
        if band is not None:
            grid, mean, low, high = band
            bands.append((grid, low, high, colour))
            lines.append((grid, mean, colour))
        else:
            for s, v in curves:
                s, v = thin(s, v, _DRAWN)
                lines.append((s, v, colour))
        for m in e.runs:
            run = m.report.run
            if run is None or not run.has("learning_rate"):
                continue
            s, v = run.series("learning_rate")
            s, v = thin(s, v.astype(np.float64), _DRAWN)
            lr_lines.append((s, v, colour))
    starts = [m.first_step for m in c.measures]
    ends = [m.last_step for m in c.measures]
    x_range = (float(min(starts)), float(max(ends)))
    if x_range[1] <= x_range[0]:
        x_range = _step_range([np.array(x_range)])
    boxes, height = _stack(2, 190.0)
    canvas = Canvas(height, label="loss and learning rate of the runs")
    loss_values = [v for _, v, _ in lines] + [a for b in bands for a in b[1:3]]
    (top, h), (lr_top, lr_h) = boxes
    ax_loss = _panel(top, h, x_range, _y_axis(top, h, loss_values, False), "loss (smoothed)")
    lr_axis = _y_axis(lr_top, lr_h, [v for _, v, _ in lr_lines], False)
    ax_lr = _panel(lr_top, lr_h, x_range, lr_axis, "learning rate")
    canvas.axes(ax_loss, x_labels=False)
    canvas.axes(ax_lr, x_labels=True)
    for grid, low, high, colour in bands:
        canvas.band(ax_loss, grid, low, high, colour, 0.18)
    for ax, drawn, w in ((ax_loss, lines, 1.4), (ax_lr, lr_lines, 1.0)):
        by_colour: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for s, v, colour in drawn:
            by_colour.setdefault(colour, []).append((s, v))
        for colour, series in by_colour.items():
            canvas.curves(ax, series, colour, w)
    canvas.hline(ax_loss, c.target, "#37474f", 0.9, dash="40 25")
    y = ax_loss.y.at(c.target)
    if ax_loss.top + 8 <= y <= ax_loss.bottom:
        label = f"target {fmt_num(c.target)}"
        canvas.text(label, ax_loss.left + 4, y - 3, size=LABEL_SIZE - 1, colour=INK)
    if not c.equal_length:
        for ax in (ax_loss, ax_lr):
            canvas.vline(ax, c.common_end, "#90a4ae", 1.0, dash="10 25")
    _x_label(canvas, ax_lr, "step")
    shown = list(range(len(values)))
    if len(values) > _LEGEND_ENTRIES:
        last = _LEGEND_ENTRIES - 1
        shown = sorted({round(i * (len(values) - 1) / last) for i in range(_LEGEND_ENTRIES)})
    legend = [(colours[i], _short(fmt_num(values[i]))) for i in shown]
    title = setting_name(key) if key is not None else "setting"
    n = len(c.measures)
    caption = f"Smoothed loss and learning rate of all {n} runs, coloured by "
    caption += f"{setting_name(key)}" if key is not None else "setting"
    if len(shown) < len(values):
        caption += f" (the legend shows {len(shown)} of its {len(values)} values)"
    if bands:
        caption += "; a setting with several seeds is its mean, with a band from the lowest to "
        caption += "the highest seed"
    if not c.equal_length:
        caption += f"; the dotted line marks the last common step ({c.common_end})"
    return Drawing(canvas.svg(), caption + ".", Legend(title, legend))


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_compare_html(c: Comparison, *, title: str = "Sweep comparison") -> str:
    """The comparison as one HTML document (no script, no external resources)."""
    n = len(c.measures)
    sub = f"{n} runs · " + ", ".join(_e(p) for p in c.report.paths)
    body = [f"<h1>{_e(title)}</h1><p class='sub'>{sub} · warmup-monitor {_e(__version__)}</p>"]
    body.append(f"<section><h2>Conclusion</h2><p><strong>{_e(c.conclusion)}</strong></p>")
    body.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in describe(c)) + "</ul>")
    head = [_e(h.lower()) for h in _columns(c)]
    rows = [[_e(cell) for cell in _row(c, e)] for e in c.entries]
    numeric = frozenset(range(len(head) - 1)) - _text_columns(c)
    body.append(_table(head, rows, numeric=numeric))
    drawn = comparison_figure(c)
    body.append(figure(drawn.svg, drawn.caption, drawn.legend.items, drawn.legend.title))
    body.append("</section>")
    run_head = ["run", "setting", "seed", "steps", "reached at", "final loss", "area", "verdict"]
    run_rows = [[_e(cell) for cell in _run_row(c, m)] for m in c.measures]
    body.append(
        "<section><h2>Runs</h2>"
        + _table(run_head, run_rows, numeric=frozenset({2, 3, 4, 5, 6}))
        + "</section>"
    )
    extra = list(c.notes) + [f"run '{rr.name}' was not read: {rr.error}" for rr in c.report.failed]
    if extra:
        items = "".join(f"<li>{_e(x)}</li>" for x in extra)
        body.append(f"<section><h2>Notes</h2><ul>{items}</ul></section>")
    return page(title, body)
