"""Run the model: catalog → mosaic → stage graph → writers, evaluated on a Dask cluster.

:func:`run` is the Python API behind ``fluxgraph run`` and ``fluxgraph demo``. It plans every tile
part, then builds, submits and commits the parts a few at a time (``[run] parts_in_flight``): each
part is one dask graph whose chunk tasks write the Zarr store and the COG tiles in one pass
(:mod:`fluxgraph.sink`). Each run leaves, next to its outputs, a log file, the resolved configuration,
a resume manifest and a JSON summary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dask
import numpy as np
import xarray as xr
from dask.delayed import Delayed

import fluxgraph
from fluxgraph.aggregate import lazy_maps, write_maps
from fluxgraph.config import RunConfig, load_config
from fluxgraph.errors import ConfigError, FluxgraphError, MissingLayerError, ResumeError
from fluxgraph.graph import Plan, Summary, all_stages, build, get_stage, plan
from fluxgraph.grid import PixelWindow
from fluxgraph.monitor import performance_report, watch_cluster
from fluxgraph.mosaic import Mosaic, Part, Region
from fluxgraph.outputs import OutputLocation
from fluxgraph.provenance import as_tags, run_provenance
from fluxgraph.resume import Manifest, part_key
from fluxgraph.s3 import storage_options as s3_storage_options
from fluxgraph.sink import CogFormat, PartSink, ZarrTarget, cog_target, part_sink
from fluxgraph.sources import Source
from fluxgraph.writers import cog_path, create_zarr_store, zarr_chunks

__all__ = ["DryRunReport", "RunResult", "run", "stage_targets"]

log = logging.getLogger("fluxgraph")

SPOOL = ".fluxgraph-spool"
"""Folder below the output where each part's compressed COG tiles wait until its COGs are written."""

STANDARD_CHAIN = (
    "model_extent",
    "forest_age_category_IPCC",
    "annual_removals_IPCC",
    "annual_removals_all_forest_types",
    "gain_year_count",
    "gross_removals_all_forest_types",
    "carbon_pools",
    "gross_emissions_biomass_soil",
    "gross_emissions_biomass_only",
    "net_flux",
    "create_derivative_outputs",
)
"""What ``--stages all`` runs (the original's run order, spec/stages.md §2), where registered."""


@dataclass
class RunResult:
    """What a run wrote and measured."""

    out: Path | str
    zarr: str | None
    cogs: list[str]
    layers: list[str]
    parts: list[Part]
    skipped: dict[str, str]
    seconds: float
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    computed_parts: int = 0
    computed_chunks: int = 0
    resumed_parts: int = 0
    cluster_events: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "fluxgraph_version": fluxgraph.__version__,
            "out": str(self.out),
            "zarr": self.zarr,
            "cogs": len(self.cogs),
            "layers": self.layers,
            "parts": [{"tile": str(p.tile), "shape": list(p.window.shape)} for p in self.parts],
            "skipped_tiles": self.skipped,
            "seconds": round(self.seconds, 3),
            "summary": self.summary,
            "computed": {"parts": self.computed_parts, "chunks": self.computed_chunks},
            "resumed_parts": self.resumed_parts,
            "cluster_events": self.cluster_events,
        }


def stage_targets(stages: str | Iterable[str], config: RunConfig) -> list[str]:
    """Layers a run writes: ``run.outputs`` when set (``key`` = ``outputs.key``), else the named stages' outputs.

    ``all`` names the standard chain. With ``run.outputs`` the planner still computes every stage
    those layers need, in memory, but writes only them.
    """
    wanted = config.data["run"].get("outputs") or []
    if isinstance(wanted, str):
        wanted = [w.strip() for w in wanted.split(",") if w.strip()]
    if wanted:
        return _resolve_outputs(wanted, config)
    names = [s.strip() for s in (stages.split(",") if isinstance(stages, str) else stages) if s.strip()]
    registered = all_stages()
    if names == ["all"]:
        names = [s for s in STANDARD_CHAIN if s in registered]
    out: list[str] = []
    for name in names:
        out.extend(get_stage(name).selected_outputs(config))
    return list(dict.fromkeys(out))


def _resolve_outputs(wanted: Iterable[str], config: RunConfig) -> list[str]:
    """Expand ``key`` and check that each named layer is produced by a registered stage."""
    made = {o for stage in all_stages().values() for o in stage.selected_outputs(config)}
    out: list[str] = []
    for name in wanted:
        if name == "key":
            out.extend(n for n in config.data["outputs"]["key"] if n in made)
        elif name in made:
            out.append(name)
        else:
            raise ConfigError(
                f"output {name!r} is not a layer any stage produces; `fluxgraph stages` lists each stage's outputs"
            )
    return list(dict.fromkeys(out))


def _combine(parts_stats: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {"pixels": 0, "nonzero": 0}
    mins, maxs, tot = [], [], 0.0
    for st in parts_stats:
        out["pixels"] += int(st["pixels"])
        out["nonzero"] += int(st["nonzero"])
        mins.append(float(st["min"]))
        maxs.append(float(st["max"]))
        tot += float(st.get("total_Mt", 0.0))
        if "total_Mt" in st:
            out["total_Mt"] = tot
    out["min"], out["max"] = min(mins), max(maxs)
    return out


def _setup_logging(folder: Path) -> logging.Handler:
    stamp = time.strftime("%Y_%m_%d__%H_%M_%S")
    handler = logging.FileHandler(folder / f"fluxgraph_log_{stamp}.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run(
    inputs: Sequence[str | Path | Source],
    *,
    out: str | Path,
    tiles: str | Iterable[str] | None = None,
    bbox: str | Sequence[float] | None = None,
    stages: str | Iterable[str] = "all",
    config: RunConfig | None = None,
    naming: Literal["fluxgraph", "gfw"] = "fluxgraph",
    save_intermediates: bool = False,
    client: Any = None,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    annual_layers: bool = False,
    resume: bool = False,
) -> RunResult | DryRunReport:
    """Run stages over a region and write Zarr + COG outputs.

    Parameters
    ----------
    inputs : sequence of str, Path or Source
        Input locations: folders, ``s3://…``, ``demo://…``.
    out : str or Path
        Output folder (created) or ``s3://bucket/prefix``.
    tiles, bbox :
        The region: tile ids or a list name, and/or ``W,S,E,N`` degrees.
    stages : str or iterable of str
        Stage names (``model_extent,net_flux``) or ``all``.
    config : RunConfig, optional
        Resolved configuration (defaults if omitted).
    naming : {"fluxgraph", "gfw"}
        COG file names: ``cog/{layer}/{tile}.tif`` or the original's names.
    save_intermediates : bool
        Also write every layer computed on the way.
    client : distributed.Client, optional
        Where to compute; the local threaded scheduler if omitted.
    progress : bool
        Print a line as each tile part finishes.
    storage_options : mapping, optional
        s3fs options for ``s3://`` inputs and outputs; default from the ``[s3]`` table of the
        configuration (anonymous access, requester-pays, endpoint URL). Never credentials.
    annual_layers : bool
        Also write, for each gross-emissions (all gases) layer, one COG per loss year that
        keeps only that year's pixels: ``cog/annual/{layer}/{year}/{tile}.tif``.
    dry_run : bool
        Plan and build the whole graph but compute and write nothing; return a
        :class:`DryRunReport` (chunks, tasks, bytes, client time and memory).
    resume : bool
        Continue the run at ``out``: compute only the tile parts its manifest does not list as
        finished. The configuration, region, stages and options must be the same.

    Returns
    -------
    RunResult or DryRunReport

    Raises
    ------
    fluxgraph.errors.ResumeError
        With ``resume``, when ``out`` holds no run or a run with another configuration.
    fluxgraph.errors.StorageError
        When an ``s3://`` input or output cannot be reached (no such bucket, no credentials).
    """
    t0 = time.perf_counter()
    config = config or load_config()
    if storage_options is None:
        storage_options = s3_storage_options(config.data.get("s3", {}))
    location = OutputLocation(str(out), storage_options=dict(storage_options))
    handler = _setup_logging(location.local)
    try:
        region = Region.parse(tiles=tiles, bbox=bbox)
        if dry_run:
            return _dry_run(inputs, location, region, stages, config, save_intermediates, storage_options, t0)
        location.check()
        return _run(inputs, location, region, stages, config, naming,
                    save_intermediates, client, progress, storage_options, t0, annual_layers, resume)
    finally:
        log.removeHandler(handler)
        handler.close()
        if location.remote:  # the log and whatever else was written, also after a failure
            with contextlib.suppress(FluxgraphError):
                location.upload_folder()
            shutil.rmtree(location.local, ignore_errors=True)


def plan_parts(inputs, region, stages, config, storage_options):
    """Discover inputs and plan each tile part (nothing built): mosaic, targets, plans, skipped tiles.

    Shared by runs, dry runs and :func:`fluxgraph.explore.stage_outputs_by_tile`.
    """
    targets = stage_targets(stages, config)
    log.info("fluxgraph %s, model v%s: targets %s", fluxgraph.__version__, config.model_version, targets)
    mosaic = Mosaic(list(inputs), region, config=config, storage_options=storage_options)
    log.info(mosaic.describe())
    if not mosaic.parts:
        raise ConfigError(
            f"no input files for any tile of the region in {', '.join(s.label for s in mosaic.sources)}; "
            "check the locations and the file names (`fluxgraph layers` lists them)"
        )

    plans: list[tuple[Part, Plan]] = []
    skipped: dict[str, str] = {}
    for part in mosaic.parts:
        try:
            p = plan(targets, mosaic.available(part.tile), config=config, tile=part.tile,
                     tried=lambda n, t=part.tile: mosaic.tried_paths(n, t))
        except MissingLayerError as exc:
            if config.data["run"]["missing_required"] == "skip":
                log.warning("skipping tile %s: %s", part.tile, exc)
                skipped[str(part.tile)] = str(exc)
                continue
            raise
        log.info("tile %s: stages %s; read %s; filled %s", part.tile, [s.name for s in p.stages],
                 sorted(p.read), sorted(p.filled))
        plans.append((part, p))
    if not plans:
        raise MissingLayerError(f"every tile was skipped: {skipped}")
    return mosaic, targets, plans, skipped


def build_part(mosaic: Mosaic, part: Part, p: Plan, targets: Sequence[str], config: RunConfig,
               save_intermediates: bool) -> tuple[dict[str, xr.DataArray], dict[str, xr.DataArray]]:
    """One part's lazy arrays: the layers to write, and every layer of its graph."""
    arrays = build(p, read=lambda n, w=part.window: mosaic.read(n, w),
                   present=lambda n, w=part.window: mosaic.present(n, w), config=config)
    return {n: arrays[n] for n in _part_names(p, targets, save_intermediates, config) if n in arrays}, arrays


def _summaries(p: Plan) -> list[Summary]:
    """The tables a part's stages yield, in the stages' order."""
    return [stage.summary for stage in p.stages if stage.summary is not None]


def _part_names(p: Plan, targets: Sequence[str], save_intermediates: bool, config: RunConfig) -> list[str]:
    """The layers a part writes, from its plan alone (what :func:`build_part` returns, without building it).

    Stages whose outputs depend on their parameters (carbon pools in the loss year and/or 2000) count only
    the outputs they will compute.
    """
    computed = [o for s in p.stages for o in s.selected_outputs(config)]
    names = list(targets) + ([n for n in computed if n not in targets] if save_intermediates else [])
    built = set(computed) | {n for s in p.stages for n in (*s.inputs, *s.optional)}
    return [n for n in names if n in built]


def _written_names(plans: Sequence[tuple[Part, Plan]], targets: Sequence[str], save_intermediates: bool,
                   config: RunConfig) -> list[str]:
    """Every layer the run writes, in order of first appearance over the parts."""
    out: list[str] = []
    for _, p in plans:
        out += [n for n in _part_names(p, targets, save_intermediates, config) if n not in out]
    return out


@dataclass
class _PartJob:
    """The lazy work of one tile part: its one-pass sink (Zarr, COGs, statistics, tables) and 4-km map cells.

    :meth:`delayed` optimises them together (one dask graph, the stage graph computed once) and
    returns one Delayed computing to ``(sink result, maps)``.
    """

    part: Part
    sink: PartSink
    maps: dict[str, Any]
    chunks: int

    def delayed(self) -> Delayed:
        """The part's whole computation as one Delayed; compute it with ``optimize_graph=False``."""
        names = list(self.maps)
        n = len(self.sink.chunk_tasks)
        optimised = dask.optimize(*self.sink.chunk_tasks, *self.maps.values())
        # dask.optimize gives every collection the same merged graph: take it once (merging the collections'
        # graphs as layers would repeat every key once per collection, 3.8x the tasks to ship)
        graph = dict(optimised[0].__dask_graph__())
        done, layer = self.sink.finish_layer(optimised[:n])
        graph.update(layer)
        token = dask.base.tokenize(done)
        keys = []
        for k, c in enumerate(optimised[n:]):
            func, extra = c.__dask_postcompute__()
            key = (f"value-{token}", k)
            graph[key] = (func, c.__dask_keys__(), *extra)
            keys.append(key)
        final = f"part-result-{token}"
        graph[final] = (_part_result, done, keys, names)
        return Delayed(final, graph)


def _part_result(done: dict[str, Any], values: list[Any], names: list[str]) -> tuple[Any, dict[str, Any]]:
    """(sink result, map cells by name)."""
    return done, dict(zip(names, values, strict=True))


def _part_work(part: Part, p: Plan, arrays: Mapping[str, xr.DataArray], everything: Mapping[str, xr.DataArray],
               *,
               out: OutputLocation, zarr_path: str | None, store_window: PixelWindow, config: RunConfig,
               naming: str, attrs: Mapping[str, Any], annual_layers: bool, store_token: str = "") -> _PartJob:
    """One part's lazy work (:class:`_PartJob`); ``store_token`` names this run's opening of the Zarr store
    (:class:`fluxgraph.sink.ZarrTarget`)."""
    opts = tuple(sorted(out.storage_options.items()))
    written: dict[str, xr.DataArray] = dict(arrays)
    for spec in _summaries(p):  # the layers the tables reduce, chunk by chunk in the sink
        written.update({n: everything[n] for n in spec.layers if n not in written})
    targets = []
    for cog in _cog_plan(out, part, list(arrays), config, naming, annual_layers):
        extra: dict[str, str] = {}
        select = None
        if cog.loss_year is not None:  # only that year's pixels, selected chunk by chunk in the sink
            extra = {"loss_year": str(cog.loss_year)}
            select = ("loss_year", cog.loss_year - config.first_year + 1)
            written.setdefault("loss_year", everything["loss_year"])
        targets.append(cog_target(cog.layer, cog.layer, cog.path, tile=part.tile, tags={**attrs, **extra},
                                  storage_options=opts, select=select))
    zarr = None
    if zarr_path is not None:
        rows, cols = part.window.relative_to(store_window)
        zarr = ZarrTarget(zarr_path, (rows.start, cols.start), zarr_chunks(config.chunks), opts, token=store_token,
                          deflate_encoder=str(config.data["run"]["cog_deflate_encoder"]))
    sink = part_sink(written, part.window, zarr=zarr, zarr_names=list(arrays), stats_names=list(arrays),
                     cogs=targets, fmt=_cog_format(config), spool=out.join(SPOOL, _safe(part_key(part))),
                     spool_options=out.storage_options,
                     tables=[(spec.layers, spec.block(config)) for spec in _summaries(p)])
    chunks = sum(arr.data.npartitions for arr in arrays.values())
    return _PartJob(part, sink, lazy_maps(everything, part.window, config), chunks)


@dataclass(frozen=True)
class _PlannedCog:
    """One COG of a part: the layer it holds (only the pixels of ``loss_year`` for a per-year layer), where."""

    layer: str
    path: str
    loss_year: int | None = None


def _cog_plan(out: OutputLocation, part: Part, names: Sequence[str], config: RunConfig, naming: str,
              annual_layers: bool) -> list[_PlannedCog]:
    """The COGs a part writes: one per written layer, and with ``annual_layers`` one per loss year of each
    all-gases emissions layer. Known from the plan alone, so runs list and delete COGs of parts they did not
    build (resumed ones)."""
    cogs = []
    if config.data["run"]["write_cog"]:
        cogs += [_PlannedCog(name, cog_path(out.join("cog"), name, part.tile, naming=naming, names=config.naming))
                 for name in names]
    if annual_layers:
        for name in names:
            if name.startswith("gross_emis_all_gases_"):
                for k in range(1, config.model_years + 1):
                    year = config.first_year + k - 1
                    cogs.append(_PlannedCog(name, out.join("cog", "annual", name, str(year), f"{part.tile}.tif"),
                                            year))
    return cogs


def _safe(key: str) -> str:
    """A part key as a file or object name."""
    return key.replace(":", "_").replace(",", "_")


def _open_manifest(out: OutputLocation, config: RunConfig, identity: dict[str, Any], resume: bool) -> Manifest:
    """The run's manifest: the one at ``out`` when resuming (checked), else a new, empty one (saved)."""
    if resume:
        found = Manifest.load(out)
        if found is None:
            raise ResumeError(f"nothing to resume at {out.url}: it holds no fluxgraph manifest "
                              "(fluxgraph_manifest.json); run without --resume")
        found.check_resumable(config_digest=config.digest(), identity=identity, where=out.url)
        log.info("resuming the run at %s: %d part(s) already finished", out.url, len(found.done))
        return found
    manifest = Manifest(config.digest(), identity)
    manifest.save(out)
    return manifest


def _run(inputs, out: OutputLocation, region, stages, config, naming, save_intermediates, client, progress,
         storage_options, t0, annual_layers=False, resume=False) -> RunResult:
    mosaic, targets, plans, skipped = plan_parts(inputs, region, stages, config, storage_options)
    written_names = _written_names(plans, targets, save_intermediates, config)
    identity = {
        "targets": stage_targets(stages, config), "layers": written_names, "naming": naming,
        "annual_layers": annual_layers, "parts": [part_key(p) for p, _ in plans],
        "inputs": [s.label for s in mosaic.sources],
    }
    manifest = _open_manifest(out, config, identity, resume)
    out.write_text(config.to_toml(), "config.toml")

    run_cfg = config.data["run"]
    provenance = run_provenance(config=config, inputs=[s.label for s in mosaic.sources],
                                read_layers=set().union(*(p.read for _, p in plans)))
    attrs = as_tags(provenance)
    zarr_name = "fluxgraph.zarr"
    zarr_path: str | None = out.join(zarr_name) if run_cfg["write_zarr"] else None
    store_window = mosaic.window.snap_out(config.chunks)
    if zarr_path is not None and not (resume and out.exists(zarr_name, "zarr.json")):
        store_window = create_zarr_store(zarr_path, written_names, mosaic.window, config.chunks, attrs=provenance,
                                         storage_options=out.storage_options, zstd_level=run_cfg.get("zarr_zstd_level"),
                                         codec=run_cfg["zarr_codec"], gzip_level=_gzip_level(config),
                                         shards=bool(run_cfg["zarr_shards"]))
    store_token = uuid.uuid4().hex  # workers re-open the store once per run (it may have been re-created)
    todo = [(part, p) for part, p in plans if not manifest.is_done(part)]
    resumed = len(plans) - len(todo)
    log.info("computing %d layers over %d tile part(s), %.1f Mpixel%s", len(written_names), len(todo),
             sum(part.window.size for part, _ in todo) / 1e6,
             f" ({resumed} part(s) already finished)" if resumed else "")

    def jobs() -> Iterator[_PartJob]:
        """Each part's graph, built only when it is about to be submitted (the client holds a few at a time)."""
        for part, p in todo:
            arrays, everything = build_part(mosaic, part, p, targets, config, save_intermediates)
            yield _part_work(part, p, arrays, everything, out=out, zarr_path=zarr_path, store_window=store_window,
                             config=config, naming=naming, attrs=attrs, annual_layers=annual_layers,
                             store_token=store_token)

    computed_chunks = 0

    def done(job: _PartJob, result: Any, k: int) -> None:
        nonlocal computed_chunks
        sunk, maps = result
        manifest.record(out, job.part, stats=sunk["stats"], tables=sunk["tables"], maps=maps, chunks=job.chunks)
        computed_chunks += job.chunks
        log.info("part %d/%d done: %s (%d chunks)", k + resumed, len(plans), part_key(job.part), job.chunks)
        if progress:
            print(f"[{k + resumed}/{len(plans)}] {job.part.tile} done "
                  f"({job.chunks} chunks, {time.perf_counter() - t0:.1f} s)", flush=True)

    in_flight = int(run_cfg.get("parts_in_flight", 4))
    report_client = client if run_cfg.get("dask_report", True) else None
    with watch_cluster(client) as events, performance_report(report_client, out.local / "dask-report.html"):
        _compute_parts(jobs(), on_done=done, client=client, in_flight=in_flight)
    out.remove(SPOOL)  # left only by parts of an earlier, interrupted run

    results = {part: manifest.results(out, part) for part, _ in plans}  # (stats, tables, maps), read once
    planned = {part: _cog_plan(out, part, _part_names(p, targets, save_intermediates, config), config, naming,
                               annual_layers) for part, p in plans}
    cogs = _delete_empty_forest_tiles(out, planned, results, config)
    if run_cfg["write_cog"] and run_cfg.get("write_stac", True):
        _write_stac(out, cogs)
    stats: dict[str, list[Any]] = {}
    table_rows: list[tuple[Part, Summary, Any]] = []
    maps: list[tuple[PixelWindow, Any]] = []
    for part, p in plans:
        part_stats, part_tables, part_maps = results[part]
        for name in written_names:
            if name in part_stats:
                stats.setdefault(name, []).append(part_stats[name])
        table_rows += [(part, spec, values) for spec, values in zip(_summaries(p), part_tables, strict=True)]
        maps.append((part.window, part_maps))
    summary = {name: _combine(parts) for name, parts in stats.items()}
    if any(cells for _, cells in maps):
        written_maps = write_maps(out.local / "cog" / "0_04deg", maps, config=config, naming=naming, tags=attrs)
        cogs += [out.join(*Path(p).relative_to(out.local).parts) for p in written_maps.values()]
        summary |= {name: {"total_Mt_per_year": float(sum(np.sum(cells[name], dtype=np.float64)
                                                          for _, cells in maps if name in cells))}
                    for name in written_maps}
    _write_tables(out, table_rows, config)
    result = RunResult(out.url if out.remote else out.local, zarr_path, cogs, written_names,
                       [part for part, _ in plans], skipped, time.perf_counter() - t0, summary,
                       computed_parts=len(todo), computed_chunks=computed_chunks, resumed_parts=resumed,
                       cluster_events=events.to_json())
    out.write_text(json.dumps(result.to_json(), indent=2, default=str), "run.json")
    log.info("done in %.1f s", result.seconds)
    out.upload_folder()
    return result


def _delete_empty_forest_tiles(out: OutputLocation, planned: Mapping[Part, list[_PlannedCog]],
                               results: Mapping[Part, tuple[dict[str, Any], Any, Any]], config: RunConfig) -> list[str]:
    """Spec/stages.md §13 step 6: delete a tile's forest-extent COGs that hold no data; the COGs that remain.

    A forest-extent layer (``*_forest`` of ``create_derivative_outputs``) whose part has no nonzero pixel
    is removed, as the original does; ``[stages.create_derivative_outputs] delete_empty_forest_tiles =
    false`` keeps them. The Zarr store stores no empty chunk either way.
    """
    from fluxgraph.stages.create_derivative_outputs import STAGE

    delete = config.stage_params(STAGE.name).get("delete_empty_forest_tiles", True)
    kept = []
    for part, cogs in planned.items():
        stats = results[part][0]
        for cog in cogs:
            empty = (cog.loss_year is None and cog.layer.endswith("_forest") and cog.layer in STAGE.outputs
                     and stats.get(cog.layer, {}).get("nonzero", 1) == 0)
            if delete and empty:
                _remove_file(out, cog.path)
                log.info("%s holds no forest-extent data: deleted (spec §13 step 6)", cog.path)
            else:
                kept.append(cog.path)
    return kept


def _remove_file(out: OutputLocation, path: str) -> None:
    """Delete one output file, local or on S3 (missing is fine: a resumed run may have deleted it)."""
    if not out.remote:
        Path(path).unlink(missing_ok=True)
        return
    from fluxgraph.s3 import filesystem

    fs = filesystem(out.storage_options)
    if fs.exists(path):
        fs.rm(path)


def _write_stac(out: OutputLocation, cogs: Sequence[str]) -> None:
    """The run's STAC catalog in ``{out}/stac``: for ``s3://`` outputs built in the staging folder from the
    bucket's COG headers (read through GDAL) with absolute ``s3://`` hrefs, and uploaded with the other files."""
    from fluxgraph.stac import write_catalog

    if not out.remote:
        log.info("wrote the STAC catalog %s", write_catalog(out.local))
        return
    import rasterio

    from fluxgraph.s3 import gdal_env

    with rasterio.Env(**gdal_env(out.storage_options)):
        path = write_catalog(out.local, cogs=cogs)
    log.info("wrote the STAC catalog %s (uploaded to %s)", path, out.join("stac"))


def _compute_parts(jobs: Iterable[_PartJob], *, on_done: Any, client: Any, in_flight: int) -> None:
    """Compute parts, each as its own graph; call ``on_done(job, result, k)`` as each finishes.

    On a cluster at most ``in_flight`` parts are in flight at a time and the next is submitted as one
    completes (:func:`distributed.as_completed`), so the client never holds the graph of a whole global
    run and finished parts are committed while others run. Without a client the parts are computed one
    after the other with the current dask scheduler.
    """
    if client is None:
        for k, job in enumerate(jobs, 1):
            on_done(job, dask.compute(job.delayed(), optimize_graph=False)[0], k)
        return
    from distributed import as_completed

    pending = iter(jobs)
    running: dict[Any, _PartJob] = {}

    def submit() -> Any:
        job = next(pending, None)
        if job is None:
            return None
        future = client.compute(job.delayed(), optimize_graph=False)
        running[future] = job
        return future

    queue = as_completed([f for f in (submit() for _ in range(max(1, in_flight))) if f is not None])
    k = 0
    try:
        for future in queue:
            job = running.pop(future)
            result = future.result()
            k += 1
            on_done(job, result, k)
            nxt = submit()
            if nxt is not None:
                queue.add(nxt)
    finally:
        if running:
            client.cancel(list(running))


@dataclass
class DryRunReport:
    """What a run would do, measured on the client without computing anything."""

    parts: int
    pixels: int
    layers_written: int
    chunks: int
    tasks: int
    bytes_read: int
    bytes_written: dict[str, int]
    client_seconds: float
    client_peak_rss_mb: float

    def to_json(self) -> dict[str, Any]:
        return self.__dict__ | {"total_bytes_written": sum(self.bytes_written.values())}


def _dry_run(inputs, out: OutputLocation, region, stages, config, save_intermediates, storage_options,
             t0) -> DryRunReport:
    """Plan and build the graph of every part; count chunks, tasks and bytes; compute nothing.

    Each part's graph is the one a run submits (stages, sink, tables and maps, optimised), built, counted and
    dropped one part at a time, as a run builds them, so the client holds one part's graph at a time.
    """
    import resource

    mosaic, targets, plans, _skipped = plan_parts(inputs, region, stages, config, storage_options)
    t_opt = time.perf_counter()
    tasks = chunks = bytes_read = 0
    written_names: list[str] = []
    written: dict[str, int] = {}
    run_cfg = config.data["run"]
    zarr_path = out.join("fluxgraph.zarr") if run_cfg["write_zarr"] else None
    store_window = mosaic.window.snap_out(config.chunks)
    for part, p in plans:
        arrays, everything = build_part(mosaic, part, p, targets, config, save_intermediates)
        job = _part_work(part, p, arrays, everything, out=out, zarr_path=zarr_path, store_window=store_window,
                         config=config, naming="fluxgraph", attrs={}, annual_layers=False)
        tasks += len(job.delayed().__dask_graph__())  # a plain dict: unique keys
        chunks += sum(arr.data.npartitions for arr in arrays.values())
        for name, arr in arrays.items():
            written[name] = written.get(name, 0) + part.window.size * arr.dtype.itemsize
            if name not in written_names:
                written_names.append(name)
        for name in p.read:
            f = mosaic.files[name].get(part.tile)
            inter = f.window.intersection(part.window) if f else None
            bytes_read += inter.size * np.dtype(f.dtype).itemsize if inter else 0
    log.info("dry run: %d tasks after optimisation, %.1f s to build and optimise", tasks,
             time.perf_counter() - t_opt)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    report = DryRunReport(
        parts=len(plans), pixels=sum(part.window.size for part, _ in plans), layers_written=len(written_names),
        chunks=chunks, tasks=tasks, bytes_read=bytes_read, bytes_written=written,
        client_seconds=time.perf_counter() - t0, client_peak_rss_mb=peak_mb,
    )
    out.write_text(json.dumps(report.to_json(), indent=2), "dry_run.json")
    log.info("dry run: %s", report.to_json())
    return report


def _cog_format(config: RunConfig) -> CogFormat:
    """COG compression, level, overviews and deflate encoder from ``[run]``."""
    run_cfg = config.data["run"]
    compress = str(run_cfg["cog_compress"]).lower()
    return CogFormat(compress="NONE" if compress == "none" else compress, level=run_cfg.get("cog_level"),
                     overviews=bool(run_cfg["cog_overviews"]), encoder=str(run_cfg["cog_deflate_encoder"]))


def _gzip_level(config: RunConfig) -> int:
    """The level of a gzip Zarr store: the deflate COGs' level, so that their tiles can be shared (sink)."""
    fmt = _cog_format(config)
    return int(fmt.level or 1) if fmt.compress == "deflate" else 1


def _write_tables(out: OutputLocation, results: list[tuple[Part, Summary, Any]], config: RunConfig) -> list[str]:
    """Write each summary as ``tables/{name}.csv``: rows per tile part, then the region's totals."""
    import pandas as pd

    frames: dict[str, list[Any]] = {}
    specs: dict[str, Summary] = {}
    for part, spec, values in results:
        frames.setdefault(spec.name, []).append(spec.to_frame(np.asarray(values), str(part.tile), config))
        specs[spec.name] = spec
    paths = []
    for name, parts in frames.items():
        df = pd.concat(parts, ignore_index=True)
        value_cols = [c for c in df.columns if df[c].dtype.kind == "f"]
        keys = [c for c in df.columns if c not in value_cols and c != "tile"]
        if len(df):
            region = df.groupby(keys, as_index=False, sort=False)[value_cols].sum()
            region.insert(0, "tile", "region")
            df = pd.concat([df, region], ignore_index=True)
        path = out.write_text(df.to_csv(index=False), "tables", f"{name}.csv")
        paths.append(path)
        log.info("wrote %s (%d rows)", path, len(df))
    return paths


