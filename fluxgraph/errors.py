"""The one exception hierarchy of fluxgraph.

Every error a user can provoke derives from :class:`FluxgraphError` and says what is
wrong (file, layer, tile) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FluxgraphError",
    "GridMismatchError",
    "InputLayerError",
    "MissingLayerError",
    "PlanError",
    "PrelesInputError",
    "ResumeError",
    "StacValidationError",
    "StorageError",
    "TableError",
    "UnknownLayerError",
]


class FluxgraphError(RuntimeError):
    """Base class of every error raised by fluxgraph."""


class ConfigError(FluxgraphError):
    """The run configuration (file or arguments) is invalid."""


class UnknownLayerError(FluxgraphError, KeyError):
    """A layer or stage name is not in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingLayerError(FluxgraphError):
    """A required input layer has no file for a tile of the region."""


class GridMismatchError(FluxgraphError):
    """A raster is not on the 0.00025° global grid (CRS, resolution or alignment)."""


class InputLayerError(FluxgraphError):
    """An input raster cannot be read or has the wrong shape, dtype or band count."""


class PlanError(FluxgraphError):
    """The requested outputs cannot be computed from the given inputs."""


class TableError(FluxgraphError):
    """A removal-factor table (workbook or CSV) is missing a sheet, a column or a value."""


class PrelesInputError(FluxgraphError):
    """PRELES weather, parameters or states are invalid."""


class StorageError(FluxgraphError):
    """An input or output location (a folder or an ``s3://`` bucket) cannot be read or written."""


class ResumeError(FluxgraphError):
    """``--resume`` was asked for a run that cannot be resumed (no state, or a different configuration)."""
class StacValidationError(FluxgraphError):
    """A STAC catalog of outputs cannot be built or does not validate."""
