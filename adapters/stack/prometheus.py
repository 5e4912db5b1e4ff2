"""A private Prometheus on 127.0.0.1 scraping the given targets.

`/-/ready` turns true seconds before the first scrape lands (6–7 s after start
with a 1 s interval, seen here), and a gate that queries in between gets no
data. So `start_prometheus` waits by default until every target has been
scraped (``up == 1`` for each); `wait_scraped` is there for targets that come
up later. Data lives in `base_dir/prometheus/data` with a short retention.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from adapters.stack.process import Proc, ServerUnavailable, find_program, free_port, http_get, spawn


@dataclass
class PrometheusServer:
    proc: Proc
    port: int
    targets: tuple[str, ...]
    job: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result list of an instant query (for launchers and tests; adapters use HTTP)."""
        status, body = http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=2.0)
        if status != 200:
            return []
        result: list[dict[str, Any]] = json.loads(body).get("data", {}).get("result", [])
        return result

    def scraped(self) -> set[str]:
        """Targets whose last scrape succeeded."""
        return {r["metric"].get("instance", "") for r in self.query(f'up{{job="{self.job}"}} == 1')}

    def wait_scraped(self, timeout: float = 30.0) -> float:
        """Wait until every target has been scraped successfully; return the seconds waited."""
        wanted = set(self.targets)
        return self.proc.wait_until(lambda: wanted <= self.scraped(), timeout, "every target scraped")

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _config(targets: Sequence[str], interval: float, job: str) -> str:
    seconds = f"{interval:g}s"
    listed = ", ".join(f'"{t}"' for t in targets)
    return (
        "# written by interlock: a private loopback-only Prometheus\n"
        "global:\n"
        f"  scrape_interval: {seconds}\n"
        f"  evaluation_interval: {seconds}\n"
        "scrape_configs:\n"
        f"  - job_name: {job}\n"
        f"    scrape_interval: {seconds}\n"
        f"    scrape_timeout: {seconds}\n"
        f"    static_configs:\n"
        f"      - targets: [{listed}]\n"
    )


def start_prometheus(
    base_dir: Path,
    targets: Sequence[str],
    *,
    scrape_interval: float = 1.0,
    job: str = "interlock",
    wait_for_scrape: bool = True,
    timeout: float = 30.0,
) -> PrometheusServer:
    """Start Prometheus in `base_dir/prometheus` scraping `targets` (``host:port``, path /metrics)."""
    program = find_program("prometheus")
    folder = Path(base_dir).resolve() / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(_config(targets, scrape_interval, job), encoding="utf-8")
    last: ServerUnavailable | None = None
    for _ in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        proc = spawn(
            "prometheus",
            [
                program,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                "--storage.tsdb.retention.time=1d",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            folder,
        )
        server = PrometheusServer(proc, port, tuple(targets), job)
        try:
            proc.wait_until(lambda: http_get(f"{server.url}/-/ready")[0] == 200, timeout, "/-/ready")
        except ServerUnavailable as exc:
            proc.stop()
            last = exc
            if "address already in use" in str(exc):
                continue
            raise
        if wait_for_scrape and targets:
            try:
                server.wait_scraped(timeout)
            except ServerUnavailable:
                server.stop()
                raise
        return server
    assert last is not None
    raise last


def wait_until_value(server: PrometheusServer, promql: str, timeout: float = 15.0) -> float:
    """Poll until `promql` returns a sample; return its value (for tests of fresh metrics)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = server.query(promql)
        if result:
            return float(result[0]["value"][1])
        time.sleep(0.1)
    raise ServerUnavailable(f"prometheus: {promql!r} returned no data within {timeout:g}s")
