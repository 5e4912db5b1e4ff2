"""Shadow stages on the real stack: the `interlock sim serve` services mirror their own
requests over HTTP when interlock tells them to (`environment.mirror: {kind: sim_serve}`),
Prometheus scrapes the copies' metrics and the agreement counters, and the shadow's gates
judge that. HAProxy (the stack's router) cannot copy requests itself. What the tests check
is read back from the servers (flags, routes, the services' own state), not from interlock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from adapters.stack.stack import Stack
from adapters.stack.unleash import UnleashServer
from stackrun import (
    cli, cli_env, events, fast_plan, inject, read_back, reset, served, shared_stack, sim_state, stop_shared,
)

AGREEMENT = (
    'sum(increase(interlock_shadow_agreed_total{service="$service"}[5s]))'
    ' / sum(increase(interlock_shadow_compared_total{service="$service"}[5s]))'
    ' and on () (sum(increase(interlock_shadow_compared_total{service="$service"}[5s])) > 20)'
)


@pytest.fixture(scope="session")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


def shadow_plan(stack: Stack, folder: Path) -> Path:
    def shadow(doc: dict) -> None:
        doc["environment"]["mirror"] = {"kind": "sim_serve", "url": stack.sim_admin, "timeout": "2s"}
        doc["environment"]["metrics"]["queries"]["prediction_agreement"] = AGREEMENT
        doc["gates"]["agreement"] = {"metric": "prediction_agreement", "min": 0.8, "interval": "1s",
                                     "no_data": "ignore", "no_data_timeout": "6s", "consecutive_error_limit": 10}
        doc["gates"]["errors"]["no_data_timeout"] = "6s"
        doc["services"]["embedder"]["shadow"] = {"duration": "6s", "side_effect_free": True, "gates": ["errors"]}
        doc["services"]["ranker"]["shadow"] = {"duration": "6s", "side_effect_free": True,
                                               "gates": ["agreement", "errors"]}

    return fast_plan(stack, folder, edit=shadow)


def test_a_shadow_on_the_real_stack_judges_mirrored_requests_before_any_user(real_stack: Stack, tmp_path: Path) -> None:
    reset(real_stack)
    plan = shadow_plan(real_stack, tmp_path)
    journal = tmp_path / "journal.db"
    done = cli("run", str(plan), "--headless", "--json", "--speed", "1", "--journal", str(journal),
               env=cli_env(real_stack))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    recorded = events(journal)
    mirrors = [(e["service"], e["percent"]) for e in recorded if e["kind"] == "mirror_applied"]
    assert sorted(mirrors) == [("embedder", 0.0), ("embedder", 100.0), ("ranker", 0.0), ("ranker", 100.0)]
    on = next(e["at"] for e in recorded if e["kind"] == "mirror_applied" and e["service"] == "ranker")
    off = next(e["at"] for e in recorded if e["kind"] == "mirror_applied" and e["service"] == "ranker"
               and e["percent"] == 0.0)
    exposed = [e["at"] for e in recorded if e["kind"] == "exposure_applied" and e["service"] == "ranker"
               and e["percent"] > 0]
    assert off - on >= 6.0 and exposed and min(exposed) >= off  # 6 s of shadow, then stage 1
    judged = [e for e in recorded if e["kind"] == "measured" and e["service"] == "ranker"
              and e["gate"] == "agreement" and e["value"] is not None]
    assert judged and all(on <= e["at"] <= off and 0.8 <= e["value"] <= 1.0 for e in judged)
    errors = [e for e in recorded if e["kind"] == "measured" and e["service"] == "embedder"
              and e["gate"] == "errors" and on <= e["at"] <= off and e["value"] is not None]
    assert errors  # the copies' errors came from Prometheus at 0% exposure
    assert sim_state(real_stack)["mirrors"] == {}  # every mirror went off


def test_a_disagreeing_ranker_is_caught_in_shadow_and_no_user_ever_sees_it(real_stack: Stack, tmp_path: Path) -> None:
    reset(real_stack)
    inject(real_stack, {"kind": "shadow_disagreement", "service": "ranker", "value": 0.6})
    plan = shadow_plan(real_stack, tmp_path)
    journal = tmp_path / "journal.db"
    before = served(real_stack)[("ranker", "6.0")]
    done = cli("run", str(plan), "--headless", "--json", "--speed", "1", "--journal", str(journal),
               env=cli_env(real_stack))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])["summary"]
    assert summary["phase"] == "rolled_back"
    assert summary["services"]["ranker"] == {"phase": "failed", "exposure": 0.0}
    recorded = events(journal)
    for event in recorded:  # no event ever put a user on the new embedder or ranker
        if event["kind"] == "exposure_applied" and event["service"] in ("embedder", "ranker", "api"):
            assert event["percent"] == 0.0, event
    failed = [e for e in recorded if e["kind"] == "measured" and e["gate"] == "agreement"
              and e["value"] is not None and e["value"] < 0.8]
    assert failed, "the agreement gate never saw the disagreement"
    read = read_back(real_stack)
    assert read["flag:embedder-v3"] == read["flag:ranker-v6"] == 0.0
    assert read["route:embedder"] == read["route:ranker"] == 0.0
    assert sim_state(real_stack)["mirrors"] == {}
    assert served(real_stack)[("ranker", "6.0")] > before  # it answered copies, nobody saw them
    reset(real_stack)
