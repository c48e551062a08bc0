"""Stage ``gross_removals_all_forest_types`` (spec/stages.md §10): removals over the model period."""

from __future__ import annotations

from fluxgraph.kernels.removals import gross_removals
from fluxgraph.stages._apply import apply_kernel

from fluxgraph.graph import Stage, StageContext


def _compute(ctx: StageContext):
    ag, bg, total = apply_kernel(gross_removals, ctx["rf_agc_all"], ctx["rf_bgc_all"], ctx["gain_year_count"],
                                 output_dtypes=["float32"] * 3)
    return {"gross_removals_agco2": ag, "gross_removals_bgco2": bg, "gross_removals": total}


STAGE = Stage(
    name="gross_removals_all_forest_types",
    outputs=("gross_removals_agco2", "gross_removals_bgco2", "gross_removals"),
    inputs=("rf_agc_all", "rf_bgc_all", "gain_year_count"),
    compute=_compute,
    description="gross removals AGCO2, BGCO2 and total, Mg CO2/ha over the model period (positive)",
    kernel="fluxgraph.kernels.removals.gross_removals",
    spec="spec/stages.md §10",
)
