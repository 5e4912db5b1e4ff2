"""A whole `interlock run --headless` on a slow disk, simulated (never asserted in tests).

A slow disk is what makes a sync expensive: a laptop's encrypted SSD under load, a
network volume, a CI runner's shared disk. This bench makes every `fsync` and
`fdatasync` of the process wait `--sync-ms` milliseconds first (an LD_PRELOAD shim,
compiled here with the system's C compiler), so the cost of each sync is the same on
any machine, and counts them (with `SLOW_DISK_TRACE=FILE`, it also appends `sync PATH`
to FILE for each: tests/test_journal_syncs.py pins where a run's syncs happen). Two measures: `run_bench.py` under the shim (the run
in-process: wiring and engine, as the goal is stated), and whole processes of
`interlock run --headless`, timed from spawn to exit (interpreter and imports included).

    python bench/slow_disk_bench.py [--plan examples/recsys.yaml] [--sync-ms 5] [--runs 5]

Goal (issue 17): the virtual `examples/recsys.yaml` run under 0.3 s on a slow disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERLOCK = Path(sys.executable).with_name("interlock")

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long syncs = 0;
static void slow(int fd) {
    const char *v = getenv("SLOW_DISK_MS");
    const char *trace = getenv("SLOW_DISK_TRACE");
    double ms = v ? atof(v) : 5.0;
    struct timespec t = {(time_t)(ms / 1000), (long)((ms - 1000.0 * (time_t)(ms / 1000)) * 1e6)};
    syncs++;
    if (trace) {  /* one line per sync: "sync PATH", appended (tests pin where syncs happen) */
        char link[64], path[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        path[n < 0 ? 0 : n] = 0;
        FILE *f = fopen(trace, "a");
        if (f) { fprintf(f, "sync %s\n", path); fclose(f); }
    }
    if (ms > 0) nanosleep(&t, NULL);
}
int fsync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    slow(fd);
    return real(fd);
}
int fdatasync(int fd) {
    static int (*real)(int) = 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    slow(fd);
    return real(fd);
}
__attribute__((destructor)) static void report(void) {
    const char *out = getenv("SLOW_DISK_REPORT");
    if (out) { FILE *f = fopen(out, "w"); if (f) { fprintf(f, "%ld\n", syncs); fclose(f); } }
}
"""


def build_shim(directory: Path) -> Path:
    source, library = directory / "slowdisk.c", directory / "slowdisk.so"
    source.write_text(SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def compile_bytecode() -> None:
    """Compile interlock's modules to `.pyc` first, as `pip install` does for a user. With
    `PYTHONDONTWRITEBYTECODE` set (as in some shells and CI images) and no `.pyc` yet, each
    process would compile the whole package from source: about 0.1 s of CPU at every start
    that no installed interlock pays."""
    import compileall

    for package in ("core", "adapters", "tui"):
        compileall.compile_dir(ROOT / package, quiet=1)


def one_run(plan: Path, tmp: Path, shim: Path, sync_ms: float, i: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, syncs) of one whole `interlock run --headless`."""
    report = tmp / f"syncs-{i}.txt"
    env = dict(os.environ, LD_PRELOAD=str(shim), SLOW_DISK_MS=str(sync_ms), SLOW_DISK_REPORT=str(report))
    argv = [str(INTERLOCK), "run", str(plan), "--headless", "--journal", str(tmp / f"journal-{i}.db")]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    syncs = int(report.read_text()) if report.exists() else -1
    return wall, usage.ru_utime + usage.ru_stime, syncs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, default=ROOT / "examples" / "recsys.yaml")
    parser.add_argument("--sync-ms", type=float, default=5.0, help="milliseconds each sync waits (default 5)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="interlock-slowdisk-") as name:
        tmp = Path(name)
        shim = build_shim(tmp)
        compile_bytecode()
        one_run(args.plan, tmp, shim, args.sync_ms, -1)  # warm the page cache
        results = [one_run(args.plan, tmp, shim, args.sync_ms, i) for i in range(args.runs)]
        env = dict(os.environ, LD_PRELOAD=str(shim), SLOW_DISK_MS=str(args.sync_ms))
        inside = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "run_bench.py"), "--plan", str(args.plan), "--runs", str(args.runs)],
            env=env, check=True, capture_output=True, text=True,
        ).stdout
    print(f"run_bench.py, every sync {args.sync_ms:g} ms:")
    print("  " + inside.strip().replace("\n", "\n  "))
    walls = [r[0] for r in results]
    cpus = [r[1] for r in results]
    print(f"whole processes of `interlock run {args.plan.name} --headless`, {args.runs} runs: "
          f"median {statistics.median(walls):.3f} s (min {min(walls):.3f}, max {max(walls):.3f}), "
          f"CPU median {statistics.median(cpus):.3f} s, {results[0][2]} syncs a run")


if __name__ == "__main__":
    main()
