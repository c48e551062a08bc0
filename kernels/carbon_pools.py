"""Carbon pools in 2000 and in the loss year (spec/stages.md §11) — GFW flux model v1.4.3.

Public API
----------
agc_2000
    §11.1: aboveground carbon 2000 (mangrove AGB has precedence over WHRC/JPL AGB).
deadwood_litter_non_mangrove
    §11.3: the CDM AR-AM-Tool-12 deadwood / litter fractions of non-mangrove AGB
    (the pure function the original's ``test_deadwood_litter_equations.py`` tests).
carbon_pools_2000
    §11.1–§11.5 for ``carbon_pool_extent = 2000``: AGC, BGC, deadwood, litter, total.
carbon_pools_emis_year
    §11.1–§11.5 for ``carbon_pool_extent = loss``: AGC, BGC, deadwood, litter, soil
    (uint16) and total in the year of loss, in one pass.

Conventions are those of :mod:`fluxgraph.kernels.removals`: per-pixel
``@njit(cache=True)`` loops without ``fastmath`` over 2-D inputs of one shape in their
native dtypes (views are never copied), and the original's float32 / float64
promotions operation by operation (spec/stages.md §0): the Int16 WHRC AGB times a
Python constant is float64 and only cast to float32 at the end (AGC 2000, deadwood,
litter); a float32 AGB (JPL, ``biomass_swap``) stays float32 throughout.

Mangrove ratio lookups (BGB:AGB, deadwood:AGB, litter:AGB by continent-ecozone) are
dense arrays from :class:`fluxgraph.tables.RemovalTables` (``mangrove_ratio_*``):
values in float32 after the original's sequential dictionary replacement, a "has key"
array and a "valid" array (1 where the code's ``mangType`` is 1, 2 or 3).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .removals import _as_2d_arrays, _lookup_pair, _require_float32, _require_integer, _weak_const

__all__ = [
    "DEADWOOD_FRACTIONS",
    "LITTER_FRACTIONS",
    "agc_2000",
    "carbon_pools_2000",
    "carbon_pools_emis_year",
    "deadwood_litter_non_mangrove",
]

#: Deadwood / AGB and litter / AGB fractions of the five classes of spec/stages.md §11.3
#: (CDM AR-AM-Tool-12 v3.0): tropical (D == 1) with El ≤ 2000 and Pr ≤ 1000,
#: 1000 < Pr ≤ 1600, Pr > 1600; tropical with El > 2000; D != 1.
DEADWOOD_FRACTIONS = (0.02, 0.01, 0.06, 0.07, 0.08)
LITTER_FRACTIONS = (0.04, 0.01, 0.01, 0.01, 0.04)

_C_NON_MANG = 0.47  # C fraction of non-mangrove AGB and deadwood
_C_LITTER = 0.37  # C fraction of non-mangrove litter
_C_MANG = 0.45  # C fraction of every mangrove pool (incl. litter, B.4)
_MANGROVE_RANK = 6

_F32_ZERO = np.float32(0.0)
_F32_C_TO_CO2 = np.float32(44.0 / 12.0)


# --------------------------------------------------------------------------- per-pixel helpers
# numba reference-counts every array passed to a called function (~10 ns per call), so
# the per-pixel helpers take scalars only; table reads are written out in the kernels.


@njit(cache=True)
def _deadwood_class(d, el, pr):
    """Row of :data:`DEADWOOD_FRACTIONS` for a pixel (§11.3), −1 if no class applies (NaN inputs)."""
    k = -1
    if d == 1:
        if el <= 2000:
            if pr <= 1000:
                k = 0
            elif pr > 1000 and pr <= 1600:
                k = 1
            elif pr > 1600:
                k = 2
        elif el > 2000:
            k = 3
    else:
        k = 4
    return k


@njit(cache=True)
def _nonmangrove_pool(agb, k, f, c, zero):
    """``float32(0 + (AGB·f)·C)`` for class ``k`` (0 if ``k < 0``), as the original's masked sums.

    ``zero`` is float64 for an integer AGB and float32 for a float32 AGB, so the
    product and the accumulation happen in the original's dtype.
    """
    if k < 0:
        return np.float32(zero)
    return np.float32(zero + (agb * f) * c)


@njit(cache=True)
def _mangrove_ratio_select(known, valid, rb, rd, rl, code, passthrough, ratio100):
    """(use, BGB:AGB, deadwood:AGB, litter:AGB) of a continent-ecozone code (§11).

    ``use`` is False only in the corrected modes: an unknown code without
    pass-through, or a code whose ``mangType`` is not 1/2/3 (water sentinel 4) when
    the ratio-100 sentinel is switched off; such pixels follow the non-mangrove rules.
    """
    if known:
        if ratio100 or valid != 0:
            return True, rb, rd, rl
        return False, _F32_ZERO, _F32_ZERO, _F32_ZERO
    if passthrough:
        x = np.float32(code)
        return True, x, x, x
    return False, _F32_ZERO, _F32_ZERO, _F32_ZERO


@njit(cache=True)
def _agc2000(agb_w, agb_m, c_w, c_m):
    if agb_m != 0:
        return np.float32(agb_m * c_m)
    return np.float32(agb_w * c_w)


@njit(cache=True)
def _bgc(x, rft, use_ratio, r_mang, r):
    """``X·ratio_mang where type == 6 else X·R`` as the sum of the two masked parts (§11.2)."""
    is_mang = rft == _MANGROVE_RANK and use_ratio
    m = x * r_mang if is_mang else _F32_ZERO
    n = _F32_ZERO if is_mang else x * r
    return m + n


@njit(cache=True)
def _deadwood_litter(agb_w, agb_m, k, fd, fl, mang_present, use_ratio, rd, rl, c_dead, c_litt, zero, c_m,
                     c_m_litt):
    """Deadwood and litter C 2000 of one pixel of class ``k``, mangrove override included (§11.3)."""
    dead = _nonmangrove_pool(agb_w, k, fd, c_dead, zero)
    litt = _nonmangrove_pool(agb_w, k, fl, c_litt, zero)
    if mang_present != 0 and use_ratio:
        dead_m = np.float32((agb_m * rd) * c_m)
        litt_m = np.float32((agb_m * rl) * c_m_litt)
        if agb_m > 0:
            dead = _F32_ZERO
            litt = _F32_ZERO
        dead = dead_m + dead
        litt = litt_m + litt
    return dead, litt


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _agc_2000_kernel(agb_w, agb_m, c_w, c_m, out):
    nrow, ncol = out.shape
    for i in range(nrow):
        for j in range(ncol):
            out[i, j] = _agc2000(agb_w[i, j], agb_m[i, j], c_w, c_m)


@njit(cache=True)
def _deadwood_litter_kernel(agb, d, el, pr, fdead, flitt, c_dead, c_litt, zero, out_dead, out_litt):
    nrow, ncol = out_dead.shape
    for i in range(nrow):
        for j in range(ncol):
            k = _deadwood_class(d[i, j], el[i, j], pr[i, j])
            kk = max(k, 0)
            out_dead[i, j] = _nonmangrove_pool(agb[i, j], k, fdead[kk], c_dead, zero)
            out_litt[i, j] = _nonmangrove_pool(agb[i, j], k, flitt[kk], c_litt, zero)


@njit(cache=True)
def _pools_2000_kernel(agb_w, agb_m, rft, ce, r, d, el, pr, soil, mang_present,
                       rb, rd, rl, has, valid, passthrough, ratio100,
                       c_w, c_m, fdead, flitt, c_dead, c_litt, zero, c_m_litt,
                       out_agc, out_bgc, out_dead, out_litt, out_total):
    nrow, ncol = out_agc.shape
    n = min(rb.shape[0], rd.shape[0], rl.shape[0], has.shape[0], valid.shape[0])
    for i in range(nrow):
        for j in range(ncol):
            aw = agb_w[i, j]
            am = agb_m[i, j]
            agc = _agc2000(aw, am, c_w, c_m)
            c = np.int64(ce[i, j])
            kn = c >= 0 and c < n and has[c] != 0
            use, r_b, r_d, r_l = _mangrove_ratio_select(
                kn, valid[c] if kn else 0, rb[c] if kn else _F32_ZERO, rd[c] if kn else _F32_ZERO,
                rl[c] if kn else _F32_ZERO, c, passthrough, ratio100)
            bgc = _bgc(agc, rft[i, j], use, r_b, r[i, j])
            k = _deadwood_class(d[i, j], el[i, j], pr[i, j])
            kk = max(k, 0)
            dead, litt = _deadwood_litter(aw, am, k, fdead[kk], flitt[kk], mang_present[i, j], use, r_d, r_l,
                                          c_dead, c_litt, zero, c_m, c_m_litt)
            out_agc[i, j] = agc
            out_bgc[i, j] = bgc
            out_dead[i, j] = dead
            out_litt[i, j] = litt
            out_total[i, j] = agc + bgc + dead + litt + np.float32(soil[i, j])


@njit(cache=True)
def _pools_emis_kernel(loss, gain, rft, agb_w, agb_m, agc_rate, agco2, ce, r, d, el, pr, soil, mang_present,
                       extent, rb, rd, rl, has, valid, passthrough, ratio100, mask_by_type,
                       c_w, c_m, fdead, flitt, c_dead, c_litt, zero, c_m_litt,
                       out_agc, out_bgc, out_dead, out_litt, out_soil, out_total):
    nrow, ncol = out_agc.shape
    n = min(rb.shape[0], rd.shape[0], rl.shape[0], has.shape[0], valid.shape[0])
    for i in range(nrow):
        for j in range(ncol):
            lyr = np.int64(loss[i, j])
            t = rft[i, j]
            aw = agb_w[i, j]
            am = agb_m[i, j]
            # §11.1 AGC in the loss year
            agc0 = _agc2000(aw, am, c_w, c_m)
            keep = t > 0 if mask_by_type else extent[i, j] > 0  # B.3
            base = agc0 if keep else _F32_ZERO
            lg_mask = gain[i, j] if lyr != 0 else 0
            a_nlg = base + agco2[i, j] / _F32_C_TO_CO2
            a_lg = base + agc_rate[i, j] * np.float32((lyr - 1) & 0xFF)
            part_nlg = a_nlg if lg_mask != 1 else _F32_ZERO
            part_lg = a_lg if lg_mask != 0 else _F32_ZERO
            agc = part_nlg + part_lg if lyr > 0 else _F32_ZERO
            # §11.2 BGC
            c = np.int64(ce[i, j])
            kn = c >= 0 and c < n and has[c] != 0
            use, r_b, r_d, r_l = _mangrove_ratio_select(
                kn, valid[c] if kn else 0, rb[c] if kn else _F32_ZERO, rd[c] if kn else _F32_ZERO,
                rl[c] if kn else _F32_ZERO, c, passthrough, ratio100)
            bgc = _bgc(agc, t, use, r_b, r[i, j])
            # §11.3 deadwood and litter (2000 values on loss pixels)
            k = _deadwood_class(d[i, j], el[i, j], pr[i, j])
            kk = max(k, 0)
            dead, litt = _deadwood_litter(aw, am, k, fdead[kk], flitt[kk], mang_present[i, j], use, r_d, r_l,
                                          c_dead, c_litt, zero, c_m, c_m_litt)
            if not (agc > 0):
                dead = _F32_ZERO
                litt = _F32_ZERO
            # §11.4 soil
            s = (np.int64(soil[i, j]) & 0xFFFF) if agc != 0 else 0
            out_agc[i, j] = agc
            out_bgc[i, j] = bgc
            out_dead[i, j] = dead
            out_litt[i, j] = litt
            out_soil[i, j] = s
            # §11.5 total
            out_total[i, j] = agc + bgc + dead + litt + np.float32(s)


# --------------------------------------------------------------------------- wrappers


def _agb_constants(agb_whrc, agb_mangrove):
    """Typed constants reproducing numpy's promotions of ``AGB * python_float``."""
    dt_w = agb_whrc.dtype
    c_w = _weak_const(dt_w, _C_NON_MANG)
    fdead = np.array(DEADWOOD_FRACTIONS, dtype=np.result_type(dt_w, 0.5))
    flitt = np.array(LITTER_FRACTIONS, dtype=np.result_type(dt_w, 0.5))
    c_dead = _weak_const(dt_w, _C_NON_MANG)
    c_litt = _weak_const(dt_w, _C_LITTER)
    # the original adds the float32 zero array and each class's (AGB·f)·C product
    zero = np.result_type(np.float32, np.result_type(dt_w, 0.5)).type(0.0)
    # AGB_M · 0.45 (AGC 2000) and (AGB_M · ratio_f32) · 0.45 (mangrove pools)
    c_m = _weak_const(np.result_type(agb_mangrove.dtype, np.float32), _C_MANG)
    return c_w, c_m, fdead, flitt, c_dead, c_litt, zero


def _mangrove_litter_c(agb_mangrove, c045):
    """C fraction of mangrove litter: 0.45 as the original (B.4) or the non-mangrove 0.37."""
    return _weak_const(np.result_type(agb_mangrove.dtype, np.float32), _C_MANG if c045 else _C_LITTER)


def _ratio_tables(ratio_bgb, ratio_deadwood, ratio_litter, ratio_has, ratio_valid):
    rb, has = _lookup_pair(ratio_bgb, ratio_has, "ratio_bgb")
    rd, _ = _lookup_pair(ratio_deadwood, ratio_has, "ratio_deadwood")
    rl, valid = _lookup_pair(ratio_litter, ratio_valid, "ratio_litter")
    if not (rd.shape == rb.shape == rl.shape):
        raise ValueError("mangrove ratio tables must have one length")
    return rb, rd, rl, has, valid


def agc_2000(agb_whrc, agb_mangrove):
    """Aboveground carbon in 2000 (spec/stages.md §11.1).

    ``AGC2000 = AGB_M · 0.45 where AGB_M != 0 else AGB_W · 0.47``, cast to float32
    (the WHRC product is float64 for the Int16 tile).

    Parameters
    ----------
    agb_whrc : ndarray, 2-D, int16 (WHRC) or float32 (JPL)
        Non-mangrove AGB 2000, Mg dry matter ha⁻¹.
    agb_mangrove : ndarray, 2-D, float32
        Mangrove AGB 2000, Mg dry matter ha⁻¹.

    Returns
    -------
    ndarray of float32, 2-D
        ``Mg_AGC_ha_2000``, Mg C ha⁻¹ (any biomass pixel; not masked to the model extent).
    """
    agb_whrc, agb_mangrove = _as_2d_arrays(agb_whrc=agb_whrc, agb_mangrove=agb_mangrove)
    c_w, c_m, *_ = _agb_constants(agb_whrc, agb_mangrove)
    out = np.empty(agb_whrc.shape, dtype=np.float32)
    _agc_2000_kernel(agb_whrc, agb_mangrove, c_w, c_m, out)
    return out


def deadwood_litter_non_mangrove(agb, climate_domain, elevation, precip):
    """Non-mangrove deadwood and litter carbon (spec/stages.md §11.3, table part).

    ==========================================  ==============  ============
    condition                                   deadwood / AGB  litter / AGB
    ==========================================  ==============  ============
    D == 1, El ≤ 2000, Pr ≤ 1000                0.02            0.04
    D == 1, El ≤ 2000, 1000 < Pr ≤ 1600         0.01            0.01
    D == 1, El ≤ 2000, Pr > 1600                0.06            0.01
    D == 1, El > 2000                           0.07            0.01
    D != 1 (boreal, temperate, 0 / missing)     0.08            0.04
    ==========================================  ==============  ============

    ``deadwood = (AGB·f_dead)·0.47``, ``litter = (AGB·f_litter)·0.37``, computed in
    float64 for an integer AGB and in float32 for a float32 AGB, then cast to float32.

    Parameters
    ----------
    agb : ndarray, 2-D, int16 or float32
        Non-mangrove AGB 2000, Mg dry matter ha⁻¹.
    climate_domain : ndarray, 2-D, int16
        1 tropical, 2 boreal, 3 temperate, 0 missing.
    elevation : ndarray, 2-D, int16
        Elevation, m (0 = nodata → lowest class, B.5).
    precip : ndarray, 2-D, int32
        Annual precipitation, mm yr⁻¹ (0 = nodata → lowest class).

    Returns
    -------
    deadwood, litter : ndarray of float32, 2-D
        Mg C ha⁻¹.
    """
    agb, climate_domain, elevation, precip = _as_2d_arrays(
        agb=agb, climate_domain=climate_domain, elevation=elevation, precip=precip
    )
    _, _, fdead, flitt, c_dead, c_litt, zero = _agb_constants(agb, np.zeros(0, np.float32))
    dead = np.empty(agb.shape, dtype=np.float32)
    litt = np.empty(agb.shape, dtype=np.float32)
    _deadwood_litter_kernel(agb, climate_domain, elevation, precip, fdead, flitt, c_dead, c_litt, zero,
                            dead, litt)
    return dead, litt


def carbon_pools_2000(agb_whrc, agb_mangrove, removal_forest_type, ce, bgb_ratio, climate_domain, elevation,
                      precip, soil, ratio_bgb, ratio_deadwood, ratio_litter, ratio_has, ratio_valid,
                      *, mangrove_present=None, passthrough=True, mangtype4_ratio100=True,
                      mangrove_litter_c045=True):
    """Carbon pools in 2000 (spec/stages.md §11, ``carbon_pool_extent = 2000``).

    * AGC (§11.1): ``AGB_M·0.45 where AGB_M != 0 else AGB_W·0.47``.
    * BGC (§11.2): ``AGC·ratio_BGB[CE] where removal_forest_type == 6 else AGC·R``
      (computed as the sum of the two masked parts).
    * Deadwood / litter (§11.3): the non-mangrove table of
      :func:`deadwood_litter_non_mangrove` on WHRC AGB, then, where the mangrove
      tile exists, ``(AGB_M·ratio[CE])·0.45 + (0 where AGB_M > 0 else non-mangrove)``
      (mangrove litter uses 0.45, B.4).
    * Total (§11.5): ``AGC + BGC + deadwood + litter + soil`` in float32.

    Parameters
    ----------
    agb_whrc : ndarray, 2-D, int16 (WHRC) or float32 (JPL)
        Non-mangrove AGB 2000, Mg dry matter ha⁻¹ (zeros where the tile is absent).
    agb_mangrove : ndarray, 2-D, float32
        Mangrove AGB 2000, Mg dry matter ha⁻¹ (zeros where the tile is absent).
    removal_forest_type : ndarray, 2-D, uint8
        Composite removal source (§8); 6 = mangrove.
    ce : ndarray, 2-D, int16
        Continent-ecozone code.
    bgb_ratio : ndarray, 2-D, float32
        BGB:AGB ratio ``R`` (0.26 broadcast where the tile is absent).
    climate_domain : ndarray, 2-D, int16
        1 tropical, 2 boreal, 3 temperate, 0 missing.
    elevation : ndarray, 2-D, int16
        Elevation, m.
    precip : ndarray, 2-D, int32
        Annual precipitation, mm yr⁻¹.
    soil : ndarray, 2-D, int16
        Soil organic C 2000 (``soil_C_full_extent_2000_Mg_C_ha``), Mg C ha⁻¹; zeros if absent.
    ratio_bgb, ratio_deadwood, ratio_litter : ndarray, 1-D, float32
        Mangrove BGB:AGB, deadwood:AGB and litter:AGB by code
        (``RemovalTables.mangrove_ratio_{bgb,deadwood,litter}``).
    ratio_has, ratio_valid : ndarray, 1-D, uint8
        "Has key" flags of the ratio tables and 1 where the code's ``mangType`` is
        1, 2 or 3 (``RemovalTables.mangrove_ratio_has`` / ``mangrove_ratio_valid``).
    mangrove_present : ndarray, 2-D, uint8, optional
        Per-tile flag (usually a broadcast view): 1 where the mangrove AGB tile exists
        (only then is the mangrove deadwood / litter override applied). Default 1.
    passthrough : bool, default True
        True reproduces Appendix B.7: a code absent from the ratio tables uses its
        own value as the ratio. False: such pixels follow the non-mangrove rules
        (BGC = AGC·R, non-mangrove deadwood / litter).
    mangtype4_ratio100 : bool, default True
        True reproduces Appendix B.6: codes of ``mangType`` 4 (water) carry the ratio
        100 (deadwood = litter = 45 × AGB_M; BGC = 100 × AGC for type 6). False:
        codes whose ``mangType`` is not 1/2/3 follow the non-mangrove rules.
    mangrove_litter_c045 : bool, default True
        True reproduces Appendix B.4: mangrove litter C = litter biomass × 0.45 (the
        mangrove C fraction). False uses the litter C fraction 0.37 of non-mangrove
        forests (IPCC 2006).

    Returns
    -------
    agc, bgc, deadwood, litter, total : ndarray of float32, 2-D
        ``Mg_AGC_ha_2000``, ``Mg_BGC_ha_2000``, ``Mg_deadwood_C_ha_2000``,
        ``Mg_litter_C_ha_2000``, ``Mg_total_C_ha_2000``, Mg C ha⁻¹.
    """
    if mangrove_present is None:
        mangrove_present = np.uint8(1)
    arrays = _as_2d_arrays(
        agb_whrc=agb_whrc, agb_mangrove=agb_mangrove, removal_forest_type=removal_forest_type, ce=ce,
        bgb_ratio=bgb_ratio, climate_domain=climate_domain, elevation=elevation, precip=precip, soil=soil,
        mangrove_present=mangrove_present,
    )
    _require_integer("ce", arrays[3])
    _require_float32("bgb_ratio", arrays[4])
    _require_integer("soil", arrays[8])
    tables = _ratio_tables(ratio_bgb, ratio_deadwood, ratio_litter, ratio_has, ratio_valid)
    consts = _agb_constants(arrays[0], arrays[1])
    outs = tuple(np.empty(arrays[0].shape, dtype=np.float32) for _ in range(5))
    c_m_litt = _mangrove_litter_c(arrays[1], mangrove_litter_c045)
    _pools_2000_kernel(*arrays, *tables, bool(passthrough), bool(mangtype4_ratio100), *consts, c_m_litt, *outs)
    return outs


def carbon_pools_emis_year(loss, gain, removal_forest_type, agb_whrc, agb_mangrove, agc_rate,
                           gross_removals_agco2, ce, bgb_ratio, climate_domain, elevation, precip, soil,
                           ratio_bgb, ratio_deadwood, ratio_litter, ratio_has, ratio_valid,
                           *, mangrove_present=None, passthrough=True, mangtype4_ratio100=True,
                           mangrove_litter_c045=True, agc_masked_by_removal_type=True, extent=None):
    """Carbon pools in the year of loss, one pass (spec/stages.md §11, ``carbon_pool_extent = loss``).

    * AGC (§11.1, B.3, B.18)::

          base     = AGC2000 where removal_forest_type > 0 else 0
          lg       = G where Lyr != 0 else 0
          A_nlg    = base + AGCO2 / (44/12)
          A_lg     = base + AGC_rate · uint8(Lyr − 1)
          AGC_emis = ((A_nlg where lg != 1 else 0) + (A_lg where lg != 0 else 0)) where Lyr > 0 else 0

    * BGC (§11.2): ``AGC_emis·ratio_BGB[CE] where type == 6 else AGC_emis·R``.
    * Deadwood / litter (§11.3, B.4): the 2000 values (see :func:`carbon_pools_2000`)
      where ``AGC_emis > 0``, else 0.
    * Soil (§11.4, B.19): ``uint16(soil)`` where ``AGC_emis != 0``, else 0.
    * Total (§11.5): ``AGC + BGC + deadwood + litter + soil`` in float32.

    Parameters
    ----------
    loss : ndarray, 2-D, uint8
        Loss year code (1…25).
    gain : ndarray, 2-D, uint8
        Tree cover gain (1 = gain).
    removal_forest_type : ndarray, 2-D, uint8
        Composite removal source (§8).
    agb_whrc : ndarray, 2-D, int16 (WHRC) or float32 (JPL)
        Non-mangrove AGB 2000, Mg dry matter ha⁻¹.
    agb_mangrove : ndarray, 2-D, float32
        Mangrove AGB 2000, Mg dry matter ha⁻¹.
    agc_rate : ndarray, 2-D, float32
        Composite AGC removal factor (§8), Mg C ha⁻¹ yr⁻¹.
    gross_removals_agco2 : ndarray, 2-D, float32
        Gross aboveground removals (§10), Mg CO2 ha⁻¹.
    ce, bgb_ratio, climate_domain, elevation, precip : ndarray, 2-D
        As in :func:`carbon_pools_2000`.
    soil : ndarray, 2-D, int16
        Soil organic C 2000, Mg C ha⁻¹ (zeros where the tile is absent).
    ratio_bgb, ratio_deadwood, ratio_litter, ratio_has, ratio_valid : ndarray, 1-D
        Mangrove ratio lookups, as in :func:`carbon_pools_2000`.
    mangrove_present : ndarray, 2-D, uint8, optional
        1 where the mangrove AGB tile exists (default 1).
    passthrough, mangtype4_ratio100, mangrove_litter_c045 : bool, default True
        Appendix B.7 / B.6 / B.4 switches, as in :func:`carbon_pools_2000`.
    agc_masked_by_removal_type : bool, default True
        True reproduces Appendix B.3: AGC 2000 enters the loss year only where
        ``removal_forest_type > 0``, so loss pixels of the model extent without any
        removal factor get no carbon (and no emissions). False masks with the model
        extent instead (``extent > 0``; ``extent`` must then be given).
    extent : ndarray, 2-D, uint8, optional
        Model extent (§5); only used with ``agc_masked_by_removal_type=False``.

    Returns
    -------
    agc, bgc, deadwood, litter : ndarray of float32, 2-D
        ``Mg_AGC_ha_emis_year``, ``Mg_BGC_ha_emis_year``,
        ``Mg_deadwood_C_ha_emis_year_2000``, ``Mg_litter_C_ha_emis_year_2000``, Mg C ha⁻¹.
    soil : ndarray of uint16, 2-D
        ``Mg_soil_C_ha_emis_year_2000``, Mg C ha⁻¹.
    total : ndarray of float32, 2-D
        ``Mg_total_C_ha_emis_year``, Mg C ha⁻¹.
    """
    if mangrove_present is None:
        mangrove_present = np.uint8(1)
    if extent is None:
        if not agc_masked_by_removal_type:
            raise ValueError("agc_masked_by_removal_type=False needs the model extent (extent=...)")
        extent = np.uint8(0)
    arrays = _as_2d_arrays(
        loss=loss, gain=gain, removal_forest_type=removal_forest_type, agb_whrc=agb_whrc,
        agb_mangrove=agb_mangrove, agc_rate=agc_rate, gross_removals_agco2=gross_removals_agco2, ce=ce,
        bgb_ratio=bgb_ratio, climate_domain=climate_domain, elevation=elevation, precip=precip, soil=soil,
        mangrove_present=mangrove_present, extent=extent,
    )
    _require_float32("agc_rate", arrays[5])
    _require_float32("gross_removals_agco2", arrays[6])
    _require_integer("ce", arrays[7])
    _require_float32("bgb_ratio", arrays[8])
    _require_integer("soil", arrays[12])
    tables = _ratio_tables(ratio_bgb, ratio_deadwood, ratio_litter, ratio_has, ratio_valid)
    consts = _agb_constants(arrays[3], arrays[4])
    shape = arrays[0].shape
    outs = [np.empty(shape, dtype=np.float32) for _ in range(4)]
    soil_out = np.empty(shape, dtype=np.uint16)
    total = np.empty(shape, dtype=np.float32)
    c_m_litt = _mangrove_litter_c(arrays[4], mangrove_litter_c045)
    _pools_emis_kernel(*arrays, *tables, bool(passthrough), bool(mangtype4_ratio100),
                       bool(agc_masked_by_removal_type), *consts, c_m_litt, *outs, soil_out, total)
    return (*outs, soil_out, total)
