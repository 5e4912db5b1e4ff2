"""`blast_radius` of `interlock plan --json`, written straight from the bitmasks.

Written out, the blast radius grows with the square of the plan (47 million names,
536 MiB at 10,000 layered services), so encoding it name by name is most of
`plan --json`. Here every name is encoded once, as the exact bytes
`json.dumps(obj, indent=2)` gives it inside a radius list (separator, newline,
indentation, ASCII-escaped string), and those pieces are laid end to end in name
order in one buffer. A radius is a set of bits over the same order, so each run
of consecutive members is one slice of that buffer: the long tail run (a service
usually reaches nearly everything after it) is written without a copy, the
rest by `itertools.compress` over the pieces, or slice by slice where its runs
are few and long. The bytes are the contract's: tests compare them with
`json.dumps` on random graphs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import accumulate, compress
from json.encoder import encode_basestring_ascii

from core.digraph import BlastRadius, selectors

_KEY = b",\n    "
"""Before each key of `blast_radius` but the first (the object is at depth 1)."""
_ITEM = b",\n      "
"""Before each name of a radius list but the first (the lists are at depth 2)."""
_CLOSE = b"\n    ]"
_RUN = re.compile("1+")
_SPARSE = 32
"""A stretch whose runs average more names than this is written run by run (a slice
each, ~0.5 µs); a denser one by `compress`, at a few ns per name it spans."""


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
                head = b"".join(compress(pieces[low:start], selectors(rest >> low)))
            yield memoryview(head)[1:]
            skip = 0
        yield view[offsets[start] + skip : offsets[top]]
        yield _CLOSE
    yield b"\n  }"
