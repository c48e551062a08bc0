"""Run configuration: model years, product names, chunking, stage switches, cluster.

The defaults live in ``fluxgraph/data/defaults.toml`` (data, not code). A user's TOML
file overrides any key, and CLI options override the file. The resolved configuration is
written next to every run's outputs and its digest goes into the provenance metadata.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fluxgraph.errors import ConfigError
from fluxgraph.grid import check_chunks

__all__ = ["RunConfig", "load_config"]


def _defaults() -> dict[str, Any]:
    text = resources.files("fluxgraph").joinpath("data/defaults.toml").read_text()
    return tomllib.loads(text)


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = f"{where}.{key}" if where else key
        if key not in base and not where.startswith("stages"):
            raise ConfigError(
                f"unknown configuration key {path!r}; known keys here: {', '.join(sorted(base))}"
            )
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


COG_COMPRESSIONS = ("deflate", "zstd", "lzw", "none")
"""TIFF compressions a run may write COGs with (``run.cog_compress``)."""

ZARR_CODECS = ("zstd", "gzip")
"""Compressions of the Zarr store's chunks (``run.zarr_codec``)."""

DEFLATE_ENCODERS = ("isal", "zlib-ng", "libdeflate")
"""Libraries that may encode deflate COG tiles (``run.cog_deflate_encoder``): all write standard zlib streams
(TIFF compression 8) that every reader decodes; their levels trade speed for size differently."""

DEFLATE_LEVELS = {"isal": (0, 3), "zlib-ng": (0, 9), "libdeflate": (0, 12)}
"""Compression levels (lowest, highest) each deflate encoder accepts."""


def check_deflate_level(encoder: str, level: int | None, *, where: str = "run.cog_level") -> None:
    """Raise :class:`ConfigError` unless ``level`` (None: the encoder's default) suits ``encoder``."""
    if encoder not in DEFLATE_ENCODERS:
        raise ConfigError(f"run.cog_deflate_encoder must be one of {', '.join(DEFLATE_ENCODERS)}, not {encoder!r}")
    lo, hi = DEFLATE_LEVELS[encoder]
    if level is not None and not lo <= int(level) <= hi:
        raise ConfigError(f"{where} = {level} does not suit the {encoder} deflate encoder (levels {lo}-{hi}): "
                          f"choose a level in {lo}-{hi}, or set run.cog_deflate_encoder to "
                          f"\"zlib-ng\" (levels 0-9) or \"libdeflate\" (0-12)")


@dataclass(frozen=True)
class RunConfig:
    """The resolved configuration of a run (a validated view of the TOML data).

    Attributes
    ----------
    data : dict
        The full nested configuration (defaults merged with overrides).
    """

    data: dict[str, Any] = field(default_factory=_defaults)

    def __post_init__(self) -> None:
        m = self.data["model"]
        if not (1 <= int(m["model_years"]) <= 99):
            raise ConfigError(f"model.model_years must be 1..99, not {m['model_years']}")
        check_chunks(tuple(self.data["grid"]["chunks"]))
        if self.data["run"]["missing_required"] not in ("error", "skip"):
            raise ConfigError("run.missing_required must be 'error' or 'skip'")
        compress = str(self.data["run"]["cog_compress"]).lower()
        if compress not in COG_COMPRESSIONS:
            raise ConfigError(f"run.cog_compress must be one of {', '.join(COG_COMPRESSIONS)}, not {compress!r}")
        if not isinstance(self.data["run"]["zarr_shards"], bool):
            raise ConfigError(f"run.zarr_shards must be true or false, not {self.data['run']['zarr_shards']!r}")
        if self.data["run"]["zarr_codec"] not in ZARR_CODECS:
            raise ConfigError(f"run.zarr_codec must be one of {', '.join(ZARR_CODECS)}, not "
                              f"{self.data['run']['zarr_codec']!r}")
        # the encoder is checked always, the level only when it is a deflate level
        check_deflate_level(self.data["run"]["cog_deflate_encoder"],
                            self.data["run"].get("cog_level") if compress == "deflate" else None)

    # -- convenient views ----------------------------------------------------------------
    @property
    def model_years(self) -> int:
        return int(self.data["model"]["model_years"])

    @property
    def first_year(self) -> int:
        return int(self.data["model"]["first_year"])

    @property
    def model_version(self) -> str:
        return str(self.data["model"]["version"])

    @property
    def chunks(self) -> tuple[int, int]:
        return check_chunks(tuple(self.data["grid"]["chunks"]))

    @property
    def naming(self) -> dict[str, str]:
        """Placeholder values for the catalog's file-name patterns."""
        last = self.first_year + self.model_years - 1
        names = {k: str(v) for k, v in self.data["naming"].items()}
        names["period"] = f"{self.first_year}_{last % 100:02d}"
        names["period_long"] = f"{self.first_year}_{last}"
        return names

    def stage_params(self, section: str) -> dict[str, Any]:
        """Parameters of one ``[stages.<section>]`` table (empty if absent)."""
        return dict(self.data.get("stages", {}).get(section, {}))

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A new configuration with nested ``overrides`` applied."""
        return RunConfig(_merge(self.data, overrides))

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the resolved configuration."""
        blob = json.dumps(self.data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.data)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Load the defaults, then a user's TOML file, then explicit overrides.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file with any subset of the keys of ``fluxgraph/data/defaults.toml``.
    overrides : mapping, optional
        Nested overrides applied last (e.g. from CLI options).
    """
    data = _defaults()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file {p} does not exist")
        try:
            user = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from exc
        data = _merge(data, user)
    if overrides:
        data = _merge(data, overrides)
    return RunConfig(data)
