"""Unleash (Admin API) as a `FlagService`: the rollout of interlock's own strategy on a flag.

Unleash enables a flag for a user when *any* enabled strategy of the flag's
environment matches (strategies are OR'd), and people put their own strategies
on flags: a constrained one for internal users, a segment for beta testers,
variants for an experiment. interlock therefore touches exactly one strategy
per flag and environment, the ``flexibleRollout`` it created itself, and
marks it with its title: ``interlock run <run id>`` (``interlock`` alone on
strategies made before runs were marked). It never adopts, renames or rewrites
any other strategy, however much it looks like a rollout.

Writing
    The first `set_rollout` creates the strategy (rollout, stickiness
    ``default`` and the cohort as ``groupId``) and only then turns the
    environment on. The order matters: Unleash 7, asked to enable an
    environment without an enabled strategy, adds a default strategy serving
    100% of users. Later stages change only interlock's parameters
    (``rollout``, and the cohort: ``stickiness`` and ``groupId``) with a JSON
    Patch, which Unleash applies to the strategy as it stores it *at that
    moment*: constraints, segments and variants a person put on interlock's
    strategy stay as they are (a PUT would have to carry them all, and Unleash
    wipes variants a PUT leaves out). A marked strategy
    of another run is retitled to this run when this run writes it: the
    pre-flight read (`inspect`) is where a run refuses to take one over.

Lockstep
    Services of one lockstep group are given the same cohort, which becomes
    the ``groupId``; with the same stickiness and percentage Unleash buckets
    every user identically on every flag of the group. SDKs bucket on whole
    percents (a rollout of "0.5" enables nobody), so `validate` refuses
    fractional stages on Unleash flags (`core.planload`).

Reading
    `get_rollout` is the rollout of interlock's strategy as Unleash has it: 0
    when the environment is off, or the strategy is missing or disabled.
    `inspect` adds what users really get: the segments (which the feature
    environment endpoint omits, so they are read from the strategies
    endpoint) and constraints that restrict interlock's strategy ("50%,
    restricted by segment beta"), the run that owns it, and a warning for
    every other enabled strategy that exposes users on its own.

Flags are not created by `set_rollout`: a typo in a plan must fail loudly, not
move a new, unused flag. `ensure_flag` creates one (for `interlock stack up`
and tests). The admin token goes only into the Authorization header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from adapters.weights import fmt_percent
from core import AdapterError, TargetReading

STRATEGY = "flexibleRollout"
TITLE = "interlock"
"""The mark of interlock's strategy; a run's strategy is titled ``interlock run <run id>``."""
_RUN = f"{TITLE} run "


def mark(owner: str | None) -> str:
    """The title interlock gives the strategy a run owns."""
    return f"{_RUN}{owner}" if owner else TITLE


def marked(strategy: Any) -> bool:
    """Whether a strategy is interlock's (a flexibleRollout carrying interlock's mark)."""
    if not isinstance(strategy, dict) or strategy.get("name") != STRATEGY:
        return False
    title = strategy.get("title")
    return title == TITLE or (isinstance(title, str) and title.startswith(_RUN) and len(title) > len(_RUN))


def owner_of(strategy: dict[str, Any]) -> str | None:
    """The run named in a marked strategy's title (None for the bare, unowned mark)."""
    title = str(strategy.get("title") or "")
    return title[len(_RUN):] if title.startswith(_RUN) else None


def rollout_of(strategy: dict[str, Any], flag: str) -> float:
    raw = (strategy.get("parameters") or {}).get("rollout", "100")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise AdapterError(f"unleash: flag {flag!r} has a rollout that is not a number: {raw!r}") from None
    return min(100.0, max(0.0, value))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _constraint(c: Any) -> str:
    if not isinstance(c, dict):
        return "a constraint"
    values = c.get("values") or ([c["value"]] if c.get("value") is not None else [])
    shown = ", ".join(str(v) for v in values[:3]) + (", ..." if len(values) > 3 else "")
    negated = "NOT " if c.get("inverted") else ""
    return f"{c.get('contextName', '?')} {negated}{c.get('operator', '?')} {shown}".strip()


class UnleashFlags:
    """Flags of one Unleash project and environment, as driven by one run (`owner`)."""

    def __init__(
        self,
        url: str,
        *,
        token: str,
        project: str = "default",
        environment: str = "development",
        owner: str | None = None,
        timeout: float = 5.0,
        stickiness: str = "default",
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.project = project
        self.environment = environment
        self.owner = owner
        self.stickiness = stickiness
        self._segments: dict[Any, str] = {}
        self._http = HttpClient(
            "unleash",
            url,
            timeout=timeout,
            headers={"Authorization": token, "Accept": "application/json"},
            secrets=[token],
            policy=policy,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"UnleashFlags({self._http.base_url!r}, project={self.project!r}, environment={self.environment!r})"

    def _feature(self, flag: str) -> str:
        return f"/api/admin/projects/{quote(self.project, safe='')}/features/{quote(flag, safe='')}"

    def _env(self, flag: str) -> str:
        return f"{self._feature(flag)}/environments/{quote(self.environment, safe='')}"

    def _missing(self, flag: str) -> AdapterError:
        return AdapterError(
            f"unleash: flag {flag!r} does not exist in project {self.project!r} "
            f"or has no environment {self.environment!r}"
        )

    async def _read_env(self, flag: str) -> dict[str, Any]:
        """The feature environment: `enabled` and the strategies (without their segments)."""
        response = await self._http.request("GET", self._env(flag), final=(404,))
        if response.status_code == 404:
            raise self._missing(flag)
        body = self._http.parse(response, f"unleash GET {self._env(flag)}")
        if not isinstance(body, dict) or not isinstance(body.get("strategies"), list):
            raise AdapterError(f"unleash: unexpected answer for flag {flag!r}: no strategies list")
        return body

    async def _read_strategies(self, flag: str) -> list[dict[str, Any]]:
        """The environment's strategies with their segment ids (the strategies endpoint)."""
        path = f"{self._env(flag)}/strategies"
        response = await self._http.request("GET", path, final=(404,))
        if response.status_code == 404:
            raise self._missing(flag)
        body = self._http.parse(response, f"unleash GET {path}")
        if not isinstance(body, list):
            raise AdapterError(f"unleash: unexpected answer for the strategies of flag {flag!r}: not a list")
        return [s for s in body if isinstance(s, dict)]

    def _ours(self, strategies: list[Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(interlock's strategy for this run, other interlock-marked strategies).

        The one titled for this run wins; else the first marked one (unowned or another
        run's). Nothing unmarked is ever taken, however much it looks like a rollout."""
        ours = [s for s in strategies if marked(s)]
        own = [s for s in ours if self.owner and s.get("title") == mark(self.owner)]
        chosen = (own or ours or [None])[0]
        return chosen, [s for s in ours if s is not chosen]

    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"unleash: rollout for {flag!r} must be within 0..100, got {percent:g}")
        env = await self._read_env(flag)
        existing, _ = self._ours(env["strategies"])
        strategies = f"{self._env(flag)}/strategies"
        if existing is None:
            body = {
                "name": STRATEGY,
                "title": mark(self.owner),
                "disabled": False,
                "constraints": [],
                "segments": [],
                "parameters": {"rollout": fmt_percent(percent), "stickiness": self.stickiness, "groupId": cohort},
            }
            await self._http.request("POST", strategies, json=body)
        else:
            # Only interlock's parameters (the rollout and the cohort that keeps a lockstep
            # group on the same users), its mark, and turning its own strategy back on to
            # expose users: Unleash applies the patch to the strategy as stored, so the
            # constraints, segments and variants a person added stay.
            patch: list[dict[str, Any]] = [
                {"op": "add", "path": f"/parameters/{key}", "value": value}
                for key, value in (("rollout", fmt_percent(percent)), ("stickiness", self.stickiness), ("groupId", cohort))
            ]
            if self.owner and existing.get("title") != mark(self.owner):
                patch.append({"op": "replace", "path": "/title", "value": mark(self.owner)})
            if existing.get("disabled") and percent > 0:
                patch.append({"op": "replace", "path": "/disabled", "value": False})
            await self._http.request("PATCH", f"{strategies}/{quote(str(existing.get('id')), safe='')}", json=patch)
        if not env.get("enabled") and percent > 0:
            await self._http.request("POST", f"{self._env(flag)}/on")

    @staticmethod
    def _exposure(env: dict[str, Any], strategy: dict[str, Any] | None, flag: str) -> float:
        if not env.get("enabled") or strategy is None or strategy.get("disabled"):
            return 0.0
        return rollout_of(strategy, flag)

    async def get_rollout(self, flag: str) -> float:
        env = await self._read_env(flag)
        return self._exposure(env, self._ours(env["strategies"])[0], flag)

    async def _segment_name(self, sid: Any) -> str:
        if sid not in self._segments:
            response = await self._http.request(
                "GET", f"/api/admin/segments/{quote(str(sid), safe='')}", final=(403, 404)
            )
            body = self._http.parse(response, "unleash GET segment") if response.status_code == 200 else {}
            name = body.get("name") if isinstance(body, dict) else None
            self._segments[sid] = str(name) if name else f"#{sid}"
        return self._segments[sid]

    async def _restrictions(self, strategy: dict[str, Any]) -> str:
        """"segment beta and constraint region IN eu", or "" when nothing restricts it."""
        parts = [f"segment {await self._segment_name(s)}" for s in strategy.get("segments") or []]
        constraints = strategy.get("constraints") or []
        if len(constraints) <= 2:
            parts += [f"constraint {_constraint(c)}" for c in constraints]
        else:
            parts.append(_plural(len(constraints), "constraint"))
        return " and ".join(parts)

    async def _warning(self, flag: str, strategy: dict[str, Any], env_on: bool) -> str | None:
        """A warning for another enabled strategy that exposes users on its own, else None
        (the caller names the flag)."""
        if strategy.get("disabled"):
            return None
        if strategy.get("name") == STRATEGY and rollout_of(strategy, flag) == 0.0:
            return None
        what = strategy.get("name") or "?"
        if strategy.get("name") == STRATEGY:
            what += f" {fmt_percent(rollout_of(strategy, flag))}%"
        restricted = await self._restrictions(strategy)
        what += f", restricted by {restricted}" if restricted else ", no constraints"
        label = f"{strategy['title']!r}" if strategy.get("title") else f"id {strategy.get('id')}"
        if marked(strategy):
            label += f" (interlock's, run {owner_of(strategy) or 'unknown'})"
        when = "exposes users" if env_on else "will expose users once interlock turns the environment on"
        return (f"strategy {label} ({what}) {when} whatever interlock sets "
                "(Unleash enables a flag for anyone any enabled strategy matches)")

    async def inspect(self, flag: str) -> TargetReading:
        env = await self._read_env(flag)
        strategies = await self._read_strategies(flag)
        ours, _ = self._ours(strategies)
        percent = self._exposure(env, ours, flag)
        env_on = bool(env.get("enabled"))
        if ours is None:
            detail = "no interlock strategy yet"
        elif not env_on:
            detail = f"0%: environment {self.environment!r} is off (interlock's strategy says {fmt_percent(rollout_of(ours, flag))}%)"
        elif ours.get("disabled"):
            detail = f"0%: interlock's strategy is disabled (it says {fmt_percent(rollout_of(ours, flag))}%)"
        else:
            restricted = await self._restrictions(ours)
            detail = f"{fmt_percent(percent)}%, restricted by {restricted}" if restricted else ""
        warnings = [await self._warning(flag, s, env_on) for s in strategies if s is not ours]
        return TargetReading(
            percent,
            owner=None if ours is None else owner_of(ours),
            detail=detail,
            warnings=tuple(w for w in warnings if w),
        )

    async def rollout_and_cohort(self, flag: str) -> tuple[float, str | None]:
        """`get_rollout` and the groupId of interlock's strategy, from one read (the client API,
        which SDKs read, leaves strategy titles out, so only the Admin API can tell which
        strategy is interlock's)."""
        env = await self._read_env(flag)
        strategy = self._ours(env["strategies"])[0]
        cohort = None if strategy is None else (strategy.get("parameters") or {}).get("groupId")
        return self._exposure(env, strategy, flag), None if cohort is None else str(cohort)

    async def cohort_of(self, flag: str) -> str | None:
        """The groupId of interlock's strategy on `flag`, if it has one."""
        return (await self.rollout_and_cohort(flag))[1]

    async def ensure_flag(self, flag: str, description: str = "") -> None:
        """Create a release flag in the project unless it exists (off, no strategy)."""
        response = await self._http.request("GET", self._feature(flag), final=(404,))
        if response.status_code == 200:
            return
        path = f"/api/admin/projects/{quote(self.project, safe='')}/features"
        body = {"name": flag, "type": "release", "description": description or "rolled out by interlock"}
        await self._http.request("POST", path, json=body, final=(409,))

    async def aclose(self) -> None:
        await self._http.aclose()
