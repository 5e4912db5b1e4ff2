"""Retrospective analysis: recorded measurements replayed through a gate.

Judges beyond `threshold` are selected with `model_copy(update=...)` so
these tests do not depend on which judge fields `Gate` declares yet.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from core.gates import GateRun, record
from core.judges.analysis import analyze, parse_measurements, render_text, replay
from core.judges.sequential import calibrated_bounds
from core.plan import Gate
from core.problems import InputError


def gate(**fields: Any) -> Gate:
    judge = fields.pop("judge", None)
    extra = {k: fields.pop(k) for k in ("divergence", "alpha", "beta", "direction") if k in fields}
    g = Gate.model_validate({"metric": "m", **fields})
    return g.model_copy(update={**({"judge": judge} if judge else {}), **extra})


def run(g: Gate, items: list[Any]) -> dict[str, Any]:
    return analyze(g, json.dumps(items)).to_json()


def phases(result: dict[str, Any]) -> list[str]:
    return [m["phase"] for m in result["measurements"]]


def problems(g: Gate, text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        analyze(g, text, file="m.json")
    return [p.format() for p in info.value.problems]


# -- threshold gates ---------------------------------------------------------------


def test_threshold_replay_follows_core_gates_measurement_by_measurement() -> None:
    g = gate(max=0.01, failure_limit=1, count=8)
    items = [{"value": 0.001}, {"error": "timeout"}, {"value": 0.02}, {"value": 0.005}, {"value": 0.03}, {"value": 0.001}]
    direct, expected = GateRun(service="", gate="", next_at=None), []
    for i, item in enumerate(items[:5]):
        direct = record(g, direct, float(i), item.get("value"), None, item.get("error"))
        expected.append(direct.phase)
    result = run(g, items)
    assert phases(result) == expected + ["failed"]
    assert (result["phase"], result["decided_at"]) == ("failed", 4)
    assert [m["verdict"] for m in result["measurements"]] == [
        "successful", "error", "failed", "successful", "failed", "skipped",
    ]


def test_json_output_has_the_documented_shape() -> None:
    result = run(gate(max=0.01, count=2), [{"value": 0.001, "at": 30}, {"value": 0.002}])
    assert set(result) == {"phase", "decided_at", "measurements"}
    assert result["phase"] == "successful" and result["decided_at"] == 1
    assert result["measurements"][0]["index"] == 0 and result["measurements"][0]["at"] == 30
    assert "at" not in result["measurements"][1]


def test_a_gate_without_count_keeps_running_until_something_fails() -> None:
    result = run(gate(max=0.01), [{"value": 0.001}] * 5)
    assert (result["phase"], result["decided_at"]) == ("running", None)


def test_consecutive_errors_end_in_error_and_a_value_resets_the_streak() -> None:
    g = gate(max=0.01, consecutive_error_limit=2)
    err = {"error": "no data source"}
    assert run(g, [err, err, {"value": 0.0}, err, err])["phase"] == "running"
    result = run(g, [err, err, err, {"value": 0.0}])
    assert (result["phase"], result["decided_at"]) == ("error", 2)


def test_success_bounds_make_in_between_values_inconclusive() -> None:
    result = run(gate(max=0.05, pass_max=0.01), [{"value": 0.005}, {"value": 0.02}])
    assert phases(result) == ["running", "inconclusive"]


def test_missing_values_follow_no_data() -> None:
    assert run(gate(max=0.01, no_data="fail"), [{"value": None}])["phase"] == "failed"
    ignored = run(gate(max=0.01, no_data="ignore"), [{"value": None}])
    assert ignored["measurements"][0]["verdict"] == "ignored" and ignored["phase"] == "running"


def test_baseline_comparison_of_single_values() -> None:
    g = gate(compare="baseline", max_increase="10%")
    result = run(g, [{"value": 105, "baseline": 100}, {"value": 120, "baseline": 100}])
    assert phases(result) == ["running", "failed"]


# -- samples: Mann–Whitney ---------------------------------------------------------

BASE = [100.0, 102, 98, 101, 99, 100.5, 97, 103, 99.5, 100.2]


def test_samples_are_judged_by_mann_whitney() -> None:
    g = gate(compare="baseline", max_increase="10%")
    items = [
        {"canary": BASE[::-1], "baseline": BASE},
        {"canary": [v * 1.05 for v in BASE], "baseline": BASE},  # significant, but within 10%
        {"canary": [v * 1.3 for v in BASE], "baseline": BASE},
    ]
    result = run(g, items)
    assert [m["verdict"] for m in result["measurements"]] == ["successful", "successful", "failed"]
    assert result["decided_at"] == 2 and result["measurements"][2]["detail"].startswith("High")


def test_decrease_direction_comes_from_max_decrease() -> None:
    g = gate(compare="baseline", max_decrease="10%", judge="mann_whitney")
    assert run(g, [{"canary": [v * 1.5 for v in BASE], "baseline": BASE}])["phase"] == "running"
    assert run(g, [{"canary": [v * 0.5 for v in BASE], "baseline": BASE}])["phase"] == "failed"


def test_too_few_samples_is_no_data() -> None:
    few = {"canary": [1.0, 2, 3, 4], "baseline": [5.0, 6, 7, 8, 9]}
    assert run(gate(compare="baseline", max_increase=0.1, no_data="fail"), [few])["phase"] == "failed"
    assert run(gate(compare="baseline", max_increase=0.1, no_data="inconclusive"), [few])["phase"] == "inconclusive"


# -- histograms: drift -----------------------------------------------------------------


def test_drift_gate_bounds_the_psi_of_two_histograms() -> None:
    g = gate(judge="drift", max=0.2)
    same = {"canary": [10, 20, 30, 40], "baseline": [11, 19, 31, 39]}
    moved = {"canary": [40, 30, 20, 10], "baseline": [10, 20, 30, 40]}
    result = run(g, [same, moved])
    assert phases(result) == ["running", "failed"]
    assert result["measurements"][1]["detail"].startswith("PSI")


def test_drift_gate_can_use_jensen_shannon() -> None:
    g = gate(judge="drift", max=0.1, divergence="js")
    result = run(g, [{"canary": [40, 30, 20, 10], "baseline": [10, 20, 30, 40]}])
    assert result["phase"] == "failed" and result["measurements"][0]["detail"].startswith("JS")


# -- counts: sequential ------------------------------------------------------------------


def test_sequential_gate_fails_a_bad_canary_as_soon_as_the_evidence_suffices() -> None:
    g = gate(judge="sequential", max=0.01, pass_max=0.001)
    upper, _ = calibrated_bounds(0.001, 0.01, 0.01, 0.05)
    items = [{"errors": 1, "requests": 50}] * 10
    result = run(g, items)
    llr_after = [k * (math.log(10) + 49 * math.log(0.99 / 0.999)) for k in range(1, 11)]
    assert result["decided_at"] == next(i for i, llr in enumerate(llr_after) if llr >= upper)
    assert result["phase"] == "failed"
    assert result["measurements"][0]["verdict"] == "continue"


def test_sequential_gate_passes_a_clean_canary_early() -> None:
    result = run(gate(judge="sequential", max=0.01, pass_max=0.001), [{"errors": 0, "requests": 100}] * 10)
    assert result["phase"] == "successful" and result["decided_at"] is not None and result["decided_at"] < 9


def test_sequential_gate_compares_with_the_baseline() -> None:
    g = gate(judge="sequential", compare="baseline", max_increase="200%", alpha=0.01, beta=0.05)
    bad = {"canary": {"errors": 2, "requests": 50}, "baseline": {"errors": 1, "requests": 950}}
    good = {"canary": {"errors": 0, "requests": 50}, "baseline": {"errors": 1, "requests": 950}}
    assert run(g, [bad] * 10)["phase"] == "failed"
    # anytime-valid: a good canary never crosses; it passes when its count is in
    assert run(g, [good] * 40)["phase"] == "running"
    assert run(g.model_copy(update={"count": 40}), [good] * 40)["phase"] == "successful"


def test_sequential_gate_that_runs_out_of_count_is_inconclusive() -> None:
    g = gate(judge="sequential", max=0.01, pass_max=0.001, count=2)
    result = run(g, [{"errors": 0, "requests": 10}] * 3)
    assert phases(result) == ["running", "inconclusive", "inconclusive"]
    assert result["measurements"][2]["verdict"] == "skipped"


def test_sequential_gate_counts_consecutive_errors() -> None:
    g = gate(judge="sequential", max=0.01, consecutive_error_limit=1)
    assert run(g, [{"error": "x"}, {"error": "y"}])["phase"] == "error"


# -- bad input -----------------------------------------------------------------------------


def test_every_bad_item_is_reported_with_its_line_and_path() -> None:
    text = '[\n  {"value": "high"},\n  {"valu": 1},\n  {"canary": [1, "a"], "baseline": [2]},\n  7,\n  {"errors": 3, "requests": 2}\n]\n'
    assert problems(gate(max=0.01), text) == [
        'm.json:2:4: [0].value: expected a number, NaN or null, got "high"',
        "m.json:3:4: [1].valu: unknown field; expected one of value, baseline, error, canary, errors, requests, slow, baseline_requests, at",
        'm.json:4:4: [2].canary[1]: expected a number, got "a"',
        'm.json:5:3: [3]: expected an object: {"value": x}, {"error": "..."}, '
        '{"canary": [...], "baseline": [...]}, {"errors": e, "requests": n} '
        'or {"slow": k, "requests": n, "baseline_requests": m}',
        "m.json:6:3: [4]: errors and requests must be whole numbers with 0 <= errors <= requests",
    ]


def test_invalid_json_and_a_non_list_are_refused() -> None:
    assert problems(gate(max=0.01), '[{"value": 1},\n') == ["m.json:2:1: <root>: not valid JSON: Expecting value"]
    assert problems(gate(max=0.01), '  {"value": 1}') == ["m.json:1:3: <root>: expected a JSON list of measurements"]


def test_measurements_the_gate_cannot_judge_are_refused() -> None:
    seq = gate(judge="sequential", max=0.01)
    assert problems(seq, '[{"value": 0.1}]') == [
        'm.json:1:2: [0]: a sequential gate judges error counts ({"errors": e, "requests": n})'
    ]
    mixed = '[{"errors": 0, "requests": 5}, {"canary": {"errors": 0, "requests": 5}, "baseline": {"errors": 0, "requests": 5}}]'
    assert any("not both" in p for p in problems(seq, mixed))
    assert any("needs max" in p for p in problems(gate(judge="sequential"), '[{"errors": 0, "requests": 5}]'))
    assert any("share their bins" in p for p in problems(gate(judge="drift", max=0.2), '[{"canary": [1], "baseline": [1, 2]}]'))
    assert problems(gate(judge="mann_whitney"), '[{"value": 1}]')[0].startswith("m.json:1:2: [0]: a mann_whitney gate")


def test_replay_refuses_what_check_refuses() -> None:
    measurements, _ = parse_measurements('[{"value": 0.1}]')
    with pytest.raises(ValueError):
        replay(gate(judge="sequential", max=0.01), measurements)


def test_text_rendering_names_the_decision() -> None:
    text = render_text(analyze(gate(max=0.01), '[{"value": 0.5}]'))
    assert "failed" in text.splitlines()[1]
    assert text.splitlines()[-1] == "gate failed: decided at measurement 0"


# -- quantile gates (issue 15: analyze judges as the live gate does) -------------------


def test_a_quantile_gate_replays_slow_request_counts_through_the_live_anytime_valid_test() -> None:
    g = Gate.model_validate({"metric": "latency_p99", "compare": "baseline", "max_increase": 0.1})
    assert g.judge == "quantile"
    looks = [{"value": 190.0 + k, "baseline": 150.0, "slow": 9, "requests": 300, "baseline_requests": 6000}
             for k in range(12)]
    result = run(g, looks)
    # The same looks through the live gate's rules, one `record` per measurement.
    live, expected = GateRun(service="", gate="", next_at=None), []
    for i, look in enumerate(looks):
        if live.phase != "running":
            break
        live = record(g, live, i * g.interval, look["value"], 150.0, None,
                      canary_data=[9.0, 300.0, 165.0], baseline_data=[6000.0])
        expected.append(live.phase)
    assert phases(result)[: len(expected)] == expected
    assert result["phase"] == "failed" == expected[-1]  # 3% slow against 1% allowed: it fires
    decided = result["measurements"][result["decided_at"]]
    # The arithmetic is the live verdict's: the counts, the limit and the crossed bound.
    assert "canary requests slower than the limit" in decided["detail"]
    assert "crossed the rollback bound" in decided["detail"]
    assert decided["verdict"] == "failed"


def test_a_quantile_gate_on_a_healthy_canary_never_fires_on_counts_the_ratio_rule_would_fail() -> None:
    """The old replay judged a quantile gate by the ratio of two p99s: a noisy window with the
    canary's p99 25% above the baseline's failed it. The live test counts slow requests: 1%
    slow (what a healthy canary shows) is no evidence, whatever the two quantiles say."""
    g = Gate.model_validate({"metric": "latency_p99", "compare": "baseline", "max_increase": 0.1})
    looks = [{"value": 190.0, "baseline": 150.0, "slow": 3, "requests": 300, "baseline_requests": 6000}
             for _ in range(30)]
    result = run(g, looks)
    assert result["phase"] != "failed"
    assert all(m["verdict"] != "failed" for m in result["measurements"])


def test_tail_measurements_are_checked_with_their_position() -> None:
    g = Gate.model_validate({"metric": "latency_p99", "compare": "baseline", "max_increase": 0.1})
    text = '[\n  {"slow": 5, "requests": 3, "baseline_requests": 10}\n]'
    assert problems(g, text) == ["m.json:2:3: [0]: slow, requests and baseline_requests must be whole numbers "
                                 "with slow <= requests"]
    threshold = gate(max=1.0)
    text = '[{"slow": 1, "requests": 3, "baseline_requests": 10}]'
    assert problems(threshold, text)[0].endswith('a threshold gate judges a value ({"value": x}) or samples '
                                                 '({"canary": [...], "baseline": [...]})')
