"""Stage ``forest_age_category_IPCC`` (spec/stages.md §6): IPCC age class per pixel."""

from __future__ import annotations

from fluxgraph.kernels.removals import forest_age_category
from fluxgraph.stages._apply import apply_kernel
from fluxgraph.stages._tables import removal_tables

from fluxgraph.graph import Stage, StageContext


def _compute(ctx: StageContext):
    tables = removal_tables(ctx.config.stage_params("removals"))
    (age,) = apply_kernel(
        forest_age_category,
        ctx["model_extent"],
        ctx["loss_year"],
        ctx["gain"],
        ctx["continent_ecozone"],
        ctx["agb_2000"],
        ctx["ifl_primary"],
        ctx.row_tropics(),
        tail=tables.young_rate_lookup,
        output_dtypes=["uint8"],
        unknown_young_rate_nan=bool(ctx.params.get("unknown_young_rate_nan", True)),
    )
    return {"forest_age_category": age}


STAGE = Stage(
    name="forest_age_category_IPCC",
    outputs=("forest_age_category",),
    inputs=("model_extent",),
    optional=("loss_year", "gain", "continent_ecozone", "agb_2000", "ifl_primary"),
    compute=_compute,
    description="IPCC forest age category (1 young secondary, 2 old secondary, 3 primary)",
    kernel="fluxgraph.kernels.removals.forest_age_category",
    spec="spec/stages.md §6",
)
