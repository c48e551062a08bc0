"""Peak memory per worker against region size: the whole standard chain on 1e8 and 4e8 pixels, same chunks.

    python bench/bench_memory.py [--cols 10000] [--rows 10000,40000] [--workers 2] [--json out.json]

The regions are the top-left ``rows`` x ``cols`` windows of tile 00N_110E (synthetic inputs written once
to ``bench/cache/memory_{tile}_{rows}x{cols}/`` as GFW-named deflate GeoTIFFs with 1-row strips). Both are
``cols`` wide, so the default chunks (400 rows x the tile's width, clipped to the region) are the same
400 x ``cols`` px: only the region's height changes. Each region runs the standard chain with the key
outputs (Zarr + COG) on a fresh LocalCluster (as ``fluxgraph run`` starts it), after a warm-up, and
reports wall and CPU seconds, Mpixel/s per core and the peak RSS of each worker (the kernel's high-water
mark, see bench_stages._start_rss_sampler).
No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_stages import CACHE, _setting, _start_rss_sampler, load_avg, log, measured, start_cluster  # noqa: E402

TILE = "00N_110E"


def _write_group(out: str, rows: int, cols: int, layers: list[str]) -> int:
    from fluxgraph.demodata import write_demo_tiles
    from fluxgraph.grid import TileId

    return len(write_demo_tiles(out, [TileId.parse(TILE)], size=cols, rows=rows, layers=layers))


def raw_inputs(rows: int, cols: int, procs: int) -> Path:
    """The synthetic raw inputs of a ``rows`` x ``cols`` window (written once, cached)."""
    from fluxgraph.demo import DEMO_LAYERS

    root = CACHE / f"memory_{TILE}_{rows}x{cols}"
    if (root / ".complete").exists():
        return root
    log(f"writing {len(DEMO_LAYERS)} raw layers, {rows} x {cols} px, to {root}")
    root.mkdir(parents=True, exist_ok=True)
    names = list(DEMO_LAYERS)
    groups = [names[i::procs] for i in range(procs)]
    with ProcessPoolExecutor(procs) as ex:
        n = sum(ex.map(_write_group, [str(root)] * procs, [rows] * procs, [cols] * procs, groups))
    (root / ".complete").touch()
    log(f"  {n} files")
    return root


def chain(folder: Path, *, workers: int, scratch: Path, settings: dict | None = None) -> dict:
    """The standard chain, key outputs, over every pixel of ``folder``: timings and peak memory per worker."""
    from fluxgraph.config import load_config
    from fluxgraph.runner import run

    overrides: dict = {"run": {"outputs": ["key"]}}
    for key, value in (settings or {}).items():
        section, name = key.split(".", 1)
        overrides.setdefault(section, {})[name] = value
    cfg = load_config(overrides=overrides)
    cluster, client = start_cluster(workers)
    try:
        client.run(_start_rss_sampler)
        warm = scratch / "warmup"
        run([folder], out=warm, bbox="110,-0.1,110.1,0", stages="all", config=cfg, naming="gfw", client=client,
            progress=False)
        shutil.rmtree(warm, ignore_errors=True)
        out = scratch / "run"
        with measured(client) as usage:
            res = run([folder], out=out, tiles=TILE, stages="all", config=cfg, naming="gfw", client=client,
                      progress=False)
        px = sum(p.window.size for p in res.parts)
        chunks = {tuple(int(c) for c in cfg.chunks)}
        shutil.rmtree(out, ignore_errors=True)
    finally:
        client.close()
        cluster.close()
    cpu = usage.cpu_workers_s + usage.cpu_client_s
    return {"pixels": px, "shape": list(res.parts[0].window.shape), "chunk_setting": sorted(chunks),
            "wall_s": round(usage.wall_s, 2), "cpu_workers_s": round(usage.cpu_workers_s, 1),
            "cpu_client_s": round(usage.cpu_client_s, 1), "mpx_s_per_core": round(px / 1e6 / cpu, 2),
            "peak_rss_mb_per_worker": round(usage.peak_rss_mb_per_worker), "load": load_avg(),
            "settings": dict(settings or {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cols", type=int, default=10000)
    ap.add_argument("--rows", default="10000,40000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="configuration override, e.g. run.write_cog=false (repeatable)")
    args = ap.parse_args()
    settings = dict(_setting(s) for s in args.set)
    t0 = time.perf_counter()
    results = []
    for rows in (int(r) for r in args.rows.split(",")):
        folder = raw_inputs(rows, args.cols, args.workers)
        scratch = CACHE / "runs" / f"memory_{rows}x{args.cols}"
        shutil.rmtree(scratch, ignore_errors=True)
        log(f"chain over {rows} x {args.cols} px on {args.workers} workers")
        r = chain(folder, workers=args.workers, scratch=scratch, settings=settings)
        results.append(r)
        log(f"  {r}")
    print(f"\n{'region (rows x cols)':22s} {'Mpx':>6s} {'wall s':>7s} {'CPU s':>7s} {'Mpx/s/core':>10s} "
          f"{'peak MB/worker':>14s}")
    for r in results:
        print(f"{r['shape'][0]:>10d} x {r['shape'][1]:<9d} {r['pixels'] / 1e6:6.0f} {r['wall_s']:7.1f} "
              f"{r['cpu_workers_s'] + r['cpu_client_s']:7.1f} {r['mpx_s_per_core']:10.2f} "
              f"{r['peak_rss_mb_per_worker']:14d}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    log(f"benchmark took {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
