"""The ``fluxgraph preles-site`` command (registered by ``fluxgraph.cli``).

``fluxgraph preles-site --weather FILE.csv --out OUT.csv [--etmodel 0|1] [--param NAME=VALUE ...]
[--deciduous]`` runs :func:`fluxgraph.preles.run_site` on a daily weather CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from fluxgraph.errors import PrelesInputError
from fluxgraph.preles import run_site

__all__ = ["parse_params", "preles_site", "read_weather_csv"]

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
