"""Per-stage and whole-chain throughput of fluxgraph on a multi-process Dask cluster.

Compares each model stage with the original (one core, 10000 x 10000 tile, deflate GeoTIFFs
with 1-row strips in and out). See bench/README.md for the columns and the measured table.

    python bench/bench_stages.py [--size 10000] [--workers 2] [--json out.json] [--stages ...] [--chain]
                                 [--scaling gross_emissions_biomass_soil,chain] [--io-floor] [--no-kernel]

Once, cached in bench/cache/stages_{tile}_{size}/:

* ``raw/``: every synthetic raw input layer as GFW-named deflate GeoTIFFs with 1-row strips
  (:func:`fluxgraph.demodata.write_demo_tiles`), the top-left ``size`` x ``size`` window of the tile;
* ``inter/``: every intermediate layer of the standard chain (computed once with
  ``save_intermediates=True``), re-written from the run's COGs as deflate 1-row-strip GeoTIFFs
  under their GFW names, so each stage can be run alone from strip-GeoTIFF inputs;
* ``inputs/{stage}/``: symbolic links to exactly the files a stage declares as inputs or optional
  inputs (so the planner runs that one stage and nothing else).

Then, for each measured stage (and the whole standard chain from ``raw/`` only), on a fresh
``distributed.LocalCluster(n_workers=W, threads_per_worker=1, processes=True)``: one warm-up
run on a 400 x 400 window (numba caches, GDAL, imports loaded in the workers), then the timed
:func:`fluxgraph.runner.run` writing Zarr + COG outputs (default configuration, GFW names).
No timing is asserted anywhere; this only measures and prints.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import resource
import shutil
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from fluxgraph.catalog import get_layer
from fluxgraph.config import load_config
from fluxgraph.grid import TileId
from fluxgraph.runner import STANDARD_CHAIN

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"

CHAIN = "chain"

#: The original's throughput, Mpixel/s on one core (10000 x 10000 tile, deflate 1-row strips in and out).
ORIGINAL_MPX_S = {
    "model_extent": 11.4,
    "forest_age_category_IPCC": 4.6,
    "annual_removals_IPCC": 1.6,
    "annual_removals_all_forest_types": 2.2,
    "gain_year_count": 4.6,
    "gross_removals_all_forest_types": 3.3,
    "carbon_pools": 1.1,
    "gross_emissions_biomass_soil": 2.6,  # C++, on a tile where 22 % of pixels have loss and carbon
    "net_flux": 8.6,
    CHAIN: 0.24,
    "kernel:gross_emissions": 2.6,
}

#: Stages measured alone: those of the standard chain the original has a reference rate for.
STAGE_NAMES = tuple(s for s in STANDARD_CHAIN if s in ORIGINAL_MPX_S)

#: What the one cache-building run computes (with every intermediate saved).
CACHE_STAGES = "carbon_pools,gross_removals_all_forest_types,gross_emissions_biomass_soil,net_flux"

#: Kernel-only benchmark: the stage's inputs, in the kernel's argument order.
EMIS_INPUTS = ("agc_emis_year", "bgc_emis_year", "deadwood_emis_year", "litter_emis_year", "soil_emis_year",
               "loss_year", "tclf", "climate_domain", "climate_zone", "drivers", "peat", "ifl_primary",
               "plantation_type")

WARMUP_BBOX = "{w},{n_minus},{e},{n}"  # filled from the tile: 400 x 400 px at its top-left corner


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def wait_for_quiet(max_wait: float, busy_threshold: float = 25.0) -> str:
    """Wait (up to ``max_wait`` s) until the machine is idle: system CPU use over 3 s below ``busy_threshold`` %.

    The load average is reported but not waited on: it decays over minutes after our own previous run.
    """
    import psutil

    t0 = time.monotonic()
    while psutil.cpu_percent(interval=3) > busy_threshold and time.monotonic() - t0 < max_wait:
        time.sleep(7)
    return load_avg()


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores) since boot."""
    import psutil

    t = psutil.cpu_times()
    return sum(getattr(t, f) for f in ("user", "nice", "system", "irq", "softirq") if hasattr(t, f))


# --------------------------------------------------------------------------- strip GeoTIFFs


def write_strip_tif(src_path: str, dst_path: str, size: int | None = None, band_rows: int = 2000) -> str:
    """Re-write a raster (e.g. a COG) as a deflate GeoTIFF with 1-row strips, like the original's tiles.

    ``size`` crops to the top-left ``size`` x ``size`` pixels: the COGs that fluxgraph streams with
    odc-geo (parts over 64 Mpixel) come out padded with nodata to a multiple of 16 px (10016 for 10000).
    """
    import rasterio
    from rasterio.windows import Window

    with rasterio.Env(GDAL_NUM_THREADS="1"), rasterio.open(src_path) as src:
        width, height = (src.width, src.height) if size is None else (min(src.width, size), min(src.height, size))
        profile = {
            "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": src.dtypes[0],
            "crs": src.crs, "transform": src.transform, "nodata": src.nodata,
            "compress": "deflate", "tiled": False, "blockysize": 1,
        }
        tmp = dst_path + ".part"
        with rasterio.open(tmp, "w", **profile) as dst:
            for r0 in range(0, height, band_rows):
                w = Window(0, r0, width, min(band_rows, height - r0))
                dst.write(src.read(1, window=w), 1, window=w)
    os.replace(tmp, dst_path)
    return dst_path


def _write_demo_group(out: str, tile: str, size: int, layers: list[str], loss_scale: float = 1.0) -> int:
    from fluxgraph.demodata import write_demo_tiles

    return len(write_demo_tiles(out, [TileId.parse(tile)], size=size, layers=layers, loss_scale=loss_scale))


def _loss_and_carbon(agc_path: Path, loss_path: Path, band_rows: int = 2000) -> tuple[int, int]:
    import rasterio
    from rasterio.windows import Window

    hit = total = 0
    with rasterio.open(agc_path) as a, rasterio.open(loss_path) as lo:
        for r0 in range(0, a.height, band_rows):
            w = Window(0, r0, a.width, min(band_rows, a.height - r0))
            hit += int(np.count_nonzero((a.read(1, window=w) > 0) & (lo.read(1, window=w) > 0)))
            total += int(w.width * w.height)
    return hit, total


def start_cluster(n_workers: int):
    """A LocalCluster as ``fluxgraph run`` starts it (workers spawned with ``[cluster.worker_malloc]``)."""
    from distributed import Client, LocalCluster
    from fluxgraph.cluster.local import worker_environ_config

    with worker_environ_config(load_config().data["cluster"]):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    return cluster, Client(cluster)


def prepare_cache(root: Path, tile: str, size: int, procs: int, loss_scale: float = 1.0) -> dict:
    """Raw demo tiles, the chain's intermediates as strip GeoTIFFs and per-stage input folders (cached)."""
    from fluxgraph.demo import DEMO_LAYERS
    from fluxgraph.runner import run

    meta_path = root / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    raw, inter = root / "raw", root / "inter"

    if not (raw / ".complete").exists():
        log(f"writing demo input tiles ({len(DEMO_LAYERS)} layers, {size} x {size}) to {raw}")
        t = time.perf_counter()
        raw.mkdir(parents=True, exist_ok=True)
        names = list(DEMO_LAYERS)
        groups = [names[i::procs] for i in range(procs)]
        with ProcessPoolExecutor(procs) as ex:
            n = sum(ex.map(_write_demo_group, [str(raw)] * procs, [tile] * procs, [size] * procs, groups,
                           [loss_scale] * procs))
        meta["raw_seconds"] = round(time.perf_counter() - t, 1)
        meta["raw_files"] = n
        (raw / ".complete").touch()
        log(f"  {n} files in {meta['raw_seconds']} s")

    if not (inter / ".complete").exists():
        chain_out = root / "chain_out"
        shutil.rmtree(chain_out, ignore_errors=True)
        log(f"computing the intermediates once ({CACHE_STAGES}, save_intermediates=True)")
        t = time.perf_counter()
        cfg = load_config(overrides={"run": {"write_zarr": False, "cog_overviews": False}})
        cluster, client = start_cluster(procs)
        try:
            res = run([raw], out=chain_out, tiles=tile, stages=CACHE_STAGES, config=cfg, naming="gfw",
                      save_intermediates=True, client=client, progress=False)
        finally:
            client.close()
            cluster.close()
        meta["intermediates_run_seconds"] = round(time.perf_counter() - t, 1)
        log(f"  {len(res.cogs)} COGs in {meta['intermediates_run_seconds']} s; re-writing as 1-row strips")
        t = time.perf_counter()
        inter.mkdir(parents=True, exist_ok=True)
        srcs = sorted(res.cogs)
        with ProcessPoolExecutor(procs) as ex:
            list(ex.map(write_strip_tif, srcs, [str(inter / Path(p).name) for p in srcs], [size] * len(srcs)))
        meta["restrip_seconds"] = round(time.perf_counter() - t, 1)
        meta["intermediate_layers"] = res.layers
        shutil.rmtree(chain_out, ignore_errors=True)
        (inter / ".complete").touch()
        log(f"  {len(srcs)} strip GeoTIFFs in {meta['restrip_seconds']} s")

    if "loss_and_carbon_share" not in meta:
        cfg = load_config()
        agc = inter / get_layer("agc_emis_year").filename(cfg.naming, tile)
        loss = raw / get_layer("loss_year").filename(cfg.naming, tile)
        hit, total = _loss_and_carbon(agc, loss)
        meta["loss_and_carbon_pixels"] = hit
        meta["loss_and_carbon_share"] = hit / total
    meta.update(tile=tile, size=size, loss_scale=loss_scale)
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def stage_input_folder(root: Path, stage_name: str, tile: str) -> Path:
    """A folder of links to the files ``stage_name`` declares as inputs (raw or intermediate)."""
    from fluxgraph.graph import get_stage

    cfg = load_config()
    stage = get_stage(stage_name)
    folder = root / "inputs" / stage_name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in (*stage.inputs, *stage.optional):
        fname = get_layer(name).filename(cfg.naming, tile)
        for src in (root / "inter" / fname, root / "raw" / fname):
            if src.exists():
                (folder / fname).symlink_to(src)
                break
    return folder


def check_plan(folder: Path, stage_name: str, tile: str) -> list[str]:
    """The stages the runner would run for ``stage_name`` from ``folder`` (should be just that one)."""
    from fluxgraph.graph import plan
    from fluxgraph.mosaic import Mosaic, Region
    from fluxgraph.runner import stage_targets

    cfg = load_config()
    mosaic = Mosaic([folder], Region.parse(tiles=tile), config=cfg)
    p = plan(stage_targets(stage_name, cfg), mosaic.available(TileId.parse(tile)), config=cfg)
    return [s.name for s in p.stages]


# --------------------------------------------------------------------------- worker probes
# Defined in __main__, so distributed ships them to the workers by value (cloudpickle).


def _task_cpu(dask_worker=None) -> float:
    """CPU seconds this worker's threads have spent running tasks (distributed's ``thread-cpu`` metric)."""
    return sum(v for k, v in dask_worker.digests_total.items()
               if isinstance(k, tuple) and k[0] == "execute" and k[-2:] == ("thread-cpu", "seconds"))


def _transfer(dask_worker=None) -> dict[str, float]:
    """Bytes this worker has sent to other workers and the seconds its transfer steps took (distributed's
    ``get-data`` / ``gather-dep`` metrics), by step."""
    out: dict[str, float] = {}
    for k, v in dask_worker.digests_total.items():
        if isinstance(k, tuple) and k[0] in ("get-data", "gather-dep"):
            out["/".join(map(str, k))] = v
    return out


def _rusage() -> tuple[float, float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_maxrss / 1024  # MB (ru_maxrss is KiB on Linux)


def _hwm_kb() -> int | None:
    """This process's peak RSS since the last reset (Linux ``VmHWM``, KiB), or None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def _reset_hwm() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0: ``5`` written to ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _hwm_kb() is not None
    except OSError:
        return False


def _start_rss_sampler(dask_worker=None, interval: float = 0.02) -> bool:
    """Track the worker's peak RSS: the kernel's resettable high-water mark where Linux offers it (no cost
    while tasks run), else a thread sampling RSS every ``interval`` s (it took 1.3 % of the workers' CPU
    in the emissions stage at 0.02 s, measured with py-spy)."""
    import psutil

    if getattr(dask_worker, "_bench_rss", None) is not None:
        return True
    if _reset_hwm():
        dask_worker._bench_rss = {"hwm": True}
        return True
    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss}

    def loop() -> None:
        while True:
            rss = proc.memory_info().rss
            if rss > state["peak"]:
                state["peak"] = rss
            time.sleep(interval)

    threading.Thread(target=loop, daemon=True, name="bench-rss").start()
    dask_worker._bench_rss = state
    return True


def _reset_rss_peak(dask_worker=None) -> None:
    import psutil

    if dask_worker._bench_rss.get("hwm"):
        _reset_hwm()
    else:
        dask_worker._bench_rss["peak"] = psutil.Process().memory_info().rss


def _rss_peak_mb(dask_worker=None) -> float:
    if dask_worker._bench_rss.get("hwm"):
        return _hwm_kb() / 1024
    return dask_worker._bench_rss["peak"] / 2**20


@dataclasses.dataclass
class Usage:
    """What one measured block cost: wall s, CPU s of the workers and of this process, peak RSS per worker (MB)."""

    wall_s: float = 0.0
    cpu_workers_s: float = 0.0
    cpu_client_s: float = 0.0
    cpu_tasks_s: float = 0.0
    peak_rss_mb_per_worker: float = 0.0
    ru_maxrss_mb_per_worker: float = 0.0
    client_peak_rss_mb: float = 0.0


@contextlib.contextmanager
def measured(client):
    """Measure the with-block on ``client``'s workers (their RSS sampler must run) and in this process."""
    usage = Usage()
    client.run(_reset_rss_peak)
    w0 = client.run(_rusage)
    k0 = client.run(_task_cpu)
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    yield usage
    usage.wall_s = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    w1 = client.run(_rusage)
    k1 = client.run(_task_cpu)
    usage.cpu_tasks_s = sum(k1[a] - k0[a] for a in k1)
    if os.environ.get("BENCH_TRANSFER"):
        t1 = client.run(_transfer)
        tot: dict[str, float] = defaultdict(float)
        for per in t1.values():
            for key, v in per.items():
                tot[key] += v
        log("transfers (whole cluster life): " + ", ".join(f"{k} {v:.3g}" for k, v in sorted(tot.items())))
    usage.cpu_workers_s = sum((w1[a][0] - w0[a][0]) + (w1[a][1] - w0[a][1]) for a in w1)
    usage.cpu_client_s = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    usage.peak_rss_mb_per_worker = max(client.run(_rss_peak_mb).values())
    usage.ru_maxrss_mb_per_worker = max(v[2] for v in w1.values())
    usage.client_peak_rss_mb = c1.ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- where the worker time goes

#: Categories decided by any frame of the stack (the sink compresses COG tiles in its chunk and band tasks).
STACK_CATEGORIES = (
    ("cog-enc", lambda f, n: (n in ("_compress_tiles", "_encode", "_empty_tile") and f.endswith("fluxgraph/sink.py"))
     or "/imagecodecs/" in f),
    ("cog-ovr", lambda f, n: n == "_band_task"),
)
#: (category, test on one frame), tried from the innermost frame outwards; first hit wins.
PROFILE_CATEGORIES = (
    ("cog", lambda f, n: n in ("_assemble_task", "_write_file") or "/odc/geo/" in f or "/tifffile/" in f),
    ("zarr", lambda f, n: "/zarr/" in f or "/numcodecs/" in f or n == "_write_zarr"),
    ("read", lambda f, n: f.endswith(("fluxgraph/sources.py", "fluxgraph/mosaic.py"))),
    ("stats", lambda f, n: f.endswith("kernels/stats.py") or "/dask/array/reductions.py" in f),
    ("kernel", lambda f, n: "/kernels/" in f or (n == "__call__" and f.endswith("stages/_apply.py"))),
    ("serde", lambda f, n: "/distributed/protocol/" in f),
)
CATEGORY_LABELS = {
    "read": "read strips (mosaic: fluxgraph.strips or GDAL decoding the 1-row deflate strips, fill, copy)",
    "cog-ovr": "COG overviews (pasting and decimating row bands, fluxgraph.sink)",
    "cog-enc": "COG tiles: emptiness check, padding and deflate encode (fluxgraph.sink, imagecodecs)",
    "cog": "COG files (header, tile index, writing)",
    "zarr": "Zarr write (chunk emptiness, zarr's encode and store)",
    "kernel": "numba kernels",
    "stats": "summary statistics and tile emptiness (numba)",
    "serde": "serialisation",
    "other": "other (dask/numpy glue: getitem, broadcast copies, astype)",
}


def _classify(stack: list[dict]) -> str:
    for cat, test in STACK_CATEGORIES:
        if any(test(d.get("filename", ""), d.get("name", "")) for d in stack):
            return cat
    for desc in reversed(stack):
        f, n = desc.get("filename", ""), desc.get("name", "")
        for cat, test in PROFILE_CATEGORIES:
            if test(f, n):
                return cat
    return "other"


def profile_breakdown(client, start: float, stop: float) -> dict[str, float]:
    """Share of the workers' sampled task time by category, from distributed's statistical profiler."""
    prof = client.profile(start=start, stop=stop)
    counts: dict[str, int] = defaultdict(int)

    def walk(node: dict, stack: list[dict]) -> None:
        kids = node.get("children", {})
        desc = node.get("description")
        st = [*stack, desc] if isinstance(desc, dict) else stack
        own = node.get("count", 0) - sum(c.get("count", 0) for c in kids.values())
        if own > 0:
            counts[_classify(st)] += own
        for c in kids.values():
            walk(c, st)

    walk(prof, [])
    total = sum(counts.values()) or 1
    return {k: counts[k] / total for k in sorted(counts, key=lambda k: -counts[k])}


# --------------------------------------------------------------------------- one measurement


@contextlib.contextmanager
def copy_kernels():
    """Replace every stage's compute by copies of its inputs (same reads, outputs and writes, no kernel)."""
    import fluxgraph.stages as st
    from fluxgraph.stages._apply import apply_kernel

    saved = list(st.STAGES)

    def make(stage):
        def compute(ctx):
            names = [n for n in (*stage.inputs, *stage.optional) if n in ctx.inputs]
            outs = stage.selected_outputs(ctx.config)
            dtypes = [get_layer(o).np_dtype for o in outs]
            arrays = apply_kernel(_copy_kernel, *(ctx[n] for n in names), output_dtypes=dtypes,
                                  dtypes=tuple(dtypes))
            return dict(zip(outs, arrays, strict=True))

        return dataclasses.replace(stage, compute=compute)

    st.STAGES[:] = [make(s) for s in saved]
    try:
        yield
    finally:
        st.STAGES[:] = saved


def _copy_kernel(*blocks, dtypes):
    """Output k = input k (cycling) cast to its dtype: touches every input block, computes nothing."""
    outs = tuple(np.array(blocks[k % len(blocks)], dtype=dt) for k, dt in enumerate(dtypes))
    return outs if len(outs) > 1 else outs[0]


def measure(label: str, stages: str, folder: Path, *, tile: str, size: int, workers: int, scratch: Path,
            warmup_bbox: str, copy: bool = False, max_wait: float = 60, outputs: str = "",
            settings: dict | None = None, annual_layers: bool = False) -> dict:
    from fluxgraph.runner import run

    wanted = [o for o in outputs.split(",") if o and o != "all"]
    overrides: dict = {"run": {"outputs": wanted}}
    for key, value in (settings or {}).items():
        section, name = key.split(".", 1)
        overrides.setdefault(section, {})[name] = value
    cfg = load_config(overrides=overrides)
    load_before = wait_for_quiet(max_wait)
    cluster, client = start_cluster(workers)
    ctx = copy_kernels() if copy else contextlib.nullcontext()
    try:
        with ctx:
            client.run(_start_rss_sampler)
            out_w = scratch / f"{label}-W{workers}-warmup"
            run([folder], out=out_w, bbox=warmup_bbox, stages=stages, config=cfg, naming="gfw", client=client,
                progress=False)
            shutil.rmtree(out_w, ignore_errors=True)

            out = scratch / f"{label}-W{workers}"
            shutil.rmtree(out, ignore_errors=True)
            load_start = load_avg()
            m0 = busy_cpu_seconds()
            p0 = time.time()
            with measured(client) as usage:
                res = run([folder], out=out, tiles=tile, stages=stages, config=cfg, naming="gfw", client=client,
                          progress=False, annual_layers=annual_layers)
            p1 = time.time()
            m1 = busy_cpu_seconds()
            load_end = load_avg()
            time.sleep(2.5)  # let the workers' profiler close its last 1-s cycle
            shares = profile_breakdown(client, p0, p1 + 1.0)
    finally:
        client.close()
        cluster.close()
    out_bytes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    shutil.rmtree(out, ignore_errors=True)

    wall, cpu_workers, cpu_client = usage.wall_s, usage.cpu_workers_s, usage.cpu_client_s
    px = size * size
    mpx_core = px / 1e6 / (cpu_workers + cpu_client)
    base = label.split(":", 1)[-1]
    orig_key = "gross_emissions_biomass_soil" if base.startswith("gross_emissions") else base
    orig = ORIGINAL_MPX_S.get(orig_key.replace("io_floor", CHAIN))
    row = {
        "stage": label, "workers": workers, "pixels": px, "wall_s": wall, "run_seconds": res.seconds,
        "cpu_workers_s": cpu_workers, "cpu_client_s": cpu_client, "cpu_tasks_s": usage.cpu_tasks_s,
        "cpu_other_processes_s": max(0.0, (m1 - m0) - cpu_workers - cpu_client),
        "mpx_per_core_s": mpx_core, "mpx_per_wall_s": px / 1e6 / wall,
        "peak_rss_mb_per_worker": usage.peak_rss_mb_per_worker,
        "ru_maxrss_mb_per_worker": usage.ru_maxrss_mb_per_worker,
        "original_mpx_s": orig, "ratio_to_original": mpx_core / orig if orig else None,
        "layers_written": len(res.layers), "output_mb": out_bytes / 2**20,
        "worker_time_share": {k: round(v, 3) for k, v in shares.items()},
        "load_before": load_before, "load_start": load_start, "load_end": load_end,
        "settings": dict(settings or {}),
    }
    log(f"{label} W={workers}: wall {wall:.1f} s, CPU {cpu_workers:.1f} + {cpu_client:.1f} s, "
        f"{mpx_core:.2f} Mpx/s/core (tasks {usage.cpu_tasks_s:.1f} s), "
        f"other processes {row['cpu_other_processes_s']:.1f} CPU s, "
        f"peak {row['peak_rss_mb_per_worker']:.0f} MB/worker, load {load_start} -> "
        f"{load_end}; worker time {row['worker_time_share']}")
    return row


def kernel_bench(root: Path, tile: str, block: int, repeats: int = 3, max_wait: float = 60) -> dict:
    """``gross_emissions`` alone on a ``block`` x ``block`` window of the cached inputs, one core."""
    import rasterio
    from fluxgraph.kernels.emissions import gross_emissions
    from rasterio.windows import Window

    cfg = load_config()
    arrays = []
    for name in EMIS_INPUTS:
        layer = get_layer(name)
        fname = layer.filename(cfg.naming, tile)
        path = next((p for p in (root / "inter" / fname, root / "raw" / fname) if p.exists()), None)
        if path is None:
            arrays.append(np.zeros((block, block), layer.np_dtype))
            continue
        with rasterio.open(path) as src:
            arrays.append(src.read(1, window=Window(0, 0, block, block)))
    share = float(np.count_nonzero((arrays[0] > 0) & (arrays[5] > 0)) / arrays[0].size)
    gross_emissions(*(a[:8, :8] for a in arrays))  # load the compiled kernel
    load = wait_for_quiet(max_wait)
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        gross_emissions(*arrays)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    mpx = block * block / 1e6
    best = min(walls)
    row = {"stage": "kernel:gross_emissions", "workers": 0, "pixels": block * block, "wall_s": best,
           "cpu_s": min(cpus), "runs_wall_s": walls, "mpx_per_core_s": mpx / best, "mpx_per_wall_s": mpx / best,
           "loss_and_carbon_share": share, "original_mpx_s": ORIGINAL_MPX_S["kernel:gross_emissions"],
           "ratio_to_original": mpx / best / ORIGINAL_MPX_S["kernel:gross_emissions"],
           "load_before": load, "load_end": load_avg()}
    log(f"kernel gross_emissions {block}x{block}: min {best:.3f} s of {repeats} -> {mpx / best:.1f} Mpx/s "
        f"(loss & carbon share {share:.1%}), load {load}")
    return row


def read_probe(root: Path, tile: str, size: int, chunk: int, repeats: int = 2) -> list[dict]:
    """Decode cost of 1-row strips: one band of ``chunk`` rows read per chunk column (as the mosaic does,
    one open per chunk) versus read once at full width. Each chunk column decodes the whole rows again."""
    import rasterio
    from rasterio.windows import Window

    cfg = load_config()
    rows = min(chunk, size)
    out = []
    for name in ("loss_year", "agb_2000", "agc_emis_year"):
        fname = get_layer(name).filename(cfg.naming, tile)
        path = next((p for p in (root / "inter" / fname, root / "raw" / fname) if p.exists()), None)
        if path is None:
            continue
        t_chunked, t_full = [], []
        for _ in range(repeats):
            c0 = time.process_time()
            for col0 in range(0, size, chunk):
                with rasterio.open(path) as src:
                    src.read(1, window=Window(col0, 0, min(chunk, size - col0), rows))
            t_chunked.append(time.process_time() - c0)
            c0 = time.process_time()
            with rasterio.open(path) as src:
                src.read(1, window=Window(0, 0, size, rows))
            t_full.append(time.process_time() - c0)
        mpx = rows * size / 1e6
        with rasterio.open(path) as src:
            dtype = src.dtypes[0]
        out.append({"layer": name, "dtype": dtype, "mpx": mpx, "chunk_columns": -(-size // chunk),
                    "mpx_per_cpu_s_chunked": mpx / min(t_chunked), "mpx_per_cpu_s_full_rows": mpx / min(t_full)})
        log(f"read probe {name} ({dtype}): {rows} rows x {size}: per chunk column {mpx / min(t_chunked):.1f} "
            f"Mpx/s per core, full rows once {mpx / min(t_full):.1f} Mpx/s per core")
    return out


# --------------------------------------------------------------------------- table


def _setting(text: str) -> tuple[str, object]:
    """``SECTION.KEY=VALUE`` as (key, value); the value is read as TOML (numbers, booleans) or kept as text."""
    import tomllib

    key, _, value = text.partition("=")
    if "." not in key or not _:
        raise SystemExit(f"--set wants SECTION.KEY=VALUE, not {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


def print_table(rows: list[dict], meta: dict, speedups: dict, probe: list[dict]) -> str:
    head = (f"{'stage':32s} {'W':>2s} {'wall s':>7s} {'CPU wrk':>7s} {'CPU cli':>7s} {'Mpx/s/core':>10s} "
            f"{'Mpx/s wall':>10s} {'MB/wrk':>6s} {'orig':>5s} {'ratio':>5s} {'load':>4s} {'oth s':>5s}  "
            "worker task time (profile)")
    lines = [head, "-" * len(head)]
    for r in rows:
        top = " ".join(f"{k} {v:.0%}" for k, v in list(r.get("worker_time_share", {}).items())[:4])
        load = r.get("load_start", r.get("load_before", "")).split("/")[0]
        lines.append(
            f"{r['stage']:32s} {r['workers']:>2d} {r['wall_s']:7.2f} {fmt(r.get('cpu_workers_s'), '7.1f'):>7s} "
            f"{fmt(r.get('cpu_client_s', r.get('cpu_s')), '7.1f'):>7s} {r['mpx_per_core_s']:10.2f} "
            f"{r['mpx_per_wall_s']:10.2f} {fmt(r.get('peak_rss_mb_per_worker'), '6.0f'):>6s} "
            f"{fmt(r.get('original_mpx_s'), '5.2f'):>5s} {fmt(r.get('ratio_to_original'), '5.2f'):>5s} "
            f"{load:>4s} {fmt(r.get('cpu_other_processes_s'), '5.0f'):>5s}  {top}")
    for k, v in speedups.items():
        lines.append(f"speed-up {k}: W=1 {v['wall_w1']:.1f} s -> W={v['workers']} {v['wall_wn']:.1f} s = "
                     f"x{v['speedup']:.2f}")
    for p in probe:
        lines.append(f"read {p['layer']} ({p['dtype']}), deflate 1-row strips: {p['mpx_per_cpu_s_chunked']:.1f} "
                     f"Mpx/s per core read as {p['chunk_columns']} chunk columns, {p['mpx_per_cpu_s_full_rows']:.1f} "
                     f"at full width")
    lines.append("worker task time: " + "; ".join(f"{k} = {v}" for k, v in CATEGORY_LABELS.items()))
    lines.append(f"tile {meta['tile']} window {meta['size']} x {meta['size']} px; pixels with loss and carbon "
                 f"(agc_emis_year > 0 and loss_year > 0): {meta['loss_and_carbon_share']:.1%}")
    text = "\n".join(lines)
    print(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10000, help="tile window side, px (default 10000 = 1e8 px)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each) of the main runs")
    ap.add_argument("--annual-layers", action="store_true",
                    help="stages alone also write the per-year emissions COGs (fluxgraph run --annual-layers)")
    ap.add_argument("--loss-scale", type=float, default=1.0,
                    help="factor on the radius of the synthetic loss patches: 1 gives 10.3 %% of pixels with loss "
                         "and carbon, 1.5 gives about 22 %% (the tile the original was timed on); cached apart")
    ap.add_argument("--tile", default="00N_110E")
    ap.add_argument("--stages", default=",".join(STAGE_NAMES),
                    help="stages measured alone (comma list; 'none' for none); default: all nine")
    ap.add_argument("--chain", action="store_true", help="also measure the whole standard chain (stages=all)")
    ap.add_argument("--scaling", default=f"gross_emissions_biomass_soil,{CHAIN}",
                    help="of the measured stages (and 'chain'), those also run with W=1 for the speed-up")
    ap.add_argument("--io-floor", action="store_true",
                    help="also the whole chain with every kernel replaced by a copy of its inputs")
    ap.add_argument("--no-kernel", action="store_true", help="skip the kernel-only emissions benchmark")
    ap.add_argument("--kernel-block", type=int, default=4000)
    ap.add_argument("--max-wait", type=float, default=60,
                    help="seconds to wait before each measurement for the 1-min load average to fall below 1")
    ap.add_argument("--chain-outputs", default="key",
                    help="layers the chain and I/O-floor runs write: 'key' (default: the key outputs of the run "
                         "configuration), 'all' (every layer of every stage) or a comma list")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="configuration override for every run, e.g. run.cog_compress=zstd (repeatable)")
    ap.add_argument("--stage-floors", action="store_true",
                    help="also each measured stage with its kernel replaced by a copy (the stage's I/O floor)")
    args = ap.parse_args()

    t_start = time.perf_counter()
    log(f"load average {load_avg()}; {os.cpu_count()} cores")
    root = CACHE / (f"stages_{args.tile}_{args.size}" + (f"_loss{args.loss_scale:g}" if args.loss_scale != 1 else ""))
    meta = prepare_cache(root, args.tile, args.size, procs=max(1, min(2, os.cpu_count() or 1)),
                         loss_scale=args.loss_scale)
    log(f"loss and carbon share {meta['loss_and_carbon_share']:.1%}")
    t_measure = time.perf_counter()

    tile = TileId.parse(args.tile)
    w = tile.window
    # 400 x 400 px at the tile's top-left corner: lon0, lat0 of the tile's top-left pixel edge
    lon0, lat0 = w.col0 * 0.00025 - 180.0, 90.0 - w.row0 * 0.00025
    warmup_bbox = f"{lon0:.5f},{lat0 - 0.1:.5f},{lon0 + 0.1:.5f},{lat0:.5f}"
    scratch = CACHE / "runs"
    scratch.mkdir(parents=True, exist_ok=True)

    stages = [] if args.stages == "none" else [s.strip() for s in args.stages.split(",") if s.strip()]
    scaling = {s.strip() for s in args.scaling.split(",") if s.strip()}
    rows: list[dict] = []
    speedups: dict[str, dict] = {}
    settings = dict(_setting(s) for s in args.set)

    for name in stages:
        folder = stage_input_folder(root, name, args.tile)
        planned = check_plan(folder, name, args.tile)
        if planned != [name]:
            log(f"warning: {name} from its inputs plans {planned}")
        counts = [args.workers] + ([1] if name in scaling and args.workers != 1 else [])
        for W in counts:
            rows.append(measure(name, name, folder, tile=args.tile, size=args.size, workers=W, scratch=scratch,
                                warmup_bbox=warmup_bbox, max_wait=args.max_wait, settings=settings,
                                annual_layers=args.annual_layers))
        if args.stage_floors:
            rows.append(measure(f"io_floor:{name}", name, folder, tile=args.tile, size=args.size,
                                workers=args.workers, scratch=scratch, warmup_bbox=warmup_bbox, copy=True,
                                max_wait=args.max_wait, settings=settings))
    if args.chain:
        counts = [args.workers] + ([1] if CHAIN in scaling and args.workers != 1 else [])
        for W in counts:
            rows.append(measure(CHAIN, "all", root / "raw", tile=args.tile, size=args.size, workers=W,
                                scratch=scratch, warmup_bbox=warmup_bbox, max_wait=args.max_wait,
                                outputs=args.chain_outputs, settings=settings))
    if args.io_floor:
        rows.append(measure("io_floor", "all", root / "raw", tile=args.tile, size=args.size, workers=args.workers,
                            scratch=scratch, warmup_bbox=warmup_bbox, copy=True, max_wait=args.max_wait,
                            outputs=args.chain_outputs, settings=settings))
    for label in {r["stage"] for r in rows}:
        by_w = {r["workers"]: r for r in rows if r["stage"] == label}
        if 1 in by_w and args.workers in by_w and args.workers != 1:
            speedups[label] = {"workers": args.workers, "wall_w1": by_w[1]["wall_s"],
                               "wall_wn": by_w[args.workers]["wall_s"],
                               "speedup": by_w[1]["wall_s"] / by_w[args.workers]["wall_s"]}
    probe: list[dict] = []
    if not args.no_kernel:
        rows.append(kernel_bench(root, args.tile, min(args.kernel_block, args.size),
                                max_wait=args.max_wait))
        probe = read_probe(root, args.tile, args.size, load_config().chunks[1])

    print()
    table = print_table(rows, meta, speedups, probe)
    total = time.perf_counter() - t_start
    log(f"benchmark took {total:.0f} s (measurements {time.perf_counter() - t_measure:.0f} s); "
        f"load average {load_avg()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "command": " ".join(["python", "bench/bench_stages.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "meta": meta, "rows": rows,
            "speedups": speedups, "read_probe": probe, "table": table, "seconds_total": total,
            "seconds_measurements": time.perf_counter() - t_measure,
        }, indent=2, default=str))


if __name__ == "__main__":
    main()
