"""Stage ``gain_year_count`` (spec/stages.md §9): years of removals per pixel."""

from __future__ import annotations

from fluxgraph.kernels.removals import gain_year_count
from fluxgraph.stages._apply import apply_kernel

from fluxgraph.graph import Stage, StageContext

OUTPUTS = ("gain_year_count_loss_only", "gain_year_count_gain_only", "gain_year_count_no_change",
           "gain_year_count_loss_and_gain", "gain_year_count")


def _compute(ctx: StageContext):
    outs = apply_kernel(
        gain_year_count, ctx["loss_year"], ctx["gain"], ctx["model_extent"], ctx.present("gain"),
        ctx.present("loss_year"), output_dtypes=["uint8"] * 5,
        loss_years=ctx.config.model_years, gain_years=int(ctx.config.data["model"]["gain_years"]),
        maxgain=bool(ctx.params.get("maxgain", False)),
        missing_gain_inverted=bool(ctx.params.get("missing_gain_inverted", True)),
    )
    return dict(zip(OUTPUTS, outs, strict=True))


STAGE = Stage(
    name="gain_year_count",
    outputs=OUTPUTS,
    inputs=("model_extent",),
    optional=("loss_year", "gain"),
    compute=_compute,
    description="years of removals: loss only, gain only, no change, loss and gain, and their sum",
    kernel="fluxgraph.kernels.removals.gain_year_count",
    spec="spec/stages.md §9",
)
