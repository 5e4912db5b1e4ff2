"""Data contracts before the first user: the `core.beforefirst` step that measures a
service's data-contract gates (`core.datagates`) once, at 0%, before any user sees it.

A new embedder that reads `features` must not go out on features that stopped arriving,
lost fields or changed shape: so before its group's first exposure, each of its
contract gates measures the feed its new version is about to read (the metric source
answers data metrics at 0%: the feed exists before anyone uses it). Every gate passing
its one measurement passes the step; a failed measurement fails the step, and the
group stays at 0% and follows `on_failure`, named with the gate's arithmetic (`gate
features:freshness on embedder failed before the first user: data_freshness@features
1h05m00s > max 15m00s ✗`). No data, or a metric source that errs, proves nothing
either way: the rollout pauses with the reason, and `resume` measures again.
"""

from __future__ import annotations

from core.datagates import contract_gates_of
from core.events import Measured
from core.evolve import evolve
from core.gates import GateRun
from core.plan import Plan
from core.state import Step
from core.tx import Tx
from core.verdict import explain

KIND = "data"


def data_steps(plan: Plan, members: tuple[str, ...], first: float) -> list[Step]:
    """One step per member whose new version reads a contract with checks."""
    out: list[Step] = []
    for service in members:
        gates = tuple(contract_gates_of(plan, service))
        if gates:
            out.append(Step(kind=KIND, service=service, name=f"data contracts ({', '.join(gates)})",
                            spec={"gates": gates}))
    return out


def start(tx: Tx, index: int, step: Step) -> None:
    """Measure every gate of the step now; the group waits for the answers."""
    runs = tuple(GateRun(service=step.service, gate=gate, next_at=None) for gate in step.spec["gates"])
    tx.groups[index] = evolve(tx.groups[index], gates=runs)
    tx.measure(index, list(range(len(runs))))
    tx.groups[index] = evolve(tx.groups[index], asking=tx.groups[index].gates[0].pending)


Decision = tuple[str, str]
"""(`passed` | `failed` | `wait`, why): what a measurement decides about the step."""


def judge(tx: Tx, index: int, run: GateRun, before: GateRun, event: Measured) -> Decision | None:
    """One of the step's measurements is in (`run` has recorded it): `failed` on a failure,
    `wait` on no data or an error (the rollout pauses), `passed` once every gate of the step
    measured successfully; None while answers are still out, or for a late answer."""
    group = tx.groups[index]
    if group.asking is None or tx.phase not in ("running", "paused"):
        return None  # the step was decided already (or the rollout ended)
    gate = tx.ctx.gates[run.gate]
    phase = run.samples[-1].phase if run.samples else None
    where = f"gate {run.gate} on {run.service}"
    if phase == "failed":
        return "failed", f"{where} failed before the first user: {explain(gate, before, event).text}"
    if phase != "successful":
        return "wait", f"{where} cannot judge before the first user: {explain(gate, before, event).text}"
    if all(r.samples and r.samples[-1].phase == "successful" for r in group.gates):
        tx.groups[index] = evolve(group, gates=())
        return "passed", ""
    return None
