"""`interlock report --md`: the post-rollout review as Markdown (a ticket, a wiki, a PR).

The sections follow the review's questions: what happened when (timeline), how each
stage of each service measured against its gates (a text sparkline of the canary, the
baseline and the limit, with the verdict), who decided what and why, what the rollback
took back, how long everything took, and for a drill its scorecard.
"""

from __future__ import annotations

from core import format_duration, format_moment
from tui import printer
from tui.report.model import GateSeries, Report, ServiceReport
from tui.scorecard_text import render_markdown as scorecard_markdown

BARS = "▁▂▃▄▅▆▇█"
GLYPH = {"successful": "✓", "failed": "✗", "inconclusive": "?", "error": "!", "ignored": "·", "continue": "…"}


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def moment(report: Report, at: float | None) -> str:
    return "—" if at is None else format_moment(at - report.started)


def sparkline(series: GateSeries) -> str:
    """The canary's values as bars scaled with the baseline and limits, a failing one as ✗."""
    values = [p.value for p in series.points if p.value is not None]
    scale = values + [p.baseline for p in series.points if p.baseline is not None]
    scale += [limit for p in series.points for limit in p.limits]
    if not values:
        return "no data"
    low, high = min(scale), max(scale)
    span = (high - low) or 1.0
    out = []
    for point in series.points:
        if point.phase in ("failed", "error"):
            out.append("✗")
        elif point.value is None:
            out.append("·")
        else:
            out.append(BARS[min(len(BARS) - 1, int((point.value - low) / span * len(BARS)))])
    return "".join(out)


def _range(values: list[float]) -> str:
    if not values:
        return "—"
    low, high = min(values), max(values)
    return number(low) if low == high else f"{number(low)}–{number(high)}"


def gate_row(stage_label: str, series: GateSeries) -> str:
    canary = [p.value for p in series.points if p.value is not None]
    baseline = [p.baseline for p in series.points if p.baseline is not None]
    limit = [lim for p in series.points for lim in p.limits]
    verdict = f"{GLYPH.get(series.outcome, '')} {printer.words(series.outcome)}".strip()
    return (f"| {stage_label} | `{cell(series.gate)}` | {cell(series.metric)} {cell(series.threshold)} | "
            f"{len(series.points)} | {_range(canary)} | {_range(baseline)} | {_range(limit)} | "
            f"`{sparkline(series)}` | {verdict} |")


def service_section(report: Report, service: ServiceReport) -> list[str]:
    old, new = service.versions
    lines = [f"### {service.name} {old} → {new} · {printer.words(service.phase)} · {service.exposure:g}%", ""]
    if len(service.group) > 1:
        lines += [f"Moves in lockstep with {', '.join(n for n in service.group if n != service.name)}.", ""]
    if not service.stages:
        return lines + ["Never moved.", ""]
    lines += ["| stage | percent | began | lasted | outcome |", "|---|---|---|---|---|"]
    for stage in service.stages:
        lasted = format_duration((stage.ended if stage.ended is not None else report.ended) - stage.started)
        lines.append(f"| {stage.index + 1}/{stage.count} | {stage.percent:g}% | {moment(report, stage.started)} | "
                     f"{lasted} | {printer.words(stage.outcome)} |")
    lines += ["", "| stage | gate | rule | measurements | canary | baseline | limit | chart | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
    for stage in service.stages:
        for series in stage.gates.values():
            lines.append(gate_row(f"{stage.index + 1} ({stage.percent:g}%)", series))
    return lines + [""]


def render(report: Report) -> str:
    info, state = report.info, report.state
    lines = [f"# Rollout report: {info.rollout}", "",
             f"**{printer.end_line(state).removeprefix('rollout ')}**", "",
             *(line for note in report.notes for line in (note, "")),
             "| | |", "|---|---|",
             f"| run | `{cell(info.run_id)}` |",
             f"| plan | `{cell(info.plan_path)}` |",
             f"| started | {cell(info.created)} by {cell(info.operator or '—')} |",
             f"| clock | {info.clock}" + (f" ×{info.speed:g}" if info.clock == "real" else "") + f", seed {info.seed} |",
             f"| duration | {format_duration(report.duration)}" + "".join(
                 f", {phase} {format_duration(s)}" for phase, s in sorted(report.frozen_s.items())) + " |",
             "", "## Timeline", "", "| time | what happened |", "|---|---|"]
    lines += [f"| {moment(report, at)} | {cell(text)} |" for at, text in report.timeline]
    lines += ["", "## Services", "",
              "Each stage, and each gate's measurements at it: the canary's range, the baseline's, the limit "
              "the gate judged by, a sparkline of the canary (✗ a failing measurement) and the gate's verdict.", ""]
    for service in report.services.values():
        lines += service_section(report, service)
    lines += ["## Decisions", "", "| time | who | decision | why |", "|---|---|---|---|"]
    lines += [f"| {moment(report, d.at)} | {cell(d.who)} | {cell(d.what)} | {cell(d.why)} |" for d in report.decisions]
    lines += ["", "## Cascade", ""]
    if report.cascade:
        lines += ["| order | service | from | began | back at 0% |", "|---|---|---|---|---|"]
        lines += [f"| {i} | {cell(c.service)} | {c.from_percent:g}% | {moment(report, c.began)} | "
                  f"{moment(report, c.ended)} |" for i, c in enumerate(report.cascade, 1)]
    else:
        lines.append("Nothing was rolled back.")
    lines += ["", "## Durations", "", "| what | from | to | lasted |", "|---|---|---|---|",
              f"| the rollout | {moment(report, report.started)} | {moment(report, report.ended)} | "
              f"{format_duration(report.duration)} |"]
    for service in report.services.values():
        if service.first_exposed is None:
            continue
        end = service.settled if service.settled is not None else report.ended
        lines.append(f"| {cell(service.name)} ({printer.words(service.phase)}) | {moment(report, service.first_exposed)} "
                     f"| {moment(report, service.settled)} | {format_duration(end - service.first_exposed)} |")
    for phase, seconds in sorted(report.frozen_s.items()):
        lines.append(f"| {phase} (in all) | | | {format_duration(seconds)} |")
    if report.scorecard is not None:
        title, *card = scorecard_markdown(report.scorecard, report.drill_context).splitlines()
        lines += ["", "## Drill scorecard", "", f"**{title.removeprefix('# ')}**"]
        lines += ["#" + line if line.startswith("## ") else line for line in card]
    return "\n".join(lines).rstrip() + "\n"
