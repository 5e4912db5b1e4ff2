"""`interlock report --html`: the post-rollout review as one self-contained HTML file.

No external assets: the styles are inline and every chart is an inline SVG (canary and
baseline as lines, the gate's limit dashed, failing measurements as red dots), so the
file can be attached to a ticket or opened from a mail and shows the same everywhere.
The same sections as the Markdown (`tui.report.markdown`), from the same `Report`.
"""

from __future__ import annotations

from html import escape

from core import format_duration
from tui import printer
from tui.report.markdown import GLYPH, moment
from tui.report.model import GateSeries, Point, Report, ServiceReport, StageRun
from tui.scorecard_text import summary_rows

WIDTH, HEIGHT, PAD = 360, 120, 28
DRAWN = 240
"""Measurements drawn per chart at most (about one per pixel and a half): a day-long stage
measured every 3 s has ~29,000, which would make the file tens of megabytes and draw no
better. Every failing measurement is drawn; the rest are picked evenly."""


def thinned(points: list[Point]) -> list[Point]:
    """At most about `DRAWN` of `points`, in order: every failing one, the others evenly spaced."""
    if len(points) <= DRAWN:
        return points
    step = len(points) / DRAWN
    keep = {int(i * step) for i in range(DRAWN)} | {len(points) - 1}
    return [p for i, p in enumerate(points) if i in keep or p.phase in ("failed", "error")]

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #1d232a; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 1px solid #ccd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; } th, td { border: 1px solid #ccd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f2f6; } td.time { white-space: nowrap; font-family: ui-monospace, monospace; }
.outcome { font-size: 1.2em; font-weight: bold; } .bad { color: #b3261e; } .good { color: #1e7b34; } .warn { color: #8a5a00; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; border: 1px solid #dde; padding: .4em; }
figcaption { font-size: .85em; max-width: 360px; }
svg.chart .canary { stroke: #2f6fdb; fill: none; stroke-width: 2; } svg.chart .baseline { stroke: #7a7f87; fill: none; stroke-width: 1.5; }
svg.chart .limit { stroke: #b3261e; fill: none; stroke-width: 1.5; stroke-dasharray: 5 3; } svg.chart .failed { fill: #b3261e; }
svg.chart .point { fill: #2f6fdb; } svg.chart .axis { stroke: #99a; } svg.chart text { font-size: 10px; fill: #445; }
.legend span { margin-right: 1em; } .legend .c { color: #2f6fdb; } .legend .b { color: #7a7f87; } .legend .l { color: #b3261e; }
"""

TONE = {"completed": "good", "promoted": "good", "passed": "good", "successful": "good",
        "rolled_back": "bad", "rolled back": "bad", "aborted": "bad", "failed": "bad", "error": "bad",
        "paused": "warn", "held": "warn", "inconclusive": "warn"}


def _tone(word: str) -> str:
    return TONE.get(word, "")


def _td(text: object, cls: str = "") -> str:
    return f'<td class="{cls}">{escape(str(text))}</td>' if cls else f"<td>{escape(str(text))}</td>"


def _table(head: list[str], rows: list[str], cls: str) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    thead = f"<thead><tr>{header}</tr></thead>" if any(head) else ""
    return f'<table class="{cls}">{thead}<tbody>{"".join(rows)}</tbody></table>'


def chart(report: Report, service: ServiceReport, stage: StageRun, series: GateSeries) -> str:
    """One gate at one stage: an inline SVG of canary, baseline and limit over the stage."""
    points = thinned(series.points)
    xs = [p.at for p in points]
    ys = [v for p in points for v in (p.value, p.baseline, *p.limits) if v is not None]
    start = stage.started
    end = max([stage.ended if stage.ended is not None else report.ended, *xs, start + 1.0])
    low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if high == low:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)

    def x(at: float) -> float:
        return round(PAD + (at - start) / (end - start) * (WIDTH - 2 * PAD), 1)

    def y(value: float) -> float:
        return round(HEIGHT - PAD / 2 - (value - low) / (high - low) * (HEIGHT - 1.5 * PAD), 1)

    def line(cls: str, pairs: list[tuple[float, float]]) -> str:
        if not pairs:
            return ""
        if len(pairs) == 1:
            pairs = [pairs[0], (pairs[0][0] + 0.001, pairs[0][1])]
        text = " ".join(f"{x(a)},{y(v)}" for a, v in pairs)
        return f'<polyline class="{cls}" points="{text}"/>'

    parts = [
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD / 2}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD / 2}"/>',
        f'<line class="axis" x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD / 2}"/>',
        f'<text x="2" y="{PAD + 4}">{escape(f"{high:.3g}")}</text>',
        f'<text x="2" y="{HEIGHT - PAD / 2}">{escape(f"{low:.3g}")}</text>',
        f'<text x="{PAD}" y="{HEIGHT - 2}">{escape(moment(report, start))}</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 2}" text-anchor="end">{escape(moment(report, end))}</text>',
    ]
    limit_count = max((len(p.limits) for p in points), default=0)
    for i in range(limit_count):
        parts.append(line("limit", [(p.at, p.limits[i]) for p in points if len(p.limits) > i]))
    parts.append(line("baseline", [(p.at, p.baseline) for p in points if p.baseline is not None]))
    parts.append(line("canary", [(p.at, p.value) for p in points if p.value is not None]))
    for p in points:
        if p.value is None:
            continue
        cls = "failed" if p.phase in ("failed", "error") else "point"
        r = 3.5 if cls == "failed" else 2
        parts.append(f'<circle class="{cls}" cx="{x(p.at)}" cy="{y(p.value)}" r="{r}"><title>'
                     f"{escape(moment(report, p.at))} {escape(p.text)}</title></circle>")
    title = f"{service.name} · {series.gate} at {stage.percent:g}%: {series.metric} {series.threshold}"
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-service="{escape(service.name)}" '
            f'data-gate="{escape(series.gate)}" data-stage="{stage.index + 1}" data-points="{len(series.points)}" '
            f'data-drawn="{len(points)}">'
            f"<title>{escape(title)}</title>{''.join(parts)}</svg>")


def service_section(report: Report, service: ServiceReport) -> str:
    old, new = service.versions
    phase = printer.words(service.phase)
    out = [f'<section class="service" data-service="{escape(service.name)}">',
           f'<h3>{escape(service.name)} {escape(old)} → {escape(new)} · '
           f'<span class="{_tone(service.phase)}">{escape(phase)}</span> · {service.exposure:g}%</h3>']
    if len(service.group) > 1:
        out.append(f"<p>Moves in lockstep with {escape(', '.join(n for n in service.group if n != service.name))}.</p>")
    if not service.stages:
        return "".join(out + ["<p>Never moved.</p></section>"])
    rows = []
    for stage in service.stages:
        lasted = format_duration((stage.ended if stage.ended is not None else report.ended) - stage.started)
        rows.append("<tr>" + _td(f"{stage.index + 1}/{stage.count}") + _td(f"{stage.percent:g}%")
                    + _td(moment(report, stage.started), "time") + _td(lasted, "time")
                    + _td(printer.words(stage.outcome), _tone(stage.outcome)) + "</tr>")
    out.append(_table(["stage", "percent", "began", "lasted", "outcome"], rows, "stages"))
    figures = []
    for stage in service.stages:
        for series in stage.gates.values():
            verdict = f"{GLYPH.get(series.outcome, '')} {printer.words(series.outcome)}"
            figures.append(
                f"<figure>{chart(report, service, stage, series)}<figcaption>stage {stage.index + 1} "
                f"({stage.percent:g}%) · <b>{escape(series.gate)}</b>: {escape(series.metric)} "
                f"{escape(series.threshold)} · {len(series.points)} measurements · "
                f'<span class="{_tone(series.outcome)}">{escape(verdict)}</span></figcaption></figure>')
    if figures:
        out.append('<p class="legend"><span class="c">━ canary</span><span class="b">━ baseline</span>'
                   '<span class="l">╍ limit</span><span class="l">● failing measurement</span></p>')
        out.append(f'<div class="charts">{"".join(figures)}</div>')
    return "".join(out + ["</section>"])


def render(report: Report) -> str:
    info, state = report.info, report.state
    outcome = printer.end_line(state).removeprefix("rollout ")
    title = f"Rollout report: {info.rollout} — {printer.words(report.phase)}"
    clock = info.clock + (f" ×{info.speed:g}" if info.clock == "real" else "") + f", seed {info.seed}"
    frozen = "".join(f", {phase} {format_duration(s)}" for phase, s in sorted(report.frozen_s.items()))
    facts = [("run", info.run_id), ("plan", info.plan_path), ("started", f"{info.created} by {info.operator or '—'}"),
             ("clock", clock), ("duration", format_duration(report.duration) + frozen)]
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="outcome {_tone(report.phase)}">{escape(outcome)}</p>',
            *(f"<p>{escape(note)}</p>" for note in report.notes),
            _table(["", ""], ["<tr>" + _td(k) + _td(v) + "</tr>" for k, v in facts], "facts"),
            "<h2>Timeline</h2>",
            _table(["time", "what happened"], ["<tr>" + _td(moment(report, at), "time") + _td(text) + "</tr>"
                                               for at, text in report.timeline], "timeline"),
            "<h2>Services</h2>",
            "<p>Each stage, and each gate's measurements at it against the limit the gate judged by.</p>"]
    body += [service_section(report, service) for service in report.services.values()]
    body += ["<h2>Decisions</h2>", _table(
        ["time", "who", "decision", "why"],
        ['<tr class="decision">' + _td(moment(report, d.at), "time") + _td(d.who) + _td(d.what) + _td(d.why) + "</tr>"
         for d in report.decisions], "decisions")]
    body.append("<h2>Cascade</h2>")
    if report.cascade:
        body.append(_table(["order", "service", "from", "began", "back at 0%"], [
            "<tr>" + _td(i) + _td(c.service) + _td(f"{c.from_percent:g}%") + _td(moment(report, c.began), "time")
            + _td(moment(report, c.ended), "time") + "</tr>" for i, c in enumerate(report.cascade, 1)], "cascade"))
    else:
        body.append("<p>Nothing was rolled back.</p>")
    rows = ["<tr>" + _td("the rollout") + _td(moment(report, report.started), "time")
            + _td(moment(report, report.ended), "time") + _td(format_duration(report.duration), "time") + "</tr>"]
    for service in report.services.values():
        if service.first_exposed is None:
            continue
        end = service.settled if service.settled is not None else report.ended
        rows.append("<tr>" + _td(f"{service.name} ({printer.words(service.phase)})")
                    + _td(moment(report, service.first_exposed), "time") + _td(moment(report, service.settled), "time")
                    + _td(format_duration(end - service.first_exposed), "time") + "</tr>")
    rows += ["<tr>" + _td(f"{phase} (in all)") + _td("") + _td("") + _td(format_duration(s), "time") + "</tr>"
             for phase, s in sorted(report.frozen_s.items())]
    body += ["<h2>Durations</h2>", _table(["what", "from", "to", "lasted"], rows, "durations")]
    if report.scorecard is not None:
        card = report.scorecard
        verdict = "passed" if card.passed else "FAILED"
        body += [f"<h2>Drill scorecard: {escape(card.drill)} {verdict}</h2>",
                 f"<p>{escape(report.drill_context)}</p>",
                 _table(["measure", "value"], ["<tr>" + _td(k) + _td(v) + "</tr>" for k, v in summary_rows(card)],
                        "scorecard"),
                 _table(["expectation", "result", "detail"], [
                     '<tr class="expectation">' + _td(e.name) + _td("pass" if e.passed else "FAIL",
                                                                    "good" if e.passed else "bad")
                     + _td(e.detail) + "</tr>" for e in card.expectations], "expectations")]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
