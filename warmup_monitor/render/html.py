"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Everything read from the logs (run names, tags, config values, messages) goes through
:func:`html.escape`; plots draw text as paths. A Content-Security-Policy forbids scripts and
remote loads, so even a mistake in escaping could not run code or phone home.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from detectors._types import Severity

from .. import __version__
from ..report import Report, RunReport, is_problem
from ._common import (
    advice_detail,
    evidence_items,
    fmt_num,
    fmt_percent,
    fmt_value,
    planned_total,
    run_notes,
    schedule_text,
    step_range,
    summary_row,
    verdict_of,
    warmup_end,
)

__all__ = ["render_html"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c2430;
 margin:0;background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:0 0 4px;word-break:break-all}
h3{font-size:14px;margin:18px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:#55606e}
.sub{color:#55606e;margin:0 0 16px} .meta{color:#55606e;margin:0 0 10px;word-break:break-all}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:18px 20px;margin:18px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceef1;vertical-align:top}
th{color:#55606e;font-weight:600} table.kv{width:auto;min-width:40%}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:3px 10px;border-radius:14px;font-weight:600;margin:4px 0 8px}
td .verdict{margin:0;padding:1px 8px;white-space:nowrap} td.num{white-space:nowrap}
figcaption{color:#55606e;font-size:12px}
.v-ok{background:#e3f4e5;color:#1b5e20} .v-warning{background:#fff3d6;color:#8a5300}
.v-critical{background:#fde2e1;color:#a11b1b} .v-quiet{background:#eceff1;color:#37474f}
.sev{font-weight:700;font-size:11px;text-transform:uppercase}
.sev-critical{color:#c62828} .sev-warning{color:#c77700} .sev-info{color:#1e88e5}
.num-badge{display:inline-block;min-width:16px;text-align:center;border-radius:8px;color:#fff;
 font-size:11px;padding:0 4px}
.bg-critical{background:#c62828} .bg-warning{background:#ef8f00} .bg-info{background:#1e88e5}
.err{color:#a11b1b} .msg{color:#37474f} code{font-size:12px} .meta code{word-break:break-all}
td.nowrap{white-space:nowrap}
figure{margin:12px 0} figure svg{width:100%;height:auto}
.legend{font-size:12px;color:#37474f;margin:2px 0 6px 6%;word-break:break-all}
.legend span{display:inline-block;margin:0 14px 2px 0} .legend b{font-weight:600;margin-right:10px}
.legend i{display:inline-block;width:18px;height:3px;margin:0 5px 3px 0;vertical-align:middle}
ul{margin:4px 0;padding-left:20px} details{margin-top:12px} summary{cursor:pointer;color:#55606e}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _verdict_class(rr: RunReport) -> str:
    d = rr.diagnosis
    if d is None:
        return "v-critical"
    if is_problem(d):
        return "v-critical" if rr.level is Severity.CRITICAL else "v-warning"
    if rr.level is Severity.CRITICAL:
        return "v-critical"
    return "v-ok" if verdict_of(d) == "healthy" else "v-quiet"


def _table(
    head: Iterable[str],
    rows: Iterable[Iterable[str]],
    numeric: frozenset[int] = frozenset(),
    nowrap: frozenset[int] = frozenset(),
) -> str:
    """A table from already-escaped cells."""
    ths = "".join(f"<th>{h}</th>" for h in head)
    body = []
    for row in rows:
        tds = "".join(
            f'<td class="num">{c}</td>'
            if i in numeric
            else (f'<td class="nowrap">{c}</td>' if i in nowrap else f"<td>{c}</td>")
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary_table(report: Report) -> str:
    rows = []
    # Sections are numbered in the order found; the table is sorted worst first.
    number = {id(rr): i for i, rr in enumerate(report.runs, start=1)}
    for rr in report.worst_first():
        row = summary_row(rr)
        link = f'<a href="#run-{number[id(rr)]}">{_e(row["run"])}</a>'
        if "error" in row:
            err = f'<span class="err">error: {_e(row["error"])}</span>'
            rows.append([link, _e(row["source"]), "-", err, "", "", "", ""])
            continue
        verdict = f'<span class="verdict {_verdict_class(rr)}">{_e(row["verdict"])}</span>'
        rows.append(
            [
                link,
                _e(row["source"]),
                _e(row["steps"]),
                verdict,
                _e(row["warmup"]),
                _e(row["peak_lr"]),
                _e(row["final_loss"]),
                _e(row["first_problem"]),
            ]
        )
    head = ["run", "source", "steps", "verdict", "warmup", "peak LR", "final loss", "first problem"]
    return _table(head, rows, numeric=frozenset({2, 4, 5, 6, 7}))


def _schedule_block(rr: RunReport) -> str:
    d = rr.diagnosis
    fit = d.schedule if d is not None else None
    if fit is None:
        return f"<p>{_e(schedule_text(None))}</p>"
    rows = [
        ("warmup steps", fmt_num(fit.warmup_steps)),
        ("warmup share of run", fmt_percent(fit.warmup_fraction)),
        ("warmup shape", fit.warmup_shape),
        ("warmup ends at step", fmt_num(warmup_end(fit))),
        ("peak LR", f"{fmt_num(fit.peak_lr)} at step {fit.peak_step}"),
        ("decay", fit.decay),
        ("decay floor", fmt_percent(fit.decay_floor) + " of the peak" if fit.decay_floor else "0"),
        (
            "decay starts at step",
            fmt_num(fit.decay_start) if fit.decay_start is not None else "the peak",
        ),
        ("total steps", fmt_num(fit.total_steps)),
        ("logged steps", f"{fit.first_step}-{fit.last_step}"),
    ]
    flags = []
    if not fit.reached_peak:
        flags.append("the LR never reached its peak")
    if fit.lr_never_moves:
        flags.append("the LR never moves")
    if fit.warmup_longer_than_run:
        flags.append("the warmup is longer than the run")
    flags.extend(fit.notes)
    out = f"<p>{_e(schedule_text(fit, planned_total(d)))}</p>"
    out += _table(["", ""], [[_e(k), _e(v)] for k, v in rows]).replace(
        "<table>", '<table class="kv">', 1
    )
    if flags:
        out += "<ul>" + "".join(f"<li>{_e(f)}</li>" for f in flags) + "</ul>"
    return out


def _findings_block(rr: RunReport) -> str:
    d = rr.diagnosis
    if d is None or not d.findings:
        return "<p>No findings.</p>"
    rows = []
    for n, f in enumerate(d.findings, start=1):
        sev = f.severity.value
        evidence = "<br>".join(f"{_e(k)} = {_e(v)}" for k, v in evidence_items(f))
        rows.append(
            [
                f'<span class="num-badge bg-{sev}">{n}</span>',
                f'<span class="sev sev-{sev}">{_e(sev)}</span>',
                _e(f.kind),
                f"<code>{_e(f.metric)}</code>",
                _e(step_range(f)),
                evidence,
                f'<span class="msg">{_e(f.message)}</span>',
            ]
        )
    head = ["#", "severity", "detector", "metric", "steps", "evidence", "message"]
    return _table(head, rows, nowrap=frozenset({4, 5}))


def _advice_block(rr: RunReport) -> str:
    d = rr.diagnosis
    if d is None or not d.advice:
        return ""
    items = []
    for a in d.advice:
        detail = advice_detail(a)
        extra = f'<br><span class="msg">{_e(detail)}</span>' if detail else ""
        items.append(f"<li>{_e(a.text)}{extra}</li>")
    return "<h3>Advice</h3><ul>" + "".join(items) + "</ul>"


def _config_block(config: Mapping[str, Any]) -> str:
    if not config:
        return ""
    rows = [[f"<code>{_e(k)}</code>", _e(fmt_value(v))] for k, v in sorted(config.items(), key=str)]
    table = _table(["key", "value"], rows)
    return f"<details><summary>Config ({len(rows)} keys)</summary>{table}</details>"


def _metrics_block(rr: RunReport) -> str:
    if rr.run is None or not rr.run.metric_map:
        return ""
    rows = [[_e(k), f"<code>{_e(v)}</code>"] for k, v in rr.run.metric_map.items()]
    return f"<details><summary>Metrics read</summary>{_table(['metric', 'tag'], rows)}</details>"


def _run_section(rr: RunReport, index: int) -> str:
    parts = [f'<section id="run-{index}"><h2>{_e(rr.name)}</h2>']
    status = f" · {rr.run.status}" if rr.run is not None else ""
    parts.append(f'<p class="meta">{_e(rr.source)} · <code>{_e(rr.path)}</code>{_e(status)}</p>')
    if rr.diagnosis is None:
        parts.append(
            f'<span class="verdict v-critical">error</span><p class="err">{_e(rr.error)}</p>'
        )
        parts.append("</section>")
        return "".join(parts)
    d = rr.diagnosis
    label = f"{verdict_of(d)} · confidence {d.confidence:.2f}"
    if d.first_problem_step is not None:
        label += f" · first problem at step {d.first_problem_step}"
    parts.append(f'<span class="verdict {_verdict_class(rr)}">{_e(label)}</span>')
    if d.summary:
        parts.append(f"<p>{_e(d.summary)}</p>")
    parts.append(_advice_block(rr))
    from ._plots import run_figure  # numpy/scipy: only for the HTML page

    svg = run_figure(rr)
    if svg is not None:
        parts.append(f'<figure aria-label="curves of {_e(rr.name)}">{svg}</figure>')
    parts.append("<h3>Findings</h3>" + _findings_block(rr))
    parts.append("<h3>Schedule</h3>" + _schedule_block(rr))
    notes = run_notes(rr)
    if notes:
        parts.append("<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append(_metrics_block(rr))
    if rr.run is not None:
        parts.append(_config_block(rr.run.config))
    parts.append("</section>")
    return "".join(parts)


def _loss_reading(window: int) -> str:
    if window == 1:
        return "training loss read as single steps"
    return f"training loss read as means over {window} steps"


def render_html(report: Report, *, title: str = "Warmup report") -> str:
    """The whole report as one HTML document (no external resources)."""
    n = len(report.runs)
    sub = f"{n} run{'s' if n != 1 else ''} · " + ", ".join(_e(p) for p in report.paths)
    if report.since is not None:
        sub += f" · points before step {report.since} ignored"
    if report.loss_window is not None:
        sub += f" · {_loss_reading(report.loss_window)}"
    body = [f"<h1>{_e(title)}</h1><p class='sub'>{sub} · warmup-monitor {_e(__version__)}</p>"]
    if n > 1:
        body.append(f"<section><h2>Summary</h2>{_summary_table(report)}")
        from ._plots import comparison_figure

        drawn = comparison_figure(report.worst_first())
        if drawn is not None:
            body.append(figure(drawn.svg, drawn.caption, drawn.legend.items, drawn.legend.title))
        body.append("</section>")
    number = {id(rr): i for i, rr in enumerate(report.runs, start=1)}
    body.extend(_run_section(rr, number[id(rr)]) for rr in report.worst_first())
    return page(title, body)


def figure(
    svg: str, caption: str, legend: Iterable[tuple[str, str]] = (), legend_title: str = ""
) -> str:
    """A plot with its legend and caption; the legend's labels (run names, settings) are HTML,
    escaped here, so that no text read from the logs is ever part of an SVG."""
    keys = "".join(
        f'<span><i style="background:{colour}"></i>{_e(label)}</span>' for colour, label in legend
    )
    if keys:
        head = f"<b>{_e(legend_title)}</b>" if legend_title else ""
        keys = f'<div class="legend">{head}{keys}</div>'
    return f"<figure>{svg}{keys}<figcaption>{_e(caption)}</figcaption></figure>"


def page(title: str, body: Iterable[str]) -> str:
    """One HTML document around already-escaped ``body`` parts: inline CSS, no script."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
