"""Stage ``carbon_pools`` (spec/stages.md §11): carbon pools in the year of loss and/or in 2000.

``[stages.carbon_pools] extent`` chooses ``loss``, ``2000`` or ``loss,2000`` like the
original's ``-ce``; ``fluxgraph run --carbon-pool-extent`` sets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from fluxgraph.kernels.carbon_pools import carbon_pools_2000, carbon_pools_emis_year
from fluxgraph.stages._apply import apply_kernel
from fluxgraph.stages._tables import removal_tables

from fluxgraph.errors import ConfigError
from fluxgraph.graph import Stage, StageContext

LOSS = ("agc_emis_year", "bgc_emis_year", "deadwood_emis_year", "litter_emis_year", "soil_emis_year",
        "total_c_emis_year")
Y2000 = ("agc_2000", "bgc_2000", "deadwood_2000", "litter_2000", "total_c_2000")
COMMON = ("continent_ecozone", "bgb_agb_ratio", "climate_domain", "elevation", "precipitation", "soil_c_2000")


def _extents(params: Mapping[str, Any]) -> set[str]:
    value = str(params.get("extent", "loss"))
    parts = {p.strip() for p in value.split(",") if p.strip()}
    if not parts or not parts <= {"loss", "2000"}:
        raise ConfigError(f"carbon pool extent must be loss, 2000 or loss,2000 (the original's -ce), not {value!r}")
    return parts


def _outputs_for(params: Mapping[str, Any]) -> tuple[str, ...]:
    ext = _extents(params)
    return (LOSS if "loss" in ext else ()) + (Y2000 if "2000" in ext else ())


def _emis(*arrays: np.ndarray, ratios: tuple, flags: dict) -> tuple:
    *layers, mangrove_present, extent = arrays
    return carbon_pools_emis_year(*layers, *ratios, mangrove_present=mangrove_present, extent=extent, **flags)


def _y2000(*arrays: np.ndarray, ratios: tuple, flags: dict) -> tuple:
    *layers, mangrove_present = arrays
    flags = {k: v for k, v in flags.items() if k != "agc_masked_by_removal_type"}
    return carbon_pools_2000(*layers, *ratios, mangrove_present=mangrove_present, **flags)


def _compute(ctx: StageContext):
    removals = ctx.config.stage_params("removals")
    ratios = removal_tables(removals).mangrove_ratio_lookups
    flags = {
        "passthrough": bool(removals.get("passthrough_unknown_codes", True)),
        "mangtype4_ratio100": bool(ctx.params.get("mangtype4_ratio100", True)),
        "mangrove_litter_c045": bool(ctx.params.get("mangrove_litter_c045", True)),
        "agc_masked_by_removal_type": bool(ctx.params.get("agc_masked_by_removal_type", True)),
    }
    mangrove_present = ctx.present("mangrove_agb_2000")
    common = [ctx[n] for n in COMMON]
    out = {}
    ext = _extents(ctx.params)
    if "loss" in ext:
        res = apply_kernel(
            _emis, ctx["loss_year"], ctx["gain"], ctx["removal_forest_type"], ctx["agb_2000"],
            ctx["mangrove_agb_2000"], ctx["rf_agc_all"], ctx["gross_removals_agco2"], *common, mangrove_present,
            ctx["model_extent"], output_dtypes=["float32"] * 4 + ["uint16", "float32"], ratios=ratios, flags=flags,
        )
        out.update(zip(LOSS, res, strict=True))
    if "2000" in ext:
        res = apply_kernel(
            _y2000, ctx["agb_2000"], ctx["mangrove_agb_2000"], ctx["removal_forest_type"], *common,
            mangrove_present, output_dtypes=["float32"] * 5, ratios=ratios, flags=flags,
        )
        out.update(zip(Y2000, res, strict=True))
    return out


STAGE = Stage(
    name="carbon_pools",
    outputs=LOSS + Y2000,
    inputs=("removal_forest_type",),
    optional=("loss_year", "gain", "agb_2000", "mangrove_agb_2000", "rf_agc_all", "gross_removals_agco2",
              "model_extent", *COMMON),
    compute=_compute,
    description="AGC, BGC, deadwood, litter, soil and total carbon in the year of loss (and/or 2000)",
    kernel="fluxgraph.kernels.carbon_pools.carbon_pools_emis_year",
    spec="spec/stages.md §11",
    outputs_for=_outputs_for,
)
