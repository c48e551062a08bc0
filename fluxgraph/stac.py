"""A STAC catalog of a run's COGs, built from the files themselves, and its offline validation.

:func:`build_catalog` reads every COG below ``{out}/cog`` (its grid, data type, nodata and the
provenance tags that :mod:`fluxgraph.writers` stamps on it) and makes one STAC item per tile with
one asset per layer. Items carry the projection (v2.0.0) and raster (v1.1.0) extensions, the model
period (``start_datetime``/``end_datetime``), and the run's provenance as ``fluxgraph:*``
properties: versions, configuration digest, input locations, file-name patterns and product dates.
:func:`write_catalog` saves it self-contained in ``{out}/stac`` (relative links and asset hrefs),
so the output folder can be moved or copied to a bucket as a whole.

:func:`validate_catalog` validates without the network: STAC core objects against the JSON
schemas that pystac ships, the projection and raster fields against fluxgraph's own schemas of
those extensions (``fluxgraph/data/stac``), and the ``fluxgraph:*`` fields against
``fluxgraph-item.json``. See docs/outputs.md for why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from fluxgraph.errors import StacValidationError
from fluxgraph.provenance import parse_tags

__all__ = ["build_catalog", "read_cog_info", "validate_catalog", "write_catalog"]

PROJECTION_URI = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_URI = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
_EXTENSION_SCHEMAS = {PROJECTION_URI: "projection.json", RASTER_URI: "raster.json"}
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def _schema(name: str) -> dict[str, Any]:
    return json.loads(resources.files("fluxgraph").joinpath(f"data/stac/{name}").read_text())


def read_cog_info(path: str | Path) -> dict[str, Any]:
    """Grid, data type, nodata, units and provenance of one COG written by fluxgraph.

    Raises
    ------
    StacValidationError
        The file lacks the ``layer``/``tile`` tags that fluxgraph writes (not one of its outputs).
    """
    import rasterio

    with rasterio.open(str(path)) as src:
        tags = parse_tags(src.tags())
        info = {
            "path": path if _is_url(path) else Path(path), "bounds": tuple(src.bounds),
            "shape": [src.height, src.width],
            "transform": list(src.transform)[:6], "crs": src.crs.to_string() if src.crs else None,
            "dtype": src.dtypes[0], "nodata": src.nodata, "units": src.units[0] or tags.get("units", ""),
            "res": abs(src.transform.a), "tags": tags,
        }
    missing = [k for k in ("layer", "tile", "model_version", "model_years") if k not in tags]
    if missing:
        raise StacValidationError(
            f"{path}: GeoTIFF tags {missing} missing, so it was not written by fluxgraph (or by a version "
            "before provenance tags); re-run the stages that wrote it, or move it out of the cog/ folder"
        )
    return info


def _is_url(path: str | Path) -> bool:
    return "://" in str(path)


def _href(path: str | Path) -> str:
    """An asset's href: the URL as it is, or a local file's absolute path."""
    return str(path) if _is_url(path) else str(Path(path).resolve())


def _asset_key(info: Mapping[str, Any]) -> str:
    year = info["tags"].get("loss_year")
    return f"{info['tags']['layer']}_{year}" if year else str(info["tags"]["layer"])


def _item(tile: str, infos: list[dict[str, Any]]) -> Any:
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension

    first = infos[0]
    tags = first["tags"]
    w, s, e, n = first["bounds"]
    for info in infos[1:]:
        w, s = min(w, info["bounds"][0]), min(s, info["bounds"][1])
        e, n = max(e, info["bounds"][2]), max(n, info["bounds"][3])
    geometry = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    item = pystac.Item(
        id=tile, geometry=geometry, bbox=[w, s, e, n], datetime=None,
        start_datetime=datetime(int(tags["first_year"]), 1, 1, tzinfo=UTC),
        end_datetime=datetime(int(tags["last_year"]), 12, 31, 23, 59, 59, tzinfo=UTC),
        properties={
            "created": tags.get("created"),
            "fluxgraph:tile": tile,
            "fluxgraph:version": tags.get("fluxgraph_version"),
            "fluxgraph:model_version": tags["model_version"],
            "fluxgraph:model_years": tags["model_years"],
            "fluxgraph:config_digest": tags.get("config_digest"),
            "fluxgraph:inputs": tags.get("inputs", []),
            "fluxgraph:input_patterns": tags.get("input_patterns", {}),
            "fluxgraph:input_versions": tags.get("input_versions", {}),
            "fluxgraph:package_versions": tags.get("package_versions", {}),
        },
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = first["crs"]
    proj.bbox = [w, s, e, n]
    proj.shape = first["shape"]
    proj.transform = first["transform"]
    RasterExtension.add_to(item)
    for info in sorted(infos, key=_asset_key):
        t = info["tags"]
        sign = f"; {t['sign_convention']}" if t.get("sign_convention") else ""
        asset = pystac.Asset(
            href=_href(info["path"]), media_type=COG_MEDIA_TYPE, roles=["data"],
            title=t.get("long_name", t["layer"]),
            description=f"{t.get('long_name', t['layer'])} ({info['units']}{sign})",
            extra_fields={"fluxgraph:layer": t["layer"], **({"fluxgraph:loss_year": int(t["loss_year"])}
                                                          if t.get("loss_year") else {})},
        )
        if info["shape"] != first["shape"] or info["transform"] != first["transform"]:
            asset_proj = ProjectionExtension.ext(asset)
            asset_proj.shape, asset_proj.transform = info["shape"], info["transform"]
        band = RasterBand.create(nodata=info["nodata"], data_type=DataType(info["dtype"]), unit=info["units"],
                                 spatial_resolution=info["res"])
        RasterExtension.ext(asset).apply([band])
        item.add_asset(_asset_key(info), asset)
    return item


def build_catalog(out: str | Path, *, cogs: Iterable[str | Path] | None = None) -> Any:
    """A STAC catalog (not yet saved) of the COGs of a run's output folder.

    Parameters
    ----------
    out : str or Path
        The run's output folder (holding ``cog/`` and ``run.json``).
    cogs : iterable of path or URL, optional
        The COGs to catalogue; every ``*.tif`` below ``{out}/cog`` by default. ``s3://`` URLs are read
        through GDAL (inside a ``rasterio.Env`` with the bucket's settings) and kept as absolute hrefs.

    Returns
    -------
    pystac.Catalog
        One item per tile (id = tile id), one asset per layer (per layer and loss year for annual layers).
    """
    import pystac

    out = Path(out)
    paths: list[Any] = (sorted(p if _is_url(p) else Path(p) for p in cogs) if cogs is not None
                        else sorted((out / "cog").rglob("*.tif")))
    if not paths:
        raise StacValidationError(f"no COGs below {out / 'cog'}: is {out} the output folder of a fluxgraph run?")
    by_tile: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        info = read_cog_info(path)
        by_tile.setdefault(str(info["tags"]["tile"]), []).append(info)
    tags = next(iter(by_tile.values()))[0]["tags"]
    catalog = pystac.Catalog(
        id="fluxgraph-run",
        description=(f"Outputs of a fluxgraph {tags.get('fluxgraph_version', '')} run: GFW forest carbon flux model "
                     f"v{tags['model_version']}, loss years {tags['model_years']}, {len(by_tile)} tile(s)."),
        title=f"fluxgraph run {out.name}",
    )
    for tile in sorted(by_tile):
        catalog.add_item(_item(tile, by_tile[tile]))
    return catalog


def write_catalog(out: str | Path, *, cogs: Iterable[str | Path] | None = None) -> Path:
    """Build the catalog of ``out`` (:func:`build_catalog`) and save it self-contained in ``{out}/stac``.

    Returns
    -------
    Path
        ``{out}/stac/catalog.json``.
    """
    import shutil

    import pystac

    root = Path(out) / "stac"
    catalog = build_catalog(out, cogs=cogs)
    if root.exists():
        shutil.rmtree(root)  # items of tiles no longer present must not linger
    catalog.normalize_hrefs(str(root))
    for item in catalog.get_items(recursive=True):
        item.make_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def _offline_validator() -> Any:
    from pystac.validation import JsonSchemaSTACValidator

    class OfflineValidator(JsonSchemaSTACValidator):
        """pystac's JSON-schema validator with every schema local: a schema it lacks is an error, not a fetch."""

        def _get_schema(self, schema_uri: str) -> dict[str, Any]:
            if schema_uri not in self.schema_cache:
                raise StacValidationError(
                    f"no local JSON schema for {schema_uri}; fluxgraph validates offline the STAC core, "
                    f"projection v2.0.0 and raster v1.1.0 only"
                )
            return self.schema_cache[schema_uri]

    validator = OfflineValidator()
    for uri, name in _EXTENSION_SCHEMAS.items():
        validator.schema_cache[uri] = _schema(name)
    return validator


def validate_catalog(catalog: str | Path) -> int:
    """Validate a saved catalog and everything it links to, offline.

    Parameters
    ----------
    catalog : str or Path
        ``catalog.json`` (or the folder holding it).

    Returns
    -------
    int
        Number of STAC objects validated.

    Raises
    ------
    StacValidationError
        An object breaks the STAC core schema, an extension's fields or fluxgraph's item fields;
        an asset's local file does not exist (``s3://`` assets are not checked: that needs the bucket).
    """
    import jsonschema
    import pystac
    from pystac.validation import validate_dict

    path = Path(catalog)
    path = path / "catalog.json" if path.is_dir() else path
    if not path.is_file():
        raise StacValidationError(f"{path} does not exist; build it with `fluxgraph stac --outputs OUT`")
    validator = _offline_validator()
    item_schema = _schema("fluxgraph-item.json")
    count = 0
    todo = [path.resolve()]
    while todo:
        href = todo.pop()
        data = json.loads(href.read_text())
        try:
            validate_dict(data, href=str(href), validator=validator)
            if data.get("type") == "Feature":
                jsonschema.validate(data, item_schema)
        except (pystac.STACValidationError, jsonschema.ValidationError) as exc:
            raise StacValidationError(f"{href}: {exc}") from exc
        for key, asset in data.get("assets", {}).items():
            if _is_url(asset["href"]):
                continue  # an s3:// asset: checked by whoever can reach the bucket, not offline
            if not (href.parent / asset["href"]).resolve().is_file():
                raise StacValidationError(f"{href}: asset {key} points to {asset['href']}, which does not exist")
        todo += [(href.parent / link["href"]).resolve() for link in data.get("links", [])
                 if link["rel"] in ("child", "item")]
        count += 1
    return count
