"""Scaling of the demo chain (``fluxgraph demo``) from 1 to 2 worker processes, and peak memory per worker.

Usage::

    python bench/bench_demo_scaling.py [--size 1000] [--tiles test] [--workers 1,2] [--out bench/cache/demo_scaling]

For each worker count: a LocalCluster (processes, one thread each) runs a small warm-up (numba
caches load, imports happen), then the whole standard chain (``--stages all``) on ``demo://`` over the
four test tiles, writing Zarr + COGs. Reported per run: wall seconds, CPU seconds of the workers and
of the client, Mpixel/s per core and per wall second, peak RSS per worker (sampled every 20 ms), and the
speed-up of the largest worker count over one worker. Results are printed as JSON lines and appended to
``{out}/results.jsonl``.

``--size 40000 --bbox 110,-0.1,120,0`` computes exactly one whole default chunk (400 rows × 40 000
columns of tile 00N_110E): its peak RSS per worker is the figure to size workers with (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cloudpickle

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_stages

cloudpickle.register_pickle_by_value(bench_stages)  # workers need not import it


def measure(*, workers: int, size: int, tiles: str, out: Path, bbox: str | None = None) -> dict:
    from fluxgraph.config import load_config
    from fluxgraph.runner import run

    cfg = load_config()
    load_before = bench_stages.wait_for_quiet(60)
    cluster, client = bench_stages.start_cluster(workers)
    try:
        client.run(bench_stages._start_rss_sampler)
        warm = out / f"W{workers}-warmup"
        run(["demo://?size=400&seed=0"], out=warm, tiles=tiles, stages="all", config=cfg, client=client,
            progress=False)
        shutil.rmtree(warm, ignore_errors=True)
        target = out / f"W{workers}"
        shutil.rmtree(target, ignore_errors=True)
        region = {"bbox": bbox} if bbox else {"tiles": tiles}
        with bench_stages.measured(client) as usage:
            res = run([f"demo://?size={size}&seed=0"], out=target, stages="all", config=cfg, client=client,
                      progress=False, **region)
    finally:
        client.close()
        cluster.close()
    shutil.rmtree(target, ignore_errors=True)
    wall, cpu_w, cpu_c = usage.wall_s, usage.cpu_workers_s, usage.cpu_client_s
    px = sum(p.window.size for p in res.parts)
    return {
        "workers": workers, "size": size, "region": bbox or tiles, "pixels": px, "chunks": list(cfg.chunks),
        "wall_s": round(wall, 2), "cpu_workers_s": round(cpu_w, 2), "cpu_client_s": round(cpu_c, 2),
        "mpx_per_core_s": round(px / 1e6 / (cpu_w + cpu_c), 3), "mpx_per_wall_s": round(px / 1e6 / wall, 3),
        "peak_rss_mb_per_worker": round(usage.peak_rss_mb_per_worker), "layers": len(res.layers),
        "load_before": load_before, "load_end": bench_stages.load_avg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--tiles", default="test")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--bbox", default=None, help="W,S,E,N instead of --tiles (e.g. one whole default chunk)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "cache" / "demo_scaling")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in [int(v) for v in args.workers.split(",")]:
        row = measure(workers=n, size=args.size, tiles=args.tiles, out=args.out, bbox=args.bbox)
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
    if len(rows) > 1:
        base, top = rows[0], rows[-1]
        print(json.dumps({"speedup_wall": round(base["wall_s"] / top["wall_s"], 2),
                          "workers": [base["workers"], top["workers"]]}), flush=True)


if __name__ == "__main__":
    main()
