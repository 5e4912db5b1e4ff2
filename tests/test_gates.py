"""Gate judgement: every Argo Rollouts analysis rule `core.gates` promises, one by one.

Argo's assessment order is failed, inconclusive, error, then successful once
`count` real measurements are in; errors never count as measurements and a
real measurement resets the consecutive-error streak.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.gates import GateRun, assess, classify, record
from core.plan import Gate


def gate(**fields: Any) -> Gate:
    return Gate.model_validate({"metric": "error_rate", "judge": "threshold", **fields})


def fresh() -> GateRun:
    return GateRun(service="svc", gate="g", next_at=0.0, pending=7)


def feed(g: Gate, *values: Any) -> GateRun:
    """Record values in order: a float (or None) is a value, ('err',) an error, (v, b) a pair."""
    run = fresh()
    for i, item in enumerate(values):
        if item == ("err",):
            run = record(g, run, float(i), None, None, "boom")
        elif isinstance(item, tuple):
            run = record(g, run, float(i), item[0], item[1], None)
        else:
            run = record(g, run, float(i), item, None, None)
    return run


# -- classify ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "value", "expected"),
    [
        ({"max": 0.01}, 0.01, "successful"),
        ({"max": 0.01}, 0.0100001, "failed"),
        ({"min": 0.5}, 0.5, "successful"),
        ({"min": 0.5}, 0.49, "failed"),
        ({"min": 0.1, "max": 0.2}, 0.15, "successful"),
        ({"min": 0.1, "max": 0.2}, 0.25, "failed"),
        ({}, 123.0, "successful"),
    ],
)
def test_failure_bounds(fields: dict[str, Any], value: float, expected: str) -> None:
    assert classify(gate(**fields), value, None, None) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.005, "successful"), (0.008, "inconclusive"), (0.02, "failed"), (0.0005, "inconclusive")],
)
def test_pass_bounds_make_the_middle_inconclusive(value: float, expected: str) -> None:
    g = gate(max=0.01, pass_max=0.006, pass_min=0.001)
    assert classify(g, value, None, None) == expected


@pytest.mark.parametrize(
    ("fields", "value", "expected"),
    [
        ({"pass_max": 0.006}, 0.005, "successful"),
        ({"pass_max": 0.006}, 0.008, "failed"),
        ({"pass_min": 0.9}, 0.95, "successful"),
        ({"pass_min": 0.9}, 0.5, "failed"),
        ({"pass_min": 0.9}, math.inf, "successful"),
        ({"max": 0.01, "pass_max": 0.006}, 0.008, "inconclusive"),
        ({"min": 0.1, "pass_max": 0.006}, 0.2, "inconclusive"),
    ],
)
def test_a_gate_with_only_success_bounds_fails_a_miss_as_argo_does(
    fields: dict[str, Any], value: float, expected: str
) -> None:
    # Argo's EvaluateResult: without a failure condition, missing the success condition fails;
    # the middle is inconclusive only when a failure bound exists too.
    assert classify(gate(**fields), value, None, None) == expected


def test_failure_wins_over_pass_bounds() -> None:
    assert classify(gate(max=0.01, pass_max=0.5), 0.2, None, None) == "failed"


@pytest.mark.parametrize(
    ("fields", "value", "baseline", "expected"),
    [
        ({"max_increase": "10%"}, 1.10, 1.0, "successful"),
        ({"max_increase": "10%"}, 1.11, 1.0, "failed"),
        ({"max_increase": 0.1}, 0.5, 1.0, "successful"),
        ({"max_decrease": "20%"}, 0.80, 1.0, "successful"),
        ({"max_decrease": "20%"}, 0.79, 1.0, "failed"),
        ({"max_decrease": "20%"}, 5.0, 1.0, "successful"),
        ({"max_increase": "5%", "max_decrease": "5%"}, 1.06, 1.0, "failed"),
        ({"max_increase": "5%", "max_decrease": "5%"}, 0.94, 1.0, "failed"),
        ({"max_increase": "5%", "max_decrease": "5%"}, 1.0, 1.0, "successful"),
    ],
)
def test_baseline_comparison(fields: dict[str, Any], value: float, baseline: float, expected: str) -> None:
    g = gate(compare="baseline", **fields)
    assert classify(g, value, baseline, None) == expected


def test_baseline_comparison_ignores_absolute_bounds_only_when_comparing() -> None:
    # With compare: baseline the relative limits judge; an absolute max is not consulted.
    assert classify(gate(compare="baseline", max_increase="10%", max=0.0), 1.0, 1.0, None) == "successful"


@pytest.mark.parametrize(
    ("no_data", "expected"), [("fail", "failed"), ("inconclusive", "inconclusive"), ("ignore", None)]
)
@pytest.mark.parametrize("missing", [None, math.nan])
def test_no_data_policies(no_data: str, expected: str | None, missing: float | None) -> None:
    assert classify(gate(max=1.0, no_data=no_data), missing, None, None) == expected


@pytest.mark.parametrize("no_data", ["fail", "inconclusive", "ignore"])
def test_a_missing_baseline_is_no_data_too(no_data: str) -> None:
    g = gate(compare="baseline", max_increase="10%", no_data=no_data)
    expected = {"fail": "failed", "inconclusive": "inconclusive", "ignore": None}[no_data]
    assert classify(g, 1.0, None, None) == expected
    assert classify(g, 1.0, math.nan, None) == expected


def test_no_data_error_is_an_error_measurement_as_argo_records_it() -> None:
    g = gate(max=1.0, no_data="error", count=2)
    assert classify(g, None, None, None) == "error"
    assert classify(g, math.nan, None, None) == "error"
    run = feed(g, None, 0.5, None, None, None, None)
    # An Error counts towards the streak, not towards count: still running after 4 in a row.
    assert (run.phase, run.count, run.errors, run.consecutive_errors) == ("running", 1, 5, 4)
    assert feed(g, *[None] * 5).phase == "error"
    assert feed(g, None, 0.5, None, 0.5).phase == "successful"


def test_default_no_data_is_inconclusive() -> None:
    assert classify(gate(max=1.0), None, None, None) == "inconclusive"


def test_an_error_is_an_error_whatever_the_value() -> None:
    assert classify(gate(max=1.0), 0.5, None, "timeout") == "error"
    assert classify(gate(max=1.0, no_data="ignore"), None, None, "timeout") == "error"


# -- assess / record ----------------------------------------------------------


def test_failure_limit_default_zero_fails_on_the_first_failure() -> None:
    g = gate(max=0.01)
    run = feed(g, 0.5)
    assert (run.phase, run.failures, run.count) == ("failed", 1, 1)


def test_failure_limit_tolerates_that_many_failures() -> None:
    g = gate(max=0.01, failure_limit=2)
    assert feed(g, 0.5, 0.5).phase == "running"
    assert feed(g, 0.5, 0.0, 0.5).phase == "running"
    assert feed(g, 0.5, 0.5, 0.5).phase == "failed"


def test_failure_limit_minus_one_never_fails() -> None:
    g = gate(max=0.01, failure_limit=-1, count=5)
    run = feed(g, *[0.5] * 4)
    assert (run.phase, run.failures) == ("running", 4)
    run = feed(g, *[0.5] * 5)
    assert (run.phase, run.failures) == ("successful", 5)


def test_inconclusive_limit() -> None:
    g = gate(max=1.0, pass_max=0.1, inconclusive_limit=1)
    assert feed(g, 0.5).phase == "running"
    run = feed(g, 0.5, 0.5)
    assert (run.phase, run.inconclusives) == ("inconclusive", 2)


def test_inconclusive_default_limit_zero() -> None:
    assert feed(gate(max=1.0, pass_max=0.1), 0.5).phase == "inconclusive"


def test_failure_is_assessed_before_inconclusive() -> None:
    g = gate(max=1.0, pass_max=0.1)
    run = record(g, replace_run(inconclusives=5), 0.0, 2.0, None, None)
    assert run.phase == "failed"


def replace_run(**counts: int) -> GateRun:
    from dataclasses import replace

    return replace(fresh(), **counts)


def test_consecutive_error_limit_default_four() -> None:
    g = gate(max=1.0)
    assert feed(g, *[("err",)] * 4).phase == "running"
    run = feed(g, *[("err",)] * 5)
    assert (run.phase, run.errors, run.consecutive_errors) == ("error", 5, 5)


def test_consecutive_error_limit_zero_errors_at_once() -> None:
    assert feed(gate(max=1.0, consecutive_error_limit=0), ("err",)).phase == "error"


def test_a_good_measurement_resets_the_error_streak() -> None:
    g = gate(max=1.0, consecutive_error_limit=2)
    run = feed(g, ("err",), ("err",), 0.5, ("err",), ("err",))
    assert (run.phase, run.errors, run.consecutive_errors) == ("running", 4, 2)
    assert feed(g, ("err",), ("err",), 0.5, ("err",), ("err",), ("err",)).phase == "error"


def test_a_failed_measurement_also_resets_the_error_streak() -> None:
    g = gate(max=1.0, consecutive_error_limit=1, failure_limit=-1)
    run = feed(g, ("err",), 5.0, ("err",))
    assert (run.phase, run.consecutive_errors) == ("running", 1)


def test_errors_count_neither_towards_count_nor_failures() -> None:
    g = gate(max=1.0, count=2)
    run = feed(g, ("err",), 0.5, ("err",), ("err",))
    assert (run.phase, run.count, run.failures, run.successes, run.errors) == ("running", 1, 0, 1, 3)
    run = feed(g, ("err",), 0.5, ("err",), 0.5)
    assert (run.phase, run.count) == ("successful", 2)


def test_count_reached_is_successful_and_counts_every_real_measurement() -> None:
    g = gate(max=1.0, pass_max=0.5, count=3, failure_limit=1, inconclusive_limit=1)
    run = feed(g, 0.1, 2.0, 0.7)
    assert (run.phase, run.count, run.successes, run.failures, run.inconclusives) == (
        "successful", 3, 1, 1, 1,
    )


def test_without_count_a_run_keeps_running() -> None:
    assert feed(gate(max=1.0), *[0.5] * 50).phase == "running"


def test_ignored_measurements_change_nothing_but_the_history() -> None:
    g = gate(max=1.0, no_data="ignore", count=1)
    run = feed(g, None, math.nan)
    assert (run.phase, run.count, run.errors, run.consecutive_errors, run.pending) == ("running", 0, 0, 0, None)
    assert [s.phase for s in run.samples] == [None, None]


def test_ignored_measurement_does_not_reset_the_error_streak() -> None:
    g = gate(max=1.0, no_data="ignore", consecutive_error_limit=1)
    assert feed(g, ("err",), None, ("err",)).phase == "error"


def test_no_data_fail_counts_as_a_failure() -> None:
    run = feed(gate(max=1.0, no_data="fail", failure_limit=1), None, math.nan)
    assert (run.phase, run.failures) == ("failed", 2)


def test_consecutive_success_limit_ends_the_gate_successful() -> None:
    g = gate(max=1.0, failure_limit=-1, consecutive_success_limit=3)
    assert feed(g, 2.0, 0.5, 0.5, 2.0, 0.5, 0.5).phase == "running"
    run = feed(g, 2.0, 0.5, 0.5, 2.0, 0.5, 0.5, 0.5)
    assert (run.phase, run.consecutive_successes, run.failures) == ("successful", 3, 2)


@pytest.mark.parametrize(
    ("failure_limit", "expected"), [(4, "inconclusive"), (-1, "failed")]
)
def test_count_reached_without_the_success_streak(failure_limit: int, expected: str) -> None:
    # TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit / ...ConsecutiveSuccessLimit
    g = gate(max=1.0, count=10, failure_limit=failure_limit, consecutive_success_limit=4)
    values = [0.5, 0.5, 0.5, 2.0] * 2 + [0.5, 0.5]
    assert feed(g, *values[:-1]).phase == "running"
    assert feed(g, *values).phase == expected


def test_errors_and_misses_reset_the_success_streak() -> None:
    g = gate(max=1.0, pass_max=0.6, failure_limit=-1, consecutive_success_limit=2, inconclusive_limit=9)
    assert feed(g, 0.5, ("err",), 0.5).consecutive_successes == 1
    assert feed(g, 0.5, 0.7, 0.5).consecutive_successes == 1
    assert feed(g, 0.5, None, 0.5).consecutive_successes == 1  # no data is inconclusive here
    ignoring = gate(max=1.0, failure_limit=-1, consecutive_success_limit=2, no_data="ignore")
    assert feed(ignoring, 0.5, None, 0.5).phase == "successful"


def test_record_keeps_samples_bounded_and_clears_pending() -> None:
    g = gate(max=1.0, failure_limit=-1)
    run = fresh()
    for i in range(100):
        run = record(g, run, float(i), 0.5, None, None, keep=10)
    assert run.pending is None
    assert [s.at for s in run.samples] == [float(i) for i in range(90, 100)]
    assert run.count == 100


def test_record_samples_carry_value_baseline_phase_and_error() -> None:
    g = gate(compare="baseline", max_increase="10%")
    run = record(g, fresh(), 3.0, 2.0, 1.0, None)
    sample = run.samples[-1]
    assert (sample.at, sample.value, sample.baseline, sample.phase, sample.error) == (3.0, 2.0, 1.0, "failed", None)
    run = record(g, fresh(), 4.0, None, None, "down")
    assert (run.samples[-1].phase, run.samples[-1].error) == ("error", "down")


def test_assess_is_a_function_of_the_counters() -> None:
    g = gate(max=1.0, count=2, failure_limit=0, inconclusive_limit=0, consecutive_error_limit=1)
    assert assess(g, replace_run(count=2, successes=2)) == "successful"
    assert assess(g, replace_run(count=2, failures=1, successes=1)) == "failed"
    assert assess(g, replace_run(count=1, inconclusives=1)) == "inconclusive"
    assert assess(g, replace_run(consecutive_errors=2)) == "error"
    assert assess(g, replace_run(count=1, successes=1, consecutive_errors=1)) == "running"
