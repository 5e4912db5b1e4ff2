"""libyaml composes plans; what users see must not change: the C path against the pure-Python one.

`load_yaml` composes with `yaml.CSafeLoader` and falls back to the pure-Python
loader for documents libyaml refuses. Every document below (the examples, hand-
written corner cases, and a few thousand generated ones with anchors, aliases,
merge keys, non-ASCII text, CRLF line ends, a BOM and deliberate damage) must
give the same data, the same position of every value and key, and the same
problems both ways.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

import core.yamlcompose as yamlcompose
import core.yamlsrc as yamlsrc
from core.yamlsrc import MAX_NODES, load_yaml

ROOT = Path(__file__).resolve().parents[1]

CORNERS = [
    "a: 1\nb: [x, y]\n",
    "é: ü\nb: {ö: 'ä'}\n  # c\nc: 😀x\nd: 1\n",
    "a: 1\r\nb: 2\r\n",
    "\ufeffa: 1\nb: 2\n",
    "a:\n\t- 1\n",
    "a: |\n  x\n  y\nb: >-\n  folded\n  text\nc: 2\n",
    "a: x\u2028y\nb: 1\n",
    "a: 1\x85b: 2\n",
    "base: &b {x: 1}\nother: *b\n",
    "a: &a [1, *a]\n",
    "{a: , b: }\n",
    "x: {a: # c\n  }\n",
    "x: {a, b: }\n",
    "a:\nb: 1\n- \n",
    "a:\n- \n- x\nb: [a: , : b]\n",
    "a: 1\nb: 'tab\there'\n",
    "a: " + "[" * 70 + "]" * 70 + "\n",
    "a: " + "[" * 64 + "]" * 64 + "\n",
    "a: " + "[" * 63 + "]" * 63 + "\n",
    "a: " + "[" * 1200 + "]" * 1200 + "\n",
    "".join(" " * i + f"k{i}:\n" for i in range(70)) + " " * 70 + "x: 1\n",
    "? " + "[" * 70 + "]" * 70 + "\n: 1\n",
    "a: &a [1]\n" + "".join(f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}]\n" for i in range(70)),
    "a: &a [x, x]\n" + "".join(f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}]\n" for i in range(20)),
    "a: &a {x: 1, x: 2}\nb: *a\nc: *a\n",
    "a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nm:\n  <<: [*a, *b]\n  y: 3\n",
    "s: &s text\nt: *s\nl: [*s, *s, {k: *s}]\n",
    "? &k key\n: 1\nother: *k\n",
    "m: {<<: 1}\n",
    "a: *missing\n",
    "a: [1, 2\n",
    "a: 'unterminated\n",
    "a: 1\n---\nb: 2\n",
    "- 1\n- 2\n",
    "",
    "# only a comment\n",
    "a: !!python/object:os.system ls\n",
    "a: !custom 1\nb: !!set {x, y}\n",
    "1: one\n[x]: two\n",
    "a: \x07bell\n",
    "a: \ud800\n",
    "key: value: other\n",
    "a:\n  - b\n  c: d\n",
    "d: 2024-01-01\ni: 0x10\nf: .inf\nn: ~\n",
    "x: &x\n  y: &y [1, 2]\nz: [*y, *x]\nw: {<<: *x, q: *y}\n",
]


def both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """`load_yaml` through libyaml, then through the pure-Python loader only."""
    fast = load_yaml(text, "f.yaml")
    with monkeypatch.context() as patch:
        patch.setattr(yamlcompose, "C_LOADER", None)
        slow = load_yaml(text, "f.yaml")
    return _comparable(fast), _comparable(slow)


def _comparable(result: tuple[Any, Any, Any]) -> Any:
    data, source, problems = result
    return repr(data), source.marks, source.key_marks, [p.format() for p in problems]


def test_libyaml_is_there_and_used_for_valid_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    assert yamlcompose.C_LOADER is yaml.CSafeLoader, "PyYAML was built without libyaml"
    paths: list[bool] = []
    real = yamlcompose.compose

    def spy(text: str, *, fast: bool = True) -> Any:
        paths.append(fast)
        return real(text, fast=fast)

    monkeypatch.setattr(yamlcompose, "compose", spy)
    text = (ROOT / "examples" / "recsys.yaml").read_text()
    assert load_yaml(text, "f")[2] == []
    assert paths == [True]
    paths.clear()
    assert load_yaml("a: [1, 2\n", "f")[2]
    assert paths == [True]  # libyaml refused it; PyYAML's parse words the problem before composing
    paths.clear()
    assert load_yaml("a: {b: }\n", "f")[2] == []
    assert paths == [True, False]  # an empty value in a flow mapping: PyYAML places it


@pytest.mark.parametrize("text", CORNERS, ids=range(len(CORNERS)))
def test_corner_cases_read_the_same_both_ways(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both(text, monkeypatch)
    assert fast == slow


def test_the_examples_read_the_same_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted((ROOT / "examples").rglob("*.yaml"))
    assert len(files) >= 4
    for file in files:
        fast, slow = both(file.read_text(encoding="utf-8"), monkeypatch)
        assert fast == slow, file


def _random_value(rng: random.Random, depth: int, shared: list[Any]) -> Any:
    roll = rng.random()
    if shared and roll < 0.12:
        return rng.choice(shared)  # the dumper writes an anchor and aliases
    if depth > 3 or roll < 0.45:
        return rng.choice([1, -2.5, True, None, "x", "ünï", "a b", "2024-01-01", "0x1f", "yes", "", "😀"])
    if roll < 0.7:
        value: Any = [_random_value(rng, depth + 1, shared) for _ in range(rng.randint(0, 4))]
    else:
        keys = rng.sample(["a", "bé", "c d", "key", "x", "ÿ", "long_key_name"], rng.randint(1, 4))
        value = {k: _random_value(rng, depth + 1, shared) for k in keys}
    if rng.random() < 0.2:
        shared.append(value)
    return value


def _damage(rng: random.Random, text: str) -> str:
    if not text:
        return text
    at = rng.randrange(len(text))
    return rng.choice([text[:at] + text[at + 1 :], text[:at] + rng.choice(":[]{}-&*!\t'\"#|>") + text[at:]])


def test_generated_documents_read_the_same_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(17)
    differences: list[str] = []
    refused = 0
    for i in range(1500):
        shared: list[Any] = []
        doc = {f"k{j}": _random_value(rng, 0, shared) for j in range(rng.randint(1, 5))}
        text = yaml.safe_dump(
            doc, default_flow_style=rng.choice([False, None, True]), allow_unicode=rng.random() < 0.5,
            width=rng.choice([20, 80]), indent=rng.choice([2, 4]),
        )
        if rng.random() < 0.15:
            text = text.replace("\n", "\r\n")
        if rng.random() < 0.3:
            text = text.replace("null", "")  # empty values, in block and flow style
        if rng.random() < 0.4:
            text = _damage(rng, text)
        fast, slow = both(text, monkeypatch)
        refused += bool(slow[3])
        if fast != slow:
            differences.append(text)
    assert differences == []
    assert refused > 100  # the damage really produced problems to compare


def test_alias_expansions_are_counted_not_the_nodes_written() -> None:
    # 30,000 services of 9 nodes each: far beyond MAX_NODES, every node written out.
    services = "".join(f"  s{i}: {{from: {{version: '1'}}, to: {{version: '2'}}, depends_on: [a, b]}}\n" for i in range(30_000))
    data, _, problems = load_yaml("services:\n" + services, "f")
    assert problems == []
    assert len(data["services"]) == 30_000
    # Anchors used by every service expand ~10 nodes each: allowed, in proportion to what is written.
    shared = "defaults: &d {stages: [1, 5, 25, 50, 100], gates: [errors, latency]}\nservices:\n"
    shared += "".join(f"  s{i}: {{<<: *d, to: {{version: '2'}}}}\n" for i in range(20_000))
    data, source, problems = load_yaml(shared, "f")
    assert problems == []
    assert data["services"]["s19999"]["stages"] == [1, 5, 25, 50, 100]
    assert source.marks[("services", "s19999", "to")] == (20_002, 24)


def test_an_alias_bomb_is_still_refused_early() -> None:
    bomb = "a: &a [" + ",".join(["x"] * 10) + "]\n"
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ",".join([f"*{previous}"] * 10) + "]\n"
    data, _, problems = load_yaml(bomb, "f")  # 10^9 nodes if expanded
    assert [p.message.split(";")[0] for p in problems] == [
        f"aliases expand to more than {MAX_NODES} nodes plus 10 per node written (alias bomb?)"
    ]


def _eager(text: str) -> Any:
    """The walk that records every position as it reads (what `load_yaml` did before it
    left positions for later), on the path `load_yaml` takes."""
    fast = yamlcompose.C_LOADER is not None and "\t" not in text
    try:
        return _comparable(yamlsrc._load(text, "f.yaml", fast=fast, record=True))
    except yamlcompose.Inexact:
        return _comparable(yamlsrc._load(text, "f.yaml", fast=False, record=True))


def test_positions_recorded_later_are_the_ones_recorded_while_reading() -> None:
    """`load_yaml` reads documents without aliases by `_Walker.plain`, records no position,
    and records them all when first asked for; data, problems and positions must be the
    eager walk's."""
    texts = list(CORNERS) + [f.read_text(encoding="utf-8") for f in sorted((ROOT / "examples").rglob("*.yaml"))]
    rng = random.Random(7)
    for _ in range(600):
        doc = {f"k{j}": _random_value(rng, 0, []) for j in range(rng.randint(1, 5))}
        text = yaml.safe_dump(doc, default_flow_style=rng.choice([False, None, True]), allow_unicode=True)
        texts.append(_damage(rng, text) if rng.random() < 0.4 else text)
    texts += ["a: 1\na: 2\nb: {c: 1, c: 2}\n", "m: {<<: {x: 1}, x: 2, y: 3}\n", "a: !!set {x}\n"]
    plain = 0
    for text in texts:
        data, source, problems = load_yaml(text, "f.yaml")
        lazy = source._fill is not None
        plain += lazy and "*" not in text
        assert _comparable((data, source, problems)) == _eager(text), text
        assert source._fill is None  # asked for, so recorded
    assert plain > 300  # most of these went the plain, unrecorded way
