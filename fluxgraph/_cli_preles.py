"""The ``fluxgraph preles-site`` and ``preles-map`` commands (registered by ``fluxgraph.cli``).

``fluxgraph preles-site --weather FILE.csv --out OUT.csv [--etmodel 0|1] [--param NAME=VALUE ...]
[--deciduous]`` runs :func:`fluxgraph.preles.run_site` on a daily weather CSV.

``fluxgraph preles-map --weather WEATHER.zarr|.nc|synthetic --fapar FAPAR.tif --out OUT.zarr
[--etmodel 0|1] [--period year|month|day] [--interp nearest|bilinear] [--param NAME=VALUE ...]
[--forest-type TYPES.tif --param-table TABLE.csv] [--states PREVIOUS.zarr] [--cog DIR]`` runs
:func:`fluxgraph.preles_map.run_preles_map` and writes the result with
:func:`fluxgraph.preles_map.write_preles_map`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import dask
import pandas as pd
import typer
import xarray as xr

from fluxgraph.errors import PrelesInputError
from fluxgraph.preles import run_site

__all__ = ["parse_params", "preles_map", "preles_site", "read_weather_csv"]

_DATE_COLUMNS = ("date", "time", "Date", "Time", "DATE", "TIME")


def parse_params(items: list[str]) -> dict[str, float]:
    """Parse ``NAME=VALUE`` strings (NAME a spec §3 number or name) into a mapping.

    Raises
    ------
    PrelesInputError
        An item without ``=`` or with a non-numeric value (names are checked by ``run_site``).
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise PrelesInputError(f"--param expects NAME=VALUE (e.g. beta=0.8 or 5=0.8), got {item!r}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise PrelesInputError(f"--param {item!r}: value {value.strip()!r} is not a number") from None
    return out


def read_weather_csv(path: Path) -> pd.DataFrame:
    """Read a daily weather CSV; a ``date`` (or ``time``) column becomes a DatetimeIndex."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:  # pandas parser errors derive from ValueError
        raise PrelesInputError(f"cannot read weather CSV {str(path)!r}: {exc}") from None
    for col in _DATE_COLUMNS:
        if col in df.columns:
            try:
                df[col] = pd.to_datetime(df[col])
            except (ValueError, TypeError) as exc:
                raise PrelesInputError(f"{str(path)!r}: column {col!r} is not a date: {exc}") from None
            df = df.set_index(col)
            df.index.name = "date"
            break
    return df


def preles_site(
    weather: Annotated[
        Path,
        typer.Option(
            "--weather",
            help="Daily weather CSV: PAR (mol/m2/d), TAir (degC), VPD (kPa), Precip (mm/d), CO2 (ppm), "
            "fAPAR, optional DOY and date columns.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output CSV (one row per day: GPP, ET, SW, diagnostics).")
    ],
    etmodel: Annotated[
        int,
        typer.Option("--etmodel", help="ET model 0 (multi-site defaults) or 1 (Hyytiala 2015 defaults)."),
    ] = 0,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Parameter override NAME=VALUE, NAME a spec number 1..30 or name (e.g. beta=0.8, 24=180). "
            "Repeatable.",
        ),
    ] = None,
    deciduous: Annotated[
        bool,
        typer.Option(
            "--deciduous",
            help="Switch on deciduous phenology (params 28-30 default to t0=57, T_crit=1.5, Tsum_crit=134).",
        ),
    ] = False,
) -> None:
    """Run PRELES for one site: daily GPP (g C/m2/d), ET (mm/d) and soil water from a weather CSV."""
    try:
        params = parse_params(param or [])
        df = read_weather_csv(weather)
        result = run_site(df, etmodel=etmodel, params=params, deciduous=True if deciduous else None)
    except PrelesInputError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=isinstance(result.index, pd.DatetimeIndex) or result.index.name is not None)
    years = result.index.year if isinstance(result.index, pd.DatetimeIndex) else None
    if years is not None:
        annual = result.groupby(years)[["GPP", "ET"]].sum()
        for y, row in annual.iterrows():
            typer.echo(f"{y}: GPP {row['GPP']:.0f} g C/m2, ET {row['ET']:.0f} mm ({(years == y).sum()} days)")
    typer.echo(f"wrote {len(result)} days to {out}")


def _map_client(kind: str) -> Any:
    """A dask client for ``--cluster`` (None for ``none``: synchronous, in this process)."""
    if kind == "none":
        return None
    from fluxgraph.cluster import connect
    from fluxgraph.config import load_config

    spec = dict(load_config().data["cluster"])
    spec["kind"] = kind
    return connect(spec)


def _close_client(client: Any) -> None:
    from fluxgraph.cluster import close

    close(client)


def _read_param_table(path: Path) -> pd.DataFrame:
    """A parameter table CSV: a ``type`` column plus one column per parameter (name or number)."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise PrelesInputError(f"cannot read parameter table {str(path)!r}: {exc}") from None
    if "type" not in table.columns:
        raise PrelesInputError(
            f"parameter table {str(path)!r} needs a 'type' column (the forest-type codes of the map), then one "
            f"column per parameter; found columns {', '.join(map(str, table.columns))}"
        )
    return table.set_index("type")


def preles_map(
    weather: Annotated[
        Path,
        typer.Option(
            "--weather",
            help="Daily weather on a coarse grid: Zarr store or NetCDF with dims (time, lat, lon) and PAR "
            "(mol/m2/d), TAir (degC), VPD (kPa), Precip (mm/d), CO2 (ppm); or 'synthetic' for demo weather "
            "over the fAPAR's extent.",
        ),
    ],
    fapar: Annotated[
        Path,
        typer.Option("--fapar", help="fAPAR (0..1) on the 30 m grid: single-band GeoTIFF, or Zarr/NetCDF "
                     "variable fAPAR with dims (lat, lon) or (time, lat, lon). Nodata/NaN = not modelled.",
                     exists=True, readable=True),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output Zarr store (GPP, ET per period; end states).")],
    etmodel: Annotated[
        int, typer.Option("--etmodel", help="ET model 0 (multi-site defaults) or 1 (Hyytiala 2015 defaults).")
    ] = 0,
    period: Annotated[str, typer.Option("--period", help="Sums per year, month or day.")] = "year",
    interp: Annotated[str, typer.Option("--interp", help="Weather to pixels: nearest or bilinear.")] = "nearest",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Parameter NAME=VALUE for every pixel (e.g. beta=0.8). Repeatable."),
    ] = None,
    forest_type: Annotated[
        Path | None,
        typer.Option("--forest-type", help="Integer forest-type raster on the fAPAR grid (needs --param-table).",
                     exists=True, readable=True),
    ] = None,
    param_table: Annotated[
        Path | None,
        typer.Option("--param-table", help="CSV: a 'type' column and one column per parameter name; empty = "
                     "default.", exists=True, dir_okay=False, readable=True),
    ] = None,
    states: Annotated[
        Path | None,
        typer.Option("--states", help="Zarr store of a previous preles-map run to continue from its end states.",
                     exists=True),
    ] = None,
    cog: Annotated[
        Path | None, typer.Option("--cog", help="Also write COGs of GPP and ET per period and 10-degree tile here.")
    ] = None,
    years: Annotated[int, typer.Option("--years", help="Years of synthetic weather.")] = 2,
    start: Annotated[str, typer.Option("--start", help="First day of synthetic weather.")] = "2020-01-01",
    seed: Annotated[int, typer.Option("--seed", help="Seed of synthetic weather.")] = 0,
    chunks: Annotated[int, typer.Option("--chunks", help="Chunk side (pixels) of GeoTIFF inputs.")] = 800,
    cluster: Annotated[
        str, typer.Option("--cluster", help="local (one worker process per core), tcp://host:port, or none.")
    ] = "local",
) -> None:
    """Run PRELES over a map: annual (monthly, daily) GPP (g C/m2) and ET (mm) from coarse weather and fAPAR."""
    from fluxgraph.preles_map import open_fapar, open_weather, run_preles_map, synthetic_weather_like, write_preles_map

    client = None
    try:
        fap = open_fapar(fapar, chunks=chunks)
        if str(weather) == "synthetic":
            wx = synthetic_weather_like(fap, years, seed, start=start)
        else:
            wx = open_weather(weather)
        if forest_type is not None or param_table is not None:
            if forest_type is None or param_table is None or param:
                raise PrelesInputError("--forest-type and --param-table go together, and replace --param")
            params: Any = open_fapar(forest_type, chunks=chunks)
            table = _read_param_table(param_table)
        else:
            params, table = parse_params(param or []), None
        st = None if states is None else open_weather(states)
        kw: dict[str, Any] = {"etmodel": etmodel, "period": period, "interp": interp, "states": st}
        ds = run_preles_map(wx, fap, params=params, param_table=table, **kw)
        client = _map_client(cluster)
        t0 = time.perf_counter()
        if client is None:
            with dask.config.set(scheduler="synchronous"):
                write_preles_map(ds, out, cog_dir=cog)
        else:
            write_preles_map(ds, out, cog_dir=cog)
        seconds = time.perf_counter() - t0
    except PrelesInputError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        _close_client(client)
    res = xr.open_zarr(out, consolidated=False)
    labels = pd.DatetimeIndex(res["period"].to_numpy())
    for k, label in enumerate(labels):
        gpp, et = res["GPP"].isel(period=k), res["ET"].isel(period=k)
        typer.echo(f"{label.date()} ({int(res['n_days'][k])} d): mean GPP {float(gpp.mean()):.0f} g C/m2, "
                   f"mean ET {float(et.mean()):.0f} mm over {int(gpp.count())} pixels")
    typer.echo(f"wrote {out} ({res.sizes['lat']} x {res.sizes['lon']} px, {len(labels)} {period}(s)) "
               f"in {seconds:.1f} s")
