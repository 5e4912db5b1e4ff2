"""The metrics `interlock sim serve` exports, in Prometheus' text format.

Every series is labelled by ``service`` and ``version`` (the plan's version
strings), and every series of every version exists from the start at zero:
``rate()`` and ``increase()`` need a sample before the first request, or a
canary's first requests would vanish into the series' creation.

- ``interlock_requests_total{service,version,code}``: answered requests, code
  ``200`` or ``500``.
- ``interlock_request_duration_seconds``: a histogram of the *simulated*
  latency (what the version would take; the server sleeps only a scaled-down
  fraction of it, see `adapters.sim.serve`).
- ``interlock_prediction``: a histogram of the predictions served (buckets
  0.1 … 1.0), and ``interlock_prediction_bin_total{bin="0".."9"}``, the same
  counts per bin, not cumulative, so PromQL can compute a drift index bin by bin.
- ``interlock_prediction_reference{service,bin}``: the share of each bin in the
  service's old version as configured (its "training" distribution), the
  reference a PSI query compares against; it needs no baseline traffic, so the
  drift gate works at 100% too.
- ``interlock_exposure_percent{kind,name}``: the flag and route percentages
  the simulated world currently applies (read from Unleash and HAProxy).
- The data each version reads on a contract the plan declares under `contracts:`
  (`adapters.sim.data.InputExport`), labelled ``service``, ``version``, ``contract``:
  ``interlock_input_newest_timestamp_seconds`` (the newest record's time: freshness is
  ``time()`` minus it), ``interlock_input_rows_total``, and of the records sampled
  (``interlock_input_records_sampled_total``) those with a declared field missing or null
  (``interlock_input_records_incomplete_total``) and those failing the contract's schema
  (``interlock_input_records_invalid_total``).
- ``interlock_shadow_compared_total{service}`` and ``interlock_shadow_agreed_total{service}``:
  mirrored requests whose old and new predictions were compared, and those that agreed
  (`adapters.sim.serve_mirror`); ``interlock_mirror_percent{service}``: the mirrors on.
"""

from __future__ import annotations

import bisect
from typing import Any, Iterable, Mapping, Sequence

DURATION_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.125,
                    0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
PREDICTION_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
BINS = 10
CODES = ("200", "500")


def _labels(**labels: str) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class Histogram:
    def __init__(self, bounds: Sequence[float]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def lines(self, name: str, labels: Mapping[str, str]) -> Iterable[str]:
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else _num(bound)
            yield f"{name}_bucket{_labels(**labels, le=le)} {running}"
        yield f"{name}_sum{_labels(**labels)} {self.sum!r}"
        yield f"{name}_count{_labels(**labels)} {running}"


class Registry:
    """Counters and histograms of the simulated services; `render()` is a scrape."""

    def __init__(self, versions: Iterable[tuple[str, str]], reference: Mapping[str, Sequence[float]]):
        self.versions = list(versions)
        self.reference = {s: list(p) for s, p in reference.items()}
        self.requests = {(s, v, c): 0 for s, v in self.versions for c in CODES}
        self.durations = {sv: Histogram(DURATION_BUCKETS) for sv in self.versions}
        self.predictions = {sv: Histogram(PREDICTION_BUCKETS) for sv in self.versions}
        self.bins = {sv: [0] * BINS for sv in self.versions}
        self.exposure: dict[tuple[str, str], float] = {}
        self.faults = 0
        self.inputs: Any = None
        """An `adapters.sim.data.InputExport`, scraped by the server before each render."""
        self.shadow = {s: [0, 0] for s, v in self.versions}
        """Service → [compared, agreed] mirrored predictions."""
        self.shadow_failed: dict[str, int] = {}
        self.mirrors: dict[str, float] = {}

    def observe_shadow(self, service: str, agreed: bool) -> None:
        pair = self.shadow.setdefault(service, [0, 0])
        pair[0] += 1
        pair[1] += agreed

    def observe(self, service: str, version: str, code: int, seconds: float, prediction: float | None) -> None:
        key = (service, version)
        self.requests[(service, version, str(code))] = self.requests.get((service, version, str(code)), 0) + 1
        self.durations[key].observe(seconds)
        if prediction is not None:
            self.predictions[key].observe(prediction)
            self.bins[key][min(BINS - 1, max(0, int(prediction * BINS)))] += 1

    def render(self) -> str:
        out = ["# HELP interlock_requests_total Requests answered by a simulated service version.",
               "# TYPE interlock_requests_total counter"]
        for (s, v, c), n in sorted(self.requests.items()):
            out.append(f"interlock_requests_total{_labels(service=s, version=v, code=c)} {n}")
        out += ["# HELP interlock_request_duration_seconds Simulated latency of answered requests.",
                "# TYPE interlock_request_duration_seconds histogram"]
        for (s, v), h in sorted(self.durations.items()):
            out.extend(h.lines("interlock_request_duration_seconds", {"service": s, "version": v}))
        out += ["# HELP interlock_prediction Predictions served (successful requests).",
                "# TYPE interlock_prediction histogram"]
        for (s, v), h in sorted(self.predictions.items()):
            out.extend(h.lines("interlock_prediction", {"service": s, "version": v}))
        out += ["# HELP interlock_prediction_bin_total Predictions per bin of width 0.1.",
                "# TYPE interlock_prediction_bin_total counter"]
        for (s, v), counts in sorted(self.bins.items()):
            for i, n in enumerate(counts):
                out.append(f"interlock_prediction_bin_total{_labels(service=s, version=v, bin=str(i))} {n}")
        out += ["# HELP interlock_prediction_reference Share of each bin in the old version as configured.",
                "# TYPE interlock_prediction_reference gauge"]
        for s, shares in sorted(self.reference.items()):
            for i, p in enumerate(shares):
                out.append(f"interlock_prediction_reference{_labels(service=s, bin=str(i))} {max(p, 1e-6)!r}")
        out += ["# HELP interlock_exposure_percent Flag and route percentages the simulated world applies.",
                "# TYPE interlock_exposure_percent gauge"]
        for (kind, name), percent in sorted(self.exposure.items()):
            out.append(f"interlock_exposure_percent{_labels(kind=kind, name=name)} {_num(percent)}")
        out += ["# HELP interlock_shadow_compared_total Mirrored requests whose two predictions were compared.",
                "# TYPE interlock_shadow_compared_total counter"]
        out += [f"interlock_shadow_compared_total{_labels(service=s)} {n}" for s, (n, _) in sorted(self.shadow.items())]
        out += ["# HELP interlock_shadow_agreed_total Mirrored requests whose predictions agreed.",
                "# TYPE interlock_shadow_agreed_total counter"]
        out += [f"interlock_shadow_agreed_total{_labels(service=s)} {k}" for s, (_, k) in sorted(self.shadow.items())]
        out += ["# TYPE interlock_mirror_percent gauge"]
        out += [f"interlock_mirror_percent{_labels(service=s)} {_num(p)}" for s, p in sorted(self.mirrors.items())]
        out += ["# TYPE interlock_faults_active gauge", f"interlock_faults_active {self.faults}"]
        if self.inputs is not None:
            out += list(_input_lines(self.inputs))
        return "\n".join(out) + "\n"


_INPUT_SERIES = {"rows": "interlock_input_rows_total", "sampled": "interlock_input_records_sampled_total",
                 "incomplete": "interlock_input_records_incomplete_total",
                 "invalid": "interlock_input_records_invalid_total"}


def _input_lines(inputs: Any) -> Iterable[str]:
    yield "# HELP interlock_input_newest_timestamp_seconds Time of the newest record a version reads on a contract."
    yield "# TYPE interlock_input_newest_timestamp_seconds gauge"
    for (s, v, c), when in sorted(inputs.newest.items()):
        yield f"interlock_input_newest_timestamp_seconds{_labels(service=s, version=v, contract=c)} {when!r}"
    for key, series in _INPUT_SERIES.items():
        yield f"# TYPE {series} counter"
        for (s, v, c), counts in sorted(inputs.counters.items()):
            yield f"{series}{_labels(service=s, version=v, contract=c)} {counts[key]}"
