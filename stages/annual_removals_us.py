"""Optional stage ``annual_removals_us`` (spec/stages.md §4): US FIA removal factors."""

from __future__ import annotations

from fluxgraph.kernels.removals import annual_removals_us
from fluxgraph.stages._apply import apply_kernel
from fluxgraph.stages._tables import removal_tables

from fluxgraph.graph import Stage, StageContext


def _compute(ctx: StageContext):
    tables = removal_tables(ctx.config.stage_params("removals"))
    rate, sd = apply_kernel(
        annual_removals_us, ctx["gain"], ctx["us_age_category"], ctx["fia_forest_group"], ctx["fia_region"],
        tail=tables.us_lookups, output_dtypes=["float32"] * 2,
    )
    return {"rf_agc_bgc_us": rate, "rf_stdev_agc_bgc_us": sd}


STAGE = Stage(
    name="annual_removals_us",
    outputs=("rf_agc_bgc_us", "rf_stdev_agc_bgc_us"),
    inputs=("us_age_category", "fia_forest_group", "fia_region"),
    optional=("gain",),
    compute=_compute,
    params_section="removals",
    description="US natural-forest AGC+BGC removal factors by FIA region, forest group and age (needs a US table)",
    kernel="fluxgraph.kernels.removals.annual_removals_us",
    spec="spec/stages.md §4",
)
