"""Stage ``annual_removals_all_forest_types`` (spec/stages.md §8): the composite removal factor.

Sources by rank: mangrove > Europe > planted > US > young natural (Cook-Patton) > IPCC default.
A source is used on a tile only if all of its tiles exist there (B.16); the
``present`` flags carry that per-tile fact into the kernel.
"""

from __future__ import annotations

import xarray as xr
from fluxgraph.kernels.removals import annual_removals_all_forest_types
from fluxgraph.stages._apply import apply_kernel

from fluxgraph.graph import Stage, StageContext

SOURCES = {
    "ipcc": ("rf_agb_ipcc", "rf_stdev_agb_ipcc"),
    "young": ("rf_agc_young", "rf_stdev_agc_young"),
    "us": ("rf_agc_bgc_us", "rf_stdev_agc_bgc_us"),
    "planted": ("rf_agc_bgc_planted", "rf_stdev_agc_bgc_planted"),
    "europe": ("rf_agc_bgc_europe", "rf_stdev_agc_bgc_europe"),
    "mangrove": ("rf_agb_mangrove", "rf_bgb_mangrove", "rf_stdev_agb_mangrove"),
}


def _all_present(ctx: StageContext, names: tuple[str, ...]) -> xr.DataArray:
    flag = ctx.present(names[0])
    for name in names[1:]:
        flag = flag & ctx.present(name)
    return flag


def _compute(ctx: StageContext):
    rates = [ctx[n] for names in SOURCES.values() for n in names]
    present = [_all_present(ctx, names) for names in SOURCES.values()]
    outs = apply_kernel(
        annual_removals_all_forest_types, ctx["model_extent"], ctx["forest_age_category"], ctx["bgb_agb_ratio"],
        *rates, *present, output_dtypes=["uint8"] + ["float32"] * 4,
        no_primary_gain=bool(ctx.config.stage_params("removals").get("no_primary_gain", False)),
    )
    names = ("removal_forest_type", "rf_agc_all", "rf_bgc_all", "rf_agc_bgc_all", "rf_stdev_agc_all")
    return dict(zip(names, outs, strict=True))


STAGE = Stage(
    name="annual_removals_all_forest_types",
    outputs=("removal_forest_type", "rf_agc_all", "rf_bgc_all", "rf_agc_bgc_all", "rf_stdev_agc_all"),
    inputs=("model_extent", "forest_age_category"),
    optional=("bgb_agb_ratio", *(n for names in SOURCES.values() for n in names)),
    compute=_compute,
    description="composite AGC/BGC removal factors from the most specific source, and the source type",
    kernel="fluxgraph.kernels.removals.annual_removals_all_forest_types",
    spec="spec/stages.md §8",
)
