"""Quicklook maps (PNG) of output layers: a tile or a lat/lon box, from a run's COGs or Zarr stores.

:func:`load_map` reads a layer over a region at no more than ``max_pixels`` per side: from the
tile's COG through its overviews when the region lies in one tile and the COG exists (a whole
40 000-px tile: 1-4 s, see bench/README.md), otherwise from any 2-D variable of the run's Zarr
stores (30 m or coarser, e.g. 4 km layers), averaging blocks of valid pixels with
``xarray.coarsen``. :func:`render` draws it with matplotlib's Agg backend: a diverging colormap
centred on zero for signed layers (net flux), sequential ones for emissions and removals, nodata
transparent, a colorbar with the units, and a title with the region, the model years and the
model version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fluxgraph.errors import ConfigError, UnknownLayerError
from fluxgraph.provenance import parse_tags

__all__ = ["MapData", "load_map", "plot_layer", "render"]

MAX_PIXELS = 1200
"""Default largest side of the plotted array (pixels)."""


@dataclass(frozen=True)
class MapData:
    """A layer over a region, downsampled for display.

    Attributes
    ----------
    values : numpy.ma.MaskedArray
        2-D float64, north up; nodata masked.
    extent : (float, float, float, float)
        West, east, south, north edges in degrees.
    layer : str
        Layer (variable) name.
    meta : dict
        ``units``, ``long_name``, ``sign_convention``, ``model_version``, ``model_years`` where known.
    region : str
        Tile id or ``W,S,E,N``.
    source : str
        What was read (file or store path) and how it was downsampled.
    """

    values: np.ma.MaskedArray
    extent: tuple[float, float, float, float]
    layer: str
    meta: dict[str, Any]
    region: str
    source: str


def _parse_bbox(bbox: str | Sequence[float]) -> tuple[float, float, float, float]:
    vals = [float(v) for v in (bbox.split(",") if isinstance(bbox, str) else bbox)]
    if len(vals) != 4 or vals[0] >= vals[2] or vals[1] >= vals[3]:
        raise ConfigError(f"bbox must be W,S,E,N in degrees with W < E and S < N, not {bbox!r}")
    return vals[0], vals[1], vals[2], vals[3]


def _region(tile: str | None, bbox: str | Sequence[float] | None) -> tuple[tuple[float, ...] | None, str]:
    from fluxgraph.grid import TileId

    if tile and bbox:
        raise ConfigError("give --tile or --bbox, not both")
    if tile:
        return TileId.parse(tile).window.bounds, str(TileId.parse(tile))
    if bbox is not None:
        b = _parse_bbox(bbox)
        return b, ",".join(f"{v:g}" for v in b)
    return None, ""


def _run_meta(outputs: Path) -> dict[str, Any]:
    """Model version and years of a run: from its Zarr store's attributes, else its config.toml."""
    import tomllib

    store = outputs / "fluxgraph.zarr" / "zarr.json"
    if store.is_file():
        attrs = json.loads(store.read_text()).get("attributes", {})
        if "model_version" in attrs and "model_years" in attrs:
            return {"model_version": str(attrs["model_version"]), "model_years": str(attrs["model_years"])}
    cfg = outputs / "config.toml"
    if cfg.is_file():
        model = tomllib.loads(cfg.read_text()).get("model", {})
        if model:
            first, n = int(model["first_year"]), int(model["model_years"])
            return {"model_version": str(model["version"]), "model_years": f"{first}-{first + n - 1}"}
    return {}


def _from_cog(path: Path, bounds: tuple[float, ...] | None, max_pixels: int) -> tuple[Any, ...]:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import WindowError
    from rasterio.windows import Window, from_bounds

    with rasterio.open(path) as src:
        full = Window(0, 0, src.width, src.height)
        try:
            win = full if bounds is None else from_bounds(*bounds, transform=src.transform).intersection(full)
        except WindowError:
            win = Window(0, 0, 0, 0)
        win = win.round_offsets().round_lengths()
        if win.width < 1 or win.height < 1:
            raise ConfigError(f"the region {bounds} does not overlap {path} (bounds {tuple(src.bounds)})")
        factor = max(1, math.ceil(max(win.width, win.height) / max_pixels))
        shape = (max(1, round(win.height / factor)), max(1, round(win.width / factor)))
        data = src.read(1, window=win, out_shape=shape, resampling=Resampling.nearest, masked=True)
        w, s, e, n = rasterio.windows.bounds(win, src.transform)
        tags = parse_tags(src.tags())
        meta = {"units": src.units[0] or tags.get("units", ""), "long_name": tags.get("long_name", ""),
                "sign_convention": tags.get("sign_convention", ""), "model_version": tags.get("model_version"),
                "model_years": tags.get("model_years")}
    how = f"{path} (overviews, every {factor}th pixel)" if factor > 1 else str(path)
    return data.astype(np.float64), (w, e, s, n), tags.get("layer", path.stem), meta, how


def _spatial_dims(da: Any) -> tuple[str, str]:
    if da.ndim != 2:
        raise ConfigError(f"variable {da.name!r} has dims {da.dims}; plot needs a 2-D (y, x) layer")
    return str(da.dims[0]), str(da.dims[1])


def _from_zarr(store: Path, layer: str, bounds: tuple[float, ...] | None, max_pixels: int) -> tuple[Any, ...]:
    import xarray as xr

    ds = xr.open_zarr(store, consolidated=False)
    da = ds[layer]
    ydim, xdim = _spatial_dims(da)
    if bounds is not None:
        w, s, e, n = bounds
        y, x = da[ydim].values, da[xdim].values
        ysl = slice(n, s) if y[0] > y[-1] else slice(s, n)
        xsl = slice(w, e) if x[0] < x[-1] else slice(e, w)
        da = da.sel({ydim: ysl, xdim: xsl})
    if da.sizes[ydim] == 0 or da.sizes[xdim] == 0:
        raise ConfigError(f"the region does not overlap variable {layer!r} of {store}")
    nodata = da.attrs.get("nodata", da.encoding.get("_FillValue"))
    valid = da.astype(np.float64)
    if nodata is not None:
        valid = valid.where(da != nodata)
    factor = max(1, math.ceil(max(da.sizes[ydim], da.sizes[xdim]) / max_pixels))
    if factor > 1:
        valid = valid.coarsen({ydim: factor, xdim: factor}, boundary="pad").mean()
    values = np.ma.masked_invalid(valid.values)
    y, x = da[ydim].values, da[xdim].values
    dy = abs(float(y[1] - y[0])) if y.size > 1 else 0.0
    dx = abs(float(x[1] - x[0])) if x.size > 1 else 0.0
    extent = (float(x.min()) - dx / 2, float(x.max()) + dx / 2, float(y.min()) - dy / 2, float(y.max()) + dy / 2)
    if y[0] < y[-1]:
        values = values[::-1]
    meta = {k: da.attrs.get(k, "") for k in ("units", "long_name", "sign_convention")}
    meta |= {k: ds.attrs[k] for k in ("model_version", "model_years") if k in ds.attrs}
    how = f"{store}:{layer} (means of {factor}x{factor} valid pixels)" if factor > 1 else f"{store}:{layer}"
    return values, extent, layer, meta, how


def _zarr_with(outputs: Path, layer: str) -> Path | None:
    """The first Zarr store of ``outputs`` holding variable ``layer`` (``fluxgraph.zarr`` first)."""
    stores = sorted(outputs.glob("*.zarr"), key=lambda p: (p.name != "fluxgraph.zarr", p.name))
    for store in stores:
        meta = store / layer / "zarr.json"
        if meta.is_file() and json.loads(meta.read_text()).get("node_type") == "array":
            return store
    return None


def _cog_of(outputs: Path, layer: str, tile: str) -> Path | None:
    """The COG of ``layer`` for ``tile`` in ``outputs`` (either naming), found by its tags or its path."""
    direct = outputs / "cog" / layer / f"{tile}.tif"
    if direct.is_file():
        return direct
    from fluxgraph.catalog import CATALOG
    from fluxgraph.config import load_config

    if layer in CATALOG:
        cfg = outputs / "config.toml"
        config = load_config(cfg) if cfg.is_file() else load_config()
        gfw = outputs / "cog" / CATALOG[layer].filename(config.naming, tile)
        if gfw.is_file():
            return gfw
    return None


def load_map(
    *,
    outputs: str | Path | None = None,
    layer: str | None = None,
    cog: str | Path | None = None,
    tile: str | None = None,
    bbox: str | Sequence[float] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> MapData:
    """Read a layer over a region, downsampled to at most ``max_pixels`` per side.

    Parameters
    ----------
    outputs : str or Path, optional
        A run's output folder (its ``cog/`` and ``*.zarr``); with ``layer``.
    layer : str, optional
        Layer name: a COG layer or any 2-D variable of a Zarr store in ``outputs``.
    cog : str or Path, optional
        A GeoTIFF to plot instead of ``outputs``/``layer``.
    tile, bbox :
        The region: a tile id, or ``W,S,E,N`` degrees; default the whole COG or store.
    max_pixels : int
        Largest side of the returned array.
    """
    bounds, region = _region(tile, bbox)
    if cog is not None:
        values, extent, name, meta, how = _from_cog(Path(cog), bounds, max_pixels)
        return MapData(values, extent, name, meta, region or Path(cog).stem, how)
    if outputs is None or layer is None:
        raise ConfigError("give --outputs and --layer, or --cog PATH")
    outputs = Path(outputs)
    if not outputs.is_dir():
        raise ConfigError(f"output folder {outputs} does not exist")
    path = _cog_of(outputs, layer, region) if tile else None
    if path is not None:
        values, extent, name, meta, how = _from_cog(path, bounds, max_pixels)
    else:
        store = _zarr_with(outputs, layer)
        if store is None:
            known = sorted({p.parent.name for s in outputs.glob("*.zarr") for p in s.glob("*/zarr.json")
                            if len(json.loads(p.read_text()).get("shape", ())) == 2})
            raise UnknownLayerError(f"no layer {layer!r} in the Zarr stores or COGs of {outputs}; "
                                    f"layers there: {', '.join(known) or '(none)'}")
        if bounds is None:
            raise ConfigError(f"give a region (--tile T or --bbox W,S,E,N) to plot {layer!r} from {store}; "
                              "its bounding box may span several distant tiles")
        values, extent, name, meta, how = _from_zarr(store, layer, bounds, max_pixels)
    meta = {**_run_meta(outputs), **{k: v for k, v in meta.items() if v}}
    return MapData(values, extent, name, meta, region, how)


NODATA_COLOUR = "#d0d0d0"
"""Axes background seen through transparent nodata pixels (so that nodata differs from low values)."""


def _colormap(m: MapData) -> tuple[Any, Any]:
    """Colormap and normalisation: diverging about zero for signed layers, sequential from 0 otherwise.

    Limits are the 2nd and 98th percentiles of the valid values (symmetric for diverging maps).
    Sequential maps start a quarter into their colour ramp so that the lowest values are not white.
    """
    import matplotlib
    from matplotlib.colors import ListedColormap, Normalize, TwoSlopeNorm

    vals = m.values.compressed()
    lo, hi = (float(np.percentile(vals, 2)), float(np.percentile(vals, 98))) if vals.size else (0.0, 1.0)
    sign = str(m.meta.get("sign_convention", "")).lower()
    signed = "negative" in sign or (not sign and lo < 0 < hi)
    if signed:
        span = max(abs(lo), abs(hi)) or 1.0
        cmap = matplotlib.colormaps["RdBu_r"]
        norm: Any = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
    else:
        lo = min(lo, 0.0) if vals.size and vals.min() >= 0 else lo
        hi = hi if hi > lo else lo + 1.0
        name = m.layer.lower()
        base = "OrRd" if "emis" in name else "YlGn" if ("removal" in name or "gain" in name) else "viridis"
        ramp = matplotlib.colormaps[base]
        cmap = ListedColormap(ramp(np.linspace(0.25, 1.0, 256)), name=base) if base != "viridis" else ramp
        norm = Normalize(vmin=lo, vmax=hi)
    return cmap.with_extremes(bad=(0.0, 0.0, 0.0, 0.0)), norm


def _extend(values: np.ma.MaskedArray, norm: Any) -> str:
    """Colorbar arrows only on the sides where values lie beyond the colour scale."""
    vals = values.compressed()
    below = bool(vals.size) and float(vals.min()) < norm.vmin
    above = bool(vals.size) and float(vals.max()) > norm.vmax
    return {(True, True): "both", (True, False): "min", (False, True): "max"}.get((below, above), "neither")


def render(m: MapData, out: str | Path, *, dpi: int = 150) -> Path:
    """Draw ``m`` to a PNG with matplotlib's Agg backend; returns the path written."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    cmap, norm = _colormap(m)
    w, e, s, n = m.extent
    aspect = 1.0 / max(math.cos(math.radians((s + n) / 2)), 0.05)  # degrees of lon vs lat on the ground
    fig, ax = plt.subplots(figsize=(8, 7), layout="constrained")
    ax.set_facecolor(NODATA_COLOUR)
    img = ax.imshow(m.values, extent=(w, e, s, n), origin="upper", cmap=cmap, norm=norm,
                    interpolation="nearest", aspect=aspect)
    bar = fig.colorbar(img, ax=ax, shrink=0.85, extend=_extend(m.values, norm))
    bar.set_label(m.meta.get("units") or "(units unknown)")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.text(1.0, -0.08, "grey: nodata", transform=ax.transAxes, ha="right", va="top", fontsize=8, color="0.35")
    version = f"GFW flux model v{m.meta['model_version']}" if m.meta.get("model_version") else ""
    period = str(m.meta.get("model_years", "")).replace("-", "–")
    subtitle = " · ".join(p for p in (m.region, period, version) if p)
    ax.set_title(f"{m.meta.get('long_name') or m.layer}\n{subtitle}", fontsize=10)
    if m.values.count() == 0:
        ax.text(0.5, 0.5, "no valid pixels in this region", transform=ax.transAxes, ha="center", va="center")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def plot_layer(
    *,
    outputs: str | Path | None = None,
    layer: str | None = None,
    cog: str | Path | None = None,
    tile: str | None = None,
    bbox: str | Sequence[float] | None = None,
    out: str | Path | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Path:
    """Load (:func:`load_map`) and draw (:func:`render`) one map; the PNG defaults to ``{outputs}/plots/``.

    Returns
    -------
    Path
        The PNG written.
    """
    m = load_map(outputs=outputs, layer=layer, cog=cog, tile=tile, bbox=bbox, max_pixels=max_pixels)
    if out is None:
        folder = Path(outputs) / "plots" if outputs is not None else Path(str(cog)).parent
        out = folder / f"{m.layer}_{m.region.replace(',', '_') or 'all'}.png"
    return render(m, out)


def describe(m: MapData) -> Mapping[str, Any]:
    """A few numbers about a map (for the CLI): shape, valid pixels, min and max."""
    vals = m.values.compressed()
    return {"shape": m.values.shape, "valid": int(vals.size),
            "min": float(vals.min()) if vals.size else None, "max": float(vals.max()) if vals.size else None}
