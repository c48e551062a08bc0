"""PRELES map-mode throughput and memory on a multi-process LocalCluster.

Runs :func:`fluxgraph.preles_map.run_preles_map` over a ``size × size`` pixel window of
synthetic 30 m fAPAR (every pixel forest) with two years (730 days) of synthetic 0.25° weather.
The result (annual GPP/ET and the end states) is written to a Zarr store in a temporary
directory. Reported per interpolation mode:

* **Mpixel-days/s per core** = pixels × days ÷ total worker CPU seconds (``resource.getrusage`` in
  each worker, before and after, so it includes reading, interpolation, writing and dask overhead),
  and the same from the task stream (the compute time of the PRELES tasks only);
* **peak memory per worker**: the largest RSS seen by sampling every worker each 0.2 s, next to its
  idle RSS before the run;
* **wall time** of the compute-and-write.

    python bench/bench_preles_map.py [--size 1000] [--chunks 500] [--workers 2] [--interp nearest,bilinear]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from distributed import Client, LocalCluster, get_task_stream

from fluxgraph.grid import PixelWindow
from fluxgraph.preles_map import run_preles_map, synthetic_fapar, synthetic_weather_like, write_preles_map


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss() -> int:
    return psutil.Process().memory_info().rss


class _MemorySampler:
    """Polls every worker's RSS in a background thread; keeps the maximum per worker."""

    def __init__(self, client: Client, interval: float = 0.2) -> None:
        self.client = client
        self.interval = interval
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for w, rss in self.client.run(_rss).items():
                self.peak[w] = max(self.peak.get(w, 0), rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> _MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _task_seconds(stream: list[dict[str, Any]]) -> float:
    """Compute seconds of the PRELES tasks in a task stream."""
    total = 0.0
    for t in stream:
        if "run_block" in str(t.get("key", "")):  # (fused names contain it too)
            total += sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute")
    return total


def bench_one(client: Client, window: PixelWindow, chunks: int, interp: str, years: int, out: Path) -> dict:
    """Run and write one map; return the measurements."""
    fapar = synthetic_fapar(window, seed=0, chunks=chunks).fillna(0.7)  # every pixel modelled
    weather = synthetic_weather_like(fapar, n_years=years, seed=0, start="2021-01-01")
    n_days = weather.sizes["time"]
    ds = run_preles_map(weather, fapar, interp=interp)
    idle = client.run(_rss)
    cpu0 = client.run(_cpu_seconds)
    with _MemorySampler(client) as mem, get_task_stream(client) as ts:
        t0 = time.perf_counter()
        write_preles_map(ds, out)
        wall = time.perf_counter() - t0
    cpu = sum(v - cpu0[w] for w, v in client.run(_cpu_seconds).items())
    px_days = window.size * n_days
    task_s = _task_seconds(ts.data)
    return {
        "interp": interp, "pixels": window.size, "days": n_days, "chunks": chunks,
        "wall_s": wall, "worker_cpu_s": cpu, "task_compute_s": task_s,
        "mpxd_per_core": px_days / 1e6 / cpu, "mpxd_per_core_tasks": px_days / 1e6 / task_s if task_s else None,
        "mpxd_per_wall_s": px_days / 1e6 / wall,
        "peak_rss_mb": {w: v / 2**20 for w, v in mem.peak.items()},
        "idle_rss_mb": {w: v / 2**20 for w, v in idle.items()},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000, help="window side in pixels (default 1000 = 1 Mpixel)")
    ap.add_argument("--chunks", type=int, default=500, help="chunk side in pixels (one task per chunk)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (one thread each)")
    ap.add_argument("--years", type=int, default=2, help="years of weather from 2021 (2 = 730 days)")
    ap.add_argument("--interp", default="nearest,bilinear", help="comma-separated interpolation modes")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    top = PixelWindow.from_bounds(24.0, 61.5, 24.0 + args.size / 4000, 61.5 + args.size / 4000)
    window = PixelWindow(top.row0, top.row0 + args.size, top.col0, top.col0 + args.size)
    rows = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            Client(cl) as client, tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        # warm-up: load the numba caches in every worker (not measured)
        small = PixelWindow(window.row0, window.row0 + 16, window.col0, window.col0 + 16 * args.workers)
        for interp in args.interp.split(","):
            bench_one(client, small, 16, interp, 1, Path(tmp) / "warm.zarr")
        for interp in args.interp.split(","):
            rows.append(bench_one(client, window, args.chunks, interp, args.years, Path(tmp) / f"{interp}.zarr"))
    for r in rows:
        peak = ", ".join(f"{v:.0f}" for v in r["peak_rss_mb"].values())
        idle = ", ".join(f"{v:.0f}" for v in r["idle_rss_mb"].values())
        print(f"{r['interp']:9s} {r['pixels'] / 1e6:.2f} Mpx x {r['days']} d, chunks {r['chunks']}: "
              f"{r['mpxd_per_core']:.2f} Mpixel-days/s per core (worker CPU {r['worker_cpu_s']:.1f} s; "
              f"PRELES tasks only {r['mpxd_per_core_tasks']:.2f}), wall {r['wall_s']:.1f} s "
              f"({r['mpxd_per_wall_s']:.1f} Mpixel-days/s), peak RSS per worker [{peak}] MB (idle [{idle}] MB)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
