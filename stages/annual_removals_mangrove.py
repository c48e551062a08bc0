"""Optional stage ``annual_removals_mangrove`` (spec/stages.md §3): IPCC Wetlands mangrove removal factors."""

from __future__ import annotations

from fluxgraph.kernels.removals import annual_removals_mangrove
from fluxgraph.stages._apply import apply_kernel
from fluxgraph.stages._tables import removal_tables

from fluxgraph.graph import Stage, StageContext


def _compute(ctx: StageContext):
    params = ctx.config.stage_params("removals")
    tables = removal_tables(params)
    agb, bgb, sd = apply_kernel(
        annual_removals_mangrove,
        ctx["continent_ecozone"],
        ctx["mangrove_agb_2000"],
        tail=tables.mangrove_rate_lookups,
        output_dtypes=["float32"] * 3,
        passthrough=bool(params.get("passthrough_unknown_codes", True)),
        nan_rates=bool(params.get("mangrove_nan_rates", True)),
    )
    return {"rf_agb_mangrove": agb, "rf_bgb_mangrove": bgb, "rf_stdev_agb_mangrove": sd}


STAGE = Stage(
    name="annual_removals_mangrove",
    outputs=("rf_agb_mangrove", "rf_bgb_mangrove", "rf_stdev_agb_mangrove"),
    inputs=("continent_ecozone", "mangrove_agb_2000"),  # a tile without mangrove AGB is skipped
    compute=_compute,
    params_section="removals",
    description="mangrove AGB/BGB removal factors (IPCC 2013 Wetlands Table 4.4, 4.5)",
    kernel="fluxgraph.kernels.removals.annual_removals_mangrove",
    spec="spec/stages.md §3",
)
