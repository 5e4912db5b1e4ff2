"""`blast_radius` of `interlock plan --json`, written straight from the bitmasks.

Written out, the blast radius grows with the square of the plan (47 million names,
536 MiB at 10,000 layered services), so encoding it name by name is most of
`plan --json`. Here every name is encoded once, as the exact bytes
`json.dumps(obj, indent=2)` gives it inside a radius list (separator, newline,
indentation, ASCII-escaped string), and those pieces are laid end to end in name
order in one buffer. A radius is a set of bits over the same order, so each run
of consecutive members is one slice of that buffer: the long tail run (a service
usually reaches nearly everything after it) is written without a copy, the rest
byte by byte of its mask through per-window tables (below), or slice by slice where
its runs are few and long. The bytes are the contract's: tests compare them with
`json.dumps` on random graphs.

Why tables: what costs below the tail is touching one Python object per name the
stretch spans (a list slice and `itertools.compress` over the pieces: ~25 ns each,
7.6 million at 10,000 services, the pieces no longer fitting a core's cache). Instead,
names are taken eight at a time: window w's table holds, for each byte value v, the
pieces of names 8w..8w+7 whose bits are set in v, already joined, so a stretch is one
table lookup per byte of its mask (`map(getitem, tables, mask bytes)`, all in C).
A window's table (255 joins) is built the first time a radius reaches it; at 10,000
layered services the tables cost ~0.05 s and ~30 MiB and the stretches below the
tails went from ~0.2 to ~0.09 s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import accumulate
from json.encoder import encode_basestring_ascii
from operator import getitem

from core.digraph import BlastRadius

_KEY = b",\n    "
"""Before each key of `blast_radius` but the first (the object is at depth 1)."""
_ITEM = b",\n      "
"""Before each name of a radius list but the first (the lists are at depth 2)."""
_CLOSE = b"\n    ]"
_RUN = re.compile("1+")
_SPARSE = 48
"""A stretch whose runs average more names than this is written run by run (a slice
each, ~0.5 µs); a denser one through the window tables, at ~10 ns per name it spans."""


def _window_table(pieces: list[bytes], w: int) -> list[bytes]:
    """Per byte value v (bit k: name 8w+k), the pieces of the names v selects, joined in order."""
    table = [b""]
    for piece in pieces[w * 8 : w * 8 + 8]:
        table += [joined + piece for joined in table]
    return table + table[-1:] * (256 - len(table))  # past the last name: bits never set


def radius_json(radius: BlastRadius) -> Iterator[bytes | memoryview]:
    """The value of `blast_radius` exactly as `json.dumps(plan_json, indent=2)` writes it
    as a member of the top-level object (from `{` to its closing `}`, no newline after),
    in chunks of bytes: the caller writes them out as they come."""
    names, masks = radius.names, radius.masks
    if not names:
        yield b"{}"
        return
    keys = [encode_basestring_ascii(name).encode("ascii") for name in names]
    pieces = [_ITEM + key for key in keys]
    offsets = [0, *accumulate(map(len, pieces))]
    view = memoryview(b"".join(pieces))
    tables: list[list[bytes]] = [[]] * ((len(names) + 7) >> 3)
    built = 0  # bit w set: tables[w] is built
    yield b"{\n    " + keys[0] + b": "
    for i, mask in enumerate(masks):
        if i:
            yield _KEY + keys[i] + b": "
        if not mask:
            yield b"[]"
            continue
        yield b"["
        top = mask.bit_length()
        start = (mask ^ ((1 << top) - 1)).bit_length()  # the highest run is [start, top)
        rest = mask ^ ((1 << top) - (1 << start))
        skip = 1  # the first name of a list has no separator before it
        if rest:
            low = (rest & -rest).bit_length() - 1
            runs = (rest ^ (rest << 1)).bit_count() >> 1
            if runs * _SPARSE < start - low:
                spans = (m.span() for m in _RUN.finditer(bin(rest >> low)[:1:-1]))
                head = b"".join([view[offsets[low + a] : offsets[low + b]] for a, b in spans])
            else:
                w0, w1 = low >> 3, (start + 7) >> 3
                spanned = (1 << w1) - (1 << w0)
                missing = spanned & ~built
                while missing:
                    w = missing.bit_length() - 1
                    tables[w] = _window_table(pieces, w)
                    missing ^= 1 << w
                built |= spanned
                head = b"".join(map(getitem, tables[w0:w1], (rest >> (w0 << 3)).to_bytes(w1 - w0, "little")))
            yield memoryview(head)[1:]
            skip = 0
        yield view[offsets[start] + skip : offsets[top]]
        yield _CLOSE
    yield b"\n  }"
