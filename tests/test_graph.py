"""Planning and building the stage graph (toy stages around numpy kernels)."""

from __future__ import annotations

import numpy as np
import pytest
from fluxgraph.stages._apply import apply_kernel

from fluxgraph.config import load_config
from fluxgraph.errors import MissingLayerError, PlanError
from fluxgraph.graph import Stage, build, plan
from fluxgraph.mosaic import Mosaic, Region


def _extent(tcd, agb):
    return ((tcd > 0) & (agb > 0)).astype(np.uint8)


def _age(extent, loss):
    return np.where(extent == 1, np.where(loss > 0, 1, 2), 0).astype(np.uint8)


EXTENT = Stage("model_extent", outputs=("model_extent",), inputs=("tcd2000",), optional=("agb_2000",),
               compute=lambda ctx: {"model_extent": apply_kernel(_extent, ctx["tcd2000"], ctx["agb_2000"],
                                                                 output_dtypes=["uint8"])[0]})
AGE = Stage("forest_age_category_IPCC", outputs=("forest_age_category",), inputs=("model_extent", "loss_year"),
            compute=lambda ctx: {"forest_age_category": apply_kernel(_age, ctx["model_extent"], ctx["loss_year"],
                                                                     output_dtypes=["uint8"])[0]})
US = Stage("annual_removals_us", outputs=("rf_agc_bgc_us",), inputs=("fia_region",),
           compute=lambda ctx: {"rf_agc_bgc_us": ctx["fia_region"].astype("float32")})
TOY = {s.name: s for s in (EXTENT, AGE, US)}
CFG = load_config()


def test_plan_orders_stages_and_reads_inputs():
    p = plan(["forest_age_category"], {"tcd2000", "loss_year", "agb_2000"}, config=CFG, stages=TOY)
    assert [s.name for s in p.stages] == ["model_extent", "forest_age_category_IPCC"]
    assert p.read == {"tcd2000", "loss_year", "agb_2000"} and not p.filled


def test_supplied_intermediate_short_circuits_its_stage():
    p = plan(["forest_age_category"], {"model_extent", "loss_year"}, config=CFG, stages=TOY)
    assert [s.name for s in p.stages] == ["forest_age_category_IPCC"]
    assert "model_extent" in p.read and "tcd2000" not in p.read


def test_optional_input_filled_or_computed_when_feasible():
    stage = Stage("x", outputs=("model_extent",), inputs=("tcd2000",), optional=("rf_agc_bgc_us",),
                  compute=lambda ctx: {})
    stages = {**TOY, "model_extent": stage}
    stages.pop("forest_age_category_IPCC")
    assert plan(["model_extent"], {"tcd2000"}, config=CFG, stages=stages).filled == {"rf_agc_bgc_us"}
    p = plan(["model_extent"], {"tcd2000", "fia_region"}, config=CFG, stages=stages)
    assert [s.name for s in p.stages] == ["annual_removals_us", "x"]


def test_missing_required_input_is_an_error():
    with pytest.raises(MissingLayerError, match=r"'loss_year'.*stage forest_age_category_IPCC"):
        plan(["forest_age_category"], {"tcd2000"}, config=CFG, stages=TOY)


def test_build_computes_lazily_and_checks_dtypes(tmp_path, write_tile):
    tcd = np.array([[0, 50], [80, 90]], "uint8").repeat(200, 0).repeat(200, 1)
    loss = np.array([[0, 0], [3, 0]], "uint8").repeat(200, 0).repeat(200, 1)
    write_tile(tmp_path, "tcd2000", "00N_000E", tcd)
    write_tile(tmp_path, "loss_year", "00N_000E", loss)
    m = Mosaic([tmp_path], Region.parse(tiles="00N_000E"))
    part = m.parts[0]
    p = plan(["forest_age_category"], m.available(part.tile), config=CFG, stages=TOY)
    assert p.filled == {"agb_2000"}  # absent optional layer reads as zeros
    arrays = build(p, read=lambda n: m.read(n, part.window), present=lambda n: m.present(n, part.window), config=CFG)
    age = arrays["forest_age_category"]
    assert age.attrs["units"] == "class" and age.chunks is not None
    assert int(age.sum()) == 0  # agb filled with 0 -> no extent
    bad = Stage("model_extent", outputs=("model_extent",), inputs=("tcd2000",),
                compute=lambda ctx: {"model_extent": ctx["tcd2000"].astype("float32")})
    p2 = plan(["model_extent"], {"tcd2000"}, config=CFG, stages={"model_extent": bad})
    with pytest.raises(PlanError, match="dtype float32"):
        build(p2, read=lambda n: m.read(n, part.window), present=lambda n: m.present(n, part.window), config=CFG)
