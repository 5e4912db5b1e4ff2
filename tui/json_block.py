"""`json.dumps(obj, indent=2)`, byte for byte and fast, and `plan --json` in chunks.

Apart from `tui.printer` (which imports the journal's encoder for event lines) so that
`interlock plan --json` imports only what it prints with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from core import RolloutGraph


def json_block(obj: Any) -> str:
    """`json.dumps(obj, indent=2)`, byte for byte, written by orjson where that is exact.

    The standard library indents in pure Python (a 10,000-service plan's blast
    radius is hundreds of megabytes: half a minute). For text, whole numbers,
    lists and mappings orjson writes the same bytes except that it leaves
    non-ASCII text and DEL unescaped, so output holding those is written by
    `json` instead. (Floats may be spelled differently: not for them.)"""
    return json_block_bytes(obj).decode("ascii")


def json_block_bytes(obj: Any) -> bytes:
    """`json_block` as ASCII bytes, for output too large to copy into a str and back
    (`plan --json` of a 10,000-service plan is ~500 MB)."""
    try:
        out = orjson.dumps(obj, option=orjson.OPT_INDENT_2)
    except TypeError:
        return json.dumps(obj, indent=2).encode("ascii")
    if out.isascii() and b"\x7f" not in out:
        return out
    return json.dumps(obj, indent=2).encode("ascii")


def plan_json_chunks(graph: RolloutGraph) -> Iterator[bytes | memoryview]:
    """`json_block_bytes(graph.to_json())` in chunks, without the object: `blast_radius`
    (hundreds of MB at 10,000 services) is written from its bitmasks as it goes out."""
    obj = graph.json_head()
    obj["blast_radius"] = {}
    head = json_block_bytes(obj)
    assert head.endswith(b'"blast_radius": {}\n}'), "blast_radius is the last key"
    yield head[:-4]
    yield from graph.blast_radius_json()
    yield b"\n}"
