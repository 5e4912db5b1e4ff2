"""The contract-aware order: DESIGN.md's table and rule, case by case, checked
against an independent (slow, networkx) oracle on random plans, plus the
problems a plan's graph can have and the text of `interlock plan`."""

from __future__ import annotations

import pickle
import random
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.digraph import DynamicOrder, IndexSet
from core.graph import RolloutGraph
from core.order import classify, compile_plan, reads
from core.plan import Contracts, Plan
from core.problems import InputError, SourceMap
from tests.helpers import DESIGN_PLAN_JSON, design_services
from tui.cli.plan_text import render_plan

DESIGN_SERVICES = design_services(ranker_gates=["errors", "latency", "drift"])


def make_plan(services: dict[str, Any], **extra: Any) -> Plan:
    return Plan.model_validate({"rollout": "test", "services": services, **extra})


def svc(
    *deps: str,
    produces: dict[str, tuple[int, int]] | None = None,
    consumes: dict[str, tuple[list[int], list[int]]] | None = None,
    static: bool = False,
) -> dict[str, Any]:
    """A service going 1 → 2; contracts as (old, new) pairs."""
    produces, consumes = produces or {}, consumes or {}
    service: dict[str, Any] = {"depends_on": list(deps)}
    for key, which in (("from", 0), ("to", 1)):
        service[key] = {
            "version": str(which + 1),
            "produces": {k: v[which] for k, v in produces.items()},
            "consumes": {k: v[which] for k, v in consumes.items()},
        }
    if static:
        del service["to"]
    return service


def edge(
    producer_old: int, producer_new: int | None, old_reads: list[int], new_reads: list[int] | None
) -> dict[str, Any]:
    """Two services p → c over contract `x`; `None` keeps that side static."""
    p: dict[str, Any] = {"from": {"version": "p1", "produces": {"x": producer_old}}}
    if producer_new is not None:
        p["to"] = {"version": "p2", "produces": {"x": producer_new}}
    c: dict[str, Any] = {"depends_on": ["p"]}
    c["from"] = {"version": "c1", "consumes": {"x": old_reads}}
    if new_reads is not None:
        c["to"] = {"version": "c2", "consumes": {"x": new_reads}}
    return {"p": p, "c": c}


def problems_of(plan: Plan, source: SourceMap | None = None) -> list[str]:
    with pytest.raises(InputError) as caught:
        compile_plan(plan, source)
    return [problem.format() for problem in caught.value.problems]


def precedence(graph: RolloutGraph) -> list[tuple[str, str, str]]:
    return [(p.before, p.after, p.reason) for p in graph.precedence]


# --- the DESIGN.md example -------------------------------------------------------


def test_design_example_compiles_to_the_documented_json() -> None:
    plan = make_plan(DESIGN_SERVICES, rollout="recsys-embeddings-v3")
    graph = compile_plan(plan)
    assert graph.to_json() == DESIGN_PLAN_JSON
    assert graph.groups == (("features",), ("embedder", "ranker"), ("api",))
    assert graph.order == ("features", "embedder", "ranker", "api")
    assert graph.group_of == {"features": 0, "embedder": 1, "ranker": 1, "api": 2}
    assert graph.group_preds == (frozenset(), frozenset({0}), frozenset({1}))
    assert graph.group_after == (frozenset({1, 2}), frozenset({2}), frozenset())
    assert graph.wave_of_group == (0, 1, 2)
    assert graph.moving == ("api", "embedder", "features", "ranker")
    assert graph.static == ()
    assert graph.group("ranker") == ("embedder", "ranker")


def test_design_example_reads_as_text() -> None:
    plan = make_plan(DESIGN_SERVICES, rollout="recsys-embeddings-v3")
    text = render_plan(plan, compile_plan(plan))
    assert "\x1b" not in text
    assert text.startswith(
        "rollout recsys-embeddings-v3: 4 services to move in 3 waves, 0 static\n"
    )
    assert "  1  features  3.1 -> 3.2\n" in text
    assert "  2  embedder  2.4 -> 3.0   lockstep with ranker\n" in text
    assert "     ranker    5.0 -> 6.0   lockstep with embedder\n" in text
    assert "  3  api       1.9 -> 2.0\n" in text
    assert "rollout order: features, embedder, ranker, api\n" in text
    assert "rollback order: api, ranker, embedder, features" in text
    assert (
        "    embedder -> ranker: neither order is safe: the old ranker 5.0 does not read "
        "embeddings 3, the new one does not read embeddings 2\n"
    ) in text
    assert (
        "  features before embedder: the old embedder 2.4 reads features 7, the new one does "
        "not read features 6 (producer first)\n"
    ) in text
    assert (
        "  ranker before api: no contract between them, either order is safe (producer first)\n"
    ) in text
    assert "  features  3 downstream: embedder, ranker, api\n" in text
    assert "  api       none" in text.splitlines()


# --- the table, one edge at a time -----------------------------------------------


@pytest.mark.parametrize(
    ("old_reads", "new_reads", "kind"),
    [
        ([1, 2], [2], "producer_first"),
        ([1], [1, 2], "consumer_first"),
        ([1], [2], "lockstep"),
        ([1, 2], [1, 2], "free"),
    ],
)
def test_classify_follows_the_table(old_reads: list[int], new_reads: list[int], kind: str) -> None:
    # Lockstep's new consumer reads only the new producer, so targets stay compatible.
    assert classify(make_plan(edge(1, 2, old_reads, new_reads)), "p", "c") == kind


def test_reads_ignores_contracts_named_on_one_side_only() -> None:
    producer = Contracts(version="1", produces={"a": 1, "b": 2})
    assert reads(Contracts(version="1", consumes={"b": [2], "z": [9]}), producer)
    assert reads(Contracts(version="1"), producer)
    assert not reads(Contracts(version="1", consumes={"a": [2], "b": [2]}), producer)


def test_producer_first() -> None:
    graph = compile_plan(make_plan(edge(1, 2, [1, 2], [2])))
    assert precedence(graph) == [("p", "c", "producer_first")]
    assert graph.waves == (("p",), ("c",))
    assert graph.lockstep == ()


def test_consumer_first_is_expand_contract() -> None:
    plan = make_plan(edge(1, 2, [1], [1, 2]))
    graph = compile_plan(plan)
    assert precedence(graph) == [("c", "p", "consumer_first")]
    assert graph.waves == (("c",), ("p",))
    assert graph.order == ("c", "p")
    assert (
        "c before p: the new c c2 reads x 1, the old one does not read x 2; expand/contract "
        "(consumer first)"
    ) in render_plan(plan, graph)


def test_neither_order_safe_is_lockstep() -> None:
    graph = compile_plan(make_plan(edge(1, 2, [1], [2])))
    assert graph.lockstep == (("c", "p"),)
    assert graph.groups == (("c", "p"),)
    assert graph.waves == (("c", "p"),)
    assert graph.precedence == ()


def test_free_edge_goes_producer_first() -> None:
    graph = compile_plan(make_plan(edge(1, 2, [1, 2], [1, 2])))
    assert precedence(graph) == [("p", "c", "producer_first")]


def test_free_edge_that_would_close_a_cycle_goes_consumer_first() -> None:
    # m consumes p but must go first (consumer first); c feeds m producer first.
    # So c ⇝ m ⇝ p is forced, and the free edge p → c cannot go producer first.
    plan = make_plan(
        {
            "p": svc(produces={"x": (1, 2)}),
            "c": svc("p", produces={"y": (1, 2)}),
            "m": svc("p", "c", consumes={"x": ([1], [1, 2]), "y": ([1, 2], [2])}),
        }
    )
    assert classify(plan, "p", "c") == "free"
    graph = compile_plan(plan)
    assert precedence(graph) == [
        ("c", "m", "producer_first"),
        ("c", "p", "consumer_first"),
        ("m", "p", "consumer_first"),
    ]
    assert graph.waves == (("c",), ("m",), ("p",))
    assert (
        "c before p: either order is safe, but producer first would close a cycle (consumer first)"
    ) in render_plan(plan, graph)


def test_earlier_free_edges_count_when_placing_later_ones() -> None:
    # Free (a, b) is placed first: a before b. Forced: y before a. Then the free
    # (b, y) would close b → y → a → b, so y goes before b.
    plan = make_plan(
        {
            "a": svc(produces={"x": (1, 2)}),
            "b": svc("a"),
            "y": svc("a", "b", consumes={"x": ([1], [1, 2])}),
        }
    )
    graph = compile_plan(plan)
    assert precedence(graph) == [
        ("a", "b", "producer_first"),
        ("y", "a", "consumer_first"),
        ("y", "b", "consumer_first"),
    ]
    assert graph.order == ("y", "a", "b")


def test_forced_chain_becomes_one_lockstep_group() -> None:
    # a → b and b → c are producer first; a → c is consumer first: c before a.
    # No pair is lockstep, but the forced edges form a cycle, so all three move together.
    plan = make_plan(
        {
            "a": svc(produces={"x": (1, 2)}),
            "b": svc("a", consumes={"x": ([1, 2], [2])}, produces={"y": (1, 2)}),
            "c": svc("a", "b", consumes={"x": ([1], [1, 2]), "y": ([1, 2], [2])}),
            "d": svc("c"),
        }
    )
    assert [classify(plan, *e) for e in [("a", "b"), ("b", "c"), ("a", "c")]] == [
        "producer_first",
        "producer_first",
        "consumer_first",
    ]
    graph = compile_plan(plan)
    assert graph.lockstep == (("a", "b", "c"),)
    assert graph.groups == (("a", "b", "c"), ("d",))
    assert precedence(graph) == [("c", "d", "producer_first")]
    assert graph.waves == (("a", "b", "c"), ("d",))


# --- problems --------------------------------------------------------------------


def test_cycles_are_printed_and_located() -> None:
    plan = make_plan(
        {
            "a": svc("b"),
            "b": svc("c"),
            "c": svc("a"),
            "d": svc("d", static=True),
            "e": svc("a"),
        }
    )
    marks = {("services", "a", "depends_on"): (4, 17), ("services", "d"): (12, 3)}
    source = SourceMap("plan.yaml", marks=marks)
    assert problems_of(plan, source) == [
        "plan.yaml:4:17: services.a.depends_on: dependency cycle: a -> b -> c -> a",
        "plan.yaml:12:3: services.d.depends_on: dependency cycle: d -> d",
    ]


def test_cycle_printed_is_the_shortest_through_the_first_name() -> None:
    plan = make_plan(
        {
            "a": svc("b", "z", static=True),
            "b": svc("c", static=True),
            "c": svc("a", static=True),
            "z": svc("a", static=True),
        }
    )
    assert problems_of(plan) == [
        "<input>:1:1: services.a.depends_on: dependency cycle: a -> z -> a"
    ]


def test_unknown_dependency_is_a_problem() -> None:
    plan = make_plan({"a": svc("nope")})
    assert problems_of(plan) == [
        "<input>:1:1: services.a.depends_on[0]: unknown service 'nope'; the plan's services are: a"
    ]


def test_static_producer_must_be_read_by_both_versions() -> None:
    assert compile_plan(make_plan(edge(3, None, [3], [3, 4]))).precedence == ()
    source = SourceMap("p.yaml", marks={("services", "c", "to", "consumes", "x"): (9, 22)})
    assert problems_of(make_plan(edge(3, None, [2], [4])), source) == [
        "p.yaml:1:1: services.c.from.consumes.x: c c1 consumes x [2] but static p p1 produces 3; "
        "both versions of c must read p (add 3 to the list)",
        "p.yaml:9:22: services.c.to.consumes.x: c c2 consumes x [4] but static p p1 produces 3; "
        "both versions of c must read p (add 3 to the list)",
    ]


def test_static_consumer_must_read_both_versions() -> None:
    graph = compile_plan(make_plan(edge(1, 2, [1, 2], None)))
    assert graph.static == ("c",) and graph.waves == (("p",),) and graph.precedence == ()
    assert graph.blast_radius["p"] == ("c",)
    assert problems_of(make_plan(edge(1, 2, [1], None))) == [
        "<input>:1:1: services.p.to.produces.x: p p2 produces x 2 but static c c1 consumes x [1]; "
        "both versions of p must be read by c (produce one of [1])"
    ]
    assert problems_of(make_plan(edge(1, 2, [2], None))) == [
        "<input>:1:1: services.p.from.produces.x: p p1 produces x 1 but static c c1 consumes x [2]; "
        "both versions of p must be read by c (produce one of [2])"
    ]


def test_incompatible_target_versions_are_a_problem() -> None:
    services = {**DESIGN_SERVICES}
    services["embedder"] = {
        **services["embedder"],
        "to": {"version": "3.0", "consumes": {"features": [7]}, "produces": {"embeddings": 2}},
    }
    assert problems_of(make_plan(services)) == [
        "<input>:1:1: services.ranker.to.consumes.embeddings: ranker 6.0 consumes embeddings [3] "
        "but embedder 3.0 produces 2; the target versions must read each other (ranker must "
        "accept 2, or embedder produce one of [3])"
    ]


def test_lockstep_groups_need_the_same_stage_percents() -> None:
    ranker = {**DESIGN_SERVICES["ranker"], "stages": [10, {"percent": 100}]}
    services = {**DESIGN_SERVICES, "ranker": ranker}
    source = SourceMap("r.yaml", marks={("services", "ranker", "stages"): (20, 13)})
    assert problems_of(make_plan(services), source) == [
        "r.yaml:20:13: services.ranker.stages: lockstep group embedder + ranker moves on one "
        "cohort, so its services need the same stage percents, but embedder has "
        "[1, 5, 25, 50, 100], ranker has [10, 100]"
    ]
    ranker = {**DESIGN_SERVICES["ranker"], "stages": [1, 5, {"percent": 25, "bake": "1m"}, 50, 100]}
    same = {**DESIGN_SERVICES, "ranker": ranker}
    assert compile_plan(make_plan(same)).lockstep == (("embedder", "ranker"),)


def test_every_problem_is_reported_at_once() -> None:
    services = {
        **edge(1, 2, [1], [2]),  # lockstep p + c, with different stages below
        "s": {"from": {"version": "1", "produces": {"x": 5}}},
        "t": svc("s", "u", consumes={"x": ([4], [5])}),
        "u": svc("t", static=True),
    }
    services["c"] = {**services["c"], "stages": [50, 100]}
    messages = [line.split(": ", 2)[2] for line in problems_of(make_plan(services))]
    assert [m.split(" ", 2)[:2] for m in messages] == [
        ["dependency", "cycle:"],
        ["t", "1"],
        ["lockstep", "group"],
    ]


# --- blast radius ----------------------------------------------------------------


def test_blast_radius_follows_data_flow_through_static_services() -> None:
    moving = {"from": {"version": "1"}, "to": {"version": "2"}}
    plan = make_plan(
        {
            "src": moving,
            "left": {"depends_on": ["src"], **moving},
            "right": {"depends_on": ["src"], "from": {"version": "1"}},  # static
            "sink": {"depends_on": ["left", "right"], **moving},
            "apart": moving,
        }
    )
    graph = compile_plan(plan)
    assert dict(graph.blast_radius) == {
        "apart": (),
        "left": ("sink",),
        "right": ("sink",),
        "sink": (),
        "src": ("left", "right", "sink"),
    }
    assert graph.static == ("right",)
    assert all("right" not in wave for wave in graph.waves)
    assert graph.waves == (("apart", "src"), ("left",), ("sink",))


def test_bitmask_sets_behave_like_frozensets() -> None:
    s = IndexSet(0b1010_0110)
    assert s == frozenset({1, 2, 5, 7}) and frozenset({1, 2, 5, 7}) == s
    assert list(s) == [1, 2, 5, 7] and len(s) == 4
    assert 5 in s and 3 not in s and -1 not in s and "x" not in s
    assert hash(s) == hash(frozenset({1, 2, 5, 7}))
    assert s | {0} == frozenset({0, 1, 2, 5, 7})
    assert pickle.loads(pickle.dumps(s)) == s
    graph = compile_plan(make_plan(DESIGN_SERVICES))
    assert pickle.loads(pickle.dumps(graph)) == graph


# --- random plans against an independent oracle ----------------------------------


@st.composite
def random_plans(draw: st.DrawFn, consistent: bool = True) -> Plan:
    """A random DAG with one contract per producer; `consistent` keeps every rule
    satisfied (the plan compiles), otherwise anything goes."""
    n = draw(st.integers(1, 9))
    names = draw(st.permutations([f"s{i}" for i in range(n)]))  # flow order ≠ name order
    version = st.integers(1, 3)
    lists = st.lists(version, min_size=0 if not consistent else 1, max_size=3, unique=True)
    moves = [draw(st.integers(0, 4)) > 0 for _ in names]
    olds = [draw(version) for _ in names]
    news = [draw(version) for _ in names]
    services: dict[str, Any] = {}
    for i, name in enumerate(names):
        deps = [j for j in range(i) if draw(st.integers(0, 2)) == 0]
        old: dict[str, Any] = {"version": "1", "produces": {name: olds[i]}, "consumes": {}}
        new: dict[str, Any] = {"version": "2", "produces": {name: news[i]}, "consumes": {}}
        for j in deps:
            if not draw(st.booleans()):
                continue  # this edge has no contract
            old_reads, new_reads = draw(lists), draw(lists)
            if consistent:
                if moves[i] and moves[j]:
                    new_reads = sorted({*new_reads, news[j]})
                elif moves[i]:
                    old_reads = sorted({*old_reads, olds[j]})
                    new_reads = sorted({*new_reads, olds[j]})
                elif moves[j]:
                    old_reads = sorted({*old_reads, olds[j], news[j]})
            old["consumes"][names[j]], new["consumes"][names[j]] = old_reads, new_reads
        service: dict[str, Any] = {"depends_on": [names[j] for j in deps], "from": old}
        if moves[i]:
            service["to"] = new
        if not consistent and draw(st.integers(0, 5)) == 0:
            service["stages"] = [50, 100]
        services[name] = service
    return make_plan(services)


def oracle(plan: Plan) -> dict[str, Any]:
    """DESIGN.md's rule the slow, obvious way."""
    moving = [n for n in plan.services if plan.services[n].moves]
    flow = nx.DiGraph((d, n) for n, s in plan.services.items() for d in s.depends_on)
    flow.add_nodes_from(plan.services)
    forced = nx.DiGraph()
    forced.add_nodes_from(moving)
    free = []
    for p, c in flow.edges:
        if p in forced and c in forced:
            kind = classify(plan, p, c)
            if kind != "consumer_first" and kind != "free":
                forced.add_edge(p, c)
            if kind in ("consumer_first", "lockstep"):
                forced.add_edge(c, p)
            if kind == "free":
                free.append((p, c))
    comp = {n: min(scc) for scc in nx.strongly_connected_components(forced) for n in scc}
    dag = nx.DiGraph((comp[a], comp[b]) for a, b in forced.edges if comp[a] != comp[b])
    dag.add_nodes_from(set(comp.values()))
    prec = {
        (a, b, "producer_first" if (a, b) in flow.edges else "consumer_first")
        for a, b in forced.edges
        if comp[a] != comp[b]
    }
    for p, c in sorted(free):
        u, v = comp[p], comp[c]
        if u == v:
            continue
        if nx.has_path(dag, v, u):
            dag.add_edge(v, u)
            prec.add((c, p, "consumer_first"))
        else:
            dag.add_edge(u, v)
            prec.add((p, c, "producer_first"))
    members = {root: tuple(sorted(n for n in comp if comp[n] == root)) for root in dag}
    order = list(nx.lexicographical_topological_sort(dag, key=lambda r: members[r][0]))
    return {
        "groups": tuple(members[r] for r in order),
        "precedence": sorted(prec),
        "waves": tuple(
            tuple(sorted(n for r in gen for n in members[r]))
            for gen in nx.topological_generations(dag)
        ),
        "after": tuple(frozenset(order.index(d) for d in nx.descendants(dag, r)) for r in order),
        "preds": tuple(frozenset(order.index(d) for d in dag.predecessors(r)) for r in order),
        "blast": {n: tuple(sorted(nx.descendants(flow, n))) for n in plan.services},
    }


@settings(max_examples=300, deadline=None)
@given(random_plans())
def test_random_plans_match_the_oracle(plan: Plan) -> None:
    graph = compile_plan(plan)
    # The groups after each group (n² bits) are computed when first read, never by compiling.
    assert "group_after" not in graph.__dict__
    expected = oracle(plan)
    assert graph.groups == expected["groups"]
    assert precedence(graph) == expected["precedence"]
    assert graph.waves == expected["waves"]
    assert graph.group_after == expected["after"]
    assert graph.group_preds == expected["preds"]
    assert dict(graph.blast_radius) == expected["blast"]


@settings(max_examples=200, deadline=None)
@given(random_plans())
def test_random_plans_keep_the_invariants(plan: Plan) -> None:
    graph = compile_plan(plan)
    index = graph.group_of
    for p in graph.precedence:
        assert index[p.before] < index[p.after]
    dag = nx.DiGraph((j, i) for i, preds in enumerate(graph.group_preds) for j in preds)
    dag.add_nodes_from(range(len(graph.groups)))
    assert nx.is_directed_acyclic_graph(dag)
    flat = [n for g in graph.groups for n in g]
    assert sorted(flat) == list(graph.moving) and list(graph.order) == flat
    assert sorted(n for w in graph.waves for n in w) == list(graph.moving)
    assert not set(graph.static) & set(flat)
    for i, preds in enumerate(graph.group_preds):
        assert all(graph.wave_of_group[i] > graph.wave_of_group[j] for j in preds)
        assert set(graph.group(graph.groups[i][0])) <= set(graph.waves[graph.wave_of_group[i]])
    for group in graph.lockstep:
        inside = nx.DiGraph()
        inside.add_nodes_from(group)
        for consumer in group:
            for producer in set(plan.services[consumer].depends_on) & set(group):
                kind = classify(plan, producer, consumer)
                if kind in ("producer_first", "lockstep"):
                    inside.add_edge(producer, consumer)
                if kind in ("consumer_first", "lockstep"):
                    inside.add_edge(consumer, producer)
        assert nx.is_strongly_connected(inside)
    # Determinism, including independence from the order services are written in.
    dumped = {n: plan.services[n].model_dump(by_alias=True) for n in reversed(plan.services)}
    shuffled = Plan.model_validate({"rollout": plan.rollout, "services": dumped})
    assert compile_plan(plan) == graph == compile_plan(shuffled)


@settings(max_examples=200, deadline=None)
@given(random_plans(consistent=False))
def test_any_plan_compiles_or_reports_problems(plan: Plan) -> None:
    try:
        graph = compile_plan(plan)
    except InputError as error:
        assert error.problems
        with pytest.raises(InputError) as again:
            compile_plan(plan)
        assert again.value.problems == error.problems
    else:
        assert graph == compile_plan(plan)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 20), st.randoms(use_true_random=False))
def test_dynamic_order_answers_like_reachability(n: int, rng: random.Random) -> None:
    truth = nx.DiGraph()
    truth.add_nodes_from(range(n))
    order = DynamicOrder([rng.randrange(3) for _ in range(n)], [])
    for _ in range(3 * n):
        u, v = rng.sample(range(n), 2)
        closes = nx.has_path(truth, v, u)
        assert order.try_add(u, v) is not closes
        if not closes:
            truth.add_edge(u, v)
    assert sorted(order.pos) == list(range(n))
    assert all(order.pos[a] < order.pos[b] for a, b in truth.edges)


def test_a_large_layered_plan_matches_the_oracle() -> None:
    rng = random.Random(3)
    styles = [([1, 2], [2]), ([1], [1, 2]), ([1], [2]), ([1, 2], [1, 2])]
    services: dict[str, Any] = {}
    for i in range(600):
        layer = i // 40
        below = range((layer - 1) * 40, layer * 40) if layer else range(0)
        deps = [f"n{j:03d}" for j in rng.sample(below, min(len(below), rng.randint(1, 3)))]
        old_c, new_c = {}, {}
        for dep in deps:
            old_c[dep], new_c[dep] = rng.choices(styles, weights=[6, 2, 1, 4])[0]
        services[f"n{i:03d}"] = {
            "depends_on": deps,
            "from": {"version": "1", "produces": {f"n{i:03d}": 1}, "consumes": old_c},
            "to": {"version": "2", "produces": {f"n{i:03d}": 2}, "consumes": new_c},
        }
    plan = make_plan(services)
    graph = compile_plan(plan)
    expected = oracle(plan)
    assert graph.groups == expected["groups"]
    assert precedence(graph) == expected["precedence"]
    assert graph.waves == expected["waves"]
    assert graph.lockstep and any(p.reason == "consumer_first" for p in graph.precedence)
