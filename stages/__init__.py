"""Model stages, one module per stage, each declared as data around a numba kernel.

``STAGES`` lists every registered stage in the original's run order
(spec/stages.md §2).
"""

from __future__ import annotations

from fluxgraph.stages import (
    annual_removals_all_forest_types,
    annual_removals_ipcc,
    annual_removals_mangrove,
    annual_removals_us,
    carbon_pools,
    create_derivative_outputs,
    forest_age_category,
    gain_year_count,
    gross_emissions,
    gross_removals,
    model_extent,
    net_flux,
)

from fluxgraph.graph import Stage

STAGES: list[Stage] = [
    annual_removals_mangrove.STAGE,
    annual_removals_us.STAGE,
    model_extent.STAGE,
    forest_age_category.STAGE,
    annual_removals_ipcc.STAGE,
    annual_removals_all_forest_types.STAGE,
    gain_year_count.STAGE,
    gross_removals.STAGE,
    carbon_pools.STAGE,
    *gross_emissions.STAGES,
    net_flux.STAGE,
    create_derivative_outputs.STAGE,
]

__all__ = ["STAGES"]
