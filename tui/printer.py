"""Events in words: one line each, for `run --headless`, `log` and the console's event log.

The same sentence everywhere, so what an engineer reads in CI output is what
the console showed at 3 a.m.
"""

from __future__ import annotations

from typing import Any


from adapters.journal_codec import encode_body

from core import format_duration, format_moment
from core import (
    Abandoned,
    NotificationSent,
    Adopted,
    CheckFinished,
    CommandFailed,
    Event,
    ExposureApplied,
    ExposureRead,
    FaultInjected,
    GateMisconfigured,
    Measured,
    MirrorApplied,
    OperatorAction,
    MeasurementGap,
    Resumed,
    RolloutStarted,
    Tick,
)
from core import verdict_of_event
from core import Gate, Record, RolloutState


def clock_text(state: RolloutState, at: float) -> str:
    """`T+ 25m30s`, `T+ 2h06m10s`: the one way a moment of a run is written (right-aligned
    for the usual lengths, always a space after `T+`)."""
    start = state.started_at if state.started_at is not None else at
    return format_moment(at - start, width=6)


def words(phase: str) -> str:
    """A phase as people read it (`rolled back`, `awaiting approval`). Human output only:
    JSON keeps the phase names (`rolled_back`), which are a contract."""
    return phase.replace("_", " ")


def _value(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _data(event: Measured, state: RolloutState) -> str:
    """Samples, counts or histograms in a few words, by the gate's judge."""
    gate = state.ctx.gates.get(event.gate)
    judge = gate.judge if gate is not None else ""
    canary, baseline = event.canary_data or [], event.baseline_data or []
    if judge == "sequential":
        text = f"{canary[0]:g} errors in {canary[1]:g} requests" if len(canary) >= 2 else "no data"
        if len(baseline) >= 2:
            text += f" (baseline {baseline[0]:g} in {baseline[1]:g})"
        return text
    if judge == "drift":
        return f"prediction histograms of {sum(canary):g} and {sum(baseline):g} (baseline) predictions"
    if not canary or not baseline:
        return "no data"
    return (
        f"{len(canary)} points, median {_median(canary):.4g} "
        f"(baseline {len(baseline)} points, median {_median(baseline):.4g})"
    )


def _measured(event: Measured, state: RolloutState, before: RolloutState | None) -> str:
    gate = state.ctx.gates.get(event.gate)
    head = f"{event.service}: gate {event.gate}" + (" (dry run)" if gate is not None and gate.dry_run else "")
    if event.error is not None:
        text = f"{head} measurement error: {event.error}"
    elif event.canary_data is not None or event.baseline_data is not None:
        text = f"{head}: {_data(event, state)}"
    elif event.baseline is not None:
        text = f"{head} = {_value(event.value)} (baseline {_value(event.baseline)})"
    else:
        text = f"{head} = {_value(event.value)}"
    found = verdict_of_event(before, event) if before is not None else None
    if found is None or event.error is not None:
        return text
    gate = state.ctx.gates.get(event.gate)
    if (event.canary_data is None and event.baseline_data is None) or (gate is not None and gate.judge == "quantile"):
        return f"{head}: {found.text}"  # the verdict names the value (and the baseline)
    return f"{text}; {found.text}"


def event_json(event: Event, before: RolloutState | None = None) -> dict[str, Any]:
    """An event as a JSON object; a measurement also carries its `verdict` (phase, text and
    the numbers behind it) when the state before it is known. Keys are only ever added."""
    out = event.to_dict()
    if before is not None and isinstance(event, Measured):
        found = verdict_of_event(before, event)
        if found is not None:
            out["verdict"] = found.to_json()
            gate = before.ctx.gates.get(event.gate)
            if gate is not None and gate.dry_run:
                out["verdict"]["dry_run"] = True
    return out


def describe(event: Event, state: RolloutState, before: RolloutState | None = None) -> str | None:
    """A sentence for the event, or None for events not worth a line (ticks).

    Given the state `before` the event, a measurement's line ends with its verdict and
    the arithmetic behind it (`core.verdict`)."""
    if isinstance(event, Tick):
        return None
    if isinstance(event, RolloutStarted):
        return f"rollout {event.rollout} started (seed {event.seed})"
    if isinstance(event, ExposureApplied):
        return f"{event.service}: {event.percent:g}% of traffic on the new version"
    if isinstance(event, MirrorApplied):
        if event.percent > 0:
            return f"{event.service}: {event.percent:g}% of live requests mirrored to the new version (shadow; no user sees it)"
        return f"{event.service}: mirror off"
    if isinstance(event, CommandFailed):
        return f"adapter failed (command {event.cmd_id}): {event.error}; holding"
    if isinstance(event, Measured):
        return _measured(event, state, before)
    if isinstance(event, ExposureRead):
        if event.error is not None:
            return f"read-back failed: {event.error}"
        if event.cmd_id and not (state.hold is not None and state.hold.differences):
            return None  # a read that agrees with the journal (a phase line says when a hold ends)
        readings = event.targets or event.exposures
        shown = ", ".join(f"{k.replace(':', ' ', 1)} {v:g}%" for k, v in sorted(readings.items()))
        return f"read back from adapters: {shown}"
    if isinstance(event, OperatorAction):
        target = f" {event.service}" if event.service else ""
        who = f" by {event.operator}" if event.operator else ""
        why = f": {event.reason}" if event.reason else ""
        return f"operator {event.action}{target}{who}{why}"
    if isinstance(event, FaultInjected):
        fault = {k: v for k, v in event.fault.items() if k not in ("cleared", "index")}
        what = ", ".join(f"{k}={v}" for k, v in sorted(fault.items()))
        return ("fault cleared: " if event.fault.get("cleared") else "fault injected: ") + what
    if isinstance(event, MeasurementGap):
        return (f"{event.service}: no measurement of gate {event.gate} for {event.at - event.since:.0f}s "
                "(a frozen process?); its bake starts over")
    if isinstance(event, Resumed):
        return f"resumed: {event.note}"
    if isinstance(event, GateMisconfigured):
        return f"{event.service}: gate {event.gate} cannot judge: {event.error}; holding"
    if isinstance(event, Adopted):
        found = ", ".join(f"{k.replace(':', ' ', 1)} {v:g}%" for k, v in sorted(event.targets.items()))
        return f"adopted by {event.operator or 'operator'} ({event.reason}): starts from {found}"
    if isinstance(event, CheckFinished):
        return check_line(event, state)
    if isinstance(event, NotificationSent):
        about = f"{event.trigger}" + (f" ({event.service})" if event.service else "")
        if event.ok:
            return f"notified {event.webhook}: {about}"
        tries = f" after {event.attempts} attempts" if event.attempts > 1 else ""
        return f"notification to {event.webhook} failed{tries}: {about}: {event.error}"
    if isinstance(event, Abandoned):
        instead = f"; run {event.by_run} takes its place" if event.by_run else ""
        return f"abandoned by {event.operator or 'operator'} ({event.reason}){instead}"
    return event.kind


def check_line(event: CheckFinished, state: RolloutState) -> str:
    """`ranker: pre-flight run pytest -q ✗ exit 1 (2 tries): 3 failed`, and for a confirm-*
    hook that keeps the service waiting, what it waits for and when it asks again."""
    tries = f" ({event.attempts} tries)" if event.attempts > 1 else ""
    line = f"{event.service or 'rollout'}: {event.check} {'✓' if event.passed else '✗'} {event.detail}{tries}"
    last = next((text for text in reversed(event.output.splitlines()) if text.strip()), "")
    if not event.passed and last:
        line += f": {last.strip()[:160]}"
    index = state.ctx.graph.group_of.get(event.service)
    if index is not None and not event.passed:
        group = state.groups[index]
        if group.phase in ("preparing", "confirming") and group.ask_at is not None:
            line += f"; asked again in {format_duration(max(0.0, group.ask_at - event.at))}"
    return line


def dry_run_verdicts(before: RolloutState, after: RolloutState) -> list[str]:
    """A dry-run gate's verdict when it is reached: nothing else would say it, since the
    rollout does not act on it (no phase changes)."""
    gates = after.ctx.gates
    if not any(gate.dry_run for gate in gates.values()):
        return []
    out = []
    for old, new in zip(before.groups, after.groups):
        was = {(r.service, r.gate): r.phase for r in old.gates} if old.stage == new.stage else {}
        for run in new.gates:
            if gates[run.gate].dry_run and run.phase != "running" and \
                    was.get((run.service, run.gate), "running") == "running":
                out.append(f"{run.service} gate {run.gate} {words(run.phase)} (dry run: shown, not acted on)")
    return out


def phase_line(before: RolloutState, after: RolloutState) -> str | None:
    """A line when the rollout's phase or a service's phase changed, or a dry-run gate decided."""
    parts = dry_run_verdicts(before, after)
    if before.effective_phase != after.effective_phase:
        why = f" ({after.reason or (after.hold.reason if after.hold else '')})"
        parts.append(f"rollout {words(after.effective_phase)}" + (why if why != " ()" else ""))
    for name in rollout_order(after):
        svc, old = after.services[name], before.services.get(name)
        if old is None or old.phase != svc.phase:
            waits = svc.phase in ("preparing", "confirming")
            reason = after.groups[after.group_of(name)].reason if waits else ""
            parts.append(f"{name} {words(svc.phase)}" + (f" ({reason})" if reason else ""))
    if after.window_note and after.window_note != before.window_note:
        parts.append(f"waiting for the change window: {after.window_note}")
    return "; ".join(parts) or None


def rollout_order(state: RolloutState) -> tuple[str, ...]:
    """The run's moving services in rollout order (the compiled graph's `order`, which the
    state's services are): how every human list of services is ordered."""
    return state.ctx.graph.order


def end_line(state: RolloutState) -> str:
    """`rollout rolled back: why`: the last line of `run`, `log`, `watch` and `status`."""
    return f"rollout {words(state.effective_phase)}" + (f": {state.reason}" if state.reason else "")


def service_table(state: RolloutState, indent: str = "  ") -> str:
    """Each service, in rollout order: name, phase in words, exposure (the end of `run`)."""
    from tui.cells import fit, width_of

    order = rollout_order(state)
    width = width_of(order)
    return "\n".join(
        f"{indent}{fit(name, width)}  {words(state.services[name].phase):<18} {state.services[name].exposure:g}%"
        for name in order
    )


def threshold_text(gate: Gate) -> str:
    """A gate's rule in a few symbols (`≤ baseline +10%`, `≤ 0.01`): the console's chart and
    detail pane, and the report."""
    if gate.compare == "baseline":
        parts = []
        if gate.max_increase is not None:
            parts.append(f"≤ baseline +{gate.max_increase:.0%}")
        if gate.max_decrease is not None:
            parts.append(f"≥ baseline −{gate.max_decrease:.0%}")
        return ", ".join(parts) or "vs baseline"
    parts = []
    if gate.max is not None:
        parts.append(f"≤ {gate.max:g}")
    if gate.min is not None:
        parts.append(f"≥ {gate.min:g}")
    return ", ".join(parts) or "no bound"


def summary(state: RolloutState) -> dict[str, Any]:
    """The `{"summary": ...}` object that ends `run --headless --json`."""
    return {
        "summary": {
            "phase": state.effective_phase,
            "services": {
                name: {"phase": svc.phase, "exposure": svc.exposure}
                for name, svc in sorted(state.services.items())
            },
        }
    }


def record_lines(record: Record, state: RolloutState, before: RolloutState, *, as_json: bool) -> list[str]:
    """A journal record as `log` and `events` print it: one JSON object (its `seq` and the
    event as `event_json` writes it), or its words and any phase change it made."""
    if as_json:
        return [json_line({"seq": record.seq, **event_json(record.event, before)})]
    lines = []
    line = describe(record.event, state, before)
    if line is not None:
        lines.append(f"{record.seq:>6}  {clock_text(state, record.event.at)}  {line}")
    change = phase_line(before, state)
    if change is not None:
        lines.append(f"{'':>6}  {clock_text(state, state.at)}  ▸ {change}")
    return lines


def json_line(obj: dict[str, Any]) -> str:
    """`json.dumps(obj, sort_keys=True, separators=(",", ":"))`, byte for byte: the
    journal's own encoder (orjson where that is exact, `adapters.journal_codec.encode_body`)."""
    return encode_body(obj)
