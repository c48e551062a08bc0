"""Zonal statistics throughput: :func:`fluxgraph.zonal_stats` over a run's outputs on a multi-process cluster.

    python bench/bench_zonal.py [--size 10000] [--grid 20] [--workers 2] [--tcd 30,50,75] [--json out.json]

Once, cached in bench/cache/zonal_{size}/: a run of the standard chain up to net flux over the top-left
``size`` x ``size`` window of 00N_110E from ``demo://`` (Zarr only, no COGs), keeping gross emissions by gas,
gross removals and net flux. Zones: a ``grid`` x ``grid`` lattice of jittered quadrilaterals covering the
window (GeoPackage), so polygon edges cut through chunks and pixels.

Measured on a fresh ``LocalCluster(n_workers=W, threads_per_worker=1, processes=True)`` after a warm-up on
one small polygon (imports and numba caches loaded in the workers): wall time, CPU seconds of the workers
and of the client, Mpixel/s per core = pixels of the window ÷ (worker + client CPU seconds), and peak RSS per
worker (sampled every 20 ms). The tasks read whole chunks of the run's store (``pixels_read``: the window snapped
out to 4000-px chunks, 1.44e8 px for a 10000-px window); the per-core figure counts only the window's pixels.
No timing is asserted anywhere; this only measures and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_stages as bs  # helpers: cluster, worker CPU and RSS probes

cloudpickle.register_pickle_by_value(bs)  # the probes run on the workers, which cannot import bench/

TILE = "00N_110E"
STAGES = "gross_removals_all_forest_types,gross_emissions_biomass_soil,net_flux"


def prepare_outputs(root: Path, size: int, workers: int) -> Path:
    """The run whose outputs the zonal statistics read (computed once, cached)."""
    from fluxgraph.config import load_config
    from fluxgraph.runner import run

    out = root / "run"
    if (out / "run.json").exists():
        return out
    cfg = load_config(overrides={"run": {"write_cog": False}})
    cluster, client = bs.start_cluster(workers)
    try:
        t0 = time.perf_counter()
        run([f"demo://?size={size}&seed=0"], out=out, tiles=TILE, stages=STAGES, config=cfg, client=client,
            progress=False)
        bs.log(f"outputs for the benchmark computed in {time.perf_counter() - t0:.0f} s")
    finally:
        client.close()
        cluster.close()
    return out


def write_zones(path: Path, size: int, grid: int, seed: int = 0) -> int:
    """A grid x grid lattice of jittered quadrilaterals over the window; returns the number of polygons."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    west, north = 110.0, 0.0
    step = size / 4000 / grid
    xs = west + step * np.arange(grid + 1)
    ys = north - step * np.arange(grid + 1)
    jx = rng.uniform(-0.3, 0.3, (grid + 1, grid + 1)) * step
    jy = rng.uniform(-0.3, 0.3, (grid + 1, grid + 1)) * step
    jx[:, [0, -1]] = 0
    jy[[0, -1], :] = 0
    polys, names = [], []
    for i in range(grid):
        for j in range(grid):
            corners = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j)]
            polys.append(shapely.Polygon([(xs[c] + jx[r, c], ys[r] + jy[r, c]) for r, c in corners]))
            names.append(f"z{i:03d}_{j:03d}")
    gpd.GeoDataFrame({"zone": names}, geometry=polys, crs="EPSG:4326").to_file(path)
    return len(polys)


def _pixels_read(outputs: Path) -> int:
    """Pixels of the run's store (its window snapped out to whole chunks): what the zonal tasks read."""
    import xarray as xr

    ds = xr.open_zarr(outputs / "fluxgraph.zarr", consolidated=False)
    return int(ds.sizes["lat"] * ds.sizes["lon"])


def measure(outputs: Path, zones: Path, warmup: Path, *, pixels: int, workers: int, tcd: list[int]) -> dict:
    from fluxgraph.zonal import zonal_stats

    load_before = bs.wait_for_quiet(60)
    cluster, client = bs.start_cluster(workers)
    try:
        client.run(bs._start_rss_sampler)
        zonal_stats(outputs=outputs, zones=warmup, by="zone", tcd=tcd, client=client)
        with bs.measured(client) as usage:
            table = zonal_stats(outputs=outputs, zones=zones, by="zone", tcd=tcd, client=client)
    finally:
        client.close()
        cluster.close()
    wall, cpu_workers, cpu_client = usage.wall_s, usage.cpu_workers_s, usage.cpu_client_s
    row = {
        "pixels": pixels, "pixels_read": _pixels_read(outputs), "zones": int(table["zone"].nunique()),
        "thresholds": tcd, "workers": workers,
        "rows": len(table), "wall_s": round(wall, 2), "cpu_workers_s": round(cpu_workers, 2),
        "cpu_client_s": round(cpu_client, 2), "mpx_per_core_s": round(pixels / 1e6 / (cpu_workers + cpu_client), 2),
        "mpx_per_wall_s": round(pixels / 1e6 / wall, 2), "peak_rss_mb_per_worker": round(usage.peak_rss_mb_per_worker),
        "client_peak_rss_mb": round(usage.client_peak_rss_mb), "load_before": load_before, "load_end": bs.load_avg(),
        "forest_area_ha_t30": float(table[(table.loss_year == "all") & (table.tcd_threshold == tcd[0])]
                                    ["forest_area_ha"].sum()),
    }
    bs.log(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10000, help="window side in pixels (default 10000: 1e8 px)")
    ap.add_argument("--grid", type=int, default=20, help="polygons per side (default 20: 400 polygons)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tcd", default="30,50,75", help="canopy thresholds")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()

    import geopandas as gpd
    import shapely

    root = bs.CACHE / f"zonal_{args.size}"
    root.mkdir(parents=True, exist_ok=True)
    outputs = prepare_outputs(root, args.size, args.workers)
    zones = root / f"zones_{args.grid}.gpkg"
    n = write_zones(zones, args.size, args.grid)
    warmup = root / "warmup.gpkg"
    gpd.GeoDataFrame({"zone": ["w"]}, geometry=[shapely.box(110.0, -0.01, 110.01, 0.0)],
                     crs="EPSG:4326").to_file(warmup)
    bs.log(f"{n} polygons over {args.size} x {args.size} px, {args.workers} workers")
    row = measure(outputs, zones, warmup, pixels=args.size * args.size, workers=args.workers,
                  tcd=[int(t) for t in args.tcd.split(",")])
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
