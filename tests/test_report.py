"""`interlock report`: the post-rollout review, built from the journal's fold, as Markdown and
as one self-contained HTML file that a real headless Chromium renders (issue 16, point 4)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tui.cli.main import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"
REGRESSION = REPO / "examples" / "recsys-regression.yaml"
DRILL = REPO / "examples" / "drills" / "ranker-error-burst.yaml"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def _rows(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[1:]]


@pytest.fixture(scope="module")
def rolled_back(tmp_path_factory: pytest.TempPathFactory) -> Path:
    journal = tmp_path_factory.mktemp("report") / "j.db"
    assert main(["run", str(REGRESSION), "--headless", "--journal", str(journal)]) == 1
    return journal


def test_the_markdown_report_tells_what_happened(rolled_back: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["report", "--journal", str(rolled_back)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Rollout report: recsys-embeddings-v3-regression\n")
    assert "**rolled back: gate errors on ranker failed" in text
    timeline = _rows(_section(text, "Timeline"))
    assert timeline[0][0] == "T+ 0s" and "started" in timeline[0][1]
    assert any("▸ rollout rolled back" in row[1] for row in timeline)
    assert not any("gate errors" in row[1] and "error_rate" in row[1] and "▸" not in row[1] for row in timeline)

    services = _section(text, "Services")
    assert [line.split()[1] for line in services.splitlines() if line.startswith("### ")] == \
        ["features", "embedder", "ranker", "api"]  # rollout order
    assert "### ranker 5.0 → 6.0 · rolled back · 0%" in services and "### api 1.9 → 2.0 · waiting · 0%" in services
    gates = [row for row in _rows(services) if len(row) == 9 and row[0] != "stage"]
    failing = [row for row in gates if row[1] == "`errors`" and row[8].endswith("failed")]
    assert len(failing) == 1 and failing[0][7] == "`✗✗`" and failing[0][0] == "1 (1%)"
    assert "|---|" not in failing[0] and [row[8] for row in gates if row[1] == "`latency`"][-1] == "not decided"
    assert all(row[3].isdigit() and int(row[3]) > 0 for row in gates)

    decisions = _rows(_section(text, "Decisions"))
    assert ["interlock", "features: 1% → 5%", "stage passed: bake over, latency passed, errors successful"] == \
        decisions[0][1:]
    cause = [row for row in decisions if row[2] == "rollout rolling back"]
    assert len(cause) == 1 and cause[0][1] == "interlock" and "gate errors on ranker failed" in cause[0][3]
    cascade = _rows(_section(text, "Cascade"))
    assert sorted(row[1] for row in cascade) == ["embedder", "ranker"]  # the lockstep group, together
    assert all(row[2] == "1%" and row[3] == row[4] == "T+ 26m00s" for row in cascade)
    durations = _rows(_section(text, "Durations"))
    assert durations[0][:2] == ["the rollout", "T+ 0s"] and durations[0][3] == "26m00s"
    assert ["features (promoted)", "T+ 0s"] == durations[1][:2]


def test_an_operator_decision_names_who_and_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "approve.yaml"
    plan.write_text(EXAMPLE.read_text().replace("approval: none ", "approval: each_stage "))
    journal = tmp_path / "j.db"
    assert main(["run", str(plan), "--headless", "--journal", str(journal)]) == 3
    from adapters.journals import open_journal
    from core import OperatorAction

    db = open_journal(journal)
    [run] = db.runs()
    at = list(db.records(run.run_id))[-1].event.at
    db.append(run.run_id, [OperatorAction(at=at, action="abort", operator="carol@laptop", reason="bad canary smell")])
    db.close()
    capsys.readouterr()
    assert main(["report", "--journal", str(journal)]) == 0
    text = capsys.readouterr().out
    decisions = _rows(_section(text, "Decisions"))
    assert ["carol@laptop", "abort", "bad canary smell"] in [row[1:] for row in decisions]
    assert any(row[2] == "rollout paused" or "approval" in row[3] for row in decisions) or decisions


def _png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct RGB(A) pixels of an 8-bit PNG (filters undone)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, colour = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    size = {2: 3, 6: 4}[colour]
    raw, stride = zlib.decompress(idat), width * size
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - size] if i >= size else 0
            b, c = prev[i], prev[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    colours = {bytes(row[i:i + 3]) for row in rows[::4] for i in range(0, stride, size * 4)}
    return width, height, colours


def _chromium(tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
         "--no-first-run", "--disable-extensions", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return result.stdout


def test_the_html_report_renders_in_headless_chromium(
    rolled_back: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, md = tmp_path / "report.html", tmp_path / "report.md"
    assert main(["report", "--journal", str(rolled_back), "--html", str(page), "--md", str(md)]) == 0
    assert capsys.readouterr().out == ""  # files only
    source = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)|<link|<script|@import|url\(""", source)

    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert "<title>Rollout report: recsys-embeddings-v3-regression — rolled back</title>" in dom
    heads = re.findall(r'<section class="service" data-service="([^"]+)"', dom)
    assert heads == ["features", "embedder", "ranker", "api"]
    charts = re.findall(r'<svg class="chart"[^>]*data-service="([^"]+)" data-gate="([^"]+)" data-stage="(\d+)"'
                        r' data-points="(\d+)" data-drawn="(\d+)">(.*?)</svg>', dom, re.S)
    assert len(charts) == len(re.findall(r"^\| \d+ \(", md.read_text(encoding="utf-8"), re.M))
    assert {service for service, *_ in charts} == {"features", "embedder", "ranker"}
    for _service, _gate, _stage, points, drawn, svg in charts:
        assert '<polyline class="canary"' in svg and svg.count("<circle") == int(points) == int(drawn)
    failing = [c for c in charts if c[0] == "ranker" and c[1] == "errors" and c[2] == "1"]
    assert failing and 'class="failed"' in failing[0][5] and '<polyline class="limit"' in failing[0][5]
    decisions = re.findall(r'<tr class="decision">', dom)
    assert len(decisions) == len(_rows(_section(md.read_text(encoding="utf-8"), "Decisions")))
    assert "gate errors on ranker failed" in dom

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", "--hide-scrollbars", page.as_uri())
    width, height, colours = _png_pixels(shot)
    assert (width, height) == (1200, 2400)
    blue, red = (0x2F, 0x6F, 0xDB), (0xB3, 0x26, 0x1E)  # the canary's and the limit's colours
    near = lambda want: any(all(abs(p - w) < 24 for p, w in zip(px, want)) for px in colours)  # noqa: E731
    assert len(colours) > 20 and near(blue) and near(red)


def test_a_drill_report_carries_its_scorecard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "drills.db"
    assert main(["drill", str(DRILL), "--journal", str(journal)]) == 0
    capsys.readouterr()
    assert main(["report", "--journal", str(journal), "--drill", str(DRILL)]) == 0
    text = capsys.readouterr().out
    card = _section(text, "Drill scorecard")
    assert "passed" in card and "| time to detect | 30s |" in text
    assert "| restore_within | ✅ pass |" in text
    assert main(["report", "--journal", str(journal)]) == 0
    assert "This is a drill run: `interlock report --drill DRILL` adds its scorecard." in capsys.readouterr().out
    other = tmp_path / "other.yaml"
    other.write_text(DRILL.read_text().replace("plan: ../recsys.yaml", f"plan: {REGRESSION}"))
    assert main(["report", "--journal", str(journal), "--drill", str(other)]) == 2
    assert capsys.readouterr().err.startswith("interlock: --drill ")


def test_report_errors_are_one_liners(tmp_path: Path, capsys: pytest.CaptureFixture[str], rolled_back: Path) -> None:
    assert main(["report", "--journal", str(tmp_path / "none.db")]) == 2
    assert capsys.readouterr().err == f"interlock: {tmp_path / 'none.db'}: no journal here\n"
    assert main(["report", "--journal", str(rolled_back), "--run", "nope"]) == 2
    assert capsys.readouterr().err == f"interlock: no run nope in {rolled_back}\n"
    assert main(["report", "--journal", str(rolled_back), "--html", str(tmp_path / "no" / "dir.html")]) == 6
    assert capsys.readouterr().err.startswith("interlock: cannot write ")


def test_a_long_stage_is_drawn_thinned_keeping_every_failing_measurement() -> None:
    from tui.report.html import DRAWN, thinned
    from tui.report.model import Point

    points = [Point(at=float(i), value=1.0, baseline=None, phase="failed" if i % 997 == 5 else "successful",
                    text="") for i in range(20_000)]
    drawn = thinned(points)
    assert DRAWN <= len(drawn) <= DRAWN + 30 and drawn == sorted(drawn, key=lambda p: p.at)
    assert [p for p in points if p.phase == "failed"] == [p for p in drawn if p.phase == "failed"]
    assert drawn[0] is points[0] and drawn[-1] is points[-1]
    assert thinned(points[:100]) == points[:100]
