"""Mosaic read throughput from deflate GeoTIFF tiles with 1-row strips (the real tiles' layout).

Writes (once, cached in bench/cache/) GFW-named demo tiles, then reads a set of layers through
the lazy mosaic on one process and reports Mpixel/s per core (pixels / CPU seconds) and per wall
second, per layer and overall.

    python bench/read_throughput.py [--size 10000] [--chunks 4000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import dask

from fluxgraph.config import load_config
from fluxgraph.demodata import write_demo_tiles
from fluxgraph.grid import TileId
from fluxgraph.mosaic import open_mosaic

LAYERS = ("loss_year", "tcd2000", "agb_2000", "mangrove_agb_2000", "continent_ecozone", "precipitation",
          "bgb_agb_ratio", "drivers")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=10000, help="tile window side, px (default 10000 = 1e8 px)")
    ap.add_argument("--chunks", type=int, default=4000, help="chunk side, px")
    ap.add_argument("--tile", default="00N_110E")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    cache = Path(__file__).parent / "cache" / f"tiles_{args.tile}_{args.size}"
    if not (cache / ".complete").exists():
        t = time.perf_counter()
        write_demo_tiles(cache, [TileId.parse(args.tile)], size=args.size, layers=LAYERS)
        (cache / ".complete").touch()
        print(f"wrote demo tiles in {time.perf_counter() - t:.1f} s to {cache}")

    cfg = load_config(overrides={"grid": {"chunks": [args.chunks, args.chunks]}})
    ds = open_mosaic(cache, tiles=args.tile, layers=LAYERS, config=cfg)
    rows = []
    with dask.config.set(scheduler="synchronous"):
        for name in LAYERS:
            arr = ds[name].data
            c0, w0 = time.process_time(), time.perf_counter()
            arr.sum().compute()
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            rows.append({"layer": name, "dtype": str(arr.dtype), "mpix": arr.size / 1e6,
                         "mpix_per_cpu_s": arr.size / 1e6 / cpu, "mpix_per_wall_s": arr.size / 1e6 / wall})
    total_px = sum(r["mpix"] for r in rows)
    total_cpu = sum(r["mpix"] / r["mpix_per_cpu_s"] for r in rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'layer':22s} {'dtype':8s} {'Mpx':>7s} {'Mpx/s/core':>11s} {'Mpx/s wall':>11s}")
    for r in rows:
        print(f"{r['layer']:22s} {r['dtype']:8s} {r['mpix']:7.1f} {r['mpix_per_cpu_s']:11.1f} "
              f"{r['mpix_per_wall_s']:11.1f}")
    print(f"all layers: {total_px / total_cpu:.1f} Mpixel/s per core (one process, chunks {args.chunks}), "
          f"peak RSS {peak_mb:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "mpix_per_cpu_s": total_px / total_cpu,
                                         "peak_rss_mb": peak_mb, "size": args.size, "chunks": args.chunks}))


if __name__ == "__main__":
    main()
