"""Stage ``annual_removals_IPCC`` (spec/stages.md §7): IPCC default removal factors by ecozone and age."""

from __future__ import annotations

from fluxgraph.kernels.removals import annual_removals_ipcc
from fluxgraph.stages._apply import apply_kernel
from fluxgraph.stages._tables import removal_tables

from fluxgraph.graph import Stage, StageContext


def _compute(ctx: StageContext):
    params = ctx.config.stage_params("removals")
    tables = removal_tables(params)
    agb, bgb, sd = apply_kernel(
        annual_removals_ipcc, ctx["forest_age_category"], ctx["continent_ecozone"], ctx["bgb_agb_ratio"],
        tail=tables.ipcc_lookups, output_dtypes=["float32"] * 3,
        passthrough=bool(params.get("passthrough_unknown_codes", True)),
    )
    return {"rf_agb_ipcc": agb, "rf_bgb_ipcc": bgb, "rf_stdev_agb_ipcc": sd}


STAGE = Stage(
    name="annual_removals_IPCC",
    outputs=("rf_agb_ipcc", "rf_bgb_ipcc", "rf_stdev_agb_ipcc"),
    inputs=("forest_age_category",),
    optional=("continent_ecozone", "bgb_agb_ratio"),
    compute=_compute,
    params_section="removals",
    description="IPCC 2019 Table 4.9 natural-forest removal factors by continent-ecozone and age class",
    kernel="fluxgraph.kernels.removals.annual_removals_ipcc",
    spec="spec/stages.md §7",
)
