"""Stages ``gross_emissions_biomass_soil``, ``…_biomass_only``, ``…_soil_only`` (spec/emissions.md).

Each wraps :func:`fluxgraph.kernels.emissions.gross_emissions`. Absent optional layers
read as zeros, as the original's dummy tiles do (emissions.md §2.3); the carbon pools
and loss year are required. Quirk switches come from ``[stages.gross_emissions]`` of
the run configuration (all reproduce the original by default).

Besides the six rasters, each stage yields a compact table of totals by loss year ×
driver × gas (Mg CO2e, using the grid's pixel area), summed chunk by chunk on the
cluster: the annual, per-driver view the original does not provide.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from fluxgraph.kernels.emissions import EmissionParams, gross_emissions, sum_by_year_driver
from fluxgraph.stages._apply import apply_kernel, broadcast_blocks

from fluxgraph.config import RunConfig
from fluxgraph.graph import Stage, StageContext, Summary
from fluxgraph.grid import row_pixel_area_m2

__all__ = ["STAGES", "emission_params"]

POOLS = ("agc_emis_year", "bgc_emis_year", "deadwood_emis_year", "litter_emis_year")
OPTIONAL = ("soil_emis_year", "tclf", "climate_domain", "climate_zone", "drivers", "peat", "ifl_primary",
            "plantation_type")
GASES = ("all_gases", "co2", "non_co2", "ch4", "n2o", "nodes")
DRIVER_NAMES = ("no driver", "permanent agriculture", "hard commodities", "shifting cultivation", "logging",
                "wildfire", "settlements and infrastructure", "other natural disturbances")
TABLE_GASES = ("all_gases", "CO2", "CH4", "N2O")


def emission_params(config: RunConfig, params: Mapping[str, Any]) -> EmissionParams:
    """Kernel parameters from the run configuration (model years and quirk switches)."""
    return EmissionParams(
        model_years=config.model_years,
        replicate_node62_bug=bool(params.get("replicate_node62_bug", True)),
        cap_soil_years_at_20=bool(params.get("cap_soil_years_at_20", False)),
        clamp_loss_beyond_model_years=bool(params.get("clamp_loss_beyond_model_years", False)),
    )


def _compute(variant: str):
    def compute(ctx: StageContext) -> dict[str, xr.DataArray]:
        p = emission_params(ctx.config, ctx.params)
        args = [ctx[n] for n in (*POOLS, "soil_emis_year", "loss_year", "tclf", "climate_domain", "climate_zone",
                                 "drivers", "peat", "ifl_primary", "plantation_type")]
        outs = apply_kernel(gross_emissions, *args, output_dtypes=["float32"] * 5 + ["uint16"],
                            variant=variant, params=p)
        return {f"gross_emis_{g}_{variant}": o for g, o in zip(GASES, outs, strict=True)}

    return compute


def _block_totals(blocks: Mapping[str, np.ndarray], row0: int, row1: int, *, variant: str,
                  model_years: int) -> np.ndarray:
    """One chunk's (model_years + 2, 8, 4) totals in Mg CO2e by loss year × driver × gas."""
    area = row_pixel_area_m2(row0, row1)[:, None]
    gas = [blocks[f"gross_emis_{g}_{variant}"] for g in ("all_gases", "co2", "ch4", "n2o")]
    b = broadcast_blocks(blocks["loss_year"], blocks["drivers"], area, *gas)
    return sum_by_year_driver(*b, model_years=model_years)


def emissions_table(totals: np.ndarray, *, tile: str, variant: str, config: RunConfig) -> pd.DataFrame:
    """Rows of (tile, loss year, driver, gas, Mt CO2e) from a (model_years + 2, 8, 4) Mg array."""
    rows = []
    years = [f"{config.first_year + k - 1}" if 0 < k <= config.model_years else ("none" if k == 0 else "invalid")
             for k in range(totals.shape[0])]
    for k, year in enumerate(years):
        for d, driver in enumerate(DRIVER_NAMES):
            for g, gas in enumerate(TABLE_GASES):
                value = totals[k, d, g]
                if value != 0:
                    rows.append((tile, variant, year, d, driver, gas, value / 1e6))
    return pd.DataFrame(rows, columns=["tile", "variant", "loss_year", "driver_code", "driver", "gas",
                                       "emissions_Mt_CO2e"])


def _stage(variant: str) -> Stage:
    outputs = tuple(f"gross_emis_{g}_{variant}" for g in GASES)
    return Stage(
        name=f"gross_emissions_{variant}",
        outputs=outputs,
        inputs=(*POOLS, "loss_year"),
        optional=OPTIONAL,
        compute=_compute(variant),
        params_section="gross_emissions",
        description=f"gross GHG emissions of tree cover loss, {variant.replace('_', ' ')} pools, by gas, "
                    "plus the decision-tree node",
        kernel="fluxgraph.kernels.emissions.gross_emissions",
        spec="spec/emissions.md §4-§7",
        summary=Summary(
            name=f"emissions_by_year_driver_{variant}",
            layers=("loss_year", "drivers", *(f"gross_emis_{g}_{variant}" for g in ("all_gases", "co2", "ch4",
                                                                                    "n2o"))),
            block=lambda config, v=variant: functools.partial(_block_totals, variant=v,
                                                              model_years=config.model_years),
            to_frame=lambda totals, tile, config, v=variant: emissions_table(totals, tile=tile, variant=v,
                                                                             config=config),
        ),
    )


STAGES = [_stage(v) for v in ("biomass_soil", "biomass_only", "soil_only")]
