"""Inline SVG plots for the HTML report (matplotlib, no pyplot, no global backend state).

Text is drawn as paths (``svg.fonttype = "path"``), so nothing read from the logs ever lands in
the SVG as markup. Long series are thinned for drawing, keeping each bucket's extremes and every
non-finite point, so spikes and NaNs stay visible.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory
from scipy.signal import lfilter

from detectors._types import Finding, Severity

from ..report import RunReport, displayed_loss
from ._common import warmup_end

# Dates make two renders of the same data differ.
_NO_DATE = {".svg": {"Date": None}, ".png": {}}
# Points drawn per series; beyond this a series is thinned (min/max per bucket).
MAX_DRAWN = 1500

_SEVERITY_COLOUR = {
    Severity.CRITICAL: "#c62828",
    Severity.WARNING: "#ef8f00",
    Severity.INFO: "#1e88e5",
}
_RC = {
    "svg.fonttype": "path",
    # Fixed salt: the same report renders to the same bytes.
    "svg.hashsalt": "warmup-monitor",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_PANELS = (
    ("loss", "loss"),
    ("learning_rate", "learning rate"),
    ("grad_norm", "grad norm"),
    ("eval_loss", "eval loss"),
)
_NAME_LIMIT = 55
# Runs drawn in the comparison plot; more lines would be unreadable.
MAX_COMPARED = 10
# Stretches of NaN/Inf drawn per series; more would only blur into one band.
_MAX_STRETCHES = 200


def thin(
    steps: np.ndarray, values: np.ndarray, limit: int = MAX_DRAWN
) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``limit`` points of a series: each bucket's min and max, and the first
    point of every non-finite stretch (so the drawn line breaks there)."""
    n = len(values)
    if n <= limit:
        return steps, values
    buckets = max(1, limit // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    finite = np.isfinite(values)
    filled = np.where(finite, values, np.nan)
    # One NaN per non-finite stretch is enough to break the drawn line there.
    stretch_starts = np.flatnonzero(~finite & np.concatenate(([True], finite[:-1])))
    keep = [stretch_starts, np.array([0, n - 1])]
    for lo, hi in itertools.pairwise(edges.tolist()):
        if hi <= lo:
            continue
        chunk = filled[lo:hi]
        if np.isnan(chunk).all():
            continue
        keep.append(np.array([lo + np.nanargmin(chunk), lo + np.nanargmax(chunk)]))
    idx = np.unique(np.concatenate(keep))
    return steps[idx], values[idx]


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


def _scale(ax: Axes, values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")


def _mark_non_finite(ax: Axes, steps: np.ndarray, values: np.ndarray) -> None:
    """Shade each stretch of NaN/Inf points and put a cross at its start, along the top edge."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    edges = np.diff(np.concatenate(([0], bad.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    colour = _SEVERITY_COLOUR[Severity.CRITICAL]
    for a, b in zip(starts[:_MAX_STRETCHES], ends[:_MAX_STRETCHES], strict=True):
        if b > a:
            ax.axvspan(steps[a], steps[b], color=colour, alpha=0.10, lw=0)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.scatter(
        steps[starts[:_MAX_STRETCHES]],
        np.full(min(len(starts), _MAX_STRETCHES), 0.96),
        transform=trans,
        marker="x",
        color=colour,
        s=22,
        zorder=5,
        label="NaN/Inf",
        clip_on=False,
    )


def _mark_findings(axes: dict[str, Axes], findings: Sequence[Finding]) -> None:
    """A line (and a band for a range) per finding on its metric's panel, numbered as in the
    findings table; numbers of findings that start close together share one label."""
    labels: dict[int, list[tuple[float, list[str], Severity]]] = {}
    for number, f in enumerate(findings, start=1):
        ax = axes.get(f.metric) or axes.get("loss") or next(iter(axes.values()))
        colour = _SEVERITY_COLOUR[f.severity]
        if f.end_step is not None and f.end_step > f.step:
            ax.axvspan(f.step, f.end_step, color=colour, alpha=0.07, lw=0)
        ax.axvline(f.step, color=colour, lw=1.0, alpha=0.9)
        lo, hi = ax.get_xlim()
        near = 0.02 * (hi - lo)
        placed = labels.setdefault(id(ax), [])
        for i, (x, numbers, worst) in enumerate(placed):
            if abs(f.step - x) <= near:
                # The shared label takes the colour of its most severe finding.
                placed[i] = (x, [*numbers, str(number)], max(worst, f.severity))
                break
        else:
            placed.append((float(f.step), [str(number)], f.severity))
    for ax in axes.values():
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        for x, numbers, severity in labels.get(id(ax), []):
            ax.text(
                x,
                1.0,
                ",".join(numbers),
                transform=trans,
                color="white",
                fontsize=7,
                ha="center",
                va="bottom",
                bbox={"boxstyle": "round,pad=0.2", "fc": _SEVERITY_COLOUR[severity], "ec": "none"},
            )


def _to_svg(fig: Figure, prefix: str) -> str:
    buf = io.StringIO()
    FigureCanvasSVG(fig)
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # matplotlib keeps each drawn string in a comment (escaped); drop them so that no log
    # text at all ends up in the page's SVG.
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    # Several SVGs share one HTML document: give each its own id namespace.
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', text)
    # Scale with the page instead of a fixed size in points.
    text = re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 width="100%"', text, count=1
    )
    return text


def _figure(panels: int, panel: float = 1.6, extra_bottom: float = 0.0) -> Figure:
    # Fixed margins in inches: constrained layout would double the drawing time.
    top, bottom, width = 0.3, 0.5 + extra_bottom, 10.0
    height = panel * panels + top + bottom
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=0.85 / width,
        right=1 - 0.15 / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=0.18,
    )
    return fig


def run_figure(rr: RunReport, prefix: str = "run-") -> str | None:
    """The run's curves as one SVG (loss, LR, grad norm, eval loss), or ``None`` with no data.

    ``prefix`` is put before every SVG id so that several figures can share one HTML page.
    """
    present = [(key, label, s) for key, label in _PANELS if (s := _series(rr, key)) is not None]
    if not present:
        return None
    d = rr.diagnosis
    fit = d.schedule if d is not None else None
    end = warmup_end(fit) if fit is not None else None
    with matplotlib.rc_context(_RC):
        fig = _figure(len(present))
        axs = fig.subplots(len(present), 1, sharex=True, squeeze=False)[:, 0]
        axes: dict[str, Axes] = {}
        for ax, (key, label, (steps, values)) in zip(axs, present, strict=True):
            axes[key] = ax
            s, v = thin(steps, values)
            if key == "loss":
                ax.plot(s, v, color="#90a4ae", lw=0.8, label="raw")
                sm = smooth(values)
                ss, sv = thin(steps, sm)
                ax.plot(ss, sv, color="#1a237e", lw=1.6, label="smoothed")
            elif key == "eval_loss":
                ax.plot(s, v, color="#6a1b9a", lw=1.4, marker="o", ms=3)
            else:
                ax.plot(s, v, color="#00695c" if key == "learning_rate" else "#37474f", lw=1.2)
            if key != "learning_rate":
                _scale(ax, values)
            else:
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
            _mark_non_finite(ax, steps, values)
            ax.set_ylabel(label)
            if end is not None:
                ax.axvline(end, color="#00695c", ls="--", lw=1.0, alpha=0.8)
        if end is not None and "learning_rate" in axes:
            ax = axes["learning_rate"]
            trans = blended_transform_factory(ax.transData, ax.transAxes)
            ax.text(end, 0.04, " warmup end", transform=trans, color="#00695c", fontsize=8)
        if "loss" in axes:
            axes["loss"].legend(loc="best", fontsize=8, frameon=False)
        if d is not None and d.findings:
            _mark_findings(axes, d.findings)
        axs[-1].set_xlabel("step")
        return _to_svg(fig, prefix)


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
    with matplotlib.rc_context(_RC):
        fig = _figure(1, panel=3.2, extra_bottom=0.1)
        ax = fig.subplots()
        ax.plot(steps, lrs, color="#00695c", lw=1.6, label=label)
        if warmup > 0:
            ax.axvline(warmup, color="#00695c", ls="--", lw=1.0, alpha=0.8, label=warmup_label)
            ax.axvspan(0, warmup, color="#00695c", alpha=0.08, lw=0)
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
    with matplotlib.rc_context(_RC):
        fig.savefig(
            path, format=path.suffix.lower().lstrip("."), metadata=_NO_DATE[path.suffix.lower()]
        )


def _short(name: str) -> str:
    return name if len(name) <= _NAME_LIMIT else name[: _NAME_LIMIT - 1] + "…"


def comparison_figure(runs: Sequence[RunReport], prefix: str = "cmp-") -> tuple[str, str] | None:
    """Smoothed loss and LR of several runs on shared axes, with a caption saying what is drawn.

    Every run with a loss or LR is drawn: the first :data:`MAX_COMPARED` given (pass them worst
    first) in colour with a legend, the others as thin grey lines behind them, since more
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
    rows = (len(shown) + 1) // 2
    with matplotlib.rc_context(_RC):
        fig = _figure(2, panel=2.3, extra_bottom=0.2 * rows + 0.2)
        ax_loss, ax_lr = fig.subplots(2, 1, sharex=True)
        colours = matplotlib.colormaps["tab10"].colors
        all_loss = []
        grey: dict[str, list[np.ndarray]] = {"loss": [], "lr": []}
        for i, ((rr, loss, lr), length) in enumerate(zip(curves, lengths, strict=True)):
            scale = 1.0 / length if relative and length > 0 else 1.0
            if loss is not None:
                all_loss.append(loss[1])
            if i >= MAX_COMPARED:
                if loss is not None:
                    s, v = thin(loss[0], smooth(loss[1]), MAX_DRAWN // 4)
                    grey["loss"].append(np.column_stack([s * scale, v]))
                if lr is not None:
                    s, v = thin(*lr, MAX_DRAWN // 4)
                    grey["lr"].append(np.column_stack([s * scale, v]))
                continue
            colour = colours[i % len(colours)]
            label = _short(rr.name)
            if loss is not None:
                s, v = thin(loss[0], smooth(loss[1]))
                ax_loss.plot(s * scale, v, color=colour, lw=1.4, label=label, zorder=3)
                label = None
            if lr is not None:
                s, v = thin(*lr)
                ax_lr.plot(s * scale, v, color=colour, lw=1.2, label=label, zorder=3)
        others = len(curves) - len(shown)
        for ax, key in ((ax_loss, "loss"), (ax_lr, "lr")):
            if grey[key]:
                label = f"{others} other runs" if key == "loss" or not grey["loss"] else None
                lines = LineCollection(grey[key], colors="#b0bec5", linewidths=0.7, zorder=1)
                lines.set_label(label)
                ax.add_collection(lines)
                ax.autoscale_view()
        if all_loss:
            _scale(ax_loss, np.concatenate(all_loss))
        if len(positive) > 1 and max(positive) / min(positive) > 20:
            ax_lr.set_yscale("log")
        else:
            ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax_loss.set_ylabel("loss (smoothed)")
        ax_lr.set_ylabel("learning rate")
        ax_lr.set_xlabel("share of run (step / last step)" if relative else "step")
        fig.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
        svg = _to_svg(fig, prefix)
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
    return svg, caption + "."
