"""Tests of PRELES (spec: /work/shared/spec/preles.md): kernel, site mode, CLI.

Hand-worked days use the spec §3 default (multi-site) parameters, written out as literals:
soildepth 413, θFC 0.450, θPWP 0.118, τ_drain 3, β 0.7457, τ 10.93, S0 −3.063, S_max 17.72,
κ −0.1027, γ 0.03673, ρ_P 0.7779, b_CO2 0.5, x_CO2 −0.364, β_E 0.2715, κ_E 0.8351,
χ 0.07348, ρ_E 0.9996, ν 0.4428, MeltCoef 1.2, I0 0.33, CW_max 4.970496.
The spec has no numeric worked examples, so the expected values are computed here from the
spec's equations step by step (each number is also pinned as a literal).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import typer
from fluxgraph.kernels.preles import (
    DEFAULT_PARAMS,
    OUTPUT_NAMES,
    STATE_NAMES,
    initial_states,
    run_preles,
    states_from_mapping,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from reference.preles_numpy import preles_reference
from typer.testing import CliRunner

from fluxgraph._cli_preles import preles_site
from fluxgraph.errors import PrelesInputError
from fluxgraph.preles import BIRCH_PARAMS, OUTPUT_COLUMNS, param_number, run_site, synthetic_weather

WEATHER = ("PAR", "TAir", "VPD", "Precip", "CO2", "fAPAR")
LN_410_380 = math.log(410 / 380)  # CO2 = 410 ppm in the hand-worked days


def one_day(weather: dict, states: dict, params=DEFAULT_PARAMS, etmodel: int = 0):
    """Run kernel and numpy reference for the given day(s) of one pixel; return both daily dicts."""
    w = {k: np.atleast_1d(np.asarray(v, dtype=float))[:, None] for k, v in weather.items()}
    st0 = states_from_mapping(states, params)
    res = run_preles(*(w[k] for k in WEATHER), params, etmodel=etmodel, states=st0, daily=True)
    ref_states = {("prev_" + k.removesuffix("_prev") if k.endswith("_prev") else k): st0[i]
                  for i, k in enumerate(STATE_NAMES)}  # fmt: skip
    ref, _ = preles_reference(w, params, etmodel=etmodel, states=ref_states)
    return {k: v[:, 0] for k, v in res.daily.items()}, {k: v[:, 0] for k, v in ref.items()}, res.states[:, 0]


def check_day(outs, expected: dict, day: int = 0) -> None:
    for out in outs:
        for k, v in expected.items():
            assert out[k][day] == pytest.approx(v, rel=1e-12, abs=1e-14), k


def w_pt(T: float) -> float:
    """Priestley–Taylor weight w of spec §6.6 at air temperature T (°C)."""
    lam = 1000 * (2500.79 - 2.36418 * T + 0.00158927 * T**2 - 0.0000614342 * T**3)
    gamma_p = 1003.5 * 101300 / (lam * 0.622)
    es = 0.6109 * math.exp(17.27 * T / (T + 237.3))
    s = 1000 * 4098 * es / (T + 237.3) ** 2
    return s / (s + gamma_p)


# ---------------------------------------------------------------------------------------------
# Hand-worked days (spec §6)
# ---------------------------------------------------------------------------------------------


def test_hand_winter_day_with_snow():
    # -6 °C, 3 mm of snow onto 40 mm of snow, empty canopy store, S = -1 °C.
    weather = dict(PAR=4.0, TAir=-6.0, VPD=0.1, Precip=3.0, CO2=410.0, fAPAR=0.7)
    daily, ref, end = one_day(weather, dict(SW=160.0, CW=0.0, SOG=40.0, S=-1.0))
    # §6.2: S = -1 + (-6 - -1)/10.93 ; fS = max(0, S + 3.063)/17.72
    S = -1.0 + (-6.0 - -1.0) / 10.93
    fS = min(1.0, max(0.0, S - -3.063) / 17.72)
    assert math.isclose(S, -1.457456542, rel_tol=1e-9) and math.isclose(fS, 0.0906062900, rel_tol=1e-9)
    # §6.4: REW = (160/413 - 0.118)/(0.45 - 0.118) = 0.8115 >= ρ_P 0.7779 -> fW = 1
    REW = (160.0 / 413.0 - 0.118) / (0.450 - 0.118)
    fW = 1.0
    fD = min(1.0, math.exp(-0.1027 * 0.1))
    fL = 1.0 / (0.03673 * 4.0 + 1.0)
    GPP380 = 0.7457 * 4.0 * 0.7 * fS * fL * min(fD, fW)
    GPP = GPP380 * (1.0 + 0.5 * LN_410_380)
    assert math.isclose(GPP, 0.1694656170, rel_tol=1e-9)
    # §6.5: TAir < 0 -> all precipitation is snow, no melt, no interception
    SOG = 40.0 + 3.0 - 0.0
    # §6.6: canopy dry (CW = 0) -> fWE = REW/ρ_E
    fWE = REW / 0.9996
    transp = 0.2715 * GPP380 * 0.1 ** (1 - 0.8351) * fW**0.4428 * (1.0 - 0.364 * LN_410_380)
    evap = 0.07348 * w_pt(-6.0) * (1.0 - 0.7) * fWE * 4.0
    ET = transp + evap
    assert math.isclose(w_pt(-6.0), 0.3151097274, rel_tol=1e-9)
    assert math.isclose(ET, 0.05203917929, rel_tol=1e-9)
    # §6.7: CW + SOG - ET > 0 and CW - ET < 0 -> ET is taken from the snow; soil untouched
    SOG = SOG + 0.0 - ET
    SW = 160.0  # W = 160 < θFC·soildepth = 185.85: no drainage
    expected = dict(GPP=GPP, ET=ET, SW=SW, SOG=SOG, Canopywater=0.0, S=S, fS=fS, fD=fD, fW=fW, fE=fWE,
                    Throughfall=0.0, Interception=0.0, Snowmelt=0.0, Drainage=0.0, transp=transp,
                    evap=evap, fAPAR=0.7)  # fmt: skip
    check_day((daily, ref), expected)
    assert math.isclose(SOG, 42.94796082, rel_tol=1e-9)
    assert end[STATE_NAMES.index("SOG")] == daily["SOG"][0]


def test_hand_summer_day():
    # 18 °C, 12 mm rain: interception overflows the canopy store, the last 5 mm of snow melt,
    # soil above field capacity drains.
    weather = dict(PAR=40.0, TAir=18.0, VPD=1.2, Precip=12.0, CO2=410.0, fAPAR=0.8)
    daily, ref, _ = one_day(weather, dict(SW=190.0, CW=1.0, SOG=5.0, S=14.0))
    S = 14.0 + (18.0 - 14.0) / 10.93
    fS = min(1.0, max(0.0, S - -3.063) / 17.72)
    # REW = (190/413 - 0.118)/0.332 = 1.030 > ρ_P -> fW = 1
    fW = 1.0
    fD = min(1.0, math.exp(-0.1027 * 1.2))
    fL = 1.0 / (0.03673 * 40.0 + 1.0)
    GPP380 = 0.7457 * 40.0 * 0.8 * fS * fL * min(fD, fW)
    GPP = GPP380 * (1.0 + 0.5 * LN_410_380)
    assert math.isclose(GPP, 8.722434010, rel_tol=1e-9)
    # §6.5 snow: rain = 12; potential melt 1.2*18 = 21.6 > 5 mm of snow -> melt = 5, SOG = 0
    melt = 5.0
    # interception = 12 * 0.33 * 0.8/0.75 = 4.224; capacity 4.970496*0.8 = 3.9763968;
    # 4.224 + 1.0 > 3.9763968 -> overflow to throughfall, CW = capacity
    intercepted = 12.0 * 0.33 * 0.8 / 0.75
    cap = 4.970496 * 0.8
    throughfall = (12.0 - intercepted) + intercepted + 1.0 - cap
    assert math.isclose(throughfall, 9.0236032, rel_tol=1e-12)
    CW = cap
    # §6.6: wet canopy -> fWE = 1
    fWE = 1.0
    transp = 0.2715 * GPP380 * 1.2 ** (1 - 0.8351) * 1.0 * (1.0 - 0.364 * LN_410_380)
    evap = 0.07348 * w_pt(18.0) * (1.0 - 0.8) * fWE * 40.0
    ET = transp + evap
    assert math.isclose(ET, 2.674798565, rel_tol=1e-9)
    # §6.7: CW - ET > 0 -> taken from the canopy store only
    CW = CW - ET
    W = 190.0 + throughfall + melt - 0.0
    drainage = (W - 0.45 * 413.0) / 3.0
    SW = W - drainage
    assert math.isclose(SW, 197.9657354667, rel_tol=1e-10)
    expected = dict(GPP=GPP, ET=ET, SW=SW, SOG=0.0, Canopywater=CW, S=S, fS=fS, fD=fD, fW=fW, fE=fWE,
                    Throughfall=throughfall, Interception=intercepted, Snowmelt=melt, Drainage=drainage,
                    transp=transp, evap=evap, fAPAR=0.8)  # fmt: skip
    check_day((daily, ref), expected)


def test_hand_drought_day():
    # Two pixels' worth of drought: SW = 80 mm (REW 0.228 < ρ_P: linear decline) and SW = 49 mm
    # (REW 0.0019 <= 0.01: modifier jumps to 0).
    weather = dict(PAR=45.0, TAir=22.0, VPD=2.0, Precip=0.0, CO2=410.0, fAPAR=0.75)
    daily, ref, _ = one_day(weather, dict(SW=80.0, CW=0.0, SOG=0.0, S=16.0))
    S = 16.0 + (22.0 - 16.0) / 10.93
    fS = min(1.0, max(0.0, S - -3.063) / 17.72)
    assert fS == 1.0
    REW = (80.0 / 413.0 - 0.118) / (0.450 - 0.118)
    fW = REW / 0.7779  # 0.01 < REW < ρ_P
    fD = min(1.0, math.exp(-0.1027 * 2.0))
    assert math.isclose(REW, 0.2280259051, rel_tol=1e-9) and fW < fD
    fL = 1.0 / (0.03673 * 45.0 + 1.0)
    GPP380 = 0.7457 * 45.0 * 0.75 * fS * fL * min(fD, fW)
    GPP = GPP380 * (1.0 + 0.5 * LN_410_380)
    assert math.isclose(GPP, 2.886556402, rel_tol=1e-9)
    fWE = REW / 0.9996  # dry canopy
    transp = 0.2715 * GPP380 * 2.0 ** (1 - 0.8351) * fW**0.4428 * (1.0 - 0.364 * LN_410_380)
    evap = 0.07348 * w_pt(22.0) * (1.0 - 0.75) * fWE * 45.0
    ET = transp + evap
    # §6.7: CW + SOG - ET < 0 -> all ET from the soil
    SW = 80.0 + 0.0 + 0.0 - ET
    assert math.isclose(SW, 79.38864513, rel_tol=1e-9)
    expected = dict(GPP=GPP, ET=ET, SW=SW, SOG=0.0, Canopywater=0.0, S=S, fS=fS, fD=fW, fW=fW, fE=fWE,
                    Throughfall=0.0, Interception=0.0, Snowmelt=0.0, Drainage=0.0, transp=transp,
                    evap=evap, fAPAR=0.75)  # fmt: skip
    check_day((daily, ref), expected)

    daily, ref, _ = one_day(weather, dict(SW=49.0, CW=0.0, SOG=0.0, S=16.0))
    assert math.isclose((49.0 / 413.0 - 0.118) / 0.332, 0.00194, abs_tol=1e-5)  # <= 0.01
    expected = dict(GPP=0.0, ET=0.0, SW=49.0, fD=0.0, fW=0.0, fE=0.0, transp=0.0, evap=0.0)
    check_day((daily, ref), expected)


def test_hand_gap_filled_days():
    nan = np.nan
    # day 0: everything missing (sentinel, NaN, VPD > 6, negative precip) -> day-0 defaults
    # day 1: complete; day 2: all missing -> yesterday (precip 0.3 x yesterday);
    # day 3: precip missing again (0.3 x 0.6) and CO2 = 0 (guarded: yesterday's 415)
    weather = dict(
        PAR=[-999.0, 10.0, nan, 12.0],
        TAir=[nan, 3.0, -999.0, 4.0],
        VPD=[7.0, 0.4, -1.0, 0.3],
        Precip=[-1.0, 2.0, nan, -999.0],
        CO2=[-999.0, 415.0, nan, 0.0],
        fAPAR=[0.6, 0.6, 0.6, 0.6],
    )
    daily, ref, end = one_day(weather, dict(SW=160.0, CW=0.0, SOG=0.0, S=20.0))
    # day 0 filled: PAR 5, TAir 0, VPD 0.5, Precip 0, CO2 380 (fCO2 = fCO2_E = 1)
    S = 20.0 + (0.0 - 20.0) / 10.93
    fS = min(1.0, max(0.0, S - -3.063) / 17.72)
    assert fS == 1.0
    REW = (160.0 / 413.0 - 0.118) / (0.450 - 0.118)
    fD = min(1.0, math.exp(-0.1027 * 0.5))
    fL = 1.0 / (0.03673 * 5.0 + 1.0)
    GPP380 = 0.7457 * 5.0 * 0.6 * fS * fL * fD
    GPP = GPP380 * (1.0 + 0.5 * math.log(380.0 / 380.0))
    # TAir = 0 exactly: precipitation would be rain, but no melt and no interception
    fWE = REW / 0.9996
    transp = 0.2715 * GPP380 * 0.5 ** (1 - 0.8351) * 1.0 * 1.0
    evap = 0.07348 * w_pt(0.0) * (1.0 - 0.6) * fWE * 5.0
    ET = transp + evap
    assert math.isclose(w_pt(0.0), 0.4048609205, rel_tol=1e-9)
    assert math.isclose(ET, 0.4831021910, rel_tol=1e-9)
    SW = 160.0 - ET
    expected = dict(GPP=GPP, ET=ET, SW=SW, S=S, fS=fS, fD=fD, fW=1.0, fE=fWE, transp=transp, evap=evap,
                    Throughfall=0.0, Interception=0.0, Snowmelt=0.0, SOG=0.0, Canopywater=0.0)  # fmt: skip
    check_day((daily, ref), expected)

    # the gap-filled series equals the explicitly filled one, bit for bit
    filled = dict(
        PAR=[5.0, 10.0, 10.0, 12.0],
        TAir=[0.0, 3.0, 3.0, 4.0],
        VPD=[0.5, 0.4, 0.4, 0.3],
        Precip=[0.0, 2.0, 0.3 * 2.0, 0.3 * (0.3 * 2.0)],
        CO2=[380.0, 415.0, 415.0, 415.0],
        fAPAR=[0.6] * 4,
    )
    daily2, _, end2 = one_day(filled, dict(SW=160.0, CW=0.0, SOG=0.0, S=20.0))
    for k in OUTPUT_NAMES:
        np.testing.assert_array_equal(daily[k], daily2[k], err_msg=k)
    np.testing.assert_array_equal(end, end2)
    # yesterday's (filled) inputs are carried as states
    prev = [
        end[STATE_NAMES.index(k)] for k in ("PAR_prev", "TAir_prev", "VPD_prev", "Precip_prev", "CO2_prev")
    ]
    assert prev == [12.0, 4.0, 0.3, 0.3 * (0.3 * 2.0), 415.0]


def test_hand_edge_cases():
    # (a) canopy storage disabled (CW_max = 0): all interception drips through, CW is left as it
    # was (spec §6.5 "CW untouched"), a non-zero CW still means "wet canopy" for fWE (§6.6), and
    # the no-storage branch of §6.7 takes ET from snow, then soil.
    p = DEFAULT_PARAMS.copy()
    p[20] = 0.0
    weather = dict(PAR=20.0, TAir=10.0, VPD=0.8, Precip=5.0, CO2=380.0, fAPAR=0.5)
    daily, ref, _ = one_day(weather, dict(SW=150.0, CW=1.5, SOG=0.0, S=8.0), params=p)
    S = 8.0 + (10.0 - 8.0) / 10.93
    fS = min(1.0, max(0.0, S - -3.063) / 17.72)
    REW = (150.0 / 413.0 - 0.118) / 0.332
    fW = REW / 0.7779  # REW = 0.7385 < ρ_P
    fD = math.exp(-0.1027 * 0.8)
    GPP380 = 0.7457 * 20.0 * 0.5 * fS * (1.0 / (0.03673 * 20.0 + 1.0)) * min(fD, fW)
    intercepted = 5.0 * 0.33 * 0.5 / 0.75
    throughfall = (5.0 - intercepted) + intercepted
    transp = 0.2715 * GPP380 * 0.8 ** (1 - 0.8351) * fW**0.4428 * 1.0
    evap = 0.07348 * w_pt(10.0) * (1.0 - 0.5) * 1.0 * 20.0  # fWE = 1: CW = 1.5 > 1e-8
    ET = transp + evap
    SW = 150.0 + throughfall + 0.0 - (ET - 0.0)
    expected = dict(GPP=GPP380, ET=ET, SW=SW, Canopywater=1.5, fE=1.0, Interception=intercepted,
                    Throughfall=throughfall, transp=transp, evap=evap)  # fmt: skip
    check_day((daily, ref), expected)

    # (b) soil-water limits switched off (ρ_P, ρ_E < -998) and a nearly empty soil: ET exceeds the
    # water available, W <= 0 and the floor SW = 0.0001 applies (spec §6.7).
    p = DEFAULT_PARAMS.copy()
    p[10] = p[16] = -999.0
    weather = dict(PAR=45.0, TAir=22.0, VPD=2.0, Precip=0.0, CO2=380.0, fAPAR=0.75)
    daily, ref, _ = one_day(weather, dict(SW=0.05, CW=0.0, SOG=0.0, S=16.0), params=p)
    assert daily["fW"][0] == 1.0 and daily["fE"][0] == 1.0 and daily["ET"][0] > 0.05
    check_day((daily, ref), dict(SW=0.0001, Drainage=0.0))

    # (c) CO2 on a run's first day: < 0.1 -> 380 (spec §6.1); on later days only < 0 (and our
    # guard for exactly 0) is replaced, so 0.05 is kept.
    base = dict(PAR=[20.0, 20.0], TAir=[10.0, 10.0], VPD=[0.8, 0.8], Precip=[0.0, 0.0], fAPAR=[0.5, 0.5])
    st0 = dict(SW=150.0, CW=0.0, SOG=0.0, S=8.0)
    low, _, _ = one_day({**base, "CO2": [0.05, 0.05]}, st0)
    filled, _, _ = one_day({**base, "CO2": [380.0, 0.05]}, st0)
    plain, _, _ = one_day({**base, "CO2": [380.0, 380.0]}, st0)
    np.testing.assert_array_equal(low["GPP"], filled["GPP"])
    assert low["GPP"][0] == plain["GPP"][0] and low["GPP"][1] < 0  # 1 + 0.5 ln(0.05/380) < 0


# ---------------------------------------------------------------------------------------------
# Kernel properties
# ---------------------------------------------------------------------------------------------


def random_inputs(n_days: int, n_pix: int, seed: int = 1, gaps: float = 0.02):
    """Per-pixel synthetic weather (different seeds) with random gaps, and per-pixel params."""
    cols = {k: np.empty((n_days, n_pix)) for k in WEATHER}
    n_years = -(-n_days // 365) + 1
    doy = None
    for j in range(n_pix):
        w = synthetic_weather(n_years, seed=seed + j, forest="deciduous" if j % 2 else "evergreen")
        for k in WEATHER:
            cols[k][:, j] = w[k].to_numpy()[:n_days]
        doy = w["DOY"].to_numpy()[:n_days]
    rng = np.random.default_rng(seed)
    for k in ("PAR", "TAir", "VPD", "Precip", "CO2"):
        mask = rng.random((n_days, n_pix)) < gaps
        cols[k][mask] = np.where(rng.random(mask.sum()) < 0.5, np.nan, -999.0)
    params = np.tile(DEFAULT_PARAMS, (n_pix, 1))
    params[:, 0] = rng.uniform(300, 800, n_pix)  # soildepth
    params[:, 4] = rng.uniform(0.6, 0.95, n_pix)  # beta
    params[:, 23] = params[:, 0] * 0.35  # SW_init
    params[1::3, 27:30] = [57.0, 1.5, 134.0]  # some pixels deciduous
    return cols, params, doy


def test_vectorised_equals_single_sites_and_chunking():
    n_days, n_pix = 400, 7
    w, params, doy = random_inputs(n_days, n_pix)
    args = [w[k] for k in WEATHER]
    full = run_preles(*args, params, doy=doy, daily=True, period=np.arange(n_days) // 100)
    for j in range(n_pix):
        one = run_preles(
            *(a[:, j] for a in args), params[j], doy=doy, daily=True, period=np.arange(n_days) // 100
        )
        for k in OUTPUT_NAMES:
            np.testing.assert_array_equal(full.daily[k][:, j], one.daily[k][:, 0], err_msg=k)
        for k in ("GPP", "ET"):
            np.testing.assert_array_equal(full.sums[k][:, j], one.sums[k][:, 0])
        np.testing.assert_array_equal(full.states[:, j], one.states[:, 0])
    # pixel chunks [0:3], [3:4], [4:7], also through the parallel kernel
    for parallel in (False, True):
        parts = [
            run_preles(*(a[:, sl] for a in args), params[sl], doy=doy, daily=("GPP", "SW"), parallel=parallel)
            for sl in (slice(0, 3), slice(3, 4), slice(4, 7))
        ]
        for k in ("GPP", "SW"):
            np.testing.assert_array_equal(np.concatenate([p.daily[k] for p in parts], axis=1), full.daily[k])
        np.testing.assert_array_equal(np.concatenate([p.states for p in parts], axis=1), full.states)


def test_two_years_equal_year_then_restart():
    n_pix = 5
    w, params, doy = random_inputs(730, n_pix, seed=11, gaps=0.05)
    w["Precip"][365] = np.nan  # first day of year 2 missing: filled from year 1's last day
    w["TAir"][365] = -999.0
    args = [w[k] for k in WEATHER]
    period = np.repeat([0, 1], 365)
    both = run_preles(*args, params, doy=doy, daily=True, period=period)
    y1 = run_preles(*(a[:365] for a in args), params, doy=doy[:365], daily=True)
    y2 = run_preles(*(a[365:] for a in args), params, doy=doy[365:], daily=True, states=y1.states)
    for k in OUTPUT_NAMES:
        np.testing.assert_array_equal(np.concatenate([y1.daily[k], y2.daily[k]]), both.daily[k], err_msg=k)
    np.testing.assert_array_equal(y2.states, both.states)
    np.testing.assert_array_equal(y1.sums["GPP"][0], both.sums["GPP"][0])
    np.testing.assert_array_equal(y2.sums["ET"][0], both.sums["ET"][1])
    # period sums are the sums of the daily values
    np.testing.assert_allclose(both.sums["GPP"][1], both.daily["GPP"][365:].sum(axis=0), rtol=1e-12)


def test_broadcast_coarse_weather_and_constant_fapar():
    w = synthetic_weather(1, seed=3)
    n_pix = 4
    fa = np.array([[0.3, 0.5, 0.7, 0.9]])  # (1, n_pixels): constant in time
    cols = [w[k].to_numpy()[:, None] for k in WEATHER[:-1]]  # (n_days, 1)
    res = run_preles(*cols, fa, DEFAULT_PARAMS, daily=("GPP", "ET"))
    tiled_cols = [np.tile(c, (1, n_pix)) for c in cols]
    tiled_params = np.tile(DEFAULT_PARAMS, (n_pix, 1))
    tiled = run_preles(*tiled_cols, np.tile(fa, (len(w), 1)), tiled_params, daily=("GPP", "ET"))
    np.testing.assert_array_equal(res.daily["GPP"], tiled.daily["GPP"])
    assert res.daily["GPP"].shape == (len(w), n_pix)
    assert np.all(np.diff(res.sums["GPP"][0]) > 0)  # more fAPAR, more GPP
    assert res.daily is not None and set(res.daily) == {"GPP", "ET"}


def test_sums_only_by_default_and_state_shapes():
    w = synthetic_weather(1, seed=4)
    res = run_preles(*(w[k].to_numpy() for k in WEATHER))
    assert res.daily is None and res.sums["GPP"].shape == (1, 1) and res.states.shape == (10, 1)
    np.testing.assert_array_equal(initial_states(DEFAULT_PARAMS)[:5, 0], [160.0, 0.0, 0.0, 20.0, 0.0])
    assert np.isnan(initial_states(DEFAULT_PARAMS)[5:]).all()


def test_water_balance_closes():
    w, params, doy = random_inputs(730, 3, seed=5, gaps=0.0)
    res = run_preles(*(w[k] for k in WEATHER), params, doy=doy, daily=True)
    st0 = initial_states(params)
    d_storage = (res.states[0] - st0[0]) + (res.states[1] - st0[1]) + (res.states[2] - st0[2])
    flux = w["Precip"].sum(axis=0) - res.daily["ET"].sum(axis=0) - res.daily["Drainage"].sum(axis=0)
    np.testing.assert_allclose(d_storage, flux, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("etmodel", [0, 1])
def test_reference_equals_kernel(etmodel):
    w, params, doy = random_inputs(600, 6, seed=21, gaps=0.03)
    res = run_preles(*(w[k] for k in WEATHER), params, etmodel=etmodel, doy=doy, daily=True)
    ref, ref_end = preles_reference(w, params, etmodel=etmodel, doy=doy)
    for k in OUTPUT_NAMES:
        np.testing.assert_allclose(res.daily[k], ref[k], rtol=1e-12, atol=1e-13, err_msg=k)
    for i, k in enumerate(("SW", "CW", "SOG", "S", "PhenoS")):
        np.testing.assert_allclose(res.states[i], ref_end[k], rtol=1e-12, atol=1e-13)
    assert (res.daily["fAPAR"] == 0).any()  # the deciduous pixels did drop their leaves


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    etmodel=st.sampled_from([0, 1]),
    cwmax=st.sampled_from([0.0, 4.970496]),
    rho_p=st.sampled_from([-999.0, 0.7779, 0.3]),
    sw0=st.floats(10.0, 300.0),
)
def test_reference_equals_kernel_property(seed, etmodel, cwmax, rho_p, sw0):
    rng = np.random.default_rng(seed)
    n = 60
    w = {
        "PAR": rng.uniform(0, 50, n), "TAir": rng.uniform(-15, 25, n), "VPD": rng.uniform(-0.5, 7, n),
        "Precip": rng.exponential(3, n) * (rng.random(n) < 0.5) - (rng.random(n) < 0.1),
        "CO2": rng.uniform(350, 450, n), "fAPAR": rng.uniform(0, 1, n),
    }  # fmt: skip
    for k in ("PAR", "TAir"):
        w[k][rng.random(n) < 0.1] = np.nan
    p = DEFAULT_PARAMS.copy()
    p[20], p[10], p[23] = cwmax, rho_p, sw0
    res = run_preles(*(w[k] for k in WEATHER), p, etmodel=etmodel, daily=True)
    ref, _ = preles_reference({k: v[:, None] for k, v in w.items()}, p, etmodel=etmodel)
    for k in OUTPUT_NAMES:
        np.testing.assert_allclose(res.daily[k], ref[k], rtol=1e-12, atol=1e-13, err_msg=k)


def test_kernel_argument_errors():
    w = synthetic_weather(1, seed=0)
    cols = [w[k].to_numpy() for k in WEATHER]
    with pytest.raises(ValueError, match="etmodel must be 0 or 1"):
        run_preles(*cols, etmodel=2)
    bad = DEFAULT_PARAMS.copy()
    bad[1] = 0.1  # θFC < θPWP
    with pytest.raises(ValueError, match="thetaFC"):
        run_preles(*cols, bad)
    with pytest.raises(ValueError, match="shape"):
        run_preles(*cols, DEFAULT_PARAMS[:29])
    with pytest.raises(ValueError, match="broadcast"):
        run_preles(*cols[:5], np.full((len(w), 3), 0.5), np.tile(DEFAULT_PARAMS, (2, 1)))
    with pytest.raises(ValueError, match="unknown PRELES daily output"):
        run_preles(*cols, daily=["GPP", "NEE"])


# ---------------------------------------------------------------------------------------------
# Site mode
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weather2y() -> pd.DataFrame:
    return synthetic_weather(2, seed=0)


@pytest.fixture(scope="module")
def site_runs(weather2y):
    return {
        "etmodel 0": run_site(weather2y, etmodel=0),
        "etmodel 1": run_site(weather2y, etmodel=1),
        "deciduous": run_site(
            synthetic_weather(2, seed=0, forest="deciduous"), params=BIRCH_PARAMS, deciduous=True
        ),
    }


def test_site_annual_totals_plausible(site_runs):
    # Units (spec §1): GPP g C m-2 d-1, ET mm d-1 -> annual sums g C m-2 yr-1 and mm yr-1.
    # Hyytiälä-like Scots pine (fAPAR ~0.72): eddy-covariance GPP ~1000-1200 g C m-2 yr-1 and
    # ET ~300-400 mm yr-1 (about half of the ~700 mm precipitation). We accept 800-1400 g C and
    # 200-500 mm; the deciduous (birch) canopy is leafless for ~7 months: 600-1400 g C, 200-500 mm.
    for name, out in site_runs.items():
        annual = out.groupby(out.index.year)[["GPP", "ET"]].sum()
        assert len(annual) == 2
        lo = 600 if name == "deciduous" else 800
        assert annual["GPP"].between(lo, 1400).all(), (name, annual)
        assert annual["ET"].between(200, 500).all(), (name, annual)
        assert (out["GPP"] >= 0).all() and (out["SW"] > 0).all()
        assert out["SOG"].max() > 20  # a boreal winter builds a snow pack
        assert list(out.columns) == list(OUTPUT_COLUMNS)


def test_site_variants_differ(site_runs, weather2y):
    e0, e1, dec = site_runs["etmodel 0"], site_runs["etmodel 1"], site_runs["deciduous"]
    assert e1.attrs["params"]["beta"] == 0.748464  # etmodel 1 -> Hyytiälä 2015 defaults (R rule)
    assert e1["ET"].sum() > e0["ET"].sum() * 1.05  # no Priestley–Taylor weight w < 1
    # same parameters, only the ET equation differs: evaporation without w is larger
    e1m = run_site(weather2y, etmodel=1, defaults="multisite")
    assert (e1m["evap"] >= e0["evap"] - 1e-15).all() and e1m["evap"].sum() > 1.3 * e0["evap"].sum()
    # deciduous: no leaves in winter, leaves in summer, leaf-out in spring
    leaf = dec["fAPAR"] > 0
    assert not leaf[dec.index.month.isin([1, 2, 3, 12])].any()
    assert leaf[dec.index.month.isin([6, 7])].all()
    first = dec.index[leaf & (dec.index.year == 2020)][0]
    assert 100 < first.day_of_year < 160, first
    assert (dec.loc[~leaf, "GPP"] == 0).all()


def test_site_param_names_and_numbers(weather2y):
    w = weather2y.iloc[:200]
    by_number = run_site(w, params={5: 0.8, 24: 150.0})
    for params in ({"beta": 0.8, "SW_init": 150.0}, {"β": 0.8, "SW_init": 150}, {"LUE": 0.8, "24": 150.0},
                   {"β (LUE)": 0.8, "swinit": 150.0}):  # fmt: skip
        pd.testing.assert_frame_equal(run_site(w, params=params), by_number)
    assert param_number("S₀") == 7 and param_number("S0") == 7
    assert param_number("t0") == 28 and param_number("T0") == 23 and param_number("t₀") == 28
    assert param_number("θFC") == 2 and param_number("rho_E") == 17 and param_number("soilthres ET") == 17
    assert by_number.attrs["params"]["beta"] == 0.8


def test_site_restart_via_end_states(weather2y):
    full = run_site(weather2y)
    y1 = run_site(weather2y.loc["2020"])
    y2 = run_site(weather2y.loc["2021"], states=y1.attrs["end_states"])
    pd.testing.assert_frame_equal(pd.concat([y1, y2]), full, check_exact=True)
    spun = run_site(weather2y.loc["2021"], states={"SW": 170.0, "S": -5.0, "SOG": 60.0})
    assert spun["SOG"].iloc[0] > 55


def test_site_gap_filling_and_doy(weather2y):
    w = weather2y.iloc[:100].copy()
    w.iloc[10:13, w.columns.get_loc("TAir")] = np.nan
    out = run_site(w)
    assert out.attrs["gap_filled"]["TAir"] == 3
    assert np.isfinite(out.to_numpy()).all()
    # DOY from the DatetimeIndex equals an explicit DOY column
    wd = synthetic_weather(1, seed=2, forest="deciduous")
    a = run_site(wd, deciduous=True)
    b = run_site(wd.drop(columns="DOY"), deciduous=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("mutate", "kwargs", "message"),
    [
        (lambda w: w.drop(columns=["VPD", "CO2"]), {}, "missing column.*VPD, CO2"),
        (lambda w: w.assign(fAPAR=w["fAPAR"].where(w.index != w.index[5])), {}, "'fAPAR' has NaN.*row"),
        (lambda w: w.assign(fAPAR=1.5), {}, r"fAPAR must be within \[0, 1\]"),
        (lambda w: w.assign(PAR=np.inf), {}, "'PAR' has infinite"),
        (lambda w: w.assign(TAir="warm"), {}, "'TAir' must be numeric"),
        (lambda w: w.assign(DOY=0), {}, "DOY must be whole numbers"),
        (lambda w: w, {"params": {"betta": 0.8}}, "unknown PRELES parameter 'betta'"),
        (lambda w: w, {"params": {31: 1.0}}, "number 31 is out of range"),
        (lambda w: w, {"params": {"beta": 0.8, 5: 0.9}}, "given twice"),
        (lambda w: w, {"params": {"beta": float("nan")}}, "must be finite"),
        (lambda w: w, {"params": {"tau": 0}}, r"tau \(6\) must be > 0"),
        (lambda w: w, {"etmodel": 2}, "etmodel must be 0 or 1"),
        (lambda w: w, {"states": {"snow": 3.0}}, "unknown PRELES state 'snow'"),
        (lambda w: w, {"params": {"t0": 57.0}, "deciduous": False}, "deciduous=False"),
        (lambda w: w.iloc[:0], {}, "no rows"),
        (lambda w: w.drop(w.index[10]), {}, "one row per consecutive day"),
    ],
)
def test_site_errors(weather2y, mutate, kwargs, message):
    with pytest.raises(PrelesInputError, match=message):
        run_site(mutate(weather2y.iloc[:30]), **kwargs)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli():
    app = typer.Typer()
    app.command("preles-site")(preles_site)

    @app.command("noop")
    def _noop() -> None:  # a second command so that typer keeps the sub-command name
        pass

    return app


def test_cli_roundtrip(cli, tmp_path, weather2y):
    src = tmp_path / "weather.csv"
    weather2y.to_csv(src)  # index written as a "date" column
    out = tmp_path / "out" / "preles.csv"
    r = CliRunner().invoke(cli, ["preles-site", "--weather", str(src), "--out", str(out), "--etmodel", "0",
                                 "--param", "beta=0.8", "--param", "24=150"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "2020: GPP" in r.output and "wrote 731 days" in r.output
    got = pd.read_csv(out, index_col="date", parse_dates=True)
    expected = run_site(weather2y, params={"beta": 0.8, "SW_init": 150.0})
    assert list(got.columns) == list(OUTPUT_COLUMNS)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-14)

    r = CliRunner().invoke(cli, ["preles-site", "--weather", str(src), "--out", str(out), "--deciduous"])
    assert r.exit_code == 0, r.output
    assert (pd.read_csv(out)["fAPAR"] == 0).any()


def test_cli_errors(cli, tmp_path, weather2y):
    src = tmp_path / "weather.csv"
    weather2y.drop(columns="Precip").to_csv(src)
    out = tmp_path / "out.csv"
    runner = CliRunner()
    r = runner.invoke(cli, ["preles-site", "--weather", str(src), "--out", str(out)])
    assert r.exit_code == 1 and "missing column(s) Precip" in r.output and not out.exists()

    weather2y.iloc[:20].to_csv(src)
    r = runner.invoke(cli, ["preles-site", "--weather", str(src), "--out", str(out), "--param", "beta"])
    assert r.exit_code == 1 and "NAME=VALUE" in r.output
    r = runner.invoke(cli, ["preles-site", "--weather", str(src), "--out", str(out), "--param", "nope=1"])
    assert r.exit_code == 1 and "unknown PRELES parameter 'nope'" in r.output
    r = runner.invoke(cli, ["preles-site", "--weather", str(src), "--out", str(out), "--param", "beta=x"])
    assert r.exit_code == 1 and "not a number" in r.output
    r = runner.invoke(cli, ["preles-site", "--weather", str(src), "--out", str(out), "--etmodel", "2"])
    assert r.exit_code == 1 and "etmodel must be 0 or 1" in r.output
    r = runner.invoke(cli, ["preles-site", "--weather", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert r.exit_code == 2  # click: file does not exist
