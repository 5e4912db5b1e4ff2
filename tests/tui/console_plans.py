"""Plans for console tests and the console benchmark: generated, seeded, valid.

A generated plan has `n` services in layers; each depends on one or two
services of the layer above, and every seventh service breaks a contract
with its first dependency, which forces a lockstep pair. Same `n` and
`seed`, same plan, byte for byte.
"""

from __future__ import annotations

import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECSYS = ROOT / "examples" / "recsys.yaml"
REGRESSION = ROOT / "examples" / "recsys-regression.yaml"
PREFLIGHT = ROOT / "examples" / "recsys-preflight.yaml"

_KINDS = ("ingest", "features", "embed", "rank", "serve", "cache", "score", "filter")


def service_name(i: int) -> str:
    return f"s{i:03d}-{_KINDS[i % len(_KINDS)]}"


def generated_plan(n: int, *, seed: int = 7, width: int = 6, max_parallel: int = 4) -> str:
    """YAML text of an `n`-service plan."""
    rng = random.Random(seed)
    lines = [
        f"rollout: generated-{n}",
        "environment: sim",
        "policy:",
        f"  max_parallel: {max_parallel}",
        "  on_failure: rollback_dependents",
        "defaults:",
        "  stages: [10, 50, 100]",
        "  bake: 2m",
        "  gates: [errors]",
        "gates:",
        "  errors: {metric: error_rate, max: 0.02, interval: 30s}",
        "services:",
    ]
    for i in range(n):
        layer = i // width
        deps: list[int] = []
        if layer > 0:
            above = list(range((layer - 1) * width, min(layer * width, n)))
            deps = sorted(rng.sample(above, k=min(len(above), rng.choice((1, 1, 2)))))
        lockstep = bool(deps) and i % 7 == 0
        name = service_name(i)
        lines.append(f"  {name}:")
        if deps:
            lines.append(f"    depends_on: [{', '.join(service_name(d) for d in deps)}]")
        produces_from = f"{{c{i}: 1}}"
        produces_to = f"{{c{i}: 2}}"
        if lockstep:
            dep = deps[0]
            lines.append(
                f"    from: {{version: '1.{i}', produces: {produces_from}, consumes: {{c{dep}: [1]}}}}"
            )
            lines.append(
                f"    to:   {{version: '2.{i}', produces: {produces_to}, consumes: {{c{dep}: [2]}}}}"
            )
        else:
            lines.append(f"    from: {{version: '1.{i}', produces: {produces_from}}}")
            lines.append(f"    to:   {{version: '2.{i}', produces: {produces_to}}}")
        lines.append(f"    sim: {{rps: {100 + 10 * (i % 9)}}}")
    return "\n".join(lines) + "\n"


def approval_plan() -> str:
    """recsys.yaml with an approval after every stage."""
    text = RECSYS.read_text(encoding="utf-8")
    return text.replace("approval: none ", "approval: each_stage")


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


LONG_NAME = "feature-store-materialization-pipeline-for-the-eu-west-ranking-stack"
"""68 cells: longer than any column keeps."""
WIDE_NAME = "排序器-ranker"
"""Three CJK characters, two cells each: 12 cells in 10 characters."""


def wide_names_plan() -> str:
    """Three services in a chain whose names are long or wide (CJK, an emoji in a version)."""
    return f"""\
rollout: wide-names
environment: sim
policy: {{max_parallel: 2, on_failure: rollback_dependents}}
defaults: {{stages: [10, 50, 100], bake: 2m, gates: [errors]}}
gates:
  errors: {{metric: error_rate, max: 0.02, interval: 30s}}
services:
  {LONG_NAME}:
    from: {{version: "1.0"}}
    to: {{version: "1.1"}}
  {WIDE_NAME}:
    depends_on: [{LONG_NAME}]
    from: {{version: "2.0"}}
    to: {{version: "2.1-🚀"}}
  api:
    depends_on: [{WIDE_NAME}]
    from: {{version: "1.9"}}
    to: {{version: "2.0"}}
"""
