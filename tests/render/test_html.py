"""The HTML renderer: self-contained, escaped, with the plots and the verdict of every run."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from warmup_monitor.render.html import render_html
from warmup_monitor.report import Report, RunReport

from .conftest import healthy, long_run, make_run, too_short

EVIL = "<script>alert(1)</script>"


def _evil_report() -> Report:
    run = make_run(
        f"run{EVIL}",
        loss_tag=f"loss/{EVIL}",
        config={"learning_rate": 3e-4, f"note{EVIL}": f"{EVIL}&'\""},
    )
    run.warnings.append(f"skipped record {EVIL}")
    d = too_short()
    finding = d.findings[0]
    evil_finding = type(finding)(
        kind=f"spike{EVIL}",
        severity=finding.severity,
        metric=f"loss/{EVIL}",
        step=finding.step,
        end_step=finding.end_step,
        message=f"spike in {EVIL}",
        evidence={"value": 8.0, f"tag{EVIL}": EVIL},
    )
    d = type(d)(
        verdict=d.verdict,
        confidence=d.confidence,
        summary=f"summary {EVIL}",
        schedule=d.schedule,
        findings=(evil_finding,),
        advice=d.advice,
    )
    rr = RunReport(run.name, Path(f"logs/{EVIL}"), "tensorboard", run=run, diagnosis=d)
    other = make_run("plain")
    plain = RunReport("plain", other.path, "tensorboard", run=other, diagnosis=healthy())
    broken = RunReport(f"b{EVIL}", Path("x"), "swanlab", error=f"bad {EVIL}")
    return Report(paths=(Path(f"logs/{EVIL}"),), runs=(rr, plain, broken))


def test_log_content_is_escaped_everywhere() -> None:
    """Run names, tags, config, messages and errors holding <script> never reach the page raw."""
    page = render_html(_evil_report())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "alert(1)" in page  # the text is shown, only escaped
    # Plot text is drawn as paths: no log text inside any SVG at all.
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        assert "alert" not in svg
        assert "<text" not in svg


def test_every_svg_parses_and_legends_are_escaped_html() -> None:
    """Each SVG of a page is well-formed XML; the comparison legend, which names runs, is HTML
    outside the SVG, escaped."""
    page = render_html(_evil_report())
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 3
    for svg in svgs:
        ET.fromstring(svg)
    legend = re.search(r'<div class="legend">(.*?)</div>', page, flags=re.S)
    assert legend is not None
    assert "run&lt;script&gt;alert(1)&lt;/script&gt;" in legend.group(1)


def test_page_is_self_contained(single_report: Report) -> None:
    """No remote URL, script, font or stylesheet; a CSP forbids them anyway."""
    page = render_html(single_report)
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page
    without_ns = re.sub(r'xmlns(:\w+)?="[^"]*"', "", page)
    without_ns = re.sub(r"<metadata>.*?</metadata>", "", without_ns, flags=re.S)
    assert not re.search(r"https?://", without_ns)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "@font-face" not in page


def test_run_section_has_verdict_plot_findings_and_advice(single_report: Report) -> None:
    """Each run shows its verdict, one SVG of its curves, the findings table and the advice."""
    page = render_html(single_report)
    assert "warmup_too_short · confidence 0.87 · first problem at step 25" in page
    assert page.count("<svg") == 1
    assert '<td class="nowrap">steps 25-30</td>' in page
    assert "value = 8.25<br>threshold = 4.1<br>baseline = 1.2" in page
    assert "Lengthen the warmup from 20 to 200 steps (10% of the run)" in page
    assert "warmup_steps: 20 -&gt; 200 (10% of 2000 total steps)" in page


def test_several_runs_get_a_summary_and_a_comparison_plot(multi_report: Report) -> None:
    """Several runs: a summary table, one comparison SVG and one SVG per readable run."""
    page = render_html(multi_report)
    assert "<h2>Summary</h2>" in page
    assert page.count("<svg") == 3  # comparison + two readable runs
    assert "error: corrupted record at byte 7" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "SVG ids must not collide across figures"


def test_rendering_is_deterministic(multi_report: Report) -> None:
    """The same report renders to the same bytes (fixed SVG hash salt, no timestamps)."""
    assert render_html(multi_report) == render_html(multi_report)


def test_long_run_plot_stays_small() -> None:
    """A 100k-step run is drawn from a display-sized curve: the page stays small (its speed is
    measured by the benchmarks, not here)."""
    run = long_run()
    rr = RunReport("long", run.path, "x", run=run, diagnosis=healthy())
    report = Report(paths=(Path("long"),), runs=(rr,))
    page = render_html(report)
    assert len(page) < 1_500_000
