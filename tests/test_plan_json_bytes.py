"""`plan --json` written from the blast radius bitmasks (`core.radius_json`) is the plain
`json.dumps(graph.to_json(), indent=2)`, byte for byte, on many graphs and on every example."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import core.radius_json
from core.digraph import BlastRadius
from core.order import compile_plan
from core.plan import Plan
from core.planload import load_and_compile
from tui.cli.main import main
from tui.json_block import plan_json_chunks

ROOT = Path(__file__).resolve().parents[1]
ODD_NAMES = ['q"uote', "back\\slash", "tab\tname", "é-accent", "雪", "emoji-\U0001f600", "del\x7f", "ctl\x01", "plain"]


def _plain(radius: BlastRadius) -> bytes:
    return json.dumps({"blast_radius": {k: list(v) for k, v in sorted(radius.items())}}, indent=2).encode()


def _written(radius: BlastRadius) -> bytes:
    return b'{\n  "blast_radius": ' + b"".join(core.radius_json.radius_json(radius)) + b"\n}"


def _random_mask(rng: random.Random, n: int) -> int:
    """Bits in every shape: none, all, sparse, dense, long runs with gaps, a tail, one bit."""
    shape = rng.choice(["none", "all", "sparse", "dense", "runs", "tail", "one", "runs+tail"])
    if n == 0 or shape == "none":
        return 0
    if shape == "all":
        return (1 << n) - 1
    if shape == "one":
        return 1 << rng.randrange(n)
    mask = 0
    if shape in ("sparse", "dense"):
        p = 0.05 if shape == "sparse" else 0.8
        mask = sum(1 << i for i in range(n) if rng.random() < p)
    if shape in ("runs", "runs+tail"):
        i = rng.randrange(n)
        while i < n:
            length = rng.randint(1, 80)
            mask |= ((1 << min(length, n - i)) - 1) << i
            i += length + rng.randint(1, 200)
    if shape in ("tail", "runs+tail"):
        mask |= ((1 << n) - 1) ^ ((1 << rng.randrange(n)) - 1)
    return mask


@pytest.mark.parametrize("sparse", [0, 32, 10**9])  # always run by run, the default, always compress
def test_radius_json_is_json_dumps_on_random_masks(sparse: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.radius_json, "_SPARSE", sparse)
    rng = random.Random(17)
    for case in range(200):
        n = rng.choice([0, 1, 2, 3, 7, 64, 65, 130, 400])
        names = sorted({*rng.sample(ODD_NAMES, min(n, rng.randint(0, 3)))} | {f"s{i:04d}" for i in range(n)})[:n]
        radius = BlastRadius(tuple(names), tuple(_random_mask(rng, n) for _ in names))
        assert _written(radius) == _plain(radius), case


def _random_plan(rng: random.Random, shape: str) -> Plan:
    n = {"single": 1}.get(shape, rng.randint(2, 120))
    names = [f"s{i:03d}" for i in range(n)]
    if rng.random() < 0.5:  # names that JSON escapes, and that sort apart from the others
        names = sorted(set(names[: n - 3] + rng.sample(ODD_NAMES, min(3, n))))
        n = len(names)
    rng.shuffle(names)  # the dependency order is not the name order
    deps: dict[str, list[str]] = {name: [] for name in names}
    layer = rng.randint(2, 10)
    for i, name in enumerate(names):
        if shape == "chain" and i:
            deps[name] = [names[i - 1]]
        elif shape == "diamond" and i:
            deps[name] = sorted({names[(i - 1) // 2], names[max(0, i - 2) // 2]})
        elif shape == "layered":
            start = (i // layer - 1) * layer
            if start >= 0:
                deps[name] = rng.sample(names[start : start + layer], rng.randint(1, min(layer, 3)))
        elif shape == "disconnected" and i % 3:
            deps[name] = [names[i - 1]]
        elif shape == "random" and i:
            deps[name] = rng.sample(names[:i], rng.randint(0, min(i, 4)))
    services = {
        name: {"depends_on": deps[name], "from": {"version": "1"}}
        | ({"to": {"version": "2"}} if rng.random() < 0.9 else {})
        for name in names
    }
    return Plan.model_validate({"rollout": "r\u00e9-\"x\"", "services": services})


def test_plan_json_is_json_dumps_on_random_graphs() -> None:
    rng = random.Random(4)
    shapes = ["single", "chain", "diamond", "layered", "disconnected", "random", "none"]
    reached = 0
    for case in range(140):
        shape = shapes[case % len(shapes)]
        graph = compile_plan(_random_plan(rng, shape))
        expected = json.dumps(graph.to_json(), indent=2).encode()
        assert b"".join(plan_json_chunks(graph)) == expected, (case, shape)
        reached += sum(map(len, graph.blast_radius.values()))
    assert reached > 10_000  # the graphs are not all trivial


def test_a_blast_radius_given_as_a_plain_mapping_is_written_the_same() -> None:
    graph = compile_plan(_random_plan(random.Random(2), "diamond"))
    plain = type(graph)(**{**graph.__dict__, "blast_radius": dict(graph.blast_radius)})
    assert b"".join(plan_json_chunks(plain)) == json.dumps(graph.to_json(), indent=2).encode()


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.yaml")))
def test_plan_json_of_every_example_is_json_dumps(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "examples" / example
    _, graph, _ = load_and_compile(path)
    assert main(["plan", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps(graph.to_json(), indent=2) + "\n"
    assert json.loads(out)["blast_radius"] == {k: list(v) for k, v in graph.blast_radius.items()}


def test_the_radius_masks_are_computed_once_and_only_when_first_read() -> None:
    calls = []

    def masks() -> tuple[int, ...]:
        calls.append(1)
        return (0b110, 0b100, 0)

    radius = BlastRadius(("a", "b", "c"), masks)
    assert list(radius) == ["a", "b", "c"] and len(radius) == 3 and calls == []  # names need no masks
    assert radius["a"] == ("b", "c") and radius.size("b") == 1 and radius["c"] == ()
    assert radius == BlastRadius(("a", "b", "c"), (0b110, 0b100, 0))
    assert calls == [1]
