"""Thinning and smoothing of long series for the HTML plots."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from warmup_monitor.render._plots import MAX_DRAWN, run_figure, smooth, thin
from warmup_monitor.report import Report, RunReport

from .conftest import healthy

_NS = "{http://www.w3.org/2000/svg}"


def test_thin_keeps_spikes_and_nan_stretches() -> None:
    """A 200k-point series drops to ~MAX_DRAWN points but keeps its spike and its NaN gap."""
    steps = np.arange(200_000)
    values = np.sin(steps / 1000.0)
    values[123_457] = 50.0
    values[150_000:160_000] = np.nan
    s, v = thin(steps, values)
    assert len(s) <= MAX_DRAWN + 10
    assert 123_457 in s and v[list(s).index(123_457)] == 50.0
    assert 150_000 in s and np.isnan(v[list(s).index(150_000)])
    assert np.all(np.diff(s) > 0)


def test_short_series_are_untouched() -> None:
    """A series below the limit is drawn as is."""
    steps = np.arange(10)
    values = np.linspace(1.0, 2.0, 10)
    s, v = thin(steps, values)
    assert s is steps and v is values


_VALUES = st.one_of(st.floats(-1e6, 1e6), st.just(np.nan), st.just(np.inf), st.just(-np.inf))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(0, 3000), elements=_VALUES))
def test_thin_and_smooth_never_raise(values: np.ndarray) -> None:
    """Any series (NaN, ±Inf, empty) thins to a subsequence; smoothing is NaN exactly where
    the input is not finite."""
    steps = np.arange(len(values))
    s, _ = thin(steps, values, limit=100)
    assert set(s.tolist()) <= set(steps.tolist())
    assert len(s) <= len(values)
    sm = smooth(values)
    assert len(sm) == len(values)
    np.testing.assert_array_equal(np.isnan(sm), ~np.isfinite(values))


def test_smooth_keeps_a_constant() -> None:
    """The debiased EMA of a constant is that constant from the first point on."""
    np.testing.assert_allclose(smooth(np.full(500, 3.0)), 3.0)


def test_report_overlay_draws_every_run_and_says_which_are_grey() -> None:
    """Twelve runs: the ten worst in colour, the other two in grey, and the caption says so; the
    legend (HTML beside the SVG) names the ten and counts the others."""
    from pathlib import Path

    from warmup_monitor.render._plots import MAX_COMPARED, comparison_figure
    from warmup_monitor.report import build_report

    sweep = Path(__file__).resolve().parents[1] / "fixtures" / "sweep"
    report = build_report([sweep])
    drawn = comparison_figure(report.worst_first())
    assert drawn is not None and MAX_COMPARED == 10
    assert drawn.caption.startswith(
        "Smoothed loss and learning rate of all 12 runs: the 10 worst in colour, the other 2 in "
        "grey"
    )
    assert drawn.svg.count("<svg") == 1
    labels = [label for _, label in drawn.legend.items]
    assert labels[:10] == [rr.name for rr in report.worst_first()[:10]]
    assert labels[10:] == ["2 other runs"]
    ET.fromstring(drawn.svg)


def _svg_elements(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{_NS}svg"
    return list(root.iter())


def test_run_figure_is_valid_svg_with_every_mark(single_report: Report) -> None:
    """The run's SVG parses as XML and holds its panels' curves, the NaN stretch, the warmup end
    and the numbered findings, with no text element, id or link."""
    rr = single_report.runs[0]
    svg = run_figure(rr)
    assert svg is not None
    elements = _svg_elements(svg)
    tags = {e.tag.removeprefix(_NS) for e in elements}
    assert tags <= {"svg", "path", "rect"}
    assert not any("id" in e.attrib or "href" in e.attrib for e in elements)
    colours = [e.get("stroke") for e in elements] + [e.get("fill") for e in elements]
    assert "#1a237e" in colours  # the smoothed loss
    assert "#00695c" in colours  # the LR and the dashed warmup end
    assert "#c62828" in colours  # NaN stretch and the critical finding
    assert "#ef8f00" in colours  # the warning finding's line and badge
    badges = [e for e in elements if e.tag == f"{_NS}rect"]
    assert len(badges) == 2  # findings 1 and 2, far apart


def test_a_million_point_run_draws_a_small_figure() -> None:
    """A 1M-point loss is drawn from about one point per pixel column: the SVG stays small, and
    its y axis still reaches the one spike (the thinning kept it)."""
    from pathlib import Path

    from warmup_monitor.points import Points
    from warmup_monitor.run import Run

    n = 1_000_000
    steps = np.arange(1, n + 1, dtype=np.int64)
    loss = 2.0 + np.exp(-steps / 50_000.0) + 0.05 * np.sin(steps)
    loss[654_321] = 900.0
    lr = np.minimum(steps / 10_000.0, 1.0) * 3e-4
    points = Points(
        ("loss", "learning_rate"),
        np.repeat(np.array([0, 1], np.int32), n),
        np.concatenate((steps, steps)),
        np.concatenate((loss, lr)),
        np.zeros(2 * n),
    )
    run = Run.from_points(points, name="long", path=Path("long"), source="tensorboard")
    svg = run_figure(RunReport("long", run.path, "tensorboard", run=run, diagnosis=healthy()))
    assert svg is not None and len(svg) < 120_000
    _svg_elements(svg)
    with_spike = svg
    loss[654_321] = 3.0
    points.values[654_321] = 3.0
    run = Run.from_points(points, name="long", path=Path("long"), source="tensorboard")
    without = run_figure(RunReport("long", run.path, "tensorboard", run=run, diagnosis=healthy()))
    assert without is not None and without != with_spike  # the spike moved the axis


def test_every_plot_word_has_a_glyph() -> None:
    """The words and number characters the plots draw all have a glyph."""
    from warmup_monitor.render._glyphs import GLYPHS

    words = "loss (smoothed) learning rate grad norm eval loss step warmup end raw NaN/Inf "
    words += "share of run (step / last step) target 0123456789.-+e, nan inf"
    assert set(words) <= set(GLYPHS)
