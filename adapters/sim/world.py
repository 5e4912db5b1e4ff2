"""The simulated world: the embedded default environment of interlock.

One in-process object plays flag service, router, metric source and fault
injector at once, so a plan or a drill runs with no infrastructure and an hour
of rollout replays in well under a second. The world is honest about the thing
interlock exists for: traffic that crosses an incompatible contract really
degrades the consumer, and errors really cascade downstream (see
:mod:`adapters.sim.model` for the numbers).

- Exposure: `plan.exposure_of(service)` names a flag and/or a route; a
  service's canary fraction is the smaller of their percentages / 100. Flags
  set with the same `cohort` bucket users together (nested sets). Route-only
  services share one cohort, `ROUTE_COHORT`: the design assumes routers keep
  canary traffic on the canary path.
- Metrics are sampled from the state *at query time* (the window sets the
  request count, not a history of exposures); randomness is keyed by
  (seed, service, version, metric, at), so a query repeats exactly.
- `slow_adapter` is the one thing that takes real time: flag and router calls
  `await asyncio.sleep(delay_s)` on the event loop, to rehearse slow adapters
  against the engine's timeouts.
- With a `clock`, "requests served while bad" is integrated over time as the
  exposure and faults change (`bad_requests`); without one, a change is
  stamped with the latest `at` the world has seen.
- A change costs what it touches: a flag or route change recomputes the
  services it moves, their consumers, and further consumers only while a
  model actually changed; the bad-traffic timeline keeps only the rates that
  changed. With a `state_path`, a change appends one line to a log beside
  the state file (so a killed process resumes with the flags it had set),
  and the whole state is written only when the log has grown past the
  number of targets (compaction), not on every change.
"""

from __future__ import annotations

import asyncio
import graphlib
import heapq
import random
from pathlib import Path
from typing import Any, Mapping

import adapters.sim.model as model
from adapters.sim.faults import DATA_FAULTS, SERVICE_FAULTS, validate_fault, with_faults
from adapters.sim.ports import SimChecks, SimFaults, SimFlags, SimMetrics, SimRouter
from adapters.sim.shadow import Mirroring, SimMirror
from adapters.sim.statefile import StateFile, percent_of
from adapters.sim.timeline import Timeline
from core import Clock
from core import RolloutGraph
from core import psi
from core import Contracts, Plan, Service
from core import AdapterError

ROUTE_COHORT = "@routes"
METRICS = ("error_rate", "latency_p99", "latency_p50", "prediction_psi", "prediction_agreement", "requests")
__all__ = ["ROUTE_COHORT", "METRICS", "SimWorld", "SimFlags", "SimRouter", "SimMetrics", "SimFaults", "SimChecks"]


class SimWorld(StateFile, Mirroring, Timeline):
    """The simulated environment of one plan.

    Ports: `flags`, `router`, `metrics`, `faults`. For tests, judges and drill
    scorecards: `canary_fraction`, `cohort_of`, `version_model`, `active_faults`,
    `bad_rates` and `bad_requests`. A version is named by its version string or
    by `old`/`new`. `clock` is optional and only stamps bad-traffic accounting.
    """

    def __init__(
        self,
        plan: Plan,
        graph: RolloutGraph | None = None,
        *,
        seed: int,
        state_path: str | Path | None = None,
        clock: Clock | None = None,
    ):
        # `graph` is kept for callers only: the dependency order comes from the plan.
        self.plan, self.graph, self.seed = plan, graph, seed
        self._clock = clock
        self._state_path = Path(state_path) if state_path is not None else None
        self._flags: dict[str, float] = {}
        self._cohorts: dict[str, str] = {}
        self._routes: dict[str, float] = {}
        self._mirrors: dict[str, float] = {}  # service → percent copied to its new version (shadow)
        self._users: dict[str, set[str]] = {}
        """Flag or route (`flag:NAME`, `route:NAME`) → the services it moves."""
        for name, service in plan.services.items():
            if service.moves:
                exposure = plan.exposure_of(name)
                if exposure.flag is not None:
                    self._flags[exposure.flag] = 0.0
                    self._cohorts[exposure.flag] = f"@flag:{exposure.flag}"
                    self._users.setdefault(f"flag:{exposure.flag}", set()).add(name)
                if exposure.route is not None:
                    self._routes[exposure.route] = 0.0
                    self._users.setdefault(f"route:{exposure.route}", set()).add(name)
        self._consumers: dict[str, list[str]] = {name: [] for name in plan.services}
        for name, service in plan.services.items():
            for dep in service.depends_on:
                if dep in plan.services and dep != name:
                    self._consumers[dep].append(name)
        self._params = {name: model.resolve_params(s.sim) for name, s in plan.services.items()}
        sorter = graphlib.TopologicalSorter(
            {n: [d for d in s.depends_on if d in plan.services] for n, s in plan.services.items()}
        )
        try:
            self._order = tuple(sorter.static_order())
        except graphlib.CycleError as exc:
            raise AdapterError(f"sim: dependency cycle {' -> '.join(exc.args[1])}") from None
        self._rank = {name: i for i, name in enumerate(self._order)}
        self._faults: list[dict[str, Any]] = []
        self._models: dict[tuple[str, str], model.VersionModel] | None = None
        """Every (service, side)'s effective model; None when it must be built whole."""
        self._nodes: dict[str, model.Node] = {}
        self._moved: set[str] = set()
        """Services whose exposure changed since `_models` was computed."""
        self._rates: dict[str, float] = {}
        """Bad requests per second per service, in dependency order, as of `_models`."""
        self._rates_changed: dict[str, float] = {}
        """The rates that changed when `_models` last did (all of them after a whole rebuild)."""
        self._last_at = 0.0
        self._timeline: list[tuple[float, dict[str, float]]] = []
        """(from when, the rates that changed then): `_rates` as it was, change by change."""
        self._deferred: float | None = None
        """When the exposure changes in `_moved` happened, if their models wait (`_changed`)."""
        self._log_lines = 0
        if self._state_path is not None:
            self._load()
        self._changed(None)
        self.flags = SimFlags(self)
        self.router = SimRouter(self)
        self.metrics = SimMetrics(self)
        self.faults = SimFaults(self)
        self.mirror = SimMirror(self)
        self.checks = SimChecks(self)

    # --- exposure ---------------------------------------------------------------

    def canary_fraction(self, service: str) -> float:
        """The share of the service's traffic on its new version (0 for static services)."""
        if not self._service(service).moves:
            return 0.0
        exposure = self.plan.exposure_of(service)
        percents = [self._flags[exposure.flag]] if exposure.flag else []
        percents += [self._routes[exposure.route]] if exposure.route else []
        return min(percents) / 100.0

    def cohort_of(self, service: str) -> str | None:
        if not self._service(service).moves:
            return None
        flag = self.plan.exposure_of(service).flag
        return self._cohorts[flag] if flag is not None else ROUTE_COHORT

    def _set_flag(self, flag: str, percent: float, cohort: str) -> None:
        self._known(flag, self._flags, "flag")
        self._settle(None)
        self._flags[flag] = percent_of(percent)
        self._cohorts[flag] = str(cohort)
        self._log({"flag": flag, "percent": self._flags[flag], "cohort": self._cohorts[flag]})
        self._changed(None, moved=self._users[f"flag:{flag}"])

    def _set_route(self, route: str, percent: float) -> None:
        self._known(route, self._routes, "route")
        self._settle(None)
        self._routes[route] = percent_of(percent)
        self._log({"route": route, "percent": self._routes[route]})
        self._changed(None, moved=self._users[f"route:{route}"])

    @staticmethod
    def _known(name: str, table: dict[str, float], what: str) -> None:
        if name not in table:
            raise AdapterError(f"sim: unknown {what} {name!r} (known: {', '.join(sorted(table))})")

    # --- the model --------------------------------------------------------------

    def version_model(self, service: str, version: str) -> model.VersionModel:
        """The effective (neighbour-degraded) model of one version; for tests and judges."""
        return self._model()[(service, self._side(service, version))]

    def _reference_model(self, service: str) -> model.VersionModel:
        """The old version as configured, with no neighbour or fault effects."""
        p = self._params[service][0]
        sigma = model.LATENCY_SIGMA_PER_SPREAD * p.latency_spread
        component = model.Component(
            1.0, p.error_rate, p.latency_ms, sigma, p.prediction_mean, p.prediction_std
        )
        return model.VersionModel(components=(component,), bad=0.0, incompatible=0.0)

    def _compute(self) -> dict[tuple[str, str], model.VersionModel]:
        """The effective models. Faults rebuild everything. A flag or route change
        recomputes the services it moves and their direct consumers (who see a new
        traffic split), then, in dependency order, the consumers of every service
        whose model came out different: a model depends only on its producers'
        nodes and models, so an unchanged one stops the wave. A 1,000-service plan
        pays for the services a change really moves, not for the whole plan."""
        if self._models is None:
            self._nodes = {name: self._node(name) for name in self._order}
            self._models = model.propagate([self._nodes[name] for name in self._order])
            self._rates = {name: self._rate(name) for name in self._order}
            self._rates_changed = dict(self._rates)
        elif self._moved:
            self._rates_changed = {}
            rank, consumers = self._rank, self._consumers
            for name in self._moved:  # its split moved; its sides change only with faults (rebuilt whole)
                self._nodes[name] = self._node(name, self._nodes[name].sides)
            queue = [rank[name] for name in self._moved]
            queue += (rank[c] for name in self._moved for c in consumers[name])
            heapq.heapify(queue)
            done: set[int] = set()
            while queue:
                position = heapq.heappop(queue)
                if position in done:
                    continue
                done.add(position)
                name = self._order[position]
                if model.recompute(self._nodes, self._models, name) or name in self._moved:
                    rate = self._rate(name)
                    if rate != self._rates[name]:
                        self._rates[name] = self._rates_changed[name] = rate
                    for consumer in consumers[name]:
                        heapq.heappush(queue, rank[consumer])
        self._moved = set()
        return self._models

    def _rate(self, name: str) -> float:
        """Bad requests per second `name` serves now (needs `_models` up to date for it)."""
        models = self._models
        assert models is not None
        f = self.canary_fraction(name)
        rate = (1.0 - f) * models[(name, "old")].bad
        if (name, "new") in models:
            rate += f * models[(name, "new")].bad
        return self._rps(name) * rate

    def _node(self, name: str, sides: Mapping[str, model.Side] | None = None) -> model.Node:
        service = self.plan.services[name]
        if sides is None:
            old, new = self._params[name]
            built = {"old": self._side_of(name, "old", old, service.from_)}
            if service.to is not None:
                built["new"] = self._side_of(name, "new", new, service.to, model.regressed(old, new))
            sides = built
        deps = tuple(d for d in service.depends_on if d in self.plan.services)
        return model.Node(name, deps, self.canary_fraction(name), self.cohort_of(name), sides, name in self._mirrors)

    def _side_of(
        self, name: str, side: str, params: model.Params, contracts: Contracts, regressed: bool = False
    ) -> model.Side:
        mine = [f for f in self._faults if f.get("service") == name and f["_side"] == side
                and f["kind"] not in DATA_FAULTS]  # data faults spoil feeds, not requests
        if not mine:  # the common case: the plan's contracts as they are (no copy per service)
            return model.Side(with_faults(params, mine), contracts, regressed)
        produces = dict(contracts.produces)
        for f in mine:
            if f["kind"] == "schema_break":
                produces[str(f["contract"])] = int(f["produces"])
        effective = contracts.model_copy(update={"produces": produces})
        return model.Side(with_faults(params, mine), effective, True)

    def _side(self, service: str, version: str) -> str:
        s = self._service(service)
        if version == s.from_.version:
            return "old"
        if s.to is not None and version == s.to.version:
            return "new"
        if version in ("old", "new") and (version == "old" or s.to is not None):
            return version
        known = [s.from_.version] + ([s.to.version] if s.to else [])
        raise AdapterError(f"sim: {service} has no version {version!r} (known: {', '.join(known)})")

    def _service(self, service: str) -> Service:
        try:
            return self.plan.services[service]
        except KeyError:
            raise AdapterError(f"sim: unknown service {service!r}") from None

    # --- metrics ----------------------------------------------------------------

    def _requests(self, service: str, side: str, window: float) -> int:
        fraction = self.canary_fraction(service)
        share = fraction + (1.0 - fraction) * self.mirror_fraction(service) if side == "new" else 1.0 - fraction
        return round(self._rps(service) * share * max(window, 0.0))

    def _rps(self, service: str) -> float:
        sim = self.plan.services[service].sim
        return sim.rps if sim is not None else model.DEFAULT_RPS

    def _query(self, metric: str, service: str, version: str, window: float, at: float) -> float | None:
        if metric not in METRICS:
            raise AdapterError(f"sim: unknown metric {metric!r} (known: {', '.join(METRICS)})")
        side = self._side(service, version)
        self._seen(at)
        if self._outage("metrics_outage"):
            return None
        n = self._requests(service, side, window)
        if n < 1:
            return None
        rng = model.rng_for(self.seed, service, version, metric, round(at * 1000))
        m = self.version_model(service, version)
        if metric == "requests":
            return float(n)
        if metric == "prediction_agreement":
            return self._agreement(service, side, window, at)
        if metric == "error_rate":
            return model.binomial(rng, n, m.error_rate) / n
        if metric in ("latency_p99", "latency_p50"):
            return model.sample_latency_quantile(rng, m, 0.99 if metric == "latency_p99" else 0.5, n)
        canary = self._histogram(service, version, window, at)
        baseline = self._histogram(service, self.plan.services[service].from_.version, window, at)
        if baseline is None:
            # The old version serves nothing (canary at 100%): compare against a
            # reference sample of what it served on its own, before anything moved.
            reference = model.rng_for(self.seed, service, "old", "reference", round(at * 1000))
            n_ref = max(1, round(self._rps(service) * window))
            baseline = model.sample_histogram(reference, self._reference_model(service), n_ref)
        # The same PSI a `judge: drift` gate computes on these two histograms (one definition).
        return psi(baseline, canary) if canary is not None else None

    def _window(self, service: str, version: str, window: float, at: float, tag: str) -> tuple[int, random.Random] | None:
        """(requests, a generator for this sample) of one version's window; None without traffic
        or data."""
        side = self._side(service, version)
        self._seen(at)
        if self._outage("metrics_outage"):
            return None
        n = self._requests(service, side, window)
        if n < 1:
            return None
        return n, model.rng_for(self.seed, service, version, tag, round(at * 1000))

    def _exceedances(
        self, service: str, version: str, window: float, at: float, threshold: float
    ) -> tuple[int, int] | None:
        sample = self._window(service, version, window, at, "exceedances")
        if sample is None:
            return None
        n, rng = sample
        slow = 1.0 - model.mixture_cdf(self.version_model(service, version).components, threshold)
        return model.binomial(rng, n, slow), n

    def _histogram(self, service: str, version: str, window: float, at: float) -> list[float] | None:
        sample = self._window(service, version, window, at, "histogram")
        if sample is None:
            return None
        n, rng = sample
        return model.sample_histogram(rng, self.version_model(service, version), n)

    # --- faults -----------------------------------------------------------------

    @property
    def active_faults(self) -> list[dict[str, Any]]:
        """The faults in effect, in injection order, as they were injected."""
        return [{k: v for k, v in f.items() if not k.startswith("_")} for f in self._faults]

    def _inject(self, fault: dict[str, Any], at: float) -> None:
        stored = dict(fault)
        stored["_side"] = self._fault_side(fault)
        stored["_at"] = at
        self._settle(at, exposure=False)
        self._faults.append(stored)
        self._seen(at)
        self._changed(at)

    def _clear(self, fault: dict[str, Any], at: float) -> None:
        """Remove one active fault equal to `fault`; clearing an inactive fault does nothing."""
        self._fault_side(fault)
        self._settle(at, exposure=False)
        for i, active in enumerate(self._faults):
            if {k: v for k, v in active.items() if not k.startswith("_")} == dict(fault):
                del self._faults[i]
                break
        self._seen(at)
        self._changed(at)

    def _fault_side(self, fault: dict[str, Any]) -> str | None:
        validate_fault(fault)
        if fault["kind"] not in SERVICE_FAULTS:
            return None
        return self._side(str(fault["service"]), str(fault.get("version", "new")))

    def _outage(self, kind: str) -> bool:
        return any(f["kind"] == kind for f in self._faults)

    async def _adapter_call(self, outage: str, message: str) -> None:
        if not self._faults:
            return  # nothing slows or stops an adapter (a read-back asks for every target)
        delays = [float(f["delay_s"]) for f in self._faults if f["kind"] == "slow_adapter"]
        if delays:
            await asyncio.sleep(max(delays))
        if self._outage(outage):
            raise AdapterError(message)
