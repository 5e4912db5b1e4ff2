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
from core import load_plan
from core import InputError, Problem


def analyze_main(plan_path: Path, gate_name: str, measurements: Path, *, as_json: bool) -> int:
    plan, source = load_plan(plan_path)
    if gate_name not in plan.gates:
        known = ", ".join(sorted(plan.gates)) or "none"
        line, col = source.locate(("gates",))
        raise InputError([Problem(("gates", gate_name), f"no gate {gate_name!r} in the plan (gates: {known})",
                                  str(plan_path), line, col)])
    text = read_input(measurements, "the measurements")
    replay = analyze(plan.gates[gate_name], text, file=shown_path(measurements))
    print(json.dumps(replay.to_json(), indent=2) if as_json else render_text(replay))
    return 1 if replay.phase == "failed" else 0  # the gate would have fired: a script's `if` can tell
