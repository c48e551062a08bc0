"""Stage ``model_extent`` (spec/stages.md §5): the pixels the model covers."""

from __future__ import annotations

from fluxgraph.kernels.extent import model_extent
from fluxgraph.stages._apply import apply_kernel

from fluxgraph.graph import Stage, StageContext


def _compute(ctx: StageContext):
    (extent,) = apply_kernel(model_extent, ctx["tcd2000"], ctx["agb_2000"], ctx["mangrove_agb_2000"], ctx["gain"],
                             output_dtypes=["uint8"],
                             mangrove_cast_wrap=bool(ctx.params.get("mangrove_cast_wrap", True)))
    return {"model_extent": extent}


STAGE = Stage(
    name="model_extent",
    outputs=("model_extent",),
    inputs=("tcd2000",),  # B.25: the original fails without the TCD tile
    optional=("agb_2000", "mangrove_agb_2000", "gain"),
    compute=_compute,
    description="model extent: TCD>0 with WHRC AGB, or mangrove AGB (uint8 cast, B.1), or gain",
    kernel="fluxgraph.kernels.extent.model_extent",
    spec="spec/stages.md §5",
)
