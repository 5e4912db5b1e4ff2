"""The event stream, fingerprinted: speed work must leave every journal byte-identical.

Runs every bundled example plan (`examples/*.yaml` with `environment: sim`), every bundled
drill (its scorecard too: requests served while bad are not journaled), and generated
10- and 300-service rollouts (`scale_bench.py`'s plans) on a virtual
clock, and prints one SHA-256 per run over its records as stored: `seq`, `at`, `kind`,
`operator` and the body bytes, in order. The hash chain itself also covers the run's id
and its facts (a timestamp), which differ on every run; given the same bodies and the
same head it is the same chain, and `tests/test_journal_orjson.py` checks the chain's
encoding on its own.

    python bench/journal_identity.py --save /tmp/before.txt     # on the old code
    python bench/journal_identity.py --check /tmp/before.txt    # on the new code: exit 1 if any differs
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale_bench import plan_yaml  # noqa: E402
from tui.session.drills import prepare_drill  # noqa: E402
from tui.session.runtime import start_run  # noqa: E402


def digest(journal: Path) -> tuple[int, str]:
    """(records, SHA-256 over every record's stored columns but the run id and hashes)."""
    db = sqlite3.connect(journal)
    h = hashlib.sha256()
    count = 0
    for seq, at, kind, operator, body in db.execute(
        "SELECT seq, at, kind, operator, body FROM records ORDER BY run_id, seq"
    ):
        h.update(f"{seq}\x00{at!r}\x00{kind}\x00{operator}\x00".encode())
        h.update(body.encode("utf-8") if isinstance(body, str) else body)
        h.update(b"\x01")
        count += 1
    db.close()
    return count, h.hexdigest()


def run_plan(plan: Path, tmp: Path, seed: int) -> tuple[int, str]:
    journal = tmp / f"{plan.stem}-{seed}.db"
    session = start_run(plan, journal_path=journal, seed=seed)
    asyncio.run(session.engine.run())
    session.journal.close()
    return digest(journal)


def run_drill(drill: Path, tmp: Path) -> tuple[int, str, str]:
    """The journal's digest and the scorecard's (requests served while bad come from the
    simulated world's own accounting, which is not journaled)."""
    journal = tmp / f"drill-{drill.stem}.db"
    runner = prepare_drill(drill, journal_path=journal)
    card = asyncio.run(runner.run())
    runner.close()
    count, h = digest(journal)
    scored = json.dumps(card.to_json(), sort_keys=True).encode()
    return count, h, hashlib.sha256(scored).hexdigest()


def fingerprints() -> dict[str, str]:
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="interlock-identity-") as name:
        tmp = Path(name)
        for plan in sorted((ROOT / "examples").glob("*.yaml")):
            if "environment: sim" not in plan.read_text():
                continue
            for seed in (0, 3):
                count, h = run_plan(plan, tmp, seed)
                out[f"run {plan.name} seed {seed}"] = f"{count} {h}"
        for drill in sorted((ROOT / "examples" / "drills").glob("*.yaml")):
            count, h, card = run_drill(drill, tmp)
            out[f"drill {drill.name}"] = f"{count} {h}"
            out[f"scorecard {drill.name}"] = card
        for n in (10, 300):
            plan = tmp / f"scale-{n}.yaml"
            plan.write_text(plan_yaml(n, rollout=True))
            count, h = run_plan(plan, tmp, 0)
            out[f"run scale-{n}"] = f"{count} {h}"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path)
    parser.add_argument("--check", type=Path)
    args = parser.parse_args()
    found = fingerprints()
    lines = [f"{name}: {value}" for name, value in found.items()]
    print("\n".join(lines))
    if args.save:
        args.save.write_text("\n".join(lines) + "\n")
    if args.check:
        before = dict(line.split(": ", 1) for line in args.check.read_text().splitlines() if line)
        differ = [name for name in before if found.get(name) != before[name]]
        differ += [name for name in found if name not in before]
        print(f"{len(found) - len(differ)} of {len(found)} identical" + (f"; differ: {differ}" if differ else ""))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
