"""Plain-numpy reference of the removals and carbon-pool stages, written from spec/stages.md.

Independent of the numba kernels: whole-array numpy expressions with masks, in the
order of the spec's pseudo-code, and the original's way of doing lookups (Python
dictionaries applied by sequential in-place replacement ``arr[arr == key] = value``,
``np.vectorize(dict.get)`` in the age stage). numpy's own dtype promotions (NEP 50)
give the float32 / float64 behaviour of spec §0 without any explicit casting tricks.

Per-tile flags (tropics band, "all tiles of a source exist", mangrove tile exists,
gain / loss tile exists) are plain Python bools here, as in the original.
"""

from __future__ import annotations

import numpy as np

C_TO_CO2 = 44 / 12


class OriginalCrashError(Exception):
    """The original would raise here (e.g. ``np.vectorize(dict.get)`` meeting an unknown code)."""


def replace_sequential(codes_f32: np.ndarray, table: dict) -> np.ndarray:
    """The original's lookup: ``for key, value in table.items(): arr[arr == key] = value``."""
    arr = codes_f32.astype(np.float32).copy()
    for key, value in table.items():
        arr[arr == key] = value
    return arr


# --------------------------------------------------------------------------- §5


def model_extent(tcd, agb_whrc, agb_mangrove, gain):
    """§5 with numpy's own float → uint8 cast (x86 wrap-around)."""
    tcd_bio = (agb_whrc > 0) & (tcd > 0)
    with np.errstate(invalid="ignore"):
        mang = agb_mangrove.astype(np.uint8) > 1
    return (tcd_bio | mang | (gain == 1)).astype(np.uint8)


# --------------------------------------------------------------------------- §3, §4


def annual_removals_mangrove(ce, agb_mangrove, agb_dict, bgb_dict, sd_dict):
    mask = agb_mangrove.copy()
    mask[mask > 0] = 1
    c = ce.astype(np.float32)
    a = replace_sequential(c, agb_dict) * mask
    b = replace_sequential(c, bgb_dict) * mask
    s = replace_sequential(c, sd_dict) * mask
    return a, b, s


def annual_removals_us(gain, age, group, region, rate_age, rate_young, sd_age, sd_young):
    a = age.astype(np.float32)
    f = group.astype(np.float32)
    r = region.astype(np.float32)
    code3 = a * 10000 + f * 100 + r
    with np.errstate(invalid="ignore"):
        code3 = np.ma.masked_where(a == 0, code3).filled(0).astype(np.uint16)
    code3 = np.ma.masked_where(f == 0, code3).filled(0)
    code3 = np.ma.masked_where(r == 0, code3).filled(0)
    code3 = np.ma.masked_where(gain != 0, code3).filled(0)
    code2 = f * 100 + r
    with np.errstate(invalid="ignore"):
        code2 = np.ma.masked_where(a == 0, code2).filled(0).astype(np.uint16)
    code2 = np.ma.masked_where(f == 0, code2).filled(0)
    code2 = np.ma.masked_where(r == 0, code2).filled(0)
    code2 = np.ma.masked_where(gain == 0, code2).filled(0)
    out = []
    for t3, t2 in ((rate_age, rate_young), (sd_age, sd_young)):
        w3 = np.zeros(gain.shape, dtype=np.float32)
        w2 = np.zeros(gain.shape, dtype=np.float32)
        for key, value in t3.items():
            w3[code3 == key] = value
        for key, value in t2.items():
            w2[code2 == key] = value
        out.append(w3 + w2)
    return tuple(out)


# --------------------------------------------------------------------------- §6, §7


def forest_age_category(extent, loss, gain, ce, agb, primary, tropics: bool, young_dict):
    """§6 strip by strip (one row = one strip), with ``np.vectorize(young_dict.get)``.

    Raises :class:`OriginalCrashError` where the original raises (unknown code first in a
    strip, or an unknown / NaN code in a strip whose first code is 0).
    """
    out = np.zeros(extent.shape, dtype=np.uint8)
    for i in range(extent.shape[0]):
        e, lo, g, c, b, p = extent[i], loss[i], gain[i], ce[i], agb[i], primary[i]
        try:
            with np.errstate(invalid="ignore"):
                young20 = np.vectorize(young_dict.get)(c) * 20
        except (TypeError, ValueError) as err:
            raise OriginalCrashError(str(err)) from err
        d = np.zeros(e.shape, dtype=np.uint8)
        if not tropics:
            d[np.where((e > 0) & (g == 0) & (lo == 0))] = 2
        if tropics:
            d[np.where((e > 0) & (g == 0) & (lo == 0) & (p != 1))] = 2
            d[np.where((e > 0) & (g == 0) & (lo == 0) & (p == 1))] = 3
        with np.errstate(invalid="ignore"):
            d[np.where((e > 0) & (g == 0) & (lo > 0) & (p != 1) & (b <= young20))] = 1
            d[np.where((e > 0) & (g == 0) & (lo > 0) & (p != 1) & (b > young20))] = 2
        d[np.where((e > 0) & (g == 0) & (lo > 0) & (p == 1))] = 3
        d[np.where((e > 0) & (g == 1) & (lo == 0))] = 1
        d[np.where((e > 0) & (g == 1) & (lo > 0))] = 1
        out[i] = d
    return out


def annual_removals_ipcc(age, ce, bgb_ratio, rate_dict, sd_dict):
    age_dict = {0: 0, 1: 10000, 2: 20000, 3: 30000}
    age_recode = np.vectorize(age_dict.get)(age)
    cont_eco_age = ce + age_recode
    agb = replace_sequential(cont_eco_age.astype(np.float32), rate_dict)
    bgb = agb * bgb_ratio
    sd = replace_sequential(cont_eco_age.astype(np.float32), sd_dict)
    return agb, bgb, sd


# --------------------------------------------------------------------------- §8


def annual_removals_all_forest_types(extent, age, r, ipcc, ipcc_sd, young, young_sd, us, us_sd, pf, pf_sd,
                                     eu, eu_sd, m_agb, m_bgb, m_sd, present, no_primary_gain=False):
    """§8; ``present`` is a dict of source name → bool (all tiles of the source exist)."""
    shape = extent.shape
    t = np.zeros(shape, dtype=np.uint8)
    agc = np.zeros(shape, dtype=np.float32)
    bgc = np.zeros(shape, dtype=np.float32)
    sd = np.zeros(shape, dtype=np.float32)
    if present["ipcc"]:
        t = np.where((extent != 0) if no_primary_gain else (ipcc != 0), 1, t).astype(np.uint8)
        agc = np.where(ipcc != 0, ipcc * 0.47, agc).astype(np.float32)
        bgc = np.where(ipcc != 0, ipcc * 0.47 * r, bgc).astype(np.float32)
        sd = np.where(ipcc_sd != 0, ipcc_sd * 0.47, sd).astype(np.float32)
    if present["young"]:
        with np.errstate(invalid="ignore"):
            cond = (young > 0) & (age == 1)
            t = np.where(cond, 2, t).astype(np.uint8)
            agc = np.where(cond, young, agc).astype(np.float32)
            bgc = np.where(cond, young * r, bgc).astype(np.float32)
            sd = np.where((young_sd > 0) & (age == 1), young_sd, sd).astype(np.float32)
    for name, rank, x, x_sd in (("us", 3, us, us_sd), ("planted", 4, pf, pf_sd), ("europe", 5, eu, eu_sd)):
        if not present[name]:
            continue
        t = np.where(x != 0, rank, t).astype(np.uint8)
        agc = np.where(x != 0, x / (1 + r), agc).astype(np.float32)
        bgc = np.where(x != 0, x - x / (1 + r), bgc).astype(np.float32)
        s = (x_sd / 2) / (1 + r) if name == "europe" else x_sd / (1 + r)
        sd = np.where(x_sd != 0, s, sd).astype(np.float32)
    if present["mangrove"]:
        t = np.where(m_agb != 0, 6, t).astype(np.uint8)
        agc = np.where(m_agb != 0, m_agb * 0.45, agc).astype(np.float32)
        bgc = np.where(m_bgb != 0, m_bgb * 0.45, bgc).astype(np.float32)
        sd = np.where(m_sd != 0, m_sd * 0.45, sd).astype(np.float32)
    t = np.where(extent == 1, t, 0).astype(np.uint8)
    agc = np.where(extent == 1, agc, 0)
    bgc = np.where(extent == 1, bgc, 0)
    sd = np.where(extent == 1, sd, 0)
    return t, agc, bgc, agc + bgc, sd


# --------------------------------------------------------------------------- §9, §10, §12b


def gain_year_count(loss, gain, extent, gain_present: bool, loss_present: bool, loss_years=25, gain_years=20,
                    maxgain=False):
    li = loss.astype(np.int64)
    z = np.zeros(loss.shape, dtype=np.int64)
    if gain_present:
        lo = ((li > 0) & (gain == 0) & (extent > 0)) * (li - 1)
        go = ((li == 0) & (gain == 1) & (extent > 0)) * (loss_years if maxgain else gain_years // 2)
        nc = ((li == 0) & (gain == 0) & (extent > 0)) * loss_years
        lg_years = (loss_years - 1) if maxgain else (li - 1) + np.floor((loss_years + 1 - li) / 2).astype(np.int64)
        lg = ((li > 0) & (gain == 1) & (extent > 0)) * lg_years
    elif loss_present:  # B.9: only no-change, inverted, no extent mask
        lo, go, lg = z, z, z
        nc = (li > 0) * loss_years
    else:
        lo, go, lg = z, z, z
        nc = (extent > 0) * loss_years
    parts = [np.asarray(p).astype(np.uint8) for p in (lo, go, nc, lg)]
    total = parts[0] + parts[1] + parts[2] + parts[3]
    return (*parts, total)


def gross_removals(agc_rate, bgc_rate, years):
    ag = agc_rate * years * C_TO_CO2
    bg = bgc_rate * years * C_TO_CO2
    return ag, bg, ag + bg


def net_flux(emissions, removals):
    return emissions.astype(np.float32) - removals.astype(np.float32)


# --------------------------------------------------------------------------- §11


def agc_2000(agb_whrc, agb_mangrove):
    return np.where(agb_mangrove != 0, agb_mangrove * 0.45, agb_whrc * 0.47).astype(np.float32)


def deadwood_litter_non_mangrove(agb, domain, elevation, precip):
    """§11.3 table as five masked sums into float32 zeros, cast to float32 at the end.

    The original multiplies ``np.ma`` arrays by Python floats. Under numpy 1.x (the
    original's) that keeps a float32 AGB in float32, as spec §11.3 says; numpy 2's
    ``np.ma`` turns the float into a 0-d float64 array and would promote. So the masking
    is done with ``np.where`` on plain arrays here, which gives numpy 1.x's dtypes.
    """
    dead = np.zeros(agb.shape, dtype=np.float32)
    litt = np.zeros(agb.shape, dtype=np.float32)
    classes = (
        ((elevation <= 2000) & (precip <= 1000) & (domain == 1), 0.02, 0.04),
        ((elevation <= 2000) & (precip > 1000) & (precip <= 1600) & (domain == 1), 0.01, 0.01),
        ((elevation <= 2000) & (precip > 1600) & (domain == 1), 0.06, 0.01),
        ((elevation > 2000) & (domain == 1), 0.07, 0.01),
        ((domain != 1), 0.08, 0.04),
    )
    for cond, fd, fl in classes:
        dead = dead + np.where(cond, agb * fd * 0.47, 0)
        litt = litt + np.where(cond, agb * fl * 0.37, 0)
    return dead.astype(np.float32), litt.astype(np.float32)


def _bgc(x, rft, ce, ratio_dict, r):
    ratio = replace_sequential(ce.astype(np.float32), ratio_dict)
    mangrove = np.where(rft == 6, x * ratio, 0)
    non_mangrove = np.where(rft != 6, x * r, 0)
    return mangrove + non_mangrove


def _deadwood_litter(agb_whrc, agb_mangrove, ce, domain, elevation, precip, dead_dict, litter_dict,
                     mangrove_present: bool):
    dead, litt = deadwood_litter_non_mangrove(agb_whrc, domain, elevation, precip)
    if mangrove_present:
        cd = replace_sequential(ce.astype(np.float32), dead_dict)
        dead_m = agb_mangrove * cd * 0.45
        dead = dead_m + np.ma.masked_where(agb_mangrove > 0, dead).filled(0)
        cl = replace_sequential(ce.astype(np.float32), litter_dict)
        litt_m = agb_mangrove * cl * 0.45
        litt = litt_m + np.ma.masked_where(agb_mangrove > 0, litt).filled(0)
    return dead, litt


def carbon_pools_2000(agb_whrc, agb_mangrove, rft, ce, r, domain, elevation, precip, soil, ratio_dicts,
                      mangrove_present=True):
    """``ratio_dicts``: {"bgb": …, "deadwood": …, "litter": …} (the original's float-keyed dicts)."""
    agc = agc_2000(agb_whrc, agb_mangrove)
    bgc = _bgc(agc, rft, ce, ratio_dicts["bgb"], r)
    dead, litt = _deadwood_litter(agb_whrc, agb_mangrove, ce, domain, elevation, precip,
                                  ratio_dicts["deadwood"], ratio_dicts["litter"], mangrove_present)
    total = (agc + bgc + dead + litt + soil).astype(np.float32)
    return agc, bgc, dead, litt, total


def carbon_pools_emis_year(loss, gain, rft, agb_whrc, agb_mangrove, agc_rate, agco2, ce, r, domain, elevation,
                           precip, soil, ratio_dicts, mangrove_present=True):
    agc2000 = agc_2000(agb_whrc, agb_mangrove)
    base = np.where(rft > 0, agc2000, 0)
    lg_mask = np.ma.masked_where(loss == 0, gain).filled(0)
    a_nlg = base + agco2 / C_TO_CO2
    a_nlg = np.ma.masked_where(lg_mask == 1, a_nlg).filled(0)
    a_lg = base + agc_rate * (loss - 1)
    a_lg = np.ma.masked_where(lg_mask == 0, a_lg).filled(0)
    agc = np.where(loss > 0, a_nlg + a_lg, 0).astype(np.float32)
    bgc = _bgc(agc, rft, ce, ratio_dicts["bgb"], r)
    dead, litt = _deadwood_litter(agb_whrc, agb_mangrove, ce, domain, elevation, precip,
                                  ratio_dicts["deadwood"], ratio_dicts["litter"], mangrove_present)
    dead = np.where(agc > 0, dead, 0).astype(np.float32)
    litt = np.where(agc > 0, litt, 0).astype(np.float32)
    soil_e = np.ma.masked_where(agc == 0, soil).filled(0).astype(np.uint16)
    total = (agc + bgc + dead + litt + soil_e).astype(np.float32)
    return agc, bgc, dead, litt, soil_e, total
