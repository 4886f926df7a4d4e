"""report.html: one self-contained file (inline CSS, inline SVG plots, no network), from the
report.json dict. The pass/fail table comes first, then each suite's plots.

Plots are drawn with matplotlib's SVG backend and embedded as text, so the file opens in
any browser offline and can be archived with the evidence of a prototype's test.
"""
from __future__ import annotations

import html
import io
import re

import matplotlib

matplotlib.use("svg")   # no display, no GUI toolkit: the bench runs on headless prototypes
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.rcParams["svg.hashsalt"] = "openbwc-bench"   # stable ids: two reports diff cleanly
matplotlib.rcParams["svg.fonttype"] = "none"            # text stays text (small, searchable)

_NAMESPACES = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{background:#d9f2d9}.fail{background:#f8d0d0}.skipped{background:#fff0c0}.info{background:#eef}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plot{border:1px solid #ddd;padding:4px}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}
"""


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _break_gaps(points: list) -> tuple[list, list]:
    """x and y with a break (NaN) wherever x jumps by over 20 median steps: a series sampled
    only inside events (A/V offset) must not draw a line across the time between them."""
    steps = sorted(b[0] - a[0] for a, b in zip(points, points[1:]) if b[0] > a[0])
    limit = 20 * steps[len(steps) // 2] if steps else float("inf")
    xs, ys = [], []
    for i, (x, y) in enumerate(points):
        if i and x - points[i - 1][0] > limit:
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.append(x)
        ys.append(y)
    return xs, ys


def series_svg(series: dict) -> str:
    """One plot as inline <svg> text (the XML prologue removed)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.0), dpi=100)
    points = series["points"]
    if series["kind"] == "histogram":
        values = [y for _, y in points]
        ax.hist(values, bins=min(40, max(5, len(values) // 3)), color="#4472c4")
        ax.set_xlabel(series["y_unit"])
        ax.set_ylabel("count")
    else:
        xs, ys = _break_gaps(points)
        ax.plot(xs, ys, color="#4472c4", linewidth=1.2, marker="." if len(points) < 60 else None)
        ax.set_xlabel(series["x_unit"])
        ax.set_ylabel(series["y_unit"])
    ax.set_title(series["title"], fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.StringIO()
    # No metadata block: its RDF namespaces are URLs, and the file must name none.
    fig.savefig(buf, format="svg", metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # Inline SVG in HTML needs no namespace declarations (the HTML parser supplies them).
    return _NAMESPACES.sub("", text, count=2)


def _threshold(fig: dict) -> str:
    t = fig["threshold"]
    if not t:
        return ""
    bounds = [f"&ge; {t['min']:g}" if t["min"] is not None else "", f"&le; {t['max']:g}" if t["max"] is not None else ""]
    return f"{_esc(t['stat'])} " + " and ".join(b for b in bounds if b)


def _table(report: dict) -> str:
    rows = []
    for suite in report["suites"]:
        if suite["error"]:
            rows.append(f"<tr class='fail'><td>{_esc(suite['suite'])}</td><td colspan='9'>suite failed: "
                        f"{_esc(suite['error'])}</td><td>fail</td></tr>")
        for fig in suite["figures"]:
            s = fig["stats"]
            peer = f"{_esc(fig['peer'])}: {_fmt((fig['peer_stats'] or {}).get('median'))}" if fig["peer"] else ""
            rows.append(
                f"<tr class='{_esc(fig['verdict'])}'><td>{_esc(suite['suite'])}</td>"
                f"<td title='{_esc(fig['description'])}'>{_esc(fig['name'])}</td><td>{_esc(fig['unit'])}</td>"
                f"<td class='num'>{_fmt(s.get('median'))}</td><td class='num'>{_fmt(s.get('spread'))}</td>"
                f"<td class='num'>{_fmt(s.get('p99'))}</td><td class='num'>{s.get('n', 0)}</td>"
                f"<td>{peer}</td><td class='num'>{_fmt(fig['ratio'])}</td><td>{_threshold(fig)}</td>"
                f"<td>{_esc(fig['verdict'])}{(': ' + _esc(fig['note'])) if fig['note'] else ''}</td></tr>")
    head = ("<tr><th>suite</th><th>figure</th><th>unit</th><th>median</th><th>spread</th><th>p99</th><th>n</th>"
            "<th>peer (median)</th><th>ratio</th><th>threshold</th><th>verdict</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render(report: dict) -> str:
    m = report.get("machine", {})
    a = report["arguments"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bwc bench: {_esc(report['verdict'])}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>bwc bench run: {_esc(report['verdict'])} (exit {report['exit_code']})</h1>",
             f"<p>{_esc(report['started_utc'])}, {report['duration_s']} s; suites {_esc(' '.join(a['suites']))}, "
             f"hal {_esc(a['hal'])}, seed {a['seed']}, {'reduced' if a['reduced'] else 'full'}; "
             f"thresholds {_esc(a['thresholds'] or 'defaults')}</p>",
             f"<p>{_esc(m.get('cpu_model'))}, {m.get('cores')} cores, Python {_esc(m.get('python'))}, "
             f"kernel {_esc(m.get('kernel'))}; disk {m.get('disk_write_mb_s')} MB/s ({_esc(m.get('disk_probe'))})</p>",
             _table(report)]
    for suite in report["suites"]:
        parts.append(f"<h2>{_esc(suite['suite'])} <small>({suite['duration_s']} s)</small></h2>")
        for note in suite["notes"]:
            parts.append(f"<pre>{_esc(note)}</pre>")
        plots = [f"<div class='plot'>{series_svg(s)}</div>" for s in suite["series"] if s["points"]]
        if plots:
            parts.append(f"<div class='plots'>{''.join(plots)}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(report))
