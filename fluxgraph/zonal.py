"""Zonal statistics of a run's outputs: per polygon, emissions by gas, driver and loss year, removals, net flux.

:func:`zonal_stats` (CLI ``fluxgraph zonal``) reads the per-hectare outputs of a run from its
``fluxgraph.zarr`` (a local folder or an ``s3://`` prefix) and the layers of the forest-extent rule, the loss
year and the drivers from the run's inputs (the locations recorded in the store, or ``inputs=``). Every chunk
that a polygon touches is one task on the cluster: it rasterises the polygons over the chunk, converts per
hectare to per pixel with the grid's pixel area exactly as :mod:`fluxgraph.stages.create_derivative_outputs`
does, and sums by polygon, canopy threshold, loss year and driver (:func:`fluxgraph.kernels.zonal.zonal_sums`).
Only the small per-chunk sums travel back, so a country at 30 m needs no more memory than one chunk per worker.

Coverage rule: a pixel belongs to a polygon when its **centre** lies inside it (GDAL rasterisation,
``all_touched=False``); pixels are never split. Features sharing a value of the ``by`` field are one zone.
Where polygons of different zones overlap, the later feature in the file wins.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from fluxgraph.config import RunConfig, load_config
from fluxgraph.errors import ConfigError, InputLayerError, MissingLayerError
from fluxgraph.grid import PX_PER_DEG, PixelWindow
from fluxgraph.kernels.zonal import ZONAL_VALUES, zonal_sums
from fluxgraph.outputs import Location

__all__ = ["FLUX_LAYERS", "INPUT_LAYERS", "ZONAL_CHUNK", "zonal_stats"]

log = logging.getLogger("fluxgraph")

FLUX_LAYERS = ("gross_emis_all_gases_biomass_soil", "gross_emis_co2_biomass_soil", "gross_emis_ch4_biomass_soil",
               "gross_emis_n2o_biomass_soil", "gross_removals", "net_flux")
"""Per-hectare outputs read from the run's Zarr store, in the order of :data:`ZONAL_VALUES` [1:]."""
INPUT_LAYERS = ("loss_year", "drivers", "tcd2000", "gain", "mangrove_agb_2000", "plantation_pre2000")
"""Layers read from the store if it holds them, else from the run's inputs (a missing tile is zeros)."""
COLUMNS = {
    "forest_area_ha": "forest_area_ha",
    "gross_emis_all_gases": "gross_emissions_all_gases_Mg_CO2e",
    "gross_emis_co2": "gross_emissions_CO2_Mg_CO2e",
    "gross_emis_ch4": "gross_emissions_CH4_Mg_CO2e",
    "gross_emis_n2o": "gross_emissions_N2O_Mg_CO2e",
    "gross_removals": "gross_removals_Mg_CO2",
    "net_flux": "net_flux_Mg_CO2e",
}
"""Output column of each value of :data:`ZONAL_VALUES` (units in the name; fluxes over the model period)."""
ZONAL_CHUNK = 4000
"""Side (px) of the square chunks a zonal task reads, on the global lattice whatever the run's chunks were
(a 4000-px square keeps a task's polygons local; the run's 400 × 40000 strips would span a whole tile)."""


@dataclass(frozen=True)
class _Zones:
    """Polygons in EPSG:4326 with their zone index, and the zone names (values of the ``by`` field)."""

    geometries: np.ndarray
    index: np.ndarray
    names: pd.Index


def _read_zones(path: str | Path, by: str) -> _Zones:
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputLayerError(f"cannot read zones from {path}: {exc}. Give a GeoPackage, GeoJSON or Shapefile.") \
            from exc
    if by not in gdf.columns:
        fields = ", ".join(c for c in gdf.columns if c != gdf.geometry.name)
        raise ConfigError(f"zones file {path} has no field {by!r}; its fields are: {fields}. Choose one with --by.")
    if gdf.crs is None:
        log.warning("zones file %s has no CRS; assuming EPSG:4326", path)
    elif not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    gdf = gdf[gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if gdf[by].isna().any():
        log.warning("zones file %s: %d polygon(s) without a value of %r are left out", path,
                    int(gdf[by].isna().sum()), by)
        gdf = gdf[gdf[by].notna()]
    if gdf.empty:
        raise InputLayerError(f"zones file {path} has no polygon features")
    codes, names = pd.factorize(gdf[by], sort=True)
    return _Zones(np.asarray(gdf.geometry.values), codes.astype(np.int32), pd.Index(names, name=by))


def _store_window(ds: xr.Dataset) -> PixelWindow:
    """The pixel window of a run's store, from its centre coordinates."""
    lat, lon = ds["lat"].values, ds["lon"].values
    row0 = round((90.0 - float(lat[0])) * PX_PER_DEG - 0.5)
    col0 = round((float(lon[0]) + 180.0) * PX_PER_DEG - 0.5)
    return PixelWindow(row0, row0 + lat.size, col0, col0 + lon.size)


def _run_config(outputs: Location) -> RunConfig:
    """The configuration the run saved beside its store (``config.toml``), or the defaults."""
    import tomllib

    text = outputs.read_text("config.toml")
    if text is None:
        return load_config()
    try:
        return load_config(overrides=tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{outputs.join('config.toml')} is not valid TOML ({exc}): restore the file the run "
                          "wrote, or delete it to use the defaults") from exc


def _open_store(outputs: Location) -> xr.Dataset:
    """The run's ``fluxgraph.zarr`` below ``outputs`` (a folder or an ``s3://`` prefix), opened lazily."""
    if not outputs.exists("fluxgraph.zarr", "zarr.json"):
        raise ConfigError(f"{outputs.url} holds no fluxgraph.zarr: give the output folder (or s3:// prefix) of a "
                          "`fluxgraph run`")
    kwargs = {"storage_options": dict(outputs.storage_options)} if outputs.remote else {}
    return xr.open_zarr(outputs.join("fluxgraph.zarr"), consolidated=False, chunks=None, **kwargs)


def _focus(zones: _Zones, window: PixelWindow, config: RunConfig) -> PixelWindow | None:
    """The chunks of the store that the zones' bounding box touches (None: the zones miss the run)."""
    import shapely

    west, south, east, north = shapely.total_bounds(zones.geometries)
    inside = PixelWindow.from_bounds(west, south, east, north).intersection(window)
    return None if inside is None else inside.snap_out(config.chunks).intersection(window)


def _input_arrays(ds: xr.Dataset, window: PixelWindow, config: RunConfig, inputs: Sequence[str] | None, *,
                  focus: PixelWindow | None, storage_options: Mapping[str, Any] | None = None,
                  ) -> dict[str, xr.DataArray]:
    """The input layers, from the store if it has them, else from the inputs (given, or recorded in the store).

    Input files are looked up only for the tiles of ``focus`` (where the zones are); arrays span ``window``.
    """
    from fluxgraph.mosaic import Mosaic, Region

    arrays = {n: ds[n] for n in INPUT_LAYERS if n in ds}
    missing = [n for n in INPUT_LAYERS if n not in arrays]
    if not missing or focus is None:
        return arrays | {n: xr.zeros_like(ds[FLUX_LAYERS[0]], dtype=np.uint8) for n in missing}
    if not inputs:
        recorded = ds.attrs.get("inputs")
        if not recorded:
            raise ConfigError("the run's store does not record its inputs; pass them with --inputs (inputs=)")
        inputs = json.loads(recorded) if isinstance(recorded, str) else list(recorded)
        where = "recorded by the run"
    else:
        where = "given"
    try:
        mosaic = Mosaic(list(inputs), Region(bbox=focus), config=config, layers=missing,
                        storage_options=storage_options)
    except ConfigError as exc:
        raise ConfigError(f"cannot open the input locations {where} ({', '.join(map(str, inputs))}) for "
                          f"{', '.join(missing)}: {exc}. Pass the run's inputs with --inputs (inputs=).") from exc
    if not mosaic.has("tcd2000") and "tcd2000" in missing:
        raise MissingLayerError(
            f"no tree cover density (tcd2000) file for the run's region in {', '.join(inputs)}: the forest-extent "
            "rule needs it. Pass the run's input locations with --inputs (inputs=)."
        )
    for name in missing:
        arr = mosaic.read(name, window)
        arrays[name] = arr.assign_coords(lat=ds["lat"], lon=ds["lon"])
    return arrays


class _ChunkSums:
    """One chunk's zonal sums: rasterise the polygons that touch it, then run the numba kernel.

    ``local`` numbers the zones of these polygons 0…n−1 (``zones[local]`` are their global indices), so the
    raster holds kernel-ready indices and the result has one row per zone touching the chunk.
    """

    def __init__(self, window: PixelWindow, geometries: np.ndarray, local: np.ndarray, zones: np.ndarray,
                 thresholds: tuple[int, ...], model_years: int) -> None:
        self.window = window
        self.geometries = geometries
        self.local = local
        self.zones = zones
        self.thresholds = thresholds
        self.model_years = model_years

    def __call__(self, *blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from affine import Affine
        from rasterio.features import rasterize

        from fluxgraph.stages.create_derivative_outputs import row_area_f32

        w = self.window
        zone = rasterize(zip(self.geometries, self.local, strict=True), out_shape=w.shape, fill=-1,
                         transform=Affine(*w.transform), all_touched=False, dtype=np.int32)
        loss, driver, tcd, gain, mangrove, plantation, *fluxes = blocks
        sums = zonal_sums(zone, row_area_f32(w.lat()), loss, driver, tcd, gain, mangrove, plantation, *fluxes,
                          n_zones=self.zones.size, thresholds=self.thresholds, model_years=self.model_years)
        return _sparse(sums, self.zones)


def _sparse(sums: np.ndarray, zones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-empty groups of a chunk's ``(zone, threshold, loss row, driver, value)`` sums.

    Returns
    -------
    keys : ndarray of int64
        Group keys ``zone × G + flat (threshold, loss row, driver) index``, G groups per zone, global zone
        indices; a group is non-empty when it holds forest area.
    values : ndarray of float64, shape (len(keys), 7)
        The sums of :data:`ZONAL_VALUES` of each group.
    """
    per_zone = int(np.prod(sums.shape[1:-1]))
    flat = sums.reshape(-1, sums.shape[-1])
    nz = np.flatnonzero(flat[:, 0])
    return zones[nz // per_zone].astype(np.int64) * per_zone + nz % per_zone, flat[nz]


class _GroupSums:
    """Float64 sums of sparse groups, added in the order they arrive and compacted now and then (client side)."""

    COMPACT_ROWS = 1_000_000

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.pending = 0

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        self.keys.append(keys)
        self.values.append(values)
        self.pending += keys.size
        if self.pending > self.COMPACT_ROWS:
            self._compact()

    def _compact(self) -> None:
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, np.int64)
        values = np.concatenate(self.values) if self.values else np.zeros((0, len(ZONAL_VALUES)))
        unique, inverse = np.unique(keys, return_inverse=True)
        acc = np.zeros((unique.size, values.shape[1]))
        np.add.at(acc, inverse, values)  # in arrival order, pixel order within a chunk
        self.keys, self.values, self.pending = [unique], [acc], unique.size

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique keys and their sums."""
        self._compact()
        return self.keys[0], self.values[0]


def _chunk_tasks(arrays: Mapping[str, xr.DataArray], window: PixelWindow, zones: _Zones,
                 thresholds: tuple[int, ...], model_years: int) -> list[Any]:
    """One delayed task per chunk that some polygon touches."""
    import dask
    from shapely import STRtree, box

    order = [*INPUT_LAYERS, *FLUX_LAYERS]
    data = {n: arrays[n].data for n in order}
    row_chunks, col_chunks = data["tcd2000"].chunks
    tree = STRtree(zones.geometries)
    tasks = []
    r0 = window.row0
    for i, h in enumerate(row_chunks):
        c0 = window.col0
        for j, w in enumerate(col_chunks):
            chunk = PixelWindow(r0, r0 + h, c0, c0 + w)
            hits = np.sort(tree.query(box(*chunk.bounds), predicate="intersects"))  # file order: later wins
            if hits.size:
                present = np.unique(zones.index[hits])
                local = np.searchsorted(present, zones.index[hits]).astype(np.int32)
                fn = _ChunkSums(chunk, zones.geometries[hits], local, present, thresholds, model_years)
                blocks = [data[n].blocks[i, j] for n in order]
                tasks.append(dask.delayed(fn, pure=True)(*blocks))
            c0 += w
        r0 += h
    return tasks


def _table(keys: np.ndarray, values: np.ndarray, zones: _Zones, thresholds: tuple[int, ...], config: RunConfig
           ) -> pd.DataFrame:
    """Rows per zone × threshold: a total row (loss year and driver ``all``), then every non-empty group."""
    from fluxgraph.stages.gross_emissions import DRIVER_NAMES

    years = np.array(["none", *(str(config.first_year + k) for k in range(config.model_years)), "invalid"])
    n_t, n_rows = len(thresholds), config.model_years + 2
    per_zone = n_t * n_rows * 8
    zone, rest = np.divmod(keys, per_zone)
    t, rest = np.divmod(rest, n_rows * 8)
    row, drv = np.divmod(rest, 8)
    totals = np.zeros((len(zones.names) * n_t, values.shape[1]))
    np.add.at(totals, zone * n_t + t, values)
    all_z, all_t = np.divmod(np.arange(len(zones.names) * n_t), n_t)
    th = np.asarray(thresholds)
    names = np.asarray(zones.names, dtype=object)
    value_cols = [COLUMNS[v] for v in ZONAL_VALUES]
    head = pd.DataFrame({zones.names.name: names[all_z], "tcd_threshold": th[all_t], "loss_year": "all",
                         "driver_code": -1, "driver": "all"}) \
        .assign(**dict(zip(value_cols, totals.T, strict=True)), _z=all_z, _t=all_t, _o=0)
    body = pd.DataFrame({zones.names.name: names[zone], "tcd_threshold": th[t], "loss_year": years[row],
                         "driver_code": drv, "driver": np.asarray(DRIVER_NAMES, dtype=object)[drv]}) \
        .assign(**dict(zip(value_cols, values.T, strict=True)), _z=zone, _t=t, _o=1)
    table = pd.concat([head, body], ignore_index=True).sort_values(["_z", "_t", "_o"], kind="stable")
    return table.drop(columns=["_z", "_t", "_o"]).reset_index(drop=True)


def zonal_stats(
    *,
    outputs: str | Path,
    zones: str | Path,
    by: str,
    tcd: Iterable[int] = (30,),
    inputs: Sequence[str] | None = None,
    out: str | Path | None = None,
    client: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Per-polygon totals of a run's outputs under the forest-extent rule, by gas, driver and loss year.

    Parameters
    ----------
    outputs : str or Path, keyword-only
        A run's output folder or ``s3://`` prefix (holding ``fluxgraph.zarr``, written by ``--stages all`` or
        any run that saved gross emissions by gas (biomass_soil), gross removals and net flux).
    zones : str or Path, keyword-only
        Polygons: GeoPackage, GeoJSON or Shapefile, in any CRS (reprojected to EPSG:4326).
    by : str, keyword-only
        Field naming the zones; features with the same value are one zone.
    tcd : iterable of int, keyword-only
        Canopy thresholds of the forest-extent rule (TCD2000 > T, or gain, or mangrove; minus pre-2000
        plantations), e.g. ``(30, 50, 75)``.
    inputs : sequence of str, keyword-only, optional
        Input locations for the loss year, drivers and forest-extent layers when the store lacks them; the
        locations recorded in the store by default.
    out : str or Path, keyword-only, optional
        Write the table: ``.csv`` or ``.parquet``.
    client : distributed.Client, keyword-only, optional
        Where to compute; the current dask scheduler otherwise.
    storage_options : mapping, keyword-only, optional
        s3fs options (:func:`fluxgraph.s3.storage_options`) for ``s3://`` outputs and inputs; never credentials.

    Returns
    -------
    pandas.DataFrame
        One row per zone and threshold with ``loss_year == "all"`` and ``driver == "all"`` (totals, every zone
        listed), then one row per non-empty (loss year, driver) group. Columns: the ``by`` field,
        ``tcd_threshold``, ``loss_year`` (``none`` = no loss), ``driver_code``, ``driver``, ``forest_area_ha``
        and sums of the per-pixel values, Mg CO2(e) over the model period: ``gross_emissions_{all_gases,CO2,
        CH4,N2O}_Mg_CO2e``, ``gross_removals_Mg_CO2`` (positive = removal), ``net_flux_Mg_CO2e`` (negative =
        sink).
    """
    location = Location(str(outputs), dict(storage_options or {}))
    thresholds = tuple(sorted({_threshold(t) for t in tcd}))
    if not thresholds:
        raise ConfigError("give at least one canopy threshold (--tcd 30,50,75)")
    if out is not None and Path(out).suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out must end in .csv or .parquet, not {Path(out).name!r}")
    ds = _open_store(location)
    config = _run_config(location).with_overrides({"grid": {"chunks": [ZONAL_CHUNK, ZONAL_CHUNK]}})
    absent = [n for n in FLUX_LAYERS if n not in ds]
    if absent:
        raise MissingLayerError(
            f"the run in {outputs} did not save {', '.join(absent)}. Rerun with --stages all (or add "
            "--save-intermediates to a run that computes them)."
        )
    window = _store_window(ds)
    rows, cols = window.chunks(config.chunks)
    ds = ds.chunk({"lat": rows, "lon": cols})
    zone_set = _read_zones(zones, by)
    focus = _focus(zone_set, window, config)
    arrays = {n: ds[n] for n in FLUX_LAYERS} | _input_arrays(ds, window, config, inputs, focus=focus,
                                                             storage_options=location.storage_options)
    tasks = _chunk_tasks(arrays, window, zone_set, thresholds, config.model_years)
    log.info("zonal statistics: %d zones, %d chunk tasks, thresholds %s", len(zone_set.names), len(tasks),
             thresholds)
    groups = _GroupSums()
    for keys, values in _gather(tasks, client):
        groups.add(keys, values)
    table = _table(*groups.result(), zone_set, thresholds, config)
    if out is not None:
        _write_table(table, Path(out))
    return table


def _threshold(value: Any) -> int:
    try:
        t = int(value)
    except (TypeError, ValueError):
        t = -1
    if not 0 <= t <= 100 or str(value).strip() not in (str(t), f"{t}.0"):
        raise ConfigError(f"canopy threshold {value!r} is not an integer percent 0-100 (e.g. 30, 50, 75)")
    return t


def _gather(tasks: list[Any], client: Any) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Chunk results in chunk order (so sums do not depend on which task finishes first), each released
    once read (distributed), or all at once (local scheduler)."""
    import dask

    if client is None:
        yield from dask.compute(*tasks)
        return
    for future in client.compute(tasks):
        yield future.result()
        future.release()


def _write_table(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)
    log.info("wrote %s (%d rows)", path, len(table))
