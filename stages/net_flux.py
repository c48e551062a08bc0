"""Stage ``net_flux`` (spec/stages.md §12b): gross emissions minus gross removals."""

from __future__ import annotations

from fluxgraph.kernels.removals import net_flux
from fluxgraph.stages._apply import apply_kernel

from fluxgraph.graph import Stage, StageContext


def _compute(ctx: StageContext):
    (net,) = apply_kernel(net_flux, ctx["gross_emis_all_gases_biomass_soil"], ctx["gross_removals"],
                          output_dtypes=["float32"])
    return {"net_flux": net}


STAGE = Stage(
    name="net_flux",
    outputs=("net_flux",),
    inputs=(),
    optional=("gross_emis_all_gases_biomass_soil", "gross_removals"),  # a missing tile is zeros
    compute=_compute,
    description="net flux = gross emissions (biomass_soil, all gases) - gross removals; negative = sink",
    kernel="fluxgraph.kernels.removals.net_flux",
    spec="spec/stages.md §12b",
)
