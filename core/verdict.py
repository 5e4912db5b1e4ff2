"""Every verdict explains itself: the arithmetic behind one measurement's judgement.

An on-call engineer reading "ranker rolled back" needs the number that did it and
the rule it broke: ``latency_p99 189.2 ms vs baseline 155.5 ms: +21.7% > +10% ✗``,
``Mann–Whitney p=0.003, shift +31 ms [18, 44] clears ±7.8 ms, ratio 1.21 ≥ 1.10 ✗``,
``errors 14/2,100 vs 3/40,000: SPRT log-LR 5.31 ≥ 4.60, crossed the rollback bound ✗``.

A verdict is a pure function of the gate, the gate's run *before* the measurement
and the measurement itself: it re-runs the very judgement the reducer ran
(`core.gates.record`), so the words can never disagree with what happened. Nothing
here is stored in the state: the printers, `interlock log`, the drill scorecard and
the reducer (for the reason a rollback or pause gives) ask for it when they need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import core.gates as gate_rules
from core.durations import format_duration
from core.events import Measured
from core.gates import GateRun
from core.judges.mixture import MixtureState
from core.plan import Gate
from core.state import RolloutState

GLYPH = {"successful": "✓", "failed": "✗", "inconclusive": "?", "error": "!", "ignored": "–", "continue": "…"}


@dataclass(frozen=True)
class Verdict:
    """One measurement's judgement in words and in numbers."""

    phase: str
    """successful, failed, inconclusive, error, ignored, or continue (a sequential test
    still collecting evidence)."""
    text: str
    """The arithmetic, ending in the verdict's glyph."""
    data: dict[str, Any] = field(default_factory=dict)
    """The numbers in the text, by name (for JSON lines and scripts)."""

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "text": self.text, **self.data}


def unit_of(metric: str) -> str:
    return "ms" if metric.startswith("latency") else ""


def fmt(metric: str, value: float | None) -> str:
    """A metric's value as a person reads it: latencies in ms, error rates in percent."""
    if value is None or value != value:
        return "no data"
    if metric.startswith("latency"):
        return f"{value:.1f} ms" if abs(value) < 1000 else f"{value:,.0f} ms"
    if metric == "error_rate":
        return f"{value * 100:.3g}%"
    if metric.startswith("data_"):  # a data contract's check (`core.datagates`)
        base = metric.partition("@")[0]
        if base == "data_freshness":
            return format_duration(value)
        if base in ("data_missing", "data_invalid"):
            return f"{value * 100:.3g}%"
        if base == "data_volume":
            return f"{value:,.0f} rows"
    return f"{value:.4g}"


def _count(n: float) -> str:
    return f"{int(n):,}"


def _threshold(gate: Gate, phase: str | None, value: float | None, baseline: float | None) -> tuple[str, dict[str, Any]]:
    m = gate.metric
    data: dict[str, Any] = {"metric": m, "value": value}
    if value is None or value != value or (gate.compare == "baseline" and (baseline is None or baseline != baseline)):
        data["no_data"] = gate.no_data
        return f"{m}: no data (no_data: {gate.no_data})", data
    if gate.compare == "baseline":
        assert baseline is not None
        data["baseline"] = baseline
        head = f"{m} {fmt(m, value)} vs baseline {fmt(m, baseline)}"
        if baseline == 0:
            change_text = "baseline 0"
            change = math.inf if value > 0 else 0.0
        else:
            change = value / baseline - 1.0
            change_text = f"{change:+.1%}"
        data["change"] = change
        checks = []
        if gate.max_increase is not None:
            data["max_increase"] = gate.max_increase
            over = value > baseline * (1.0 + gate.max_increase)
            checks.append((over, f"{change_text} {'>' if over else '≤'} +{gate.max_increase:.0%}"))
        if gate.max_decrease is not None:
            data["max_decrease"] = gate.max_decrease
            under = value < baseline * (1.0 - gate.max_decrease)
            checks.append((under, f"{change_text} {'<' if under else '≥'} −{gate.max_decrease:.0%}"))
        shown = [t for broke, t in checks if broke] or [t for _, t in checks] or [change_text]
        return f"{head}: {shown[0]}", data
    checks = []
    if gate.max is not None:
        data["max"] = gate.max
        checks.append((value > gate.max, f"{fmt(m, value)} {'>' if value > gate.max else '≤'} max {fmt(m, gate.max)}"))
    if gate.min is not None:
        data["min"] = gate.min
        checks.append((value < gate.min, f"{fmt(m, value)} {'<' if value < gate.min else '≥'} min {fmt(m, gate.min)}"))
    broke = [t for b, t in checks if b]
    if broke:
        return f"{m} {broke[0]}", data
    if phase in ("inconclusive", "failed"):
        data.update(pass_max=gate.pass_max, pass_min=gate.pass_min)
        bounds = " and ".join(
            f"{'≤' if k == 'max' else '≥'} {fmt(m, v)}"
            for k, v in (("max", gate.pass_max), ("min", gate.pass_min)) if v is not None
        )
        if phase == "failed":  # only success bounds: a miss fails, as in Argo
            return f"{m} {fmt(m, value)}: misses the pass bound ({bounds}), and no failure bound is set", data
        return f"{m} {fmt(m, value)}: within the failure bound, not the pass bound ({bounds})", data
    if checks:
        return f"{m} " + ", ".join(t for _, t in checks), data
    return f"{m} {fmt(m, value)}", data


def _mann_whitney(gate: Gate, canary: Sequence[float], baseline: Sequence[float]) -> tuple[str, dict[str, Any]]:
    from core.judges.mann_whitney import TOLERANCE
    from core.judges.measure import mann_whitney_result

    m = gate.metric
    r = mann_whitney_result(gate, canary, baseline)  # the very test the gate's phase came from
    data: dict[str, Any] = {
        "metric": m, "test": "mann_whitney", "p": r.p_value, "shift": r.hl_estimate,
        "ci": [r.ci_low, r.ci_high], "ratio": r.ratio, "confidence": gate.confidence,
        "canary_n": len(canary), "baseline_n": len(baseline),
    }
    if r.result == "NoData":
        return f"Mann–Whitney: {r.reason}", data
    unit = unit_of(m)
    u = f" {unit}" if unit else ""
    band = TOLERANCE * abs(r.hl_estimate)
    text = (
        f"{m} Mann–Whitney p={r.p_value:.3g}, shift {r.hl_estimate:+.3g}{u} "
        f"[{r.ci_low:.3g}, {r.ci_high:.3g}] ({gate.confidence:.0%})"
    )
    if r.result == "High":
        text += f" above +{band:.3g}{u}, ratio {r.ratio:.3g} ≥ {1 + (gate.max_increase or 0):.3g}"
    elif r.result == "Low":
        text += f" below −{band:.3g}{u}, ratio {r.ratio:.3g} ≤ {1 - (gate.max_decrease or 0):.3g}"
    elif r.ci_low > band or r.ci_high < -band:
        text += f", ratio {r.ratio:.3g} within the allowed change"
    else:
        text += " includes no significant shift"
    return text, data


def _mixture(gate: Gate, state: Any) -> tuple[str, dict[str, Any]]:
    """An anytime-valid test: the counts so far and the mixture's evidence against its bound."""
    data: dict[str, Any] = {
        "metric": gate.metric, "test": f"mixture_{state.kind}", "llr": state.llr, "rollback_bound": state.bound,
        "alpha": state.alpha,
    }
    if state.kind == "ratio":
        data.update(errors=state.errors, requests=state.requests, baseline_errors=state.baseline_errors,
                    baseline_requests=state.baseline_requests)
        counts = (f"errors {_count(state.errors)}/{_count(state.requests)} vs "
                  f"{_count(state.baseline_errors)}/{_count(state.baseline_requests)}")
    else:
        data.update(slow=state.errors, requests=state.requests, allowed=state.null)
        counts = (f"{_count(state.errors)}/{_count(state.requests)} canary requests slower than the limit "
                  f"(allowed {state.null * 100:.3g}%)")
    if state.crossed:
        tail = f"log-LR {state.llr:.2f} ≥ {state.bound:.2f} (α {state.alpha:.2g}), crossed the rollback bound"
    else:
        tail = f"log-LR {state.llr:.2f} < {state.bound:.2f} (α {state.alpha:.2g})"
    return f"{counts}: {tail}", data


def _quantile(gate: Gate, event: Measured, state: Any) -> tuple[str, dict[str, Any]]:
    m = gate.metric
    data: dict[str, Any] = {"metric": m, "value": event.value, "baseline": event.baseline}
    head = f"{m} {fmt(m, event.value)} vs baseline {fmt(m, event.baseline)}"
    canary = event.canary_data or []
    if len(canary) < 3:
        text, more = _threshold(gate, None, event.value, event.baseline)
        return text, {**data, **more}
    limit = canary[2]
    data["limit"] = limit
    if state is None:
        base_n = (event.baseline_data or [0])[0]
        data["baseline_requests"] = base_n
        return f"{head}: baseline too small to place its quantile ({_count(base_n)} requests), no evidence", data
    text, more = _mixture(gate, state)
    return f"{head}, limit {fmt(m, limit)}; {text}", {**data, **more}


def _sequential(gate: Gate, state: Any) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {
        "metric": gate.metric, "test": "sprt", "llr": state.llr, "rollback_bound": state.upper,
        "pass_bound": state.lower, "errors": state.errors, "requests": state.requests,
    }
    if state.two_sample:
        data.update(baseline_errors=state.baseline_errors, baseline_requests=state.baseline_requests,
                    ratio_h1=state.p1)
        counts = (f"errors {_count(state.errors)}/{_count(state.requests)} vs "
                  f"{_count(state.baseline_errors)}/{_count(state.baseline_requests)}")
    else:
        data.update(p0=state.p0, p1=state.p1)
        counts = f"errors {_count(state.errors)}/{_count(state.requests)} (pass {state.p0:.3%}, fail {state.p1:.3%})"
    if state.decision == "accept_h1":
        tail = f"SPRT log-LR {state.llr:.2f} ≥ {state.upper:.2f}, crossed the rollback bound"
    elif state.decision == "accept_h0":
        tail = f"SPRT log-LR {state.llr:.2f} ≤ {state.lower:.2f}, crossed the pass bound"
    else:
        tail = f"SPRT log-LR {state.llr:.2f} between {state.lower:.2f} and {state.upper:.2f}"
    return f"{counts}: {tail}", data


def explain(gate: Gate, run: GateRun, event: Measured) -> Verdict:
    """The verdict on `event` for a gate whose run stood at `run` before it."""
    after = gate_rules.record(
        gate, run, event.at, event.value, event.baseline, event.error,
        canary_data=event.canary_data, baseline_data=event.baseline_data,
    )
    sample = after.samples[-1]
    phase: str = sample.phase or "ignored"
    if event.error is not None:
        return Verdict("error", f"{gate.metric}: measurement error: {event.error} !", {"metric": gate.metric})
    if gate.judge == "quantile":
        crossed = isinstance(after.sprt, MixtureState) and after.sprt.crossed
        changed = after.sprt if after.sprt is not run.sprt or crossed else None
        text, data = _quantile(gate, event, changed)
    elif gate.judge == "sequential" and isinstance(after.sprt, MixtureState) and after.sprt is not run.sprt:
        text, data = _mixture(gate, after.sprt)
    elif gate.judge == "sequential" and after.sprt is not None and after.sprt is not run.sprt:
        text, data = _sequential(gate, after.sprt)
        phase = {"accept_h1": "failed", "accept_h0": "successful"}.get(after.sprt.decision, "continue")
    elif gate.judge == "mann_whitney" and event.canary_data and event.baseline_data:
        text, data = _mann_whitney(gate, event.canary_data, event.baseline_data)
    elif gate.judge == "drift" and sample.value is not None:
        name = "JS divergence" if gate.divergence == "js" else "PSI"
        flat = gate.model_copy(update={"compare": None})
        text, data = _threshold(flat, phase, sample.value, None)
        text = text.replace(gate.metric, f"{gate.metric} {name}", 1)
        data["divergence"] = gate.divergence
    elif gate.judge == "threshold":
        text, data = _threshold(gate, phase, event.value, event.baseline)
    else:
        text, data = f"{gate.metric}: no data (no_data: {gate.no_data})", {"metric": gate.metric}
    return Verdict(phase, f"{text} {GLYPH[phase]}", data)


def pending_run(state: RolloutState, cmd_id: int, service: str | None = None) -> GateRun | None:
    """The gate run waiting for measurement `cmd_id` (in the state before its answer).
    A measurement is asked for one service's gate, so that service's group is looked at
    first (a 1,000-service plan has 1,000 groups); a command id is pending in one run at
    most, so the answer is the one a scan of every group would give."""
    index = state.ctx.graph.group_of.get(service) if service is not None else None
    if index is not None:
        for run in state.groups[index].gates:
            if run.pending == cmd_id:
                return run
    for group in state.groups:
        for run in group.gates:
            if run.pending == cmd_id:
                return run
    return None


def of_event(before: RolloutState, event: Measured) -> Verdict | None:
    """The verdict on a measurement, given the state just before it was applied; None when
    no gate run was waiting for it (a late answer the reducer ignores)."""
    run = pending_run(before, event.cmd_id, event.service)
    gate = before.ctx.gates.get(event.gate)
    if run is None or gate is None:
        return None
    return explain(gate, run, event)


def of_sample(gate: Gate, run: GateRun) -> str | None:
    """The arithmetic of a run's latest measurement, from what the state keeps (for the
    console's gate table): exact for threshold, drift and sequential gates; a
    Mann–Whitney gate keeps only the two means of its samples."""
    if not run.samples:
        return None
    sample = run.samples[-1]
    phase: str = sample.phase or "ignored"
    if sample.error is not None:
        return f"measurement error: {sample.error} !"
    state = run.sprt
    if isinstance(state, MixtureState):
        m = gate.metric
        counts = (f"{fmt(m, sample.value)} vs {fmt(m, sample.baseline)}, slow {_count(state.errors)}/"
                  f"{_count(state.requests)}" if state.kind == "tail" else
                  f"errors {_count(state.errors)}/{_count(state.requests)} vs "
                  f"{_count(state.baseline_errors)}/{_count(state.baseline_requests)}")
        return f"{counts}; log-LR {state.llr:.1f} of {state.bound:.1f} {GLYPH[phase]}"
    if gate.judge == "sequential" and run.sprt is not None:
        text, _ = _sequential(gate, run.sprt)
        phase = {"accept_h1": "failed", "accept_h0": "successful"}.get(run.sprt.decision, "continue")
        return f"{text} {GLYPH[phase]}"
    if gate.judge == "mann_whitney":
        m = gate.metric
        return f"{m} mean {fmt(m, sample.value)} vs baseline {fmt(m, sample.baseline)} (Mann–Whitney) {GLYPH[phase]}"
    flat = gate if gate.judge == "threshold" else gate.model_copy(update={"compare": None})
    text, _ = _threshold(flat, phase, sample.value, sample.baseline)
    return f"{text} {GLYPH[phase]}"
