"""Synthetic demo source (`fluxgraph.demo`): determinism, dtypes, value ranges, code coverage, pixel area."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxgraph.demo import (
    DEMO_LAYERS,
    DEMO_REGION_TILES,
    N_GLOBAL_COLS,
    N_GLOBAL_ROWS,
    PIXEL_DEG,
    US_FOREST_GROUP_CODES,
    demo_block,
    demo_blocks,
    demo_window,
    tile_pixel_origin,
)

REPO = Path(__file__).resolve().parents[1]
ECOZONE_CSV = REPO.parent / "shared" / "data" / "removal_factors" / "ecozone_codes.csv"
LAYERS = list(DEMO_LAYERS)
WINDOW = 1000
TROPICAL = ("00N_110E", "10N_050E")

EXPECTED_LAYERS = {
    "loss_year": np.uint8,
    "gain": np.uint8,
    "tcd2000": np.uint8,
    "pixel_area": np.float32,
    "agb_2000": np.int16,
    "mangrove_agb_2000": np.float32,
    "continent_ecozone": np.int16,
    "climate_domain": np.int16,
    "climate_zone": np.uint8,
    "elevation": np.int16,
    "precipitation": np.int32,
    "bgb_agb_ratio": np.float32,
    "rf_agc_young": np.float32,
    "rf_stdev_agc_young": np.float32,
    "rf_agc_bgc_europe": np.float32,
    "rf_stdev_agc_bgc_europe": np.float32,
    "rf_agc_bgc_planted": np.float32,
    "rf_stdev_agc_bgc_planted": np.float32,
    "rf_agc_planted": np.float32,
    "rf_stdev_agc_planted": np.float32,
    "plantation_type": np.uint8,
    "plantation_pre2000": np.uint8,
    "ifl_primary": np.uint8,
    "fia_region": np.uint8,
    "fia_forest_group": np.uint8,
    "us_age_category": np.uint8,
    "drivers": np.uint8,
    "tclf": np.uint8,
    "peat": np.uint8,
    "soil_c_2000": np.int16,
    "agb_2000_jpl": np.float32,
}


@pytest.fixture(scope="module")
def windows() -> dict[str, dict[str, np.ndarray]]:
    """Every layer on the 1000 x 1000 top-left window of each demo tile (seed 0)."""
    return {t: demo_blocks(LAYERS, *demo_window(t, WINDOW)) for t in DEMO_REGION_TILES}


def _lat_lon(tile: str, size: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    r0, r1, c0, c1 = demo_window(tile, size)
    lat = 90.0 - (np.arange(r0, r1) + 0.5) * PIXEL_DEG
    lon = -180.0 + (np.arange(c0, c1) + 0.5) * PIXEL_DEG
    return lat, lon


def _union(windows, layer: str) -> set[int]:
    return set().union(*(np.unique(w[layer]).tolist() for w in windows.values()))


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------


def test_layer_names_and_dtypes():
    assert set(DEMO_LAYERS) == set(EXPECTED_LAYERS)
    for name, dtype in EXPECTED_LAYERS.items():
        assert DEMO_LAYERS[name] == np.dtype(dtype), name
    assert DEMO_REGION_TILES == ("00N_110E", "10N_050E", "30N_090W", "70N_000E")


def test_unknown_layer_raises_keyerror_listing_layers():
    with pytest.raises(KeyError) as err:
        demo_block("no_such_layer", 0, 10, 0, 10)
    assert "no_such_layer" in str(err.value)
    for name in ("loss_year", "tcd2000", "agb_2000_jpl"):
        assert name in str(err.value)
    with pytest.raises(KeyError):
        demo_blocks(["tcd2000", "nope"], 0, 10, 0, 10)


@pytest.mark.parametrize(
    "bounds", [(-1, 5, 0, 5), (5, 4, 0, 5), (0, 5, 10, 9), (0, N_GLOBAL_ROWS + 1, 0, 5), (0, 5, 0, N_GLOBAL_COLS + 1)]
)
def test_out_of_grid_raises(bounds):
    with pytest.raises(ValueError):
        demo_block("tcd2000", *bounds)


def test_empty_and_edge_blocks():
    assert demo_block("gain", 100, 100, 0, 7).shape == (0, 7)
    assert demo_block("gain", 100, 103, 5, 5).shape == (3, 0)
    for name in LAYERS:  # the grid's corners are valid blocks
        a = demo_block(name, N_GLOBAL_ROWS - 3, N_GLOBAL_ROWS, N_GLOBAL_COLS - 4, N_GLOBAL_COLS)
        b = demo_block(name, 0, 2, 0, 5)
        assert a.shape == (3, 4) and b.shape == (2, 5)
        assert a.dtype == DEMO_LAYERS[name] and b.dtype == DEMO_LAYERS[name]


def test_tile_helpers():
    assert tile_pixel_origin("00N_110E") == (360000, 1160000)
    assert tile_pixel_origin("70N_000E") == (80000, 720000)
    assert tile_pixel_origin("30N_090W") == (240000, 360000)
    assert tile_pixel_origin("10S_040E") == (400000, 880000)
    assert demo_window("10N_050E", 7) == (320000, 320007, 920000, 920007)
    with pytest.raises(ValueError):
        tile_pixel_origin("00X_110E")


def test_demo_block_matches_demo_blocks():
    r0, _, c0, _ = demo_window("00N_110E")
    together = demo_blocks(LAYERS, r0 + 100, r0 + 180, c0 + 33, c0 + 140)
    for name in LAYERS:
        alone = demo_block(name, r0 + 100, r0 + 180, c0 + 33, c0 + 140)
        assert alone.dtype == DEMO_LAYERS[name]
        np.testing.assert_array_equal(alone, together[name], err_msg=name)


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------

# block origins near the demo tiles and elsewhere (tropics, subtropics, Europe, US, boreal, south)
_ANCHORS = [tile_pixel_origin(t) for t in (*DEMO_REGION_TILES, "20S_130E", "50N_010E", "40N_080W", "40S_170E")]


@st.composite
def _split_window(draw):
    ar, ac = draw(st.sampled_from(_ANCHORS))
    r0 = ar + draw(st.integers(0, 4000))
    c0 = ac + draw(st.integers(0, 4000))
    h = draw(st.integers(1, 90))
    w = draw(st.integers(1, 120))
    rc = sorted(set(draw(st.lists(st.integers(1, h - 1), max_size=3)))) if h > 1 else []
    cc = sorted(set(draw(st.lists(st.integers(1, w - 1), max_size=3)))) if w > 1 else []
    seed = draw(st.sampled_from([0, 1, 12345, -7]))
    return r0, c0, [0, *rc, h], [0, *cc, w], seed


@given(_split_window())
@settings(deadline=None)
def test_any_block_decomposition_gives_identical_values(case):
    r0, c0, rcuts, ccuts, seed = case
    whole = demo_blocks(LAYERS, r0, r0 + rcuts[-1], c0, c0 + ccuts[-1], seed=seed)
    for i in range(len(rcuts) - 1):
        for j in range(len(ccuts) - 1):
            part = demo_blocks(LAYERS, r0 + rcuts[i], r0 + rcuts[i + 1], c0 + ccuts[j], c0 + ccuts[j + 1], seed=seed)
            for name in LAYERS:
                ref = whole[name][rcuts[i] : rcuts[i + 1], ccuts[j] : ccuts[j + 1]]
                assert part[name].dtype == ref.dtype
                assert np.array_equal(part[name], ref, equal_nan=True), (name, i, j)


@pytest.mark.parametrize("tile", DEMO_REGION_TILES)
def test_irregular_tiling_of_a_demo_window_is_exact(tile):
    """A 317 x 411 window with content (mangroves, plantations, loss…) cut into 4 x 5 uneven blocks."""
    r0, _, c0, _ = demo_window(tile)
    r0, c0 = r0 + 211, c0 + 389
    rcuts = [0, 1, 40, 203, 317]
    ccuts = [0, 9, 50, 51, 300, 411]
    whole = demo_blocks(LAYERS, r0, r0 + rcuts[-1], c0, c0 + ccuts[-1])
    mosaic = {name: np.zeros_like(a) for name, a in whole.items()}
    for i in range(len(rcuts) - 1):
        for j in range(len(ccuts) - 1):
            rs, cs = slice(rcuts[i], rcuts[i + 1]), slice(ccuts[j], ccuts[j + 1])
            part = demo_blocks(LAYERS, r0 + rs.start, r0 + rs.stop, c0 + cs.start, c0 + cs.stop)
            for name in LAYERS:
                mosaic[name][rs, cs] = part[name]
    for name in LAYERS:
        assert np.array_equal(mosaic[name], whole[name], equal_nan=True), name


def test_same_seed_same_values_different_seed_different_values():
    size = 400
    differs = dict.fromkeys(LAYERS, False)
    for tile in DEMO_REGION_TILES:
        bounds = demo_window(tile, size)
        a = demo_blocks(LAYERS, *bounds, seed=3)
        b = demo_blocks(LAYERS, *bounds, seed=3)
        c = demo_blocks(LAYERS, *bounds, seed=4)
        for name in LAYERS:
            assert np.array_equal(a[name], b[name], equal_nan=True), name
            differs[name] |= not np.array_equal(a[name], c[name], equal_nan=True)
    # pixel area is a property of the grid, not of the synthetic world
    assert not differs.pop("pixel_area")
    assert all(differs.values()), [k for k, v in differs.items() if not v]


# ---------------------------------------------------------------------------------------------
# Dtypes and value ranges
# ---------------------------------------------------------------------------------------------


def test_dtypes_and_shapes(windows):
    for w in windows.values():
        for name in LAYERS:
            assert w[name].dtype == DEMO_LAYERS[name], name
            assert w[name].shape == (WINDOW, WINDOW), name
            if w[name].dtype.kind == "f" and name not in ("rf_agc_young", "rf_stdev_agc_young"):
                assert np.isfinite(w[name]).all(), name


def test_forest_structure(windows):
    for tile, w in windows.items():
        tcd, agb = w["tcd2000"], w["agb_2000"]
        assert tcd.max() <= 100
        forest = tcd > 30
        assert forest.mean() > 0.1, tile  # forest present in every demo window
        # bimodal canopy cover: mass at 0 and above 70, little in between
        hist = np.bincount(tcd.ravel(), minlength=101)
        assert hist[0] > hist[1:70].sum() / 3 and hist[71:].sum() > hist[31:71].sum(), tile
        assert np.all(agb[tcd == 0] == 0)
        nz = agb[agb > 0]
        assert nz.min() >= 6 and nz.max() <= 330
        assert (agb[forest] > 0).mean() > 0.9
    # tropical forests carry more biomass than boreal ones
    mean_agb = {t: w["agb_2000"][w["tcd2000"] > 30].mean() for t, w in windows.items()}
    assert mean_agb["00N_110E"] > mean_agb["30N_090W"] > mean_agb["70N_000E"]
    for w in windows.values():
        jpl = w["agb_2000_jpl"]
        assert jpl.min() >= 0 and jpl.max() <= 330
        assert jpl[w["tcd2000"] > 30].mean() > 0


def test_loss_gain_fire(windows):
    for tile, w in windows.items():
        loss, tcd, tclf, gain = w["loss_year"], w["tcd2000"], w["tclf"], w["gain"]
        assert loss.max() <= 25
        assert set(np.unique(loss[loss > 0])) == set(range(1, 26)), tile
        lost = (loss[tcd > 30] > 0).mean()
        assert 0.10 <= lost <= 0.25, (tile, lost)
        assert np.all(tcd[loss > 0] > 0)
        # fire only on loss pixels, value = the loss year (rarely one year off)
        fire = tclf > 0
        assert fire.any() and np.all(loss[fire] > 0)
        off = np.abs(tclf[fire].astype(int) - loss[fire].astype(int))
        assert off.max() <= 1 and (off == 0).mean() > 0.9
        assert set(np.unique(gain)) == {0, 1}
        assert 0.003 < gain.mean() < 0.06, tile
    fire_off = sum(int(np.sum((w["tclf"] > 0) & (w["tclf"] != w["loss_year"]))) for w in windows.values())
    assert fire_off > 0  # the real layer has a few fire years that differ from the loss year


def test_loss_comes_in_patches(windows):
    """Loss pixels cluster: most loss pixels have a loss neighbour with the same year."""
    loss = windows["00N_110E"]["loss_year"].astype(int)
    core = loss[1:-1, 1:-1]
    same = np.zeros(core.shape, bool)
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        same |= loss[1 + dr : loss.shape[0] - 1 + dr, 1 + dc : loss.shape[1] - 1 + dc] == core
    assert (same[core > 0]).mean() > 0.8


def test_mangroves(windows):
    union = np.concatenate([w["mangrove_agb_2000"].ravel() for w in windows.values()])
    nz = union[union > 0]
    assert nz.min() >= 1.0 and nz.max() <= 910.0
    assert (nz < 2).any() and (nz >= 256).any()  # exercise the float -> uint8 cast oddity
    assert ((np.floor(nz) % 256) <= 1).any()
    for tile in TROPICAL:
        assert (windows[tile]["mangrove_agb_2000"] > 0).sum() > 100, tile
    assert not windows["70N_000E"]["mangrove_agb_2000"].any()
    for tile, w in windows.items():
        m = w["mangrove_agb_2000"] > 0
        lat, _ = _lat_lon(tile)
        assert np.all(np.abs(lat)[m.any(axis=1)] < 32)
        assert np.all(w["tcd2000"][m] > 0)
        assert np.all(w["soil_c_2000"][m] >= 200)  # mangrove soils hold more carbon


def test_zonal_layers_codes_and_consistency(windows):
    domain_of_zone = {**dict.fromkeys(range(1, 6), 2), **dict.fromkeys((*range(6, 11), *range(16, 22)), 1)}
    domain_of_zone.update(dict.fromkeys(range(11, 16), 3))
    zones_of_domain = {1: range(9, 13), 2: range(5, 9), 3: range(1, 5)}
    for tile, w in windows.items():
        eco, dom, cz = w["continent_ecozone"], w["climate_domain"], w["climate_zone"]
        assert (eco != 0).mean() > 0.8 and (dom != 0).mean() > 0.8 and (cz != 0).mean() > 0.8, tile
        assert set(np.unique(dom)) <= {0, 1, 2, 3}
        assert cz.max() <= 12
        both = (eco != 0) & (dom != 0)
        expected = np.vectorize(lambda c: domain_of_zone[c % 1000])(eco[both])
        assert np.array_equal(dom[both], expected), tile
        for d, allowed in zones_of_domain.items():
            sel = (dom == d) & (cz != 0)
            assert np.isin(cz[sel], list(allowed)).all(), (tile, d)
    # continent digit and domain follow the geography
    assert set(np.unique(windows["00N_110E"]["continent_ecozone"])) - {0} <= set(range(2016, 2022))
    assert set(np.unique(windows["10N_050E"]["continent_ecozone"])) - {0} <= set(range(1016, 1022))
    assert set(np.unique(windows["30N_090W"]["continent_ecozone"]) // 1000) - {0} == {4}
    assert set(np.unique(windows["70N_000E"]["continent_ecozone"])) - {0} <= {7001, 7002, 7003}
    assert set(np.unique(windows["70N_000E"]["climate_domain"])) - {0} == {2}
    assert 3 in set(np.unique(windows["30N_090W"]["climate_domain"]))


def test_ecozone_codes_come_from_the_code_table(windows):
    if not ECOZONE_CSV.is_file():
        pytest.skip(f"ecozone code table not found at {ECOZONE_CSV}")
    with ECOZONE_CSV.open() as f:
        rows = {int(r["code"]): r for r in csv.DictReader(f)}
    for w in windows.values():
        codes = set(np.unique(w["continent_ecozone"]).tolist()) - {0}
        assert codes <= set(rows)
        for code in codes:
            row = rows[code]
            assert row["table49_row_id"] or row["fallback_row_id"], code  # has IPCC rates
            sel = (w["continent_ecozone"] == code) & (w["climate_domain"] != 0)
            assert np.all(w["climate_domain"][sel] == int(row["domain_code"])), code


def test_code_values_present_in_union_of_demo_windows(windows):
    assert _union(windows, "drivers") == set(range(8))
    assert _union(windows, "climate_zone") - {0} == set(range(1, 13))
    assert _union(windows, "climate_domain") - {0} == {1, 2, 3}
    assert _union(windows, "plantation_type") == {0, 1, 2, 3}
    assert _union(windows, "loss_year") == set(range(26))
    assert _union(windows, "gain") == {0, 1}
    assert _union(windows, "peat") == {0, 1}
    assert _union(windows, "ifl_primary") == {0, 1}
    assert _union(windows, "plantation_pre2000") == {0, 1}
    assert _union(windows, "us_age_category") == {0, 1, 2, 3}
    # every demo window on its own is varied
    for tile, w in windows.items():
        assert set(np.unique(w["drivers"])) == set(range(8)), tile
        assert {2, 3} <= set(np.unique(w["plantation_type"])), tile
    for tile in TROPICAL:
        assert 1 in set(np.unique(windows[tile]["plantation_type"]))
    for tile in ("00N_110E", "70N_000E"):
        assert windows[tile]["peat"].any(), tile
    assert windows["00N_110E"]["ifl_primary"].any()


def test_climate_inputs(windows):
    elev = np.concatenate([w["elevation"].ravel() for w in windows.values()])
    assert (elev > 2000).any() and (elev < 0).any()
    assert elev.min() > -50 and elev.max() < 6000
    tropical_p = np.concatenate([windows[t]["precipitation"].ravel() for t in TROPICAL])
    p = tropical_p[tropical_p > 0]
    assert ((p <= 1000).any(), ((p > 1000) & (p <= 1600)).any(), (p > 1600).any()) == (True, True, True)
    for w in windows.values():
        p = w["precipitation"]
        assert np.all((p == 0) | ((p >= 200) & (p <= 4000)))
        r = w["bgb_agb_ratio"]
        assert np.all((r == 0) | ((r >= 0.15) & (r <= 0.6)))
        assert (r > 0).mean() > 0.95
    ratios = np.concatenate([w["bgb_agb_ratio"][w["bgb_agb_ratio"] > 0] for w in windows.values()])
    assert 0.2 < ratios.mean() < 0.33


def test_removal_factor_rasters(windows):
    young = np.concatenate([w["rf_agc_young"].ravel() for w in windows.values()])
    assert np.isnan(young).any()  # the real layer contains NaN
    finite = young[np.isfinite(young) & (young != 0)]
    assert finite.min() >= 0.2 and finite.max() <= 5.0
    assert np.nanmean(windows["00N_110E"]["rf_agc_young"]) > np.nanmean(windows["70N_000E"]["rf_agc_young"])
    for tile, w in windows.items():
        rate, sd = w["rf_agc_young"], w["rf_stdev_agc_young"]
        assert np.array_equal(np.isnan(rate), np.isnan(sd))
        ok = np.isfinite(rate) & (rate > 0)
        rel = sd[ok] / rate[ok]
        assert rel.min() >= 0.099 and rel.max() <= 0.401, tile
        # Europe: only inside the European box, stdev twice too large
        eu, eu_sd = w["rf_agc_bgc_europe"], w["rf_stdev_agc_bgc_europe"]
        lat, lon = _lat_lon(tile)
        inside = ((lat >= 35) & (lat < 71))[:, None] & ((lon >= -10) & (lon < 40))[None, :]
        assert not eu[~inside].any() and not eu_sd[~inside].any()
        if eu.any():
            v = eu[eu > 0]
            assert v.min() >= 1.0 and v.max() <= 6.0
            rel = eu_sd[eu > 0] / v
            assert rel.min() >= 0.23 and rel.max() <= 0.65
        # planted forests: rates only on plantations
        pt = w["plantation_type"]
        for name in ("rf_agc_bgc_planted", "rf_stdev_agc_bgc_planted", "rf_agc_planted", "rf_stdev_agc_planted"):
            assert np.array_equal(w[name] > 0, pt > 0), (tile, name)
        agc_bgc = w["rf_agc_bgc_planted"][pt > 0]
        assert agc_bgc.min() >= 2.0 and agc_bgc.max() <= 15.0
        agc = w["rf_agc_planted"][pt > 0]
        assert agc.min() >= 2.0
        np.testing.assert_allclose(agc * 1.26, agc_bgc, rtol=1e-6)
        np.testing.assert_allclose(w["rf_stdev_agc_planted"] * 1.26, w["rf_stdev_agc_bgc_planted"], rtol=1e-6)
        rel = w["rf_stdev_agc_bgc_planted"][pt > 0] / agc_bgc
        assert rel.min() >= 0.149 and rel.max() <= 0.501
    assert windows["70N_000E"]["rf_agc_bgc_europe"].any()
    assert not windows["00N_110E"]["rf_agc_bgc_europe"].any()


def test_masks_and_plantations(windows):
    for tile, w in windows.items():
        pt, pre, ifl, peat = w["plantation_type"], w["plantation_pre2000"], w["ifl_primary"], w["peat"]
        assert pt.max() <= 3 and 0.002 < (pt > 0).mean() < 0.08, tile
        lat, _ = _lat_lon(tile)
        if np.abs(lat).min() >= 23.5:
            assert 1 not in set(np.unique(pt))  # oil palm only in the tropics
        assert np.all(pt[pre > 0] > 0)
        if np.abs(lat).min() >= 30:
            assert not pre.any()
        assert set(np.unique(ifl)) <= {0, 1} and set(np.unique(peat)) <= {0, 1}
        assert np.all(w["tcd2000"][ifl == 1] > 50) and np.all(pt[ifl == 1] == 0)
        soil = w["soil_c_2000"]
        mineral = soil[(w["mangrove_agb_2000"] == 0) & (soil > 0)]
        assert mineral.min() >= 20 and mineral.max() <= 250
        assert (soil > 0).mean() > 0.3


def test_us_layers(windows):
    codes = set(US_FOREST_GROUP_CODES)
    assert len(codes) == 16 and max(codes) < 256
    for tile, w in windows.items():
        lat, lon = _lat_lon(tile)
        inside = ((lat >= 25) & (lat < 49))[:, None] & ((lon >= -125) & (lon < -67))[None, :]
        for name in ("fia_region", "fia_forest_group", "us_age_category"):
            assert not w[name][~inside].any(), (tile, name)
    us = windows["30N_090W"]
    assert (us["fia_region"] > 0).mean() > 0.5
    assert set(np.unique(us["fia_region"])) - {0} <= set(range(1, 10))
    assert set(np.unique(us["fia_forest_group"])) - {0} <= codes
    assert len(set(np.unique(us["fia_forest_group"])) - {0}) >= 4
    assert set(np.unique(us["us_age_category"])) - {0} == {1, 2, 3}
    valid = (us["fia_region"] > 0) & (us["fia_forest_group"] > 0) & (us["us_age_category"] > 0)
    assert np.array_equal(valid, us["fia_region"] > 0)


def test_drivers_constant_on_1km_blocks(windows):
    for tile, w in windows.items():
        r0, _, c0, _ = demo_window(tile)
        assert r0 % 40 == 0 and c0 % 40 == 0
        blocks = w["drivers"].reshape(25, 40, 25, 40)
        assert np.all(blocks == blocks[:, :1, :, :1]), tile
    # wildfire is a boreal driver, shifting cultivation a tropical one
    share = {t: np.bincount(w["drivers"].ravel(), minlength=8) / w["drivers"].size for t, w in windows.items()}
    assert share["70N_000E"][5] > share["00N_110E"][5]
    assert share["00N_110E"][3] > share["70N_000E"][3]


# ---------------------------------------------------------------------------------------------
# Pixel area
# ---------------------------------------------------------------------------------------------

_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)


def _integrated_cell_area(lat_south_deg: float, lat_north_deg: float) -> float:
    """Δλ ∫ M(φ) N(φ) cos φ dφ over the cell (WGS84 surface element), by adaptive quadrature."""
    from scipy.integrate import quad

    def element(phi):
        w = 1.0 - _E2 * math.sin(phi) ** 2
        return (_A * (1.0 - _E2) / w**1.5) * (_A / math.sqrt(w)) * math.cos(phi)

    val, _ = quad(element, math.radians(lat_south_deg), math.radians(lat_north_deg), epsabs=0, epsrel=1e-13)
    return math.radians(PIXEL_DEG) * val


def test_pixel_area_at_the_equator_matches_numerical_integration():
    ref = _integrated_cell_area(0.0, PIXEL_DEG)
    assert 769.0 < ref < 769.6
    north = demo_block("pixel_area", 359999, 360000, 0, 3)  # spans 0 … +0.00025°
    south = demo_block("pixel_area", 360000, 360001, 1439997, 1440000)  # spans -0.00025 … 0
    for block in (north, south):
        assert np.all(block == block[0, 0])
        assert abs(float(block[0, 0]) - ref) / ref < 1e-6


@pytest.mark.parametrize("row", [80000, 240000, 320000, 40000, 600000])
def test_pixel_area_other_latitudes(row):
    north = 90.0 - row * PIXEL_DEG
    ref = _integrated_cell_area(north - PIXEL_DEG, north)
    block = demo_block("pixel_area", row, row + 2, 5, 9)
    assert abs(float(block[0, 0]) - ref) / ref < 1e-6
    assert np.all(block == block[:, :1])  # a function of latitude only
    mirror = N_GLOBAL_ROWS - 1 - row  # symmetric about the equator
    assert demo_block("pixel_area", mirror, mirror + 1, 0, 1)[0, 0] == pytest.approx(block[0, 0], rel=1e-7)


def test_pixel_area_sums_to_the_ellipsoid_area():
    areas = demo_block("pixel_area", 0, N_GLOBAL_ROWS, 0, 1).astype(np.float64)
    total = areas.sum() * N_GLOBAL_COLS
    assert total == pytest.approx(5.10065621724e14, rel=1e-6)  # WGS84 surface, 510 065 621.724 km²
