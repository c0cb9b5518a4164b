"""A comparison as one self-contained HTML page: ranking, conclusion, overlaid curves of every run.

Every run is drawn. Colour follows the varying setting on a sequential scale (viridis, in the
order of its values), so a sweep reads as a gradient rather than ten look-alike colours; a setting
with several seeds is drawn as its mean with a band from the lowest to the highest seed. The loss
drawn is the smoothed loss the measures were taken on.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import BoundaryNorm, ListedColormap

from detectors.progress import ProgressConfig, smooth

from .. import __version__
from ..compare import Comparison, Entry, RunMeasures, setting_name
from ..report import displayed_loss
from ._common import fmt_num
from ._plots import _RC, _figure, _to_svg, thin
from .compare import _columns, _row, _run_row, _text_columns, describe
from .html import _e, _table, page

__all__ = ["comparison_figure", "render_compare_html"]

# Points drawn per curve: 500 runs stay a light page.
_DRAWN = 400
# Points of the common grid a seed band is drawn on.
_BAND_POINTS = 200


def _colour_key(c: Comparison) -> tuple[str | None, list[Any]]:
    """The varying key colours follow (the first with numbers), and its values in order."""
    for key in c.varying:
        values = [e.setting.get(key) for e in c.entries]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return key, sorted(set(values))
    return None, [e.label for e in sorted(c.entries, key=lambda e: e.label)]


def _palette(n: int) -> list[Any]:
    # viridis without its last, palest tenth: every colour stays visible on white.
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]


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


def comparison_figure(c: Comparison, prefix: str = "cmp-") -> tuple[str, str]:
    """Loss (smoothed, as measured) and LR of every run, coloured by the varying setting."""
    key, values = _colour_key(c)
    colours = _palette(len(values))
    position = {v: i for i, v in enumerate(values)}

    def colour_of(e: Entry) -> Any:
        return colours[position[e.setting.get(key) if key is not None else e.label]]

    with matplotlib.rc_context(_RC):
        fig = _figure(2, panel=2.6, extra_bottom=0.1)
        # Room on the right for the colour bar and its labels (inches of a 10-inch figure).
        fig.subplots_adjust(right=1 - 1.6 / 10)
        ax_loss, ax_lr = fig.subplots(2, 1, sharex=True)
        lines: list[np.ndarray] = []
        line_colours: list[Any] = []
        lr_lines: list[np.ndarray] = []
        lr_colours: list[Any] = []
        finite_losses: list[float] = []
        bands = 0
        for e in c.entries:
            colour = colour_of(e)
            curves = [_smoothed(m, m.smooth_points) for m in e.runs]
            band = _band(curves) if len(e.runs) > 1 else None
            if band is not None:
                grid, mean, low, high = band
                ax_loss.fill_between(grid, low, high, color=colour, alpha=0.18, lw=0)
                lines.append(np.column_stack([grid, mean]))
                line_colours.append(colour)
                finite_losses += [float(np.nanmin(low)), float(np.nanmax(high))]
                bands += 1
            else:
                for s, v in curves:
                    s, v = thin(s, v, _DRAWN)
                    lines.append(np.column_stack([s, v]))
                    line_colours.append(colour)
                    if len(v):
                        finite_losses += [float(np.nanmin(v)), float(np.nanmax(v))]
            for m in e.runs:
                run = m.report.run
                if run is None or not run.has("learning_rate"):
                    continue
                s, v = run.series("learning_rate")
                s, v = thin(s, v.astype(np.float64), _DRAWN)
                lr_lines.append(np.column_stack([s, v]))
                lr_colours.append(colour)
        ax_loss.add_collection(LineCollection(lines, colors=line_colours, linewidths=1.4))
        if lr_lines:
            ax_lr.add_collection(LineCollection(lr_lines, colors=lr_colours, linewidths=1.0))
        ends = [m.last_step for m in c.measures]
        starts = [m.first_step for m in c.measures]
        ax_loss.set_xlim(min(starts), max(ends))
        if finite_losses:
            lo, hi = min(finite_losses), max(finite_losses)
            pad = 0.05 * (hi - lo or 1.0)
            ax_loss.set_ylim(lo - pad, hi + pad)
        ax_lr.autoscale_view()
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax_loss.axhline(c.target, color="#37474f", ls="--", lw=0.9)
        ax_loss.text(min(starts), c.target, f" target {fmt_num(c.target)}", va="bottom", fontsize=8)
        if not c.equal_length:
            for ax in (ax_loss, ax_lr):
                ax.axvline(c.common_end, color="#90a4ae", ls=":", lw=1.0)
        ax_loss.set_ylabel("loss (smoothed)")
        ax_lr.set_ylabel("learning rate")
        ax_lr.set_xlabel("step")
        cmap = ListedColormap(colours)
        norm = BoundaryNorm(np.arange(len(values) + 1) - 0.5, len(values))
        pars = fig.subplotpars
        cax = fig.add_axes((pars.right + 0.015, pars.bottom, 0.015, pars.top - pars.bottom))
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        shown = list(range(len(values)))
        if len(values) > 12:
            shown = sorted({round(i * (len(values) - 1) / 11) for i in range(12)})
        bar.set_ticks(shown)
        bar.set_ticklabels([_short(fmt_num(values[i])) for i in shown])
        bar.set_label(setting_name(key) if key is not None else "setting")
        svg = _to_svg(fig, prefix)
    n = len(c.measures)
    caption = f"Smoothed loss and learning rate of all {n} runs, coloured by "
    caption += f"{setting_name(key)}" if key is not None else "setting"
    if bands:
        caption += "; a setting with several seeds is its mean, with a band from the lowest to "
        caption += "the highest seed"
    if not c.equal_length:
        caption += f"; the dotted line marks the last common step ({c.common_end})"
    return svg, caption + "."


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
    svg, caption = comparison_figure(c)
    body.append(f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure></section>")
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
