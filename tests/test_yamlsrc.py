"""The YAML source loader: plain data, exact positions, and problems instead of surprises."""

from __future__ import annotations

from core.yamlsrc import MAX_NODES, load_yaml


def formatted(text: str) -> list[str]:
    return [p.format() for p in load_yaml(text, "f.yaml")[2]]


def test_positions_of_values_and_keys() -> None:
    data, source, problems = load_yaml("a: 1\nb:\n  c: [x, {d: 2}]\n", "f.yaml")
    assert problems == []
    assert data == {"a": 1, "b": {"c": ["x", {"d": 2}]}}
    assert source.marks[()] == (1, 1)
    assert source.marks[("a",)] == (1, 4)
    assert source.key_marks[("b",)] == (2, 1)
    assert source.key_marks[("b", "c")] == (3, 3)
    assert source.marks[("b", "c", 1, "d")] == (3, 14)
    assert source.key_marks[("b", "c", 1, "d")] == (3, 11)
    assert source.locate(("b", "c", 1, "missing")) == (3, 10)


def test_plain_scalar_types() -> None:
    data, _, problems = load_yaml("n: ~\nb: true\ni: 0x10\nf: 1.5\ns: '3'\nd: 2024-01-01\n", "f")
    assert problems == []
    assert data == {"n": None, "b": True, "i": 16, "f": 1.5, "s": "3", "d": "2024-01-01"}


def test_duplicate_keys_at_every_depth_keep_the_first() -> None:
    data, _, _ = load_yaml("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n", "f.yaml")
    assert data == {"a": 1, "b": {"c": 2}}
    assert formatted("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n") == [
        "f.yaml:5:1: a: duplicate key 'a' (first defined on line 1); YAML would silently keep only the last one",
        "f.yaml:4:3: b.c: duplicate key 'c' (first defined on line 3); YAML would silently keep only the last one",
    ]


def test_non_text_keys() -> None:
    assert formatted("1: a\nyes: b\n? [1]\n: c\n") == [
        "f.yaml:1:1: 1: key '1' is read as a number; keys must be text, so quote it: '1'",
        "f.yaml:2:1: yes: key 'yes' is read as a boolean; keys must be text, so quote it: 'yes'",
        "f.yaml:3:3: <root>: keys must be plain text, not a list or mapping",
    ]


def test_not_yaml_is_one_problem_at_the_parser_mark() -> None:
    data, _, problems = load_yaml("a:\n\tb: 1\n", "f.yaml")
    assert data is None
    assert [p.format() for p in problems] == [
        "f.yaml:2:1: <root>: not valid YAML: found character '\\t' that cannot start any token"
    ]
    assert formatted("a: 1\n---\nb: 2\n") == [
        "f.yaml:2:1: <root>: not valid YAML: expected a single document in the stream, but found another document"
    ]
    assert formatted("a: \x00\n") == [
        "f.yaml:1:4: <root>: not valid YAML: unacceptable character #x0000: special characters are not allowed"
    ]


def test_empty_and_non_mapping_documents() -> None:
    assert formatted("") == ["f.yaml:1:1: <root>: the file is empty; expected a mapping of `key: value` lines"]
    assert formatted("---\n~\n") == [
        "f.yaml:2:1: <root>: the document is empty; expected a mapping of `key: value` lines"
    ]
    assert formatted("- a\n") == ["f.yaml:1:1: <root>: the top level must be a mapping of `key: value` lines, not a list"]


def test_unsafe_and_exotic_tags_are_problems_not_objects() -> None:
    data, _, problems = load_yaml("a: !!python/object:os.system x\nb: !!set {x}\nc: !!int zz\n", "f")
    assert data == {"a": "x", "b": {"x": None}, "c": "zz"}
    assert [p.message for p in problems] == [
        "unsupported YAML tag '!!python/object:os.system'; use plain text, numbers or booleans",
        "unsupported YAML tag '!!set'; use a plain mapping",
        "'zz' is not a valid !!int",
    ]


def test_aliases_resolve_and_are_located_at_the_alias() -> None:
    data, source, problems = load_yaml("base: &b {x: 1}\nother: *b\n", "f")
    assert problems == []
    assert data == {"base": {"x": 1}, "other": {"x": 1}}
    assert source.marks[("other",)] == (2, 8)
    assert source.marks[("other", "x")] == (1, 14)


def test_recursive_alias_and_alias_bomb() -> None:
    assert formatted("a: &a [1, *a]\n") == ["f.yaml:1:11: a[1]: a recursive alias refers to itself; write the value out"]
    bomb = "a: &a [" + ",".join(["1"] * 10) + "]\n"
    for level in "bcdef":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ",".join([f"*{previous}"] * 10) + "]\n"
    problems = load_yaml(bomb, "f")[2]
    assert len(problems) == 1
    assert f"more than {MAX_NODES} nodes" in problems[0].message


def test_merge_keys_follow_yaml_semantics() -> None:
    text = "a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nm:\n  <<: [*a, *b]\n  y: 3\n"
    data, source, problems = load_yaml(text, "f")
    assert problems == []
    assert data["m"] == {"y": 3, "x": 1, "z": 2}
    assert source.key_marks[("m", "y")] == (5, 3)
    assert source.marks[("m", "z")] == (2, 17)
    assert formatted("m: {<<: 1}\n") == ["f.yaml:1:5: m: a merge key (<<) takes a mapping or a list of mappings"]


def test_a_fault_in_an_anchor_used_twice_is_reported_once() -> None:
    assert formatted("a: &a {x: 1, x: 2}\nb: *a\nc: *a\n") == [
        "f.yaml:1:14: a.x: duplicate key 'x' (first defined on line 1); YAML would silently keep only the last one"
    ]
