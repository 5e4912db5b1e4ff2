"""The data behind contracts in the simulated world, and the faults that spoil it.

A producer's version publishes each contract it `produces` as a feed of records:
one record per request it serves (its `rps`), the newest a few seconds old, every
record a payload that conforms to the contract's `schema` (`core.datacontract`).
A consumer's version reads the feeds of its producers as its traffic sees them
(the same cohort segments that decide which producer version its requests meet,
`adapters.sim.model.segments`), also at 0% exposure: the feed a new version is
about to read exists before anyone uses it, which is what a pre-flight checks.

Faults, on a producer's version (`version: old` for a service that does not move),
for one `contract` or every contract that version produces:

- `stale_data` (`age`, default 1h): the feed stopped `age` before the fault and
  stays stopped; its newest record ages with the clock and no rows arrive.
- `missing_fields` (`value`, optional `field`): that share of records lose a
  declared field (`field`, else one drawn per record) or carry it as null.
- `schema_drift` (optional `value`, default all; optional `field`): that share of
  payloads carry a field (`field`, else the first declared) as the wrong type.

The four data metrics (`core.datagates.DATA_METRICS`) are measured as a real
consumer would: `data_missing` and `data_invalid` sample `SAMPLE` payloads of the
window, drop, null or retype fields as the faults say, and count what
`core.datacontract.incomplete` and `core.datacontract.validate` find.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import adapters.sim.model as model
from core import DataContract, compile_plan, incomplete, validate_payload

DATA_FAULTS = ("stale_data", "missing_fields", "schema_drift")
FEED_LAG = 30.0
"""Seconds: a healthy feed's newest record is between 0 and this old."""
STALE_AGE = 3600.0
"""`stale_data` without `age`: the feed stopped an hour before the fault."""
SAMPLE = 50
"""Payloads sampled per completeness or schema measurement."""


@dataclass(frozen=True)
class Feed:
    """One producer version's feed of one contract, as the faults leave it."""

    rate: float
    """Records per second."""
    stopped: float | None
    """When the feed stopped (stale), else None."""
    missing: float
    missing_field: str | None
    drift: float
    drift_field: str | None


def feed(rps: float, faults: Sequence[Mapping[str, Any]], contract: str) -> Feed:
    """The feed of `contract` from a producer version with `rps` and these active faults
    (each with `_at`, when it was injected)."""
    stopped: float | None = None
    missing, missing_field, drift, drift_field = 0.0, None, 0.0, None
    for f in faults:
        if f["kind"] not in DATA_FAULTS or f.get("contract", contract) != contract:
            continue
        if f["kind"] == "stale_data":
            since = float(f["_at"]) - float(f.get("age", STALE_AGE))
            stopped = since if stopped is None else min(stopped, since)
        elif f["kind"] == "missing_fields":
            missing, missing_field = float(f["value"]), f.get("field")
        else:
            drift, drift_field = float(f.get("value", 1.0)), f.get("field")
    return Feed(0.0 if stopped is not None else rps, stopped, missing, missing_field, drift, drift_field)


def measure(
    metric: str, feeds: Sequence[tuple[float, Feed]], spec: DataContract | None,
    window: float, at: float, rng: random.Random,
) -> float | None:
    """One data metric over the feeds a consumer version reads, each with the share of its
    traffic that reads it. Freshness is the worst age any share reads; volume the rows of
    the window; completeness and schema the share of sampled payloads that fail."""
    feeds = [(share, f) for share, f in feeds if share > 0]
    if not feeds:
        return None
    if metric == "data_freshness":
        return max((at - f.stopped) if f.stopped is not None else rng.uniform(0.0, FEED_LAG) for _, f in feeds)
    if metric == "data_volume":
        mean = max(0.0, window) * sum(share * f.rate for share, f in feeds)
        return float(max(0, round(rng.gauss(mean, math.sqrt(mean))))) if mean > 0 else 0.0
    schema = spec.schema_ if spec is not None else None
    if schema is None:
        return None if metric == "data_invalid" else 0.0
    fields = spec.declared_fields() if spec is not None else []
    shares = [share for share, _ in feeds]
    bad = 0
    for _ in range(SAMPLE):
        f = rng.choices([f for _, f in feeds], shares)[0]
        record = _spoiled(example(schema), f, fields, schema, rng)
        failed = incomplete(record, fields) if metric == "data_missing" else validate_payload(record, schema) is not None
        bad += failed
    return bad / SAMPLE


def _spoiled(record: Any, f: Feed, fields: list[str], schema: Mapping[str, Any], rng: random.Random) -> Any:
    if not isinstance(record, dict) or not fields:
        return record
    if f.missing and rng.random() < f.missing:
        name = f.missing_field or rng.choice(fields)
        if rng.random() < 0.5:
            record.pop(name, None)
        else:
            record[name] = None
    if f.drift and rng.random() < f.drift:
        name = f.drift_field or fields[0]
        declared = schema.get("properties", {}).get(name, {})
        record[name] = wrong_type(declared)
    return record


def example(schema: Mapping[str, Any]) -> Any:
    """A payload that conforms to `schema` (the subset `core.datacontract` checks)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kinds = schema.get("type", "object")
    kind = next((k for k in kinds if k != "null"), "null") if isinstance(kinds, list) else kinds
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example(sub) for name, sub in props.items()}
    if kind == "array":
        items = schema.get("items")
        return [example(items) for _ in range(max(1, int(schema.get("minItems", 1))))] if items else []
    if kind in ("number", "integer"):
        low = schema.get("minimum")
        if low is None:
            low = schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else 0
        return math.ceil(low) if kind == "integer" else float(low)
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind == "boolean":
        return True
    return None


def wrong_type(schema: Mapping[str, Any]) -> Any:
    """A value no schema of this declared type accepts: a schema drift as producers make it
    (a number becomes a string, an object a list)."""
    kinds = schema.get("type", "object")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return 1 if "string" in kinds else "drifted"


def query(world: Any, metric: str, contract: str, service: str, version: str, window: float, at: float) -> float | None:
    """One data metric of what `service`'s `version` reads on `contract` in the simulated
    `world` (a `SimWorld`, not imported: it imports this module)."""
    side = world._side(service, version)
    world._model()
    node: model.Node = world._nodes[service]
    producers = [world._nodes[p] for p in node.producers if p in world._nodes and p != service
                 and any(contract in s.contracts.produces for s in world._nodes[p].sides.values())]
    feeds: list[tuple[float, Feed]] = []
    if not producers:  # a feed from outside the plan: healthy, as busy as its reader
        feeds.append((1.0, feed(world._rps(service), (), contract)))
    partners = _lockstep_partners(world, service) if side == "new" else set()
    for share, seen in model.segments(node, side, producers) if producers else ():
        for p in producers:
            # A lockstep partner moves with this version, on its cohort: the new version reads
            # the partner's new output (at 0% too, which is what a pre-flight must check).
            version_of = "new" if p.name in partners and "new" in p.sides else seen[p.name]
            if contract in p.sides[version_of].contracts.produces:
                faults = [f for f in world._faults if f.get("service") == p.name and f["_side"] == version_of]
                feeds.append((share, feed(world._rps(p.name), faults, contract)))
    # Completeness and schema count the same sampled payloads, as one consumer's sample would.
    tag = "payloads" if metric in ("data_missing", "data_invalid") else metric
    rng = model.rng_for(world.seed, service, version, tag, contract, round(at * 1000))
    return measure(metric, feeds, world.plan.contracts.get(contract), window, at, rng)


def _lockstep_partners(world: Any, service: str) -> set[str]:
    """The services that move together with `service` (its lockstep group), from the plan's
    compiled order: before a group's first exposure the world has not seen its cohort yet."""
    groups: dict[str, set[str]] | None = getattr(world, "_lockstep_groups", None)
    if groups is None:
        graph = world.graph if world.graph is not None else compile_plan(world.plan)
        groups = {name: set(members) for members in graph.groups for name in members}
        world._lockstep_groups = groups
    return groups.get(service, set()) - {service}


INPUT_COUNTERS = ("rows", "sampled", "incomplete", "invalid")


class InputExport:
    """What `interlock sim serve` exports about the data each version reads, for Prometheus
    (`adapters.sim.exposition`): per (service, version, contract) the newest input's time
    (a gauge) and counters of rows read and of sampled records, incomplete and invalid
    ones. `scrape(now)` adds what the feeds delivered since the last scrape."""

    def __init__(self, world: Any):
        self.world = world
        plan = world.plan
        self.keys: list[tuple[str, str, str]] = []
        for name, service in sorted(plan.services.items()):
            for version in (service.from_, service.to):
                if version is None:
                    continue
                self.keys += [(name, version.version, c) for c in sorted(version.consumes) if c in plan.contracts]
        self.counters = {key: dict.fromkeys(INPUT_COUNTERS, 0) for key in self.keys}
        self.newest: dict[tuple[str, str, str], float] = {}
        self._last: float | None = None

    def scrape(self, now: float) -> None:
        elapsed = 0.0 if self._last is None else max(0.0, now - self._last)
        self._last = now
        for key in self.keys:
            service, version, contract = key
            age = query(self.world, "data_freshness", contract, service, version, elapsed, now)
            if age is None:
                continue
            self.newest[key] = now - age
            counts = self.counters[key]
            if elapsed:
                counts["rows"] += int(query(self.world, "data_volume", contract, service, version, elapsed, now) or 0)
            missing = query(self.world, "data_missing", contract, service, version, elapsed, now)
            invalid = query(self.world, "data_invalid", contract, service, version, elapsed, now)
            counts["sampled"] += SAMPLE
            counts["incomplete"] += round((missing or 0.0) * SAMPLE)
            counts["invalid"] += round((invalid or 0.0) * SAMPLE)
