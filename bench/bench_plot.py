"""How long a quicklook map of a whole 30 m tile takes: from the COG's overviews, and from Zarr by coarsening.

Writes once, cached in ``bench/cache/plot_{size}/``, a ``size`` x ``size`` float32 layer of tile 00N_110E
(signed, 70 % nodata, smooth enough to compress like model outputs) as a COG with internal overviews
(:func:`fluxgraph.writers.write_cog`) and as the run's Zarr store (:func:`fluxgraph.writers.create_zarr_store`),
then times :func:`fluxgraph.plot.plot_layer` from each, in this process (one thread), and reports the
wall seconds, the CPU seconds and the peak resident memory of the process.

    python bench/bench_plot.py [--size 40000] [--max-pixels 1200]

No timing is asserted anywhere; this only measures and prints.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr

from fluxgraph.grid import PixelWindow, TileId
from fluxgraph.plot import plot_layer
from fluxgraph.writers import create_zarr_store, write_cog, write_zarr_region

LAYER = "net_flux"


def _block(block_info=None) -> np.ndarray:
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    y, x = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    v = 300 * np.sin(y / 977) * np.cos(x / 1531) + 50 * np.sin((x + y) / 211)
    return np.where(np.abs(v) > 120, np.round(v, 1), 0).astype(np.float32)


def _layer(size: int) -> tuple[xr.DataArray, PixelWindow]:
    tile = TileId.parse("00N_110E").window
    win = PixelWindow(tile.row0, tile.row0 + size, tile.col0, tile.col0 + size)
    data = da.map_blocks(_block, chunks=win.chunks((4000, 4000)), dtype=np.float32)
    arr = xr.DataArray(data, dims=("lat", "lon"), coords={"lat": win.lat(), "lon": win.lon()}, name=LAYER)
    return arr, win


def _prepare(out: Path, size: int) -> None:
    if (out / "done").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    arr, win = _layer(size)
    store = out / "fluxgraph.zarr"
    sw = create_zarr_store(store, [LAYER], win, (4000, 4000), attrs={"model_version": "bench", "model_years": "-"})
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        dask.compute(write_cog(arr, win, str(out / "cog" / LAYER / "00N_110E.tif")),
                     write_zarr_region(store, {LAYER: arr}, win, sw))
    print(f"wrote the {size} x {size} COG and Zarr in {time.perf_counter() - t0:.0f} s")
    (out / "done").touch()


def _timed(label: str, **kwargs) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    png = plot_layer(**kwargs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label:38s} wall {wall:7.2f} s  CPU {cpu:7.2f} s  peak RSS so far {rss:6.0f} MB  -> {png}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=40000)
    p.add_argument("--max-pixels", type=int, default=1200)
    a = p.parse_args()
    out = Path(__file__).parent / "cache" / f"plot_{a.size}"
    _prepare(out, a.size)
    _timed(f"COG overviews, {a.size} px tile", outputs=out, layer=LAYER, tile="00N_110E", out=out / "cog.png",
           max_pixels=a.max_pixels)
    with dask.config.set(scheduler="synchronous"):
        _timed(f"Zarr coarsen, {a.size} px bbox", outputs=out, layer=LAYER, out=out / "zarr.png",
               bbox=(110.0, -a.size / 4000, 110 + a.size / 4000, 0.0), max_pixels=a.max_pixels)


if __name__ == "__main__":
    main()
