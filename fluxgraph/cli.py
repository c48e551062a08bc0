"""The ``fluxgraph`` command line: a thin layer over the Python API."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from fluxgraph.errors import FluxgraphError

app = typer.Typer(
    help="fluxgraph: the GFW forest carbon flux model (and PRELES) on Dask, from a laptop to the globe.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEMO_OUT = Path("fluxgraph-demo")
ZONAL_ROWS_SHOWN = 40


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


S3Anon = Annotated[bool, typer.Option("--s3-anon", help="S3: unsigned requests (public buckets)")]
S3RequesterPays = Annotated[
    bool, typer.Option("--s3-requester-pays", help="S3: pay for requests to requester-pays buckets")]
S3EndpointUrl = Annotated[
    str | None, typer.Option("--s3-endpoint-url", help="S3-compatible store, e.g. http://127.0.0.1:9000")]


def _s3_table(anon: bool, requester_pays: bool, endpoint_url: str | None) -> dict[str, Any]:
    """The ``[s3]`` overrides of the S3 command-line options that were given."""
    return {k: v for k, v in {"anon": anon, "requester_pays": requester_pays, "endpoint_url": endpoint_url}.items()
            if v}


def _config(path: Path | None, overrides: dict[str, Any]) -> Any:
    from fluxgraph.config import load_config

    return load_config(path, {k: v for k, v in overrides.items() if v})


def _client(kind: str | None, config: Any) -> Any:
    from fluxgraph.cluster import connect

    spec = dict(config.data["cluster"])
    if kind:
        spec["kind"] = kind
    if spec["kind"] == "none":
        return None
    client = connect(spec)
    typer.echo(f"Dask dashboard: {client.dashboard_link}")
    return client


def _close(client: Any) -> None:
    from fluxgraph.cluster import close

    close(client)


def _print_summary(result: Any) -> None:
    from fluxgraph.catalog import get_layer

    typer.echo(f"\nWrote {len(result.layers)} layer(s) over {len(result.parts)} tile part(s) "
               f"in {result.seconds:.1f} s to {result.out}")
    if result.skipped:
        typer.echo(f"Skipped tiles: {', '.join(result.skipped)}")
    if result.resumed_parts:
        typer.echo(f"Resumed: {result.resumed_parts} part(s) were already finished; computed "
                   f"{result.computed_parts} part(s), {result.computed_chunks} chunk(s)")
    if result.cluster_events.get("workers_lost"):
        ev = result.cluster_events
        typer.echo(f"Lost {len(ev['workers_lost'])} worker(s) during the run; {ev['tasks_retried']} task(s) retried")
    typer.echo(f"{'layer':44s} {'units':34s} {'nonzero px':>11s} {'min':>10s} {'max':>10s} {'total Mt':>10s}")
    for name in result.layers:
        st = result.summary.get(name, {})
        tot = f"{st['total_Mt']:10.4f}" if "total_Mt" in st else " " * 10
        typer.echo(f"{name:44s} {get_layer(name).units[:34]:34s} {st.get('nonzero', 0):11d} "
                   f"{st.get('min', 0):10.4g} {st.get('max', 0):10.4g} {tot}")
    maps = {name: st["total_Mt_per_year"] for name, st in result.summary.items() if "total_Mt_per_year" in st}
    if maps:
        typer.echo("0.04° maps (forest extent, Mt CO2(e) per year; removals negative): "
                   + ", ".join(f"{name} {total:.4f}" for name, total in maps.items()))


def _print_dry_run(report: Any) -> None:
    typer.echo(f"dry run: {report.parts} tile part(s), {report.pixels / 1e9:.2f} Gpixel, "
               f"{report.layers_written} layer(s) to write")
    typer.echo(f"  chunks written: {report.chunks}, tasks after optimisation: {report.tasks}")
    typer.echo(f"  input bytes read: {report.bytes_read / 1e9:.1f} GB, "
               f"bytes written (uncompressed): {sum(report.bytes_written.values()) / 1e9:.1f} GB")
    for name, nbytes in report.bytes_written.items():
        typer.echo(f"    {name:44s} {nbytes / 1e9:10.2f} GB")
    typer.echo(f"  client: {report.client_seconds:.1f} s to plan and build, "
               f"peak RSS {report.client_peak_rss_mb:.0f} MB")


def _print_by_year(table: Path) -> None:
    """Gross emissions (all gases, biomass_soil) of the whole region by loss year, Mt CO2e."""
    import pandas as pd

    if not table.exists():
        return
    df = pd.read_csv(table)
    region = df[(df.tile == "region") & (df.gas == "all_gases")]
    by_year = region.groupby("loss_year")["emissions_Mt_CO2e"].sum()
    typer.echo("\nGross emissions by loss year (all gases, biomass_soil, Mt CO2e over the model period):")
    typer.echo("  " + "  ".join(f"{year}: {value:.4f}" for year, value in by_year.items()))


@app.command()
def run(
    inputs: Annotated[
        list[str], typer.Option("--inputs", "-i", help="Input folder, s3://bucket/prefix or demo://; repeatable")
    ],
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder or s3://bucket/prefix")],
    tiles: Annotated[str | None, typer.Option(help="Tile ids (00N_110E,10S_040E) or a list: all, us, test")] = None,
    bbox: Annotated[str | None, typer.Option(help="Region W,S,E,N in degrees")] = None,
    stages: Annotated[str, typer.Option(help="Stages to run (comma-separated) or 'all'")] = "all",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Run configuration TOML")] = None,
    outputs: Annotated[
        str | None, typer.Option(help="Write only these layers (comma list) or 'key'; upstream stages run in memory")
    ] = None,
    naming: Annotated[str, typer.Option(help="COG names: fluxgraph or gfw (the original's names)")] = "fluxgraph",
    save_intermediates: Annotated[
        bool, typer.Option("--save-intermediates", help="Write every computed layer")
    ] = False,
    cluster: Annotated[str | None, typer.Option(help="local, tcp://host:port, ec2, fargate, k8s, none")] = None,
    skip_missing: Annotated[bool, typer.Option("--skip-missing", help="Skip tiles lacking a required layer")] = False,
    chunks: Annotated[int | None, typer.Option(help="Chunk side in pixels (divides 40000, multiple of 400)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build the graph and report its size; compute nothing")
    ] = False,
    removal_table: Annotated[
        Path | None, typer.Option(help="Removal-factor table: the original's .xlsx workbook or a CSV folder")
    ] = None,
    carbon_pool_extent: Annotated[
        str | None, typer.Option(help="Carbon pools in the loss year, 2000 or both: loss | 2000 | loss,2000")
    ] = None,
    annual_layers: Annotated[
        bool, typer.Option("--annual-layers", help="Also write gross emissions per loss year, one COG per year")
    ] = False,
    tcd_threshold: Annotated[
        int | None, typer.Option(help="Forest extent of the derivative outputs and 4-km maps: TCD2000 > this")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run at --out: compute only the tile parts not finished")
    ] = False,
    s3_anon: S3Anon = False,
    s3_requester_pays: S3RequesterPays = False,
    s3_endpoint_url: S3EndpointUrl = None,
) -> None:
    """Run model stages over tiles or a bounding box; write Zarr and COG outputs (local or S3)."""
    from fluxgraph.runner import run as run_api

    if not tiles and not bbox:
        _fail(FluxgraphError("give a region: --tiles 00N_110E,... or --bbox W,S,E,N"))
    client = None
    try:
        stage_overrides: dict[str, Any] = {}
        if removal_table:
            if not removal_table.exists():
                raise FluxgraphError(f"removal table {removal_table} does not exist")
            stage_overrides["removals"] = {"removal_table": str(removal_table)}
        if carbon_pool_extent:
            stage_overrides["carbon_pools"] = {"extent": carbon_pool_extent}
        if tcd_threshold is not None:
            stage_overrides["create_derivative_outputs"] = {"tcd_threshold": tcd_threshold}
        cfg = _config(config, {
            "run": ({"missing_required": "skip"} if skip_missing else {})
            | ({"outputs": [o.strip() for o in outputs.split(",") if o.strip()]} if outputs else {}),
            "grid": {"chunks": [chunks, chunks]} if chunks else {},
            "stages": stage_overrides,
            "s3": _s3_table(s3_anon, s3_requester_pays, s3_endpoint_url),
        })
        if dry_run:
            report = run_api(inputs, out=out, tiles=tiles, bbox=bbox, stages=stages, config=cfg,
                             save_intermediates=save_intermediates, dry_run=True)
            _print_dry_run(report)
            return
        client = _client(cluster, cfg)
        result = run_api(inputs, out=out, tiles=tiles, bbox=bbox, stages=stages, config=cfg,
                         naming=naming, save_intermediates=save_intermediates, client=client,  # type: ignore[arg-type]
                         annual_layers=annual_layers, resume=resume)
        _print_summary(result)
        if client is not None and cfg.data["run"].get("dask_report", True):
            typer.echo(f"Dask performance report: {result.out}/dask-report.html")
    except FluxgraphError as exc:
        _fail(exc)
    finally:
        _close(client)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder")] = DEMO_OUT,
    size: Annotated[int, typer.Option(help="Pixels per side of each demo tile window")] = 1000,
    cluster: Annotated[str | None, typer.Option(help="local, tcp://host:port, or none")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic inputs")] = 0,
) -> None:
    """Run every stage on the embedded demo region (synthetic inputs, no files needed)."""
    from fluxgraph.demo import DEMO_REGION_TILES
    from fluxgraph.runner import run as run_api

    client = None
    try:
        cfg = _config(None, {})
        client = _client(cluster, cfg)
        t0 = time.perf_counter()
        result = run_api([f"demo://?size={size}&seed={seed}"], out=out, tiles=",".join(DEMO_REGION_TILES),
                         stages="all", config=cfg, client=client)
        _print_summary(result)
        _print_by_year(result.out / "tables" / "emissions_by_year_driver_biomass_soil.csv")
        typer.echo(f"Demo finished in {time.perf_counter() - t0:.1f} s. Open {result.zarr} with "
                   "xarray.open_zarr(..., consolidated=False).")
    except FluxgraphError as exc:
        _fail(exc)
    finally:
        _close(client)


@app.command()
def zonal(
    outputs: Annotated[str, typer.Option("--outputs", help="Output folder or s3:// prefix of a run (holding "
                                                           "fluxgraph.zarr)")],
    zones: Annotated[Path, typer.Option("--zones", help="Polygons: GeoPackage, GeoJSON or Shapefile")],
    by: Annotated[str, typer.Option("--by", help="Field naming the zones")],
    tcd: Annotated[str, typer.Option(help="Canopy thresholds of the forest extent, e.g. 30,50,75")] = "30",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Table to write: .csv or .parquet")] = None,
    inputs: Annotated[
        list[str] | None, typer.Option("--inputs", "-i", help="Input locations, if not those the run recorded")
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="local, tcp://host:port, or none")] = None,
    s3_anon: S3Anon = False,
    s3_requester_pays: S3RequesterPays = False,
    s3_endpoint_url: S3EndpointUrl = None,
) -> None:
    """Per-polygon gross emissions (by gas, driver, loss year), removals and net flux of a run's outputs."""
    from fluxgraph.s3 import storage_options
    from fluxgraph.zonal import zonal_stats

    client = None
    try:
        cfg = _config(None, {"s3": _s3_table(s3_anon, s3_requester_pays, s3_endpoint_url)})
        client = _client(cluster, cfg)
        table = zonal_stats(outputs=outputs, zones=zones, by=by, tcd=[t for t in tcd.split(",") if t.strip()],
                            inputs=inputs or None, out=out, client=client,
                            storage_options=storage_options(cfg.data["s3"]))
        totals = table[table.loss_year == "all"].drop(columns=["loss_year", "driver_code", "driver"])
        typer.echo(totals.head(ZONAL_ROWS_SHOWN).to_string(index=False))
        if len(totals) > ZONAL_ROWS_SHOWN:
            typer.echo(f"... {len(totals) - ZONAL_ROWS_SHOWN} more zone x threshold totals (all rows with --out)")
        if out is not None:
            typer.echo(f"wrote {len(table)} rows to {out}")
    except FluxgraphError as exc:
        _fail(exc)
    finally:
        _close(client)


@app.command("demo-data")
def demo_data(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the GeoTIFF tiles")],
    tiles: Annotated[str, typer.Option(help="Tile ids or a list name")] = "test",
    size: Annotated[int, typer.Option(help="Pixels per side of the top-left window of each tile")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic generator")] = 0,
) -> None:
    """Write synthetic input tiles under the original's file names (deflate, 1-row strips)."""
    from fluxgraph.demodata import write_demo_tiles
    from fluxgraph.grid import tile_list

    try:
        tl = tile_list(tiles)
        with typer.progressbar(length=0, label="writing") as bar:
            files = write_demo_tiles(out, tl, size=size, seed=seed, on_file=lambda p: bar.update(1))
        typer.echo(f"wrote {len(files)} files for {len(tl)} tile(s) to {out}")
    except FluxgraphError as exc:
        _fail(exc)


@app.command("stages")
def list_stages() -> None:
    """List the stages with their inputs and outputs."""
    from fluxgraph.graph import all_stages

    for stage in all_stages().values():
        typer.secho(stage.name, bold=True)
        typer.echo(f"  {stage.description}  [{stage.spec}]")
        typer.echo(f"  inputs:   {', '.join(stage.inputs)}")
        if stage.optional:
            typer.echo(f"  optional: {', '.join(stage.optional)}")
        typer.echo(f"  outputs:  {', '.join(stage.outputs)}")


@app.command("layers")
def list_layers(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Run configuration TOML")] = None,
    tile: Annotated[str, typer.Option(help="Tile id used to show file names")] = "00N_000E",
) -> None:
    """List every layer: name, the original's file name, dtype, nodata, units, producing stage."""
    from fluxgraph.catalog import layers_by_stage

    try:
        cfg = _config(config, {})
    except FluxgraphError as exc:
        _fail(exc)
    for stage, layers in layers_by_stage():
        typer.secho(f"[{stage or 'inputs'}]", bold=True)
        for layer in layers:
            fill = f", missing tile = {layer.fill:g}" if layer.fill != layer.nodata else ""
            typer.echo(f"  {layer.name:36s} {layer.filename(cfg.naming, tile)}")
            typer.echo(f"  {'':36s} {layer.dtype}, nodata {layer.nodata:g}, {layer.units}{fill}")
    from fluxgraph.aggregate import MAPS, map_filename

    typer.secho("[0.04° maps of create_derivative_outputs, one raster per run]", bold=True)
    for m in MAPS:
        typer.echo(f"  {m.name:36s} {map_filename(m.name, cfg, naming='gfw')}")
        typer.echo(f"  {'':36s} {m.layer.dtype}, nodata {m.layer.nodata:g}, {m.layer.units}, from {m.source}")


def _register_optional_commands() -> None:
    from fluxgraph._cli_outputs import plot, stac
    from fluxgraph._cli_preles import preles_map, preles_site

    app.command("preles-site")(preles_site)
    app.command("preles-map")(preles_map)
    app.command("stac")(stac)
    app.command("plot")(plot)


_register_optional_commands()


def main() -> None:  # pragma: no cover
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
