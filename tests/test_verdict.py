"""Every verdict explains itself: the arithmetic of one measurement, in words and numbers,
wherever an engineer reads it (headless lines, JSON lines, `log`, the rollback's reason)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.events import Measured
from core.gates import GateRun
from core.judges.analysis import sequential_test
from core.plan import Gate
from core.verdict import explain, of_sample
from tui.cli.main import main

REPO = Path(__file__).resolve().parent.parent


def _run(**gate: object) -> tuple[Gate, GateRun]:
    g = Gate(**gate)  # type: ignore[arg-type]
    return g, GateRun(service="ranker", gate="g", next_at=None, pending=1)


def test_a_baseline_threshold_says_value_baseline_change_and_bound() -> None:
    gate, run = _run(metric="latency_p99", compare="baseline", max_increase="15%", judge="threshold")
    bad = explain(gate, run, Measured(at=30, cmd_id=1, service="ranker", gate="g", value=189.2, baseline=155.5))
    assert bad.text == "latency_p99 189.2 ms vs baseline 155.5 ms: +21.7% > +15% ✗"
    assert bad.phase == "failed" and bad.data["change"] == pytest.approx(189.2 / 155.5 - 1)
    good = explain(gate, run, Measured(at=30, cmd_id=1, service="ranker", gate="g", value=160.0, baseline=155.5))
    assert good.text == "latency_p99 160.0 ms vs baseline 155.5 ms: +2.9% ≤ +15% ✓" and good.phase == "successful"


def test_an_absolute_threshold_and_no_data() -> None:
    gate, run = _run(metric="error_rate", max=0.01)
    bad = explain(gate, run, Measured(at=30, cmd_id=1, service="s", gate="g", value=0.052))
    assert bad.text == "error_rate 5.2% > max 1% ✗"
    none = explain(gate, run, Measured(at=30, cmd_id=1, service="s", gate="g", value=None))
    assert none.text == "error_rate: no data (no_data: inconclusive) ?" and none.phase == "inconclusive"


def test_mann_whitney_names_p_shift_and_interval() -> None:
    gate, run = _run(metric="latency_p99", judge="mann_whitney", max_increase="10%")
    base = [150.0 + i for i in range(10)]
    canary = [180.0 + i for i in range(10)]
    v = explain(gate, run, Measured(at=60, cmd_id=1, service="s", gate="g", canary_data=canary, baseline_data=base))
    assert v.phase == "failed" and v.text.endswith("✗")
    assert "Mann–Whitney p=" in v.text and "shift +30 ms" in v.text and v.data["ci"][0] > 0
    same = explain(gate, run, Measured(at=60, cmd_id=1, service="s", gate="g", canary_data=base, baseline_data=base))
    assert same.phase == "successful" and same.text.endswith("✓")


def test_a_sequential_verdict_counts_both_arms_and_says_which_bound_it_crossed() -> None:
    gate = Gate(metric="error_rate", judge="sequential", compare="baseline", max_increase="200%")
    run = GateRun(service="s", gate="g", next_at=None, pending=1, sprt=sequential_test(gate, True))
    event = Measured(at=5, cmd_id=1, service="s", gate="g", canary_data=[14, 2100], baseline_data=[3, 40000])
    v = explain(gate, run, event)
    assert v.text.startswith("errors 14/2,100 vs 3/40,000: log-LR ")
    assert v.text.endswith("crossed the rollback bound ✗") and v.phase == "failed"
    assert v.data["llr"] >= v.data["rollback_bound"]
    quiet = explain(gate, run, Measured(at=5, cmd_id=1, service="s", gate="g", canary_data=[0, 50],
                                        baseline_data=[1, 1000]))
    # no evidence against the canary yet: a successful look (Argo counts it), not a pass
    assert quiet.phase == "successful" and "log-LR" in quiet.text and quiet.text.endswith("✓")


def test_the_console_line_comes_from_what_the_state_keeps() -> None:
    from core.gates import record

    gate, run = _run(metric="latency_p99", compare="baseline", max_increase="10%", judge="threshold")
    after = record(gate, run, 30.0, 120.0, 100.0, None)
    assert of_sample(gate, after) == "latency_p99 120.0 ms vs baseline 100.0 ms: +20.0% > +10% ✗"


def _regression_plan(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "examples" / "recsys.yaml").read_text())
    data["services"]["api"]["sim"] = {"from": {"latency_ms": 50}, "to": {"latency_ms": 150}}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_rollback_names_the_measurement_and_every_printer_shows_the_arithmetic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, journal = _regression_plan(tmp_path), tmp_path / "j.db"
    assert main(["run", str(plan), "--headless", "--json", "--journal", str(journal)]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    measured = [o for o in lines if o.get("kind") == "measured"]
    assert measured and all({"cmd_id", "service", "gate", "value", "baseline"} <= set(o) for o in measured)
    judged = [o for o in measured if "verdict" in o]
    assert len(judged) == len(measured)
    failed = [o for o in judged if o["service"] == "api" and o["verdict"]["phase"] == "failed"]
    assert failed and failed[0]["gate"] == "latency"
    v = failed[0]["verdict"]
    assert v["value"] == failed[0]["value"] and v["baseline"] == failed[0]["baseline"]
    assert v["limit"] == pytest.approx(1.1 * v["baseline"]) and v["llr"] >= v["rollback_bound"]
    assert v["slow"] == failed[0]["canary_data"][0] and v["text"].endswith("crossed the rollback bound ✗")

    assert main(["log", "--journal", str(journal)]) == 0
    log = capsys.readouterr().out
    assert v["text"] in log
    reason = [line for line in log.splitlines() if "rollout rolling back" in line]
    assert reason and f"gate latency on api failed: {v['text']}" in reason[0]

    assert main(["run", str(plan), "--headless", "--journal", str(tmp_path / "k.db")]) == 1
    words = capsys.readouterr().out
    assert f"api: gate latency: {v['text']}" in words
    assert "rollout rolled back: gate latency on api failed: latency_p99 " in words
