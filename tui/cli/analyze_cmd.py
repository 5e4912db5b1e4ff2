"""`interlock analyze PLAN GATE MEASUREMENTS.json`: would this gate have fired?

Exit 1 when the gate fails on them (it would have rolled back), 0 otherwise.
Replays recorded measurements (last week's incident, say) through one of the
plan's gates with exactly the judgement a live rollout uses.
"""

from __future__ import annotations

import json
from pathlib import Path

from core import analyze, render_text
from core import read_input, shown_path
from core import build_context, load_and_compile
from core import InputError, Problem


def analyze_main(plan_path: Path, gate_name: str, measurements: Path, *, as_json: bool) -> int:
    plan, graph, source = load_and_compile(plan_path)
    if gate_name not in plan.gates:
        known = ", ".join(sorted(plan.gates)) or "none"
        line, col = source.locate(("gates",))
        raise InputError([Problem(("gates", gate_name), f"no gate {gate_name!r} in the plan (gates: {known})",
                                  str(plan_path), line, col)])
    text = read_input(measurements, "the measurements")
    # The gate as the rollout runs it: an anytime-valid gate with its share of
    # `policy.false_rollbacks` (core.context), not the model's bare default alpha.
    gate = build_context(plan, graph).gates.get(gate_name, plan.gates[gate_name])
    replay = analyze(gate, text, file=shown_path(measurements))
    print(json.dumps(replay.to_json(), indent=2) if as_json else render_text(replay))
    return 1 if replay.phase == "failed" else 0  # the gate would have fired: a script's `if` can tell
