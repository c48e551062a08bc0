"""Tests of the removals kernels (fluxgraph.kernels.extent, fluxgraph.kernels.removals).

Authority: spec/stages.md §3–§10, §12b and Appendix B. Every kernel is compared bit for
bit (float32 bit patterns) with the independent numpy reference
tests/reference/removals_numpy.py, which replays the original's dictionary lookups;
broadcast (zero-stride) inputs must give the same results as materialised ones; the
corrected-behaviour flags are checked on explicit cases.
"""

from __future__ import annotations

import platform

import numpy as np
import pandas as pd
import pytest
from fluxgraph.kernels.extent import model_extent
from fluxgraph.kernels.removals import (
    annual_removals_all_forest_types,
    annual_removals_ipcc,
    annual_removals_mangrove,
    annual_removals_us,
    forest_age_category,
    gain_year_count,
    gross_removals,
    net_flux,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import removals_numpy as ref

from fluxgraph.tables import (
    SHEET_MANGROVE_GAIN,
    SHEET_MANGROVE_STDEV,
    SHEET_NATURAL_GAIN,
    SHEET_NATURAL_STDEV,
    build_removal_tables,
)

SETTINGS = settings(max_examples=50, deadline=None)
NAN = float("nan")

# A deliberately messy workbook: duplicated codes (first row wins), blank cells,
# a NaN mangType, a water mangType 4, and a value equal to a later key (11020) so that
# the original's sequential replacement chains (code 7, age 2 → 11020 → 7.6).
MESSY_SHEETS = {
    SHEET_NATURAL_GAIN: pd.DataFrame({
        "gainEcoCon": [1020, 1021, 1020, 2001, 4011, 7, 100],
        "growth_primary": [1.3, NAN, 9.0, NAN, 2.2, 5.0, NAN],
        "growth_secondary_greater_20": [3.5, 0.9, 9.0, NAN, NAN, 11020.0, 0.25],
        "growth_secondary_less_20": [7.6, NAN, 9.0, NAN, 3.3, 2.5, 1.75],
    }),
    SHEET_NATURAL_STDEV: pd.DataFrame({
        "gainEcoCon": [1020, 1021, 2001, 4011],
        "stdev_primary": [NAN, 0.1, NAN, 0.2],
        "stdev_secondary_greater_20": [3.3, NAN, 0.5, 0.3],
        "stdev_secondary_less_20": [5.9, 0.05, NAN, 0.4],
    }),
    SHEET_MANGROVE_GAIN: pd.DataFrame({
        "gainEcoCon": [1020, 1022, 1020, 2001, 5, 4011],
        "mangType": [2, 4, 1, 3, NAN, 1],
        "AGB_gain_tons_ha_yr": [9.9, 1.0, 3.3, NAN, 2.0, 3.3],
    }),
    SHEET_MANGROVE_STDEV: pd.DataFrame({
        "gainEcoCon": [1020, 2001, 1022],
        "AGB_gain_stdev_tons_ha_yr": [0.255, NAN, 0.1],
    }),
}
US_SHEET = pd.DataFrame({
    "FIA_region_code": [1, 1, 3, 2, 7],
    "forest_group_code": [2, 2, 0, 5, 120],
    "growth_young": [1.1, 1.5, 0.7, NAN, 2.25],
    "growth_middle": [2.2, 2.5, NAN, 0.9, 1.0],
    "growth_old": [NAN, 0.5, 0.3, 0.4, 0.2],
    "SD_young": [0.11, 0.15, NAN, 0.2, 0.3],
    "SD_middle": [0.22, NAN, 0.01, 0.09, 0.1],
    "SD_old": [0.1, 0.05, 0.03, NAN, 0.02],
})
TABLES = build_removal_tables(MESSY_SHEETS, source="messy test sheets", us=US_SHEET)

CE_CODES = [0, 1020, 1020, 1021, 1022, 2001, 4011, 7, 100, 5, 9999, -3, 32767]
SHAPES = st.tuples(st.integers(1, 4), st.integers(1, 6))


def f32(shape, *, nan=True, lo=-50.0, hi=50.0):
    base = st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False)
    special = st.sampled_from([0.0, 0.0, 0.0, 1.0, -0.0, 0.26, 255.5] + ([NAN] if nan else []))
    return hnp.arrays(np.float32, shape, elements=st.one_of(base, special))


def ints(dtype, shape, values):
    return hnp.arrays(dtype, shape, elements=st.sampled_from(values))


def same(a, b):
    """Bit-for-bit equality, float32 compared through their uint32 patterns."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.shape == b.shape
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    if a.dtype == np.float32:
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    else:
        np.testing.assert_array_equal(a, b)


def row_broadcast(x):
    """A zero-stride view repeating the first row (and its materialised copy)."""
    b = np.broadcast_to(x[:1], x.shape)
    return b, np.ascontiguousarray(b)


# --------------------------------------------------------------------------- §5 model extent


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="numpy's float→uint8 cast wraps on x86 only")
@SETTINGS
@given(data=st.data(), shape=SHAPES)
def test_model_extent_matches_reference(data, shape):
    tcd = data.draw(ints(np.uint8, shape, [0, 0, 1, 30, 31, 100]))
    agb = data.draw(ints(np.int16, shape, [0, 0, 1, 5, 327, -2]))
    mang = data.draw(f32(shape, lo=-300.0, hi=1000.0))
    mang.flat[: min(mang.size, 6)] = np.float32([1.2597331, 2.0, 256.3, 512.8, 257.5, NAN])[: min(mang.size, 6)]
    gain = data.draw(ints(np.uint8, shape, [0, 1, 2]))
    same(model_extent(tcd, agb, mang, gain), ref.model_extent(tcd, agb, mang, gain))
    b, m = row_broadcast(mang)
    same(model_extent(tcd, agb, b, gain), model_extent(tcd, agb, m, gain))


def test_model_extent_cast_flag():
    mang = np.float32([[0.5, 1.26, 1.99, 2.0, 255.9, 256.3, 257.0, 512.8, 514.0, NAN, 3e9]])
    z8 = np.zeros(mang.shape, np.uint8)
    z16 = np.zeros(mang.shape, np.int16)
    wrap = model_extent(z8, z16, mang, z8)
    fixed = model_extent(z8, z16, mang, z8, mangrove_cast_wrap=False)
    np.testing.assert_array_equal(wrap[0], [0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(fixed[0], [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1])
    # TCD·AGB and gain rules, absent layers as 0-d / broadcast zeros
    e = model_extent(np.uint8([[31, 0, 5]]), np.int16([[1, 9, 0]]), np.uint8(0), np.uint8([[0, 0, 1]]))
    np.testing.assert_array_equal(e, [[1, 0, 1]])


# --------------------------------------------------------------------------- §3 mangrove


@SETTINGS
@given(data=st.data(), shape=SHAPES)
def test_annual_removals_mangrove_matches_reference(data, shape):
    ce = data.draw(ints(np.int16, shape, CE_CODES))
    agb = data.draw(f32(shape, lo=-5.0, hi=900.0))
    d = TABLES.dicts
    got = annual_removals_mangrove(ce, agb, *TABLES.mangrove_rate_lookups)
    exp = ref.annual_removals_mangrove(ce, agb, d["mangrove_agb_rate"], d["mangrove_bgb_rate"], d["mangrove_agb_sd"])
    for g, e in zip(got, exp, strict=True):
        same(g, e)
    b, m = row_broadcast(ce)
    for g, e in zip(annual_removals_mangrove(b, agb, *TABLES.mangrove_rate_lookups),
                    annual_removals_mangrove(m, agb, *TABLES.mangrove_rate_lookups), strict=True):
        same(g, e)


def test_mangrove_flags():
    ce = np.int16([[1020, 1022, 2001, 9999, 0]])
    agb = np.float32([[100.0, 0.0, 5.0, 3.0, 7.0]])
    a, b, _ = annual_removals_mangrove(ce, agb, *TABLES.mangrove_rate_lookups)
    np.testing.assert_array_equal(a[0], np.float32([9.9, 0.0, NAN, 9999.0, 0.0]))
    assert np.isnan(b[0, 1]) and np.isnan(b[0, 2])  # B.8: mangType 4 → NaN even without mangrove (NaN × 0)
    assert b[0, 0] == np.float32(9.9 * 0.49)  # BGB rate computed in float64, then float32
    a2, b2, _ = annual_removals_mangrove(ce, agb, *TABLES.mangrove_rate_lookups, passthrough=False,
                                          nan_rates=False)
    np.testing.assert_array_equal(a2[0], np.float32([9.9, 0.0, 0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(b2[0], np.float32([9.9 * 0.49, 0.0, 0.0, 0.0, 0.0]))


# --------------------------------------------------------------------------- §4 US


@SETTINGS
@given(data=st.data(), shape=SHAPES)
def test_annual_removals_us_matches_reference(data, shape):
    gain = data.draw(ints(np.uint8, shape, [0, 0, 1, 2]))
    age = data.draw(ints(np.uint8, shape, [0, 1, 2, 3, 7]))
    group = data.draw(ints(np.uint8, shape, [0, 2, 5, 120, 255]))
    region = data.draw(ints(np.uint8, shape, [0, 1, 2, 3, 7]))
    d = TABLES.dicts
    got = annual_removals_us(gain, age, group, region, *TABLES.us_lookups)
    exp = ref.annual_removals_us(gain, age, group, region, d["us_rate_age"], d["us_rate_young"], d["us_sd_age"],
                                 d["us_sd_young"])
    for g, e in zip(got, exp, strict=True):
        same(g, e)


def test_us_explicit():
    # (age 1, group 2, region 1) no gain → duplicated row: the later row wins (1.5)
    # gain pixel → young rate of group 2 / region 1; unknown combination → 0
    gain = np.uint8([[0, 1, 0, 0]])
    age = np.uint8([[1, 3, 3, 0]])
    group = np.uint8([[2, 2, 9, 2]])
    region = np.uint8([[1, 1, 1, 1]])
    rate, sd = annual_removals_us(gain, age, group, region, *TABLES.us_lookups)
    np.testing.assert_array_equal(rate[0], np.float32([1.5, 1.5, 0.0, 0.0]))
    np.testing.assert_array_equal(sd[0], np.float32([0.15, 0.15, 0.0, 0.0]))


# --------------------------------------------------------------------------- §6 age


@SETTINGS
@given(data=st.data(), shape=SHAPES, tropics=st.booleans())
def test_forest_age_category_matches_reference(data, shape, tropics):
    extent = data.draw(ints(np.uint8, shape, [0, 1, 1, 1, 2]))
    loss = data.draw(ints(np.uint8, shape, [0, 0, 1, 13, 25]))
    gain = data.draw(ints(np.uint8, shape, [0, 0, 1, 2]))
    ce = data.draw(ints(np.int16, shape, [0, 1020, 1020, 4011, 4011, 7, 100, 1021, 9999]))
    agb = data.draw(ints(np.int16, shape, [0, 35, 49, 50, 66, 140, 151, 152, 153, 300]))
    primary = data.draw(ints(np.uint8, shape, [0, 0, 1, 2]))
    try:
        exp = ref.forest_age_category(extent, loss, gain, ce, agb, primary, tropics, TABLES.dicts["young_rate"])
    except ref.OriginalCrashError:
        assume(False)
    truncated = (ce[:, :1] == 0).astype(np.uint8)  # per-row flag, (rows, 1) → broadcast over columns
    got = forest_age_category(extent, loss, gain, ce, agb, primary, np.uint8(tropics), *TABLES.young_rate_lookup,
                              young_rate_truncated=truncated)
    same(got, exp)
    b, m = row_broadcast(agb)
    same(forest_age_category(extent, loss, gain, ce, b, primary, np.uint8(tropics), *TABLES.young_rate_lookup),
         forest_age_category(extent, loss, gain, ce, m, primary, np.uint8(tropics), *TABLES.young_rate_lookup))


def test_forest_age_category_explicit():
    one = np.uint8([[1] * 7])
    loss = np.uint8([[0, 0, 5, 5, 5, 5, 5]])
    gain = np.uint8([[0, 0, 0, 0, 0, 1, 0]])
    ce = np.int16([[1020, 1020, 1020, 1020, 1020, 1020, 9999]])
    agb = np.int16([[0, 0, 152, 153, 10, 10, 10]])  # 20 × 7.6 = 152
    primary = np.uint8([[0, 1, 0, 0, 1, 1, 0]])
    young = TABLES.young_rate_lookup
    np.testing.assert_array_equal(forest_age_category(one, loss, gain, ce, agb, primary, np.uint8(1), *young),
                                  [[2, 3, 1, 2, 3, 1, 0]])
    np.testing.assert_array_equal(forest_age_category(one, loss, gain, ce, agb, primary, np.uint8(0), *young),
                                  [[2, 2, 1, 2, 3, 1, 0]])
    # truncation of the strip (first code 0): 20 × int(7.6) = 140; unknown code → rate 0 when corrected
    np.testing.assert_array_equal(
        forest_age_category(one, loss, gain, ce, agb, primary, np.uint8(0), *young,
                            young_rate_truncated=np.uint8(1), unknown_young_rate_nan=False),
        [[2, 2, 2, 2, 3, 1, 2]])


# --------------------------------------------------------------------------- §7 IPCC


@SETTINGS
@given(data=st.data(), shape=SHAPES)
def test_annual_removals_ipcc_matches_reference(data, shape):
    age = data.draw(ints(np.uint8, shape, [0, 1, 2, 3]))
    ce = data.draw(ints(np.int16, shape, CE_CODES))
    r = data.draw(f32(shape, lo=0.0, hi=2.0))
    d = TABLES.dicts
    got = annual_removals_ipcc(age, ce, r, *TABLES.ipcc_lookups)
    exp = ref.annual_removals_ipcc(age, ce, r, d["ipcc_rate"], d["ipcc_sd"])
    for g, e in zip(got, exp, strict=True):
        same(g, e)
    rb = np.broadcast_to(np.float32(0.26), shape)
    for g, e in zip(annual_removals_ipcc(age, ce, rb, *TABLES.ipcc_lookups),
                    annual_removals_ipcc(age, ce, np.ascontiguousarray(rb), *TABLES.ipcc_lookups), strict=True):
        same(g, e)


def test_ipcc_explicit():
    age = np.uint8([[1, 2, 3, 0, 2, 3, 1]])
    ce = np.int16([[1020, 1020, 1020, 1020, 7, 1021, 9999]])
    r = np.full(age.shape, 0.5, np.float32)
    agb, bgb, sd = annual_removals_ipcc(age, ce, r, *TABLES.ipcc_lookups)
    # first duplicate row wins; 7/age 2 chains 11020 → 7.6; blank 1021 primary passes 31021 through
    np.testing.assert_array_equal(agb[0], np.float32([7.6, 3.5, 1.3, 0.0, 7.6, 31021.0, 19999.0]))
    np.testing.assert_array_equal(bgb[0], agb[0] * np.float32(0.5))
    np.testing.assert_array_equal(sd[0], np.float32([5.9, 3.3, 11020.0 + 20000, 0.0, 20007.0, 0.1, 19999.0]))
    agb2, _, _ = annual_removals_ipcc(age, ce, r, *TABLES.ipcc_lookups, passthrough=False)
    np.testing.assert_array_equal(agb2[0], np.float32([7.6, 3.5, 1.3, 0.0, 7.6, 0.0, 0.0]))


# --------------------------------------------------------------------------- §8 composite

SOURCES = ("ipcc", "young", "us", "planted", "europe", "mangrove")


@SETTINGS
@given(data=st.data(), shape=SHAPES, flags=st.tuples(*[st.booleans()] * 6), no_prim=st.booleans())
def test_all_forest_types_matches_reference(data, shape, flags, no_prim):
    extent = data.draw(ints(np.uint8, shape, [0, 1, 1, 1, 2]))
    age = data.draw(ints(np.uint8, shape, [0, 1, 1, 2, 3]))
    r = data.draw(f32(shape, lo=0.0, hi=3.0))
    rates = [data.draw(f32(shape, lo=-1.0, hi=20.0)) for _ in range(13)]
    present = dict(zip(SOURCES, flags, strict=True))
    got = annual_removals_all_forest_types(extent, age, r, *rates, *[np.uint8(f) for f in flags],
                                           no_primary_gain=no_prim)
    exp = ref.annual_removals_all_forest_types(extent, age, r, *rates, present, no_primary_gain=no_prim)
    for g, e in zip(got, exp, strict=True):
        same(g, e)
    # the same with per-row broadcast present flags and a broadcast ratio
    b, m = row_broadcast(r)
    flags_b = [np.broadcast_to(np.full((shape[0], 1), f, np.uint8), shape) for f in flags]
    got_b = annual_removals_all_forest_types(extent, age, b, *rates, *flags_b, no_primary_gain=no_prim)
    got_m = annual_removals_all_forest_types(extent, age, m, *rates, *[np.ascontiguousarray(f) for f in flags_b],
                                             no_primary_gain=no_prim)
    for g, e in zip(got_b, got_m, strict=True):
        same(g, e)


def test_all_forest_types_explicit():
    shape = (1, 6)
    e = np.ones(shape, np.uint8)
    e[0, 5] = 0
    age = np.uint8([[1, 1, 2, 1, 1, 1]])
    r = np.full(shape, 0.25, np.float32)
    z = np.zeros(shape, np.float32)
    ipcc = np.float32([[7.6, 7.6, 3.5, 0, 0, 7.6]])
    young = np.float32([[NAN, 2.0, 2.0, 0, 0, 0]])
    us = np.float32([[0, 0, 0, 5.0, 0, 0]])
    eu_sd = np.float32([[0, 0, 0, 0, 4.0, 0]])
    mang = np.float32([[0, 0, 0, 0, 9.9, 0]])
    t, agc, bgc, agc_bgc, sd = annual_removals_all_forest_types(
        e, age, r, ipcc, z, young, z, us, z, z, z, z, eu_sd, mang, z, z, *[np.uint8(1)] * 6)
    np.testing.assert_array_equal(t[0], [1, 2, 1, 3, 6, 0])
    f = np.float32
    np.testing.assert_array_equal(agc[0], [f(7.6) * f(0.47), 2.0, f(3.5) * f(0.47), f(5.0) / (f(1) + f(0.25)),
                                           f(9.9) * f(0.45), 0])
    assert bgc[0, 4] == 0  # mangrove BGC only where the BGB rate != 0 (B.17)
    assert sd[0, 4] == (f(4.0) / f(2)) / (f(1) + f(0.25))  # Europe stdev halved (B.16)
    np.testing.assert_array_equal(agc_bgc, agc + bgc)
    # a missing source (present 0) is skipped entirely
    t2, *_ = annual_removals_all_forest_types(
        e, age, r, ipcc, z, young, z, us, z, z, z, z, eu_sd, mang, z, z,
        np.uint8(1), np.uint8(1), np.uint8(0), np.uint8(1), np.uint8(1), np.uint8(1))
    assert t2[0, 3] == 0  # no IPCC rate there either


# --------------------------------------------------------------------------- §9 gain years


@SETTINGS
@given(data=st.data(), shape=SHAPES, gp=st.booleans(), lp=st.booleans(), maxgain=st.booleans())
def test_gain_year_count_matches_reference(data, shape, gp, lp, maxgain):
    loss = data.draw(ints(np.uint8, shape, [0, 0, 1, 2, 13, 24, 25]))
    gain = data.draw(ints(np.uint8, shape, [0, 0, 1, 2]))
    extent = data.draw(ints(np.uint8, shape, [0, 1, 1, 2]))
    loss = loss if lp else np.zeros_like(loss)
    gain = gain if gp else np.zeros_like(gain)
    got = gain_year_count(loss, gain, extent, np.uint8(gp), np.uint8(lp), maxgain=maxgain)
    exp = ref.gain_year_count(loss, gain, extent, gp, lp, maxgain=maxgain)
    for g, e in zip(got, exp, strict=True):
        same(g, e)


def test_gain_year_count_explicit():
    loss = np.uint8([[0, 0, 0, 1, 13, 25, 1, 13, 25, 5]])
    gain = np.uint8([[0, 1, 0, 0, 0, 0, 1, 1, 1, 0]])
    ext = np.uint8([[1, 1, 0, 1, 1, 1, 1, 1, 1, 0]])
    *_, lg, tot = gain_year_count(loss, gain, ext, np.uint8(1), np.uint8(1))
    np.testing.assert_array_equal(tot[0], [25, 10, 0, 0, 12, 24, 12, 18, 24, 0])
    np.testing.assert_array_equal(lg[0], [0, 0, 0, 0, 0, 0, 12, 18, 24, 0])
    *_, tot_m = gain_year_count(loss, gain, ext, np.uint8(1), np.uint8(1), maxgain=True)
    np.testing.assert_array_equal(tot_m[0], [25, 25, 0, 0, 12, 24, 24, 24, 24, 0])
    # B.9: gain tile missing → no-change = 25 on loss pixels only, no extent mask
    z = np.zeros_like(gain)
    *_, tot_b = gain_year_count(loss, z, ext, np.uint8(0), np.uint8(1))
    np.testing.assert_array_equal(tot_b[0], [0, 0, 0, 25, 25, 25, 25, 25, 25, 25])
    *_, tot_f = gain_year_count(loss, z, ext, np.uint8(0), np.uint8(1), missing_gain_inverted=False)
    np.testing.assert_array_equal(tot_f[0], [25, 25, 0, 0, 12, 24, 0, 12, 24, 0])


# --------------------------------------------------------------------------- §10, §12b


@SETTINGS
@given(data=st.data(), shape=SHAPES)
def test_gross_removals_and_net_flux_match_reference(data, shape):
    agc = data.draw(f32(shape, lo=-2.0, hi=20.0))
    bgc = data.draw(f32(shape, lo=-2.0, hi=20.0))
    years = data.draw(hnp.arrays(np.uint8, shape))
    got = gross_removals(agc, bgc, years)
    exp = ref.gross_removals(agc, bgc, years)
    for g, e in zip(got, exp, strict=True):
        same(g, e)
    emis = data.draw(f32(shape, lo=0.0, hi=3000.0))
    same(net_flux(emis, got[2]), ref.net_flux(emis, got[2]))
    yb, ym = row_broadcast(years)
    for g, e in zip(gross_removals(agc, bgc, yb), gross_removals(agc, bgc, ym), strict=True):
        same(g, e)
    same(net_flux(np.float32(0), got[2]), np.float32(0) - got[2])  # absent emission tile


def test_kernels_reject_bad_inputs():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        gross_removals(a, np.zeros((3, 2), np.float32), np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError, match="float32"):
        gross_removals(a.astype(np.float64), a, np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError, match="integer"):
        annual_removals_ipcc(np.zeros((2, 3), np.uint8), a, a, *TABLES.ipcc_lookups)
