"""A seeded mutator over everything a user hands interlock, and a runner that judges the CLI.

Shared by the CI fuzz test (`tests/test_fuzz.py`, a few hundred cases) and the benchmark
(`bench/fuzz_bench.py`, thousands). Each case is one command as a user runs it, called
in-process through the CLI's entry (`tui.cli.main.main`), on input derived from the bundled
examples by a seeded mutation: plans (`validate`, `plan --json`), drills (`drill`),
recorded measurements (`analyze`) and journals (`log`, `audit verify`, `runs`, `resume`).
The same seed always gives the same case.

A case is *bad* when the command raised (a traceback, for a user), exited with a code the
README does not list, or printed a problem line that is not one line. Its time is measured;
the benchmark counts runs over 10 s.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import random
import re
import shutil
import signal
import sqlite3
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PLANS = sorted(p for p in EXAMPLES.glob("*.yaml") if "stack" not in p.name)
DRILLS = sorted((EXAMPLES / "drills").glob("*.yaml"))


@functools.cache
def documented_exits() -> dict[str, frozenset[int]]:
    """The README's table of exit codes per command: `"audit verify"` → {0, 1, 2, 5, 6}.
    A row may name several commands (`interlock stack up` / `status`)."""
    table: dict[str, frozenset[int]] = {}
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for line in text[text.index("| command | exit codes |"):].splitlines()[2:]:
        if not line.startswith("| `interlock "):
            break
        names, codes = line.strip("|").split("|")[:2]
        numbers = frozenset(int(n) for n in re.findall(r"\b\d\b", codes))
        first, *more = [n.removeprefix("interlock ") for n in re.findall(r"`([^`]+)`", names)]
        table[first] = numbers
        for name in more:  # `status` beside `stack up` is `stack status`
            table[" ".join(first.split()[:-1] + [name])] = numbers
    return table


DOCUMENTED_EXITS = frozenset(code for codes in documented_exits().values() for code in codes)
"""Every exit code the README's table lists."""


def command_of(argv: list[str]) -> str:
    """The README's name for the command `argv` runs: `audit verify`, `log`, ..."""
    words = [a for a in argv[:2] if not a.startswith(("-", "/")) and "." not in a]
    return " ".join(words) if words[:1] in (["audit"], ["journal"], ["stack"], ["sim"]) else words[0]
KINDS = ("plan", "plan", "plan", "analyze", "analyze", "journal", "journal", "drill")

# Fragments a mutation splices in: each one broke (or could break) a loader once.
_NASTY = [
    "[" * 600, "{" * 300, "- " * 200, "&a [*a]", "*nowhere", "<<: *a", "!!python/object:os.system",
    "!!binary aGk=", "18446744073709551616", "9" * 401, ".nan", ".inf", "-.inf", "1e999", "0x1F",
    "\x00", "\t", "\ufeff", "\u202e", "\ud7ff", "é", "'", '"', "\\", "%", "---", "...", "? ", ": ", "~",
    "100h", "2562047788015215h", "-5m", "1e308s", "0s", "250ms", "nan", "inf", "-1", "0", "1.5",
]
_JSON_NASTY = [
    "[" * 1000, "]", "{", "}", ",", ":", "null", "true", "NaN", "Infinity", "-Infinity", "1e999", "9" * 401,
    '"\\ud800"', '"\\u0000"', "\x00", "\ufeff", '{"value": 1}', '{"error": 5}', '{"canary": [1, 2]}',
    '{"errors": -1, "requests": 0}', '{"at": "x", "value": 1}', "-0", "0.0000001", '"inf"', '"+Inf"',
]


def mutate_text(text: str, rng: random.Random, nasty: list[str]) -> str:
    """One to four edits: splice a nasty fragment, delete, duplicate or swap a span, flip a char."""
    for _ in range(rng.randint(1, 4)):
        if not text:
            text = rng.choice(nasty)
            continue
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randint(1, 40))
        op = rng.choice((0, 1, 2, 3, 4, 5, 5, 5, 5))  # mostly values: deep paths need valid shapes
        if op == 0:
            text = text[:i] + rng.choice(nasty) + text[i:]
        elif op == 1:
            text = text[:i] + text[j:]
        elif op == 2:
            text = text[:i] + text[i:j] * rng.randint(2, 50) + text[j:]
        elif op == 3:
            k = rng.randrange(len(text))
            text = text[:i] + text[k:k + (j - i)] + text[j:]
        elif op == 4:
            text = text[:i] + chr(rng.choice([0, 9, 10, 13, 32, 35, 38, 42, 45, 58, 91, 93, 123, 125, 0xFEFF])) + text[i + 1:]
        else:  # replace a scalar after a colon
            colon = text.find(": ", i)
            if colon >= 0:
                end = text.find("\n", colon)
                end = len(text) if end < 0 else end
                text = text[:colon + 2] + rng.choice(nasty) + text[end:]
    return text


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _measurements(rng: random.Random) -> str:
    shapes = [
        lambda: {"value": rng.random() / 50},
        lambda: {"value": 40 + rng.random() * 40, "baseline": 50.0},
        lambda: {"error": "timeout"},
        lambda: {"canary": [rng.random() for _ in range(10)], "baseline": [rng.random() for _ in range(10)]},
        lambda: {"errors": rng.randint(0, 5), "requests": 1000},
    ]
    items = [rng.choice(shapes)() for _ in range(rng.randint(0, 30))]
    return json.dumps(items, indent=rng.choice([None, 1]))


@dataclass
class Journals:
    """Small journals to damage: a finished run, and one stopped awaiting approval."""

    finished: Path
    waiting: Path

    @classmethod
    def build(cls, folder: Path) -> Journals:
        from tui.cli.main import main

        folder.mkdir(parents=True, exist_ok=True)
        finished, waiting = folder / "finished.db", folder / "waiting.db"
        plan = folder / "approve.yaml"
        plan.write_text((EXAMPLES / "recsys.yaml").read_text().replace("approval: none ", "approval: each_stage "))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["run", str(EXAMPLES / "recsys.yaml"), "--headless", "--journal", str(finished)]) == 0
            assert main(["run", str(plan), "--headless", "--journal", str(waiting)]) == 3
        for path in (finished, waiting):
            db = sqlite3.connect(path)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
        return cls(finished, waiting)


@dataclass
class Case:
    seed: int
    kind: str
    argv: list[str]


@dataclass
class Outcome:
    case: Case
    code: int | None
    seconds: float
    problem: str | None
    """Why the case is bad (a traceback, an undocumented exit), or None."""


def make_case(seed: int, work: Path, journals: Journals) -> Case:
    """The case for `seed`: its kind, its mutated input written under `work`, its argv."""
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    folder = work / f"case-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "plan":
        path = folder / "plan.yaml"
        path.write_text(mutate_text(rng.choice(PLANS).read_text(), rng, _NASTY), encoding="utf-8", errors="surrogatepass")
        verb = rng.choice([["validate", str(path)], ["plan", str(path), "--json"], ["plan", str(path)]])
        return Case(seed, kind, verb)
    if kind == "analyze":
        path = folder / "m.json"
        text = _measurements(rng)
        if rng.random() < 0.8:
            text = mutate_text(text, rng, _JSON_NASTY)
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        gate = rng.choice(["errors", "latency", "drift", "nope"])
        return Case(seed, kind, ["analyze", str(EXAMPLES / "recsys.yaml"), gate, str(path)] + rng.choice([[], ["--json"]]))
    if kind == "drill":
        path = folder / "drill.yaml"
        source = rng.choice(DRILLS).read_text().replace("plan: ../", f"plan: {EXAMPLES}/")
        path.write_text(mutate_text(source, rng, _NASTY), encoding="utf-8", errors="surrogatepass")
        return Case(seed, kind, ["drill", str(path), "--journal", str(folder / "drills.db")] + rng.choice([[], ["--json"]]))
    base = rng.choice([journals.finished, journals.waiting])
    path = folder / "journal.db"
    path.write_bytes(mutate_bytes(base.read_bytes(), rng) if rng.random() < 0.9 else base.read_bytes())
    verb = rng.choice([["log"], ["log", "--json"], ["audit", "verify"], ["runs"], ["resume", "--headless"]])
    return Case(seed, kind, [*verb, "--journal", str(path)])


class _Hung(BaseException):
    """Raised by the alarm in a case that ran past its hard limit."""


def _alarm(_signum: int, _frame: object) -> None:
    raise _Hung()


def run_case(case: Case, hard_limit: int = 0) -> Outcome:
    """Run one case through the CLI entry, as `interlock ARGV` would. With `hard_limit`
    (seconds, main thread only), a case still running then is stopped and reported."""
    from tui.cli.main import main

    err = io.StringIO()
    start = time.perf_counter()
    problem = None
    code: int | None
    if hard_limit:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(hard_limit)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(case.argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code if isinstance(exit_.code, int) else 2
    except _Hung:
        code, problem = None, f"still running after {hard_limit} s"
    except BaseException:  # noqa: BLE001 - exactly what a user would see as a traceback
        code = None
        problem = "traceback: " + traceback.format_exc(limit=-3).strip().splitlines()[-1]
    finally:
        if hard_limit:
            signal.alarm(0)
    seconds = time.perf_counter() - start
    if problem is None and code not in documented_exits().get(command_of(case.argv), DOCUMENTED_EXITS):
        problem = f"exit code {code}, which the README does not list for `interlock {command_of(case.argv)}`"
    if problem is None and "Traceback (most recent call last)" in err.getvalue():
        problem = "a traceback on stderr"
    return Outcome(case, code, seconds, problem)


def fuzz(seeds: range, work: Path, hard_limit: int = 0) -> list[Outcome]:
    """Every case of `seeds`, each in a folder of its own under `work` (removed after)."""
    journals = Journals.build(work / "journals")
    outcomes = []
    for seed in seeds:
        case = make_case(seed, work, journals)
        outcomes.append(run_case(case, hard_limit))
        shutil.rmtree(work / f"case-{seed}", ignore_errors=True)
    return outcomes
