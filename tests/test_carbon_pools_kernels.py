"""Tests of the carbon-pool kernels (fluxgraph.kernels.carbon_pools).

Authority: spec/stages.md §11, §16 and Appendix B. The original's shipped deadwood /
litter values (float32 equality), bit-for-bit agreement with the numpy reference
(tests/reference/removals_numpy.py), the corrected-behaviour flags, and the real
20 × 40000 strip of tile 00N_000E: pools by hand on explicit pixels, the mangrove
extent cast oddity (9 of 7685 mangrove pixels) and the original's AGC in the loss
year reproduced bit for bit through the whole removals chain.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fluxgraph.kernels.carbon_pools import (
    agc_2000,
    carbon_pools_2000,
    carbon_pools_emis_year,
    deadwood_litter_non_mangrove,
)
from fluxgraph.kernels.extent import model_extent
from fluxgraph.kernels.removals import (
    annual_removals_all_forest_types,
    annual_removals_ipcc,
    annual_removals_mangrove,
    forest_age_category,
    gain_year_count,
    gross_removals,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import removals_numpy as ref
from test_removals_kernels import CE_CODES, SHAPES, TABLES, f32, ints, same

from fluxgraph.tables import load_removal_tables

SETTINGS = settings(max_examples=50, deadline=None)
F = np.float32
DEFAULTS = load_removal_tables()


def ratio_dicts(tables):
    d = tables.dicts
    return {"bgb": d["mangrove_ratio_bgb"], "deadwood": d["mangrove_ratio_deadwood"],
            "litter": d["mangrove_ratio_litter"]}


# --------------------------------------------------------------------------- §11.3, §16 shipped tests


@pytest.mark.parametrize(
    ("agb", "domain", "elev", "precip", "deadwood", "litter"),
    [
        (1, 1, 1, 1, 0.0094, 0.0148),
        (100, 1, 1, 1600, 0.47, 0.37),
        (100, 1, 1, 1601, 2.82, 0.37),
        (100, 1, 2001, 1, 3.29, 0.37),
        (100, 2, 1, 1, 3.76, 1.48),
        (0, 1, 1, 1, 0.0, 0.0),
    ],
)
def test_deadwood_litter_shipped_values(agb, domain, elev, precip, deadwood, litter):
    """test_deadwood_litter_equations.py of the original: float32 inputs, float32 equality."""
    a = np.full((1, 2), agb, np.float32)
    d, lt = deadwood_litter_non_mangrove(a, np.full((1, 2), domain, np.float32), np.full((1, 2), elev, np.float32),
                                         np.full((1, 2), precip, np.float32))
    assert d.dtype == np.float32 and lt.dtype == np.float32
    assert np.all(d == np.float32(deadwood)) and np.all(lt == np.float32(litter))


@SETTINGS
@given(data=st.data(), shape=SHAPES, jpl=st.booleans())
def test_deadwood_litter_and_agc2000_match_reference(data, shape, jpl):
    agb = data.draw(f32(shape, lo=-5.0, hi=400.0)) if jpl else data.draw(ints(np.int16, shape, [0, 1, 7, 100, 327, -4]))
    dom = data.draw(ints(np.int16, shape, [0, 1, 1, 2, 3]))
    el = data.draw(ints(np.int16, shape, [0, -3, 1999, 2000, 2001, 4000]))
    pr = data.draw(ints(np.int32, shape, [0, 999, 1000, 1001, 1600, 1601, 3357]))
    mang = data.draw(f32(shape, lo=-1.0, hi=910.0))
    for g, e in zip(deadwood_litter_non_mangrove(agb, dom, el, pr), ref.deadwood_litter_non_mangrove(agb, dom, el, pr),
                    strict=True):
        same(g, e)
    same(agc_2000(agb, mang), ref.agc_2000(agb, mang))


# --------------------------------------------------------------------------- pools vs reference


def _pool_inputs(data, shape, jpl):
    return {
        "agb_whrc": data.draw(f32(shape, lo=0.0, hi=400.0)) if jpl
        else data.draw(ints(np.int16, shape, [0, 0, 8, 100, 272, 327])),
        "agb_mangrove": data.draw(f32(shape, lo=-1.0, hi=910.0)),
        "rft": data.draw(ints(np.uint8, shape, [0, 1, 2, 6, 6])),
        "ce": data.draw(ints(np.int16, shape, CE_CODES)),
        "r": data.draw(f32(shape, lo=0.0, hi=2.0)),
        "domain": data.draw(ints(np.int16, shape, [0, 1, 1, 3])),
        "elev": data.draw(ints(np.int16, shape, [0, 5, 2000, 2500])),
        "precip": data.draw(ints(np.int32, shape, [0, 900, 1200, 2400])),
        "soil": data.draw(ints(np.int16, shape, [0, 0, 45, 300, -2])),
    }


@SETTINGS
@given(data=st.data(), shape=SHAPES, jpl=st.booleans(), mang_present=st.booleans())
def test_carbon_pools_2000_matches_reference(data, shape, jpl, mang_present):
    x = _pool_inputs(data, shape, jpl)
    args = (x["agb_whrc"], x["agb_mangrove"], x["rft"], x["ce"], x["r"], x["domain"], x["elev"], x["precip"],
            x["soil"])
    got = carbon_pools_2000(*args, *TABLES.mangrove_ratio_lookups, mangrove_present=np.uint8(mang_present))
    exp = ref.carbon_pools_2000(*args, ratio_dicts(TABLES), mangrove_present=mang_present)
    for g, e in zip(got, exp, strict=True):
        same(g, e)


@SETTINGS
@given(data=st.data(), shape=SHAPES, jpl=st.booleans(), mang_present=st.booleans())
def test_carbon_pools_emis_year_matches_reference(data, shape, jpl, mang_present):
    x = _pool_inputs(data, shape, jpl)
    loss = data.draw(ints(np.uint8, shape, [0, 0, 1, 2, 16, 25]))
    gain = data.draw(ints(np.uint8, shape, [0, 0, 1, 2]))
    rate = data.draw(f32(shape, lo=-1.0, hi=10.0))
    agco2 = data.draw(f32(shape, lo=-10.0, hi=900.0))
    args = (loss, gain, x["rft"], x["agb_whrc"], x["agb_mangrove"], rate, agco2, x["ce"], x["r"], x["domain"],
            x["elev"], x["precip"], x["soil"])
    got = carbon_pools_emis_year(*args, *TABLES.mangrove_ratio_lookups, mangrove_present=np.uint8(mang_present))
    exp = ref.carbon_pools_emis_year(*args, ratio_dicts(TABLES), mangrove_present=mang_present)
    for g, e in zip(got, exp, strict=True):
        same(g, e)
    # broadcast (zero-stride) rows and 0-d absent layers equal their materialised copies
    b = [np.broadcast_to(a[:1], shape) for a in args]
    m = [np.ascontiguousarray(a) for a in b]
    for g, e in zip(carbon_pools_emis_year(*b, *TABLES.mangrove_ratio_lookups),
                    carbon_pools_emis_year(*m, *TABLES.mangrove_ratio_lookups), strict=True):
        same(g, e)


def test_carbon_pool_flags():
    """B.6 (mangType 4 → ratio 100) and B.7 (pass-through) and their corrected modes."""
    ce = np.int16([[1020, 1022, 9999, 1022]])
    agb_m = np.float32([[100.0, 100.0, 100.0, 0.0]])
    agb_w = np.int16([[0, 0, 0, 50]])
    rft = np.uint8([[6, 6, 6, 1]])
    r = np.full(ce.shape, 0.26, np.float32)
    dom, el, pr, soil = np.int16(1), np.int16(5), np.int32(2400), np.int16(0)
    _, bgc, dead, _, _ = carbon_pools_2000(agb_w, agb_m, rft, ce, r, dom, el, pr, soil,
                                           *TABLES.mangrove_ratio_lookups)
    agc_m = F(100.0) * F(0.45)
    assert bgc[0, 0] == agc_m * F(0.49)
    assert bgc[0, 1] == agc_m * F(100.0)  # water sentinel
    assert dead[0, 1] == F(F(100.0) * F(100.0)) * F(0.45)  # 45 × AGB
    assert bgc[0, 2] == agc_m * F(9999.0)  # pass-through of the code
    assert dead[0, 3] == F(50 * 0.06 * 0.47)  # non-mangrove pixel of a water code: 0 × 100 + WHRC deadwood
    _, bgc2, dead2, _, _ = carbon_pools_2000(agb_w, agb_m, rft, ce, r, dom, el, pr, soil,
                                                    *TABLES.mangrove_ratio_lookups, passthrough=False,
                                                    mangtype4_ratio100=False)
    np.testing.assert_array_equal(bgc2[0, :3], [agc_m * F(0.49), agc_m * F(0.26), agc_m * F(0.26)])
    np.testing.assert_array_equal(dead2[0], [F(F(100.0) * F(0.123)) * F(0.45), 0.0, 0.0, F(50 * 0.06 * 0.47)])
    # B.4: mangrove litter C fraction 0.45 (original) or 0.37 (corrected)
    _, _, _, litt3, _ = carbon_pools_2000(agb_w, agb_m, rft, ce, r, dom, el, pr, soil,
                                          *TABLES.mangrove_ratio_lookups, mangrove_litter_c045=False)
    assert litt3[0, 0] == F(F(100.0) * F(0.008)) * F(0.37)


def test_emis_year_explicit():
    """Loss-only uses AGCO2/(44/12), loss-and-gain uses rate·(Lyr−1); no removal type → no carbon (B.3)."""
    loss = np.uint8([[16, 16, 16, 0]])
    gain = np.uint8([[0, 1, 0, 0]])
    rft = np.uint8([[1, 1, 0, 1]])
    agb_w = np.int16([[100, 100, 100, 100]])
    z = np.float32(0)
    rate = np.float32([[1.3 * 0.47, 1.3 * 0.47, 0.0, 1.3 * 0.47]])  # type 0 → no removal factor (§8)
    agco2 = rate * np.float32(15) * np.float32(44 / 12)
    agc, bgc, dead, litt, soil, total = carbon_pools_emis_year(
        loss, gain, rft, agb_w, z, rate, agco2, np.int16(1020), np.float32(0.26), np.int16(1), np.int16(5),
        np.int32(2400), np.int16(60), *DEFAULTS.mangrove_ratio_lookups)
    base = F(100 * 0.47)
    assert agc[0, 0] == base + agco2[0, 0] / F(44 / 12)
    assert agc[0, 1] == base + rate[0, 1] * F(15)
    assert agc[0, 2] == 0 and agc[0, 3] == 0
    np.testing.assert_array_equal(soil[0], [60, 60, 0, 0])
    np.testing.assert_array_equal(dead[0] > 0, [True, True, False, False])
    assert total[0, 0] == agc[0, 0] + bgc[0, 0] + dead[0, 0] + litt[0, 0] + F(60)
    # B.3 corrected: AGC 2000 enters wherever the pixel is in the model extent
    agc_e, *_ = carbon_pools_emis_year(
        loss, gain, rft, agb_w, z, rate, agco2, np.int16(1020), np.float32(0.26), np.int16(1), np.int16(5),
        np.int32(2400), np.int16(60), *DEFAULTS.mangrove_ratio_lookups, agc_masked_by_removal_type=False,
        extent=np.uint8(1))
    assert agc_e[0, 2] == base and agc_e[0, 0] == agc[0, 0]
    with pytest.raises(ValueError, match="extent"):
        carbon_pools_emis_year(loss, gain, rft, agb_w, z, rate, agco2, np.int16(1020), np.float32(0.26),
                               np.int16(1), np.int16(5), np.int32(2400), np.int16(60),
                               *DEFAULTS.mangrove_ratio_lookups, agc_masked_by_removal_type=False)


# --------------------------------------------------------------------------- the real strip

LAYERS = {
    "agb_whrc": "t_aboveground_biomass_ha_2000",
    "agb_mangrove": "mangrove_agb_t_ha_2000",
    "ce": "fao_ecozones_continents_processed",
    "domain": "fao_ecozones_bor_tem_tro_processed",
    "elev": "elevation",
    "precip": "precip_mm_annual",
    "agc_emis": "Mg_AGC_ha_emis_year",
}


@pytest.fixture(scope="module")
def strip():
    """The seven layers of the strip (FLUXGRAPH_SAMPLE_DIR or ../shared/data/gfw_test_strip), read once."""
    rasterio = pytest.importorskip("rasterio")
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gfw_test_strip"
    folder = Path(os.environ.get("FLUXGRAPH_SAMPLE_DIR", default))
    if not folder.is_dir():
        pytest.skip(f"real GFW test strip not found at {folder} (set FLUXGRAPH_SAMPLE_DIR)")
    out = {}
    for key, layer in LAYERS.items():
        path = folder / f"00N_000E_{layer}_top_005deg.tif"
        if not path.exists():
            pytest.skip(f"{path.name} missing from {folder}")
        with rasterio.open(path) as src:
            out[key] = src.read(1)
    return out


def test_strip_inputs_have_the_original_dtypes(strip):
    assert strip["agb_whrc"].dtype == np.int16 and strip["agb_mangrove"].dtype == np.float32
    assert strip["ce"].dtype == np.int16 and strip["precip"].dtype == np.int32
    assert strip["agb_whrc"].shape == (20, 40000)


def test_strip_mangrove_extent_cast_oddity(strip):
    """§5 / B.1: 9 of the 7685 mangrove pixels fail ``uint8(AGB_M) > 1`` (all AGB < 2)."""
    m = strip["agb_mangrove"]
    z = np.uint8(0)
    e = model_extent(z, np.int16(0), m, z)
    mangrove = m > 0
    assert mangrove.sum() == 7685
    fail = mangrove & (e == 0)
    assert fail.sum() == 9
    assert np.all(m[fail] < 2)
    assert fail.sum() == (mangrove & (model_extent(z, np.int16(0), m, z, mangrove_cast_wrap=False) == 0)).sum()


def test_strip_carbon_pools_2000(strip):
    s = strip
    rft = np.where(s["agb_mangrove"] > 0, 6, np.where(s["agb_whrc"] > 0, 1, 0)).astype(np.uint8)
    r = np.broadcast_to(np.float32(0.26), rft.shape)  # BGB:AGB tile absent → 0.26
    soil = np.int16(0)
    args = (s["agb_whrc"], s["agb_mangrove"], rft, s["ce"], r, s["domain"], s["elev"], s["precip"], soil)
    agc, bgc, dead, litt, total = carbon_pools_2000(*args, *DEFAULTS.mangrove_ratio_lookups)
    for g, e in zip((agc, bgc, dead, litt, total), ref.carbon_pools_2000(*args, ratio_dicts(DEFAULTS)), strict=True):
        same(g, e)

    # mangrove pixel (code 1020 = tropical wet: BGB 0.49, deadwood 0.123, litter 0.008; C fraction 0.45)
    i, j = 10, 39243
    m = s["agb_mangrove"][i, j]
    assert s["ce"][i, j] == 1020 and m == np.float32(42.636204) and s["agb_whrc"][i, j] == 258
    assert agc[i, j] == m * F(0.45)
    assert bgc[i, j] == (m * F(0.45)) * F(0.49)
    assert dead[i, j] == (m * F(0.123)) * F(0.45)
    assert litt[i, j] == (m * F(0.008)) * F(0.45)  # mangrove litter uses 0.45, not 0.37 (B.4)
    # non-mangrove pixel, tropical, El 21 m, Pr 2378 mm > 1600: deadwood 0.06, litter 0.01 (float64 products)
    i, j = 9, 39980
    assert (s["agb_whrc"][i, j], s["elev"][i, j], s["precip"][i, j]) == (224, 21, 2378)
    assert agc[i, j] == F(224 * 0.47)
    assert bgc[i, j] == F(224 * 0.47) * F(0.26)
    assert dead[i, j] == F(224 * 0.06 * 0.47) and litt[i, j] == F(224 * 0.01 * 0.37)
    # precipitation nodata (0) falls in the lowest class (B.5): deadwood 0.02, litter 0.04
    i, j = 9, 37393
    assert (s["agb_whrc"][i, j], s["precip"][i, j]) == (50, 0)
    assert dead[i, j] == F(50 * 0.02 * 0.47) and litt[i, j] == F(50 * 0.04 * 0.37)
    # AGC 2000 alone equals the pool kernel's AGC
    same(agc_2000(s["agb_whrc"], s["agb_mangrove"]), agc)


def test_strip_agc_emis_year_reproduces_the_original(strip):
    """Rebuild the loss year of the original's loss pixels and run extent → … → carbon pools.

    The original's ``Mg_AGC_ha_emis_year`` strip minus AGC2000 is an integer number of
    years times the removal factor: 0.45 × 9.9 on the 13 mangrove loss pixels (code 1020,
    shipped default mangrove rate 9.9) and 0.47 × 1.3 (IPCC primary rainforest, Africa)
    on most non-mangrove ones. With that loss year the kernels must give the original's
    float32 values bit for bit, and AGC_emis − 0.45·AGB_M = 66.825 = 0.45 × 9.9 × 15
    (§11.1 check value) where 15 years of removals preceded the loss.
    """
    s = strip
    agc_orig, m, w, ce = s["agc_emis"], s["agb_mangrove"], s["agb_whrc"], s["ce"]
    shape = agc_orig.shape
    base = agc_2000(w, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_mang = (agc_orig - base) / (0.45 * 9.9)
        n_prim = (agc_orig - base) / (0.47 * 1.3)
    sel_mang = (agc_orig > 0) & (m > 0)
    sel_prim = (agc_orig > 0) & (m == 0) & (np.abs(n_prim - np.round(n_prim)) < 1e-4) & (np.round(n_prim) > 0)
    assert sel_mang.sum() == 13
    assert sel_prim.sum() > 100
    assert np.all(np.abs(n_mang[sel_mang] - np.round(n_mang[sel_mang])) < 1e-4)
    loss = np.zeros(shape, np.uint8)
    loss[sel_mang] = np.round(n_mang[sel_mang]).astype(np.uint8) + 1
    loss[sel_prim] = np.round(n_prim[sel_prim]).astype(np.uint8) + 1
    sel = sel_mang | sel_prim
    gain = np.uint8(0)
    extent = sel.astype(np.uint8)
    primary = sel_prim.astype(np.uint8)
    r = np.broadcast_to(np.float32(0.26), shape)
    zero_f = np.broadcast_to(np.float32(0), shape)

    m_agb, m_bgb, m_sd = annual_removals_mangrove(ce, m, *DEFAULTS.mangrove_rate_lookups)
    age = forest_age_category(extent, loss, gain, ce, w, primary, np.uint8(1), *DEFAULTS.young_rate_lookup)
    assert np.all(age[sel_prim] == 3)
    ipcc_agb, _, ipcc_sd = annual_removals_ipcc(age, ce, r, *DEFAULTS.ipcc_lookups)
    rft, agc_rate, bgc_rate, _, _ = annual_removals_all_forest_types(
        extent, age, r, ipcc_agb, ipcc_sd, *[zero_f] * 8, m_agb, m_bgb, m_sd,
        np.uint8(1), np.uint8(0), np.uint8(0), np.uint8(0), np.uint8(0), np.uint8(1))
    assert np.all(rft[sel_mang] == 6) and np.all(rft[sel_prim] == 1)
    *_, years = gain_year_count(loss, gain, extent, np.uint8(1), np.uint8(1))
    agco2, _, _ = gross_removals(agc_rate, bgc_rate, years)
    agc, _, dead, litt, _, _ = carbon_pools_emis_year(
        loss, gain, rft, w, m, agc_rate, agco2, ce, r, s["domain"], s["elev"], s["precip"], np.int16(0),
        *DEFAULTS.mangrove_ratio_lookups)
    np.testing.assert_array_equal(agc[sel].view(np.uint32), agc_orig[sel].view(np.uint32))
    np.testing.assert_array_equal(agc[~sel], 0)
    fifteen = sel_mang & (loss == 16)
    assert fifteen.sum() >= 5
    np.testing.assert_allclose(agc[fifteen] - m[fifteen] * F(0.45), 66.825, atol=2e-5)
    # deadwood and litter in the loss year: the 2000 values on these pixels
    _, _, dead0, litt0, _ = carbon_pools_2000(w, m, rft, ce, r, s["domain"], s["elev"], s["precip"], np.int16(0),
                                              *DEFAULTS.mangrove_ratio_lookups)
    same(dead, np.where(sel, dead0, 0).astype(np.float32))
    same(litt, np.where(sel, litt0, 0).astype(np.float32))
