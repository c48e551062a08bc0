"""Provenance: what produced an output, stamped on every Zarr store, Zarr variable and COG.

One dictionary describes a run (:func:`run_provenance`): fluxgraph and model versions, the
model years, the digest of the resolved configuration, the input locations, the file-name
patterns of the layers read and the dated product names they resolve with (the input
versions), the versions of the packages that computed it and the creation time (UTC).
Zarr keeps it as native JSON attributes; GeoTIFF tags hold strings only, so
:func:`as_tags` encodes non-string values as JSON, and :func:`parse_tags` decodes them
again. Each layer adds its own metadata (:func:`layer_metadata`): units, nodata, sign
convention, description and the stage that produced it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import fluxgraph
from fluxgraph.catalog import Layer, get_layer
from fluxgraph.config import RunConfig

__all__ = ["PACKAGES", "as_tags", "layer_metadata", "parse_tags", "run_provenance"]

PACKAGES = ("numpy", "numba", "dask", "distributed", "xarray", "rioxarray", "rasterio", "zarr", "odc-geo",
            "pandas")
"""Packages whose versions are recorded (those that read, compute or write the values)."""

INPUT_VERSION_KEYS = ("loss_prefix", "drivers_date", "gain_period")
"""Keys of the ``[naming]`` configuration that date the input products."""

JSON_KEYS = ("inputs", "input_patterns", "input_versions", "package_versions")
"""Provenance keys whose values are lists or mappings (JSON-encoded in GeoTIFF tags)."""


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (packages that are not installed are left out)."""
    versions = {}
    for name in names:
        with contextlib.suppress(md.PackageNotFoundError):
            versions[name] = md.version(name)
    return versions


def run_provenance(
    *,
    config: RunConfig,
    inputs: Iterable[str],
    read_layers: Iterable[str] = (),
    created: str | None = None,
) -> dict[str, Any]:
    """The provenance of one run, as native values.

    Parameters
    ----------
    config : RunConfig
        The resolved run configuration (its digest, model version and years, product names).
    inputs : iterable of str
        Input locations (folder paths, ``s3://`` URLs, ``demo://…``), in search order.
    read_layers : iterable of str
        Catalog layers read from input files; their file-name patterns are recorded
        with ``{tile}`` left as a placeholder.
    created : str, optional
        Creation time (ISO 8601, UTC); now if omitted.

    Returns
    -------
    dict
        ``fluxgraph_version``, ``model_version``, ``model_years`` (``"2001-2025"``),
        ``first_year``, ``last_year``, ``config_digest``, ``inputs``, ``input_patterns``
        (layer → file name), ``input_versions`` (dated product names), ``package_versions``,
        ``created``.
    """
    last = config.first_year + config.model_years - 1
    naming = config.naming
    patterns = {name: get_layer(name).filename(naming, "{tile}") for name in sorted(set(read_layers))}
    return {
        "fluxgraph_version": fluxgraph.__version__,
        "model_version": config.model_version,
        "model_years": f"{config.first_year}-{last}",
        "first_year": config.first_year,
        "last_year": last,
        "config_digest": config.digest(),
        "inputs": [str(s) for s in inputs],
        "input_patterns": patterns,
        "input_versions": {k: naming[k] for k in INPUT_VERSION_KEYS if k in naming},
        "package_versions": package_versions(),
        "created": created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def layer_metadata(layer: Layer | str) -> dict[str, Any]:
    """Per-layer attributes: ``layer``, ``units``, ``nodata``, ``long_name``, ``sign_convention``, ``stage``.

    ``sign_convention`` is present for flux layers only; ``stage`` is ``"input"`` for raw inputs.
    """
    lay = get_layer(layer) if isinstance(layer, str) else layer
    meta: dict[str, Any] = {"layer": lay.name, "units": lay.units, "nodata": lay.nodata,
                            "long_name": lay.description, "stage": lay.stage or "input"}
    if lay.sign:
        meta["sign_convention"] = lay.sign
    return meta


def as_tags(values: Mapping[str, Any]) -> dict[str, str]:
    """GeoTIFF tags (strings) from provenance values: lists and mappings as JSON, numbers as text."""
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in values.items()}


def parse_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    """Inverse of :func:`as_tags` for the provenance keys (other tags are returned unchanged)."""
    out: dict[str, Any] = dict(tags)
    for key in (*JSON_KEYS, "first_year", "last_year", "nodata"):
        if key in out and isinstance(out[key], str):
            with contextlib.suppress(json.JSONDecodeError):
                out[key] = json.loads(out[key])
    return out
