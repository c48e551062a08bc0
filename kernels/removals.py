"""Removals kernels (spec/stages.md §3, §4, §6–§10, §12b) — GFW flux model v1.4.3.

Public API
----------
annual_removals_mangrove
    §3: mangrove AGB / BGB removal factors and AGB stdev by continent-ecozone.
annual_removals_us
    §4: US AGC+BGC removal factor and stdev by FIA age × forest group × region.
forest_age_category
    §6: IPCC age class 1 (young secondary) / 2 (old secondary) / 3 (primary).
annual_removals_ipcc
    §7: IPCC Table 4.9 AGB / BGB removal factors and AGB stdev.
annual_removals_all_forest_types
    §8: composite AGC / BGC removal factors, removal_forest_type, stdev.
gain_year_count
    §9: years of removals (four disjoint parts and their sum).
gross_removals
    §10: gross AGCO2 / BGCO2 removals over the model period.
net_flux
    §12b: gross emissions minus gross removals.

Conventions
-----------
Every kernel is a per-pixel ``@njit(cache=True)`` loop (no ``fastmath``: no FMA
contraction, no reassociation) over 2-D inputs of one shape, in their native dtypes
(uint8 codes, int16 continent-ecozone and WHRC AGB, float32 rates …), indexed
``a[i, j]``. Any input may be a strided or zero-stride (``np.broadcast_to``) view and
is never copied; 0-d inputs are broadcast. Outputs are new C-contiguous arrays.

Float32 / float64 arithmetic follows the original's numpy expressions operation by
operation (spec/stages.md §0): float32 arrays times Python constants stay float32
(the constant is rounded to float32 first), integer arrays times Python constants
are float64. Results are therefore bit-identical to the original.

Code lookups (continent-ecozone, IPCC ``CE + 10000·age`` keys, US keys) are dense
1-D arrays built by :mod:`fluxgraph.tables`: a value array indexed by the integer
code plus a uint8 "has key" array of the same length (normally 65 536, so any
int16 / uint16 code indexes safely; negative codes and codes beyond the array are
unknown). The behaviour for unknown codes is the original's by default (pass-through
of the code value, NaN or 0, per Appendix B.7) with keyword flags for a corrected one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "annual_removals_all_forest_types",
    "annual_removals_ipcc",
    "annual_removals_mangrove",
    "annual_removals_us",
    "forest_age_category",
    "gain_year_count",
    "gross_removals",
    "net_flux",
]

# Python constants of the original, rounded to float32 as numpy does when a float32
# array is multiplied by a Python float (spec/stages.md §0, §1).
_F32_ZERO = np.float32(0.0)
_F32_ONE = np.float32(1.0)
_F32_TWO = np.float32(2.0)
_F32_C_NON_MANG = np.float32(0.47)  # biomass → C, non-mangrove
_F32_C_MANG = np.float32(0.45)  # biomass → C, mangrove
_F32_C_TO_CO2 = np.float32(44.0 / 12.0)
_F32_10000 = np.float32(10000.0)
_F32_100 = np.float32(100.0)

# removal_forest_type ranks (spec/stages.md §1)
_IPCC, _YOUNG, _US, _PLANTED, _EUROPE, _MANGROVE = 1, 2, 3, 4, 5, 6


# --------------------------------------------------------------------------- helpers


def _as_2d_arrays(**arrays):
    """Views of the inputs with one common 2-D shape, never copying.

    Arrays already of the common shape are returned as they are; 0-d, 1-D and
    broadcastable 2-D inputs (e.g. a ``(rows, 1)`` per-row flag) are returned as
    zero-stride ``np.broadcast_to`` views. The common shape is that of the first
    2-D input whose shape is not 1 along any broadcast axis.
    """
    names = list(arrays)
    arrs = [np.asarray(a) for a in arrays.values()]
    two_d = [a.shape for a in arrs if a.ndim == 2]
    if not two_d:
        raise ValueError(f"at least one of {names} must be a 2-D array")
    try:
        shape = np.broadcast_shapes(*two_d)
    except ValueError as err:
        detail = ", ".join(f"{n}{a.shape}" for n, a in zip(names, arrs, strict=True))
        raise ValueError(f"inputs do not have one 2-D shape: {detail}") from err
    out = []
    for name, a in zip(names, arrs, strict=True):
        if a.ndim > 2:
            raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
        if a.shape != shape:
            try:
                a = np.broadcast_to(a, shape)
            except ValueError as err:
                raise ValueError(f"{name} of shape {a.shape} does not broadcast to {shape}") from err
        out.append(a)
    return out


def _require_integer(name, arr):
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be an integer code array, got dtype {arr.dtype}")


def _require_float32(name, arr):
    if arr.dtype != np.float32:
        raise TypeError(
            f"{name} must be float32 (the original's dtype), got {arr.dtype}; "
            f"pass e.g. np.broadcast_to(np.float32(value), shape) for a constant"
        )


def _lookup_pair(values, has, name, dtype=np.float32):
    """Check a dense lookup (value array + "has key" array) and return it in kernel dtypes."""
    v = np.asarray(values, dtype=dtype)
    h = np.asarray(has, dtype=np.uint8)
    if v.ndim != 1 or h.shape != v.shape:
        raise ValueError(f"lookup {name}: values and has must be 1-D of one length, got {v.shape} and {h.shape}")
    return v, h


def _weak_const(dtype, value):
    """``value`` in the dtype numpy gives ``array_of(dtype) * value`` (NEP 50)."""
    return np.result_type(dtype, value).type(value)


# Note on style: numba reference-counts every array passed to a called function, which
# costs ~10 ns per call; helpers called per pixel therefore take scalars only and the
# table reads are written out in the kernel loops.


@njit(cache=True)
def _passthrough(known, value, key, passthrough):
    """Result of a dense-table lookup with the original's pass-through of unknown keys (B.7).

    Known key → its (float32) ``value``; unknown key → ``float32(key)`` when
    ``passthrough`` else 0.
    """
    if known:
        return value
    if passthrough:
        return np.float32(key)
    return _F32_ZERO


@njit(cache=True)
def _u16_cast_x86(x):
    """numpy's float → uint16 ``astype`` on x86-64 (int32 truncation, low 16 bits)."""
    v = np.float64(x)
    if not (v > -2147483649.0 and v < 2147483648.0):
        return 0
    return np.int64(v) & 0xFFFF


# --------------------------------------------------------------------------- §3 mangrove


@njit(cache=True)
def _mangrove_kernel(ce, agb_m, agb_v, agb_h, bgb_v, bgb_h, sd_v, sd_h, passthrough, nan_rates,
                     out_agb, out_bgb, out_sd):
    nrow, ncol = out_agb.shape
    n = min(agb_v.shape[0], bgb_v.shape[0], sd_v.shape[0])
    for i in range(nrow):
        for j in range(ncol):
            m = agb_m[i, j]
            mask = _F32_ONE if m > 0 else np.float32(m)
            c = np.int64(ce[i, j])
            inside = c >= 0 and c < n
            ka = inside and agb_h[c] != 0
            kb = inside and bgb_h[c] != 0
            ks = inside and sd_h[c] != 0
            a = _passthrough(ka, agb_v[c] if ka else _F32_ZERO, c, passthrough)
            b = _passthrough(kb, bgb_v[c] if kb else _F32_ZERO, c, passthrough)
            s = _passthrough(ks, sd_v[c] if ks else _F32_ZERO, c, passthrough)
            if not nan_rates:
                if a != a:
                    a = _F32_ZERO
                if b != b:
                    b = _F32_ZERO
                if s != s:
                    s = _F32_ZERO
            out_agb[i, j] = a * mask
            out_bgb[i, j] = b * mask
            out_sd[i, j] = s * mask


def annual_removals_mangrove(ce, agb_mangrove, agb_rate, agb_rate_has, bgb_rate, bgb_rate_has,
                             agb_sd, agb_sd_has, *, passthrough=True, nan_rates=True):
    """Mangrove removal factors by continent-ecozone (spec/stages.md §3).

    ``out = lookup[CE] · mask`` with ``mask = 1 where AGB_M > 0 else AGB_M``.

    Parameters
    ----------
    ce : ndarray, 2-D, int16
        Continent-ecozone code (``gainEcoCon``); 0 = nodata.
    agb_mangrove : ndarray, 2-D, float32
        Mangrove AGB 2000, Mg ha⁻¹ (only its sign is used).
    agb_rate, agb_rate_has : ndarray, 1-D, float32 / uint8
        AGB removal factor by code, t dry matter ha⁻¹ yr⁻¹ (sheet
        ``mangrove gain, for model``), and its "has key" flags
        (:attr:`fluxgraph.tables.RemovalTables.mangrove_agb_rate`).
    bgb_rate, bgb_rate_has : ndarray, 1-D, float32 / uint8
        BGB removal factor by code (AGB rate × BGB:AGB of the ``mangType``;
        NaN for ``mangType`` 4, Appendix B.8).
    agb_sd, agb_sd_has : ndarray, 1-D, float32 / uint8
        AGB removal-factor stdev by code (sheet ``mangrove stdev, for model``).
    passthrough : bool, default True
        True reproduces Appendix B.7: a code absent from a table keeps its numeric
        value as the rate (``float32(CE)``). False gives 0 for unknown codes.
    nan_rates : bool, default True
        True reproduces Appendix B.8: a NaN table value (BGB rate of ``mangType`` 4,
        blank cells) gives NaN for every pixel of that code, mangrove or not
        (NaN × 0 = NaN). False reads NaN table values as 0.

    Returns
    -------
    agb_rate, bgb_rate, agb_sd : ndarray of float32, 2-D
        ``annual_removal_factor_{AGB,BGB}_Mg_ha_mangrove`` and
        ``annual_removal_factor_stdev_AGB_Mg_ha_mangrove``, Mg dry matter ha⁻¹ yr⁻¹.
        Not masked to the model extent.
    """
    ce, agb_mangrove = _as_2d_arrays(ce=ce, agb_mangrove=agb_mangrove)
    _require_integer("ce", ce)
    av, ah = _lookup_pair(agb_rate, agb_rate_has, "agb_rate")
    bv, bh = _lookup_pair(bgb_rate, bgb_rate_has, "bgb_rate")
    sv, sh = _lookup_pair(agb_sd, agb_sd_has, "agb_sd")
    outs = tuple(np.empty(ce.shape, dtype=np.float32) for _ in range(3))
    _mangrove_kernel(ce, agb_mangrove, av, ah, bv, bh, sv, sh, bool(passthrough), bool(nan_rates), *outs)
    return outs


# --------------------------------------------------------------------------- §4 US


@njit(cache=True)
def _us_kernel(gain, age, group, region, r3v, r3h, s3v, s3h, r2v, r2h, s2v, s2h, out_rate, out_sd):
    nrow, ncol = out_rate.shape
    n = min(r3v.shape[0], s3v.shape[0], r2v.shape[0], s2v.shape[0])
    for i in range(nrow):
        for j in range(ncol):
            a = np.float32(age[i, j])
            f = np.float32(group[i, j])
            r = np.float32(region[i, j])
            g = gain[i, j]
            code3 = 0
            code2 = 0
            if a != 0 and f != 0 and r != 0:
                if g == 0:
                    code3 = _u16_cast_x86(a * _F32_10000 + f * _F32_100 + r)
                else:
                    code2 = _u16_cast_x86(f * _F32_100 + r)
            in3 = code3 < n
            in2 = code2 < n
            rate3 = r3v[code3] if in3 and r3h[code3] != 0 else _F32_ZERO
            rate2 = r2v[code2] if in2 and r2h[code2] != 0 else _F32_ZERO
            sd3 = s3v[code3] if in3 and s3h[code3] != 0 else _F32_ZERO
            sd2 = s2v[code2] if in2 and s2h[code2] != 0 else _F32_ZERO
            out_rate[i, j] = rate3 + rate2
            out_sd[i, j] = sd3 + sd2


def annual_removals_us(gain, age_us, forest_group, region, rate_age, rate_age_has, sd_age, sd_age_has,
                       rate_young, rate_young_has, sd_young, sd_young_has):
    """US-specific AGC+BGC removal factors (spec/stages.md §4).

    Non-gain pixels look up ``uint16(A·10000 + F·100 + Rg)`` (computed in float32 as
    the original), gain pixels look up the young rate ``uint16(F·100 + Rg)``;
    pixels lacking A, F or Rg, and codes absent from the tables, give 0.

    Parameters
    ----------
    gain : ndarray, 2-D, uint8
        Tree cover gain (1 = gain; any non-zero value counts as gain here).
    age_us : ndarray, 2-D, uint8
        US forest age category (1 = 0–20, 2 = 20–100, 3 = > 100 yr).
    forest_group : ndarray, 2-D, uint8
        FIA forest-type group code.
    region : ndarray, 2-D, uint8
        FIA region code.
    rate_age, rate_age_has, sd_age, sd_age_has : ndarray, 1-D, float32 / uint8
        Tables keyed ``age·10000 + group·100 + region`` (sheet ``US_rates_AGC+BGC``,
        columns ``growth_*`` / ``SD_*``), Mg C ha⁻¹ yr⁻¹.
    rate_young, rate_young_has, sd_young, sd_young_has : ndarray, 1-D, float32 / uint8
        Tables keyed ``group·100 + region`` (``growth_young`` / ``SD_young``).

    Returns
    -------
    rate, sd : ndarray of float32, 2-D
        ``annual_removal_factor_AGC_BGC_Mg_ha_natural_forest_US`` and its stdev,
        Mg C (AGC+BGC) ha⁻¹ yr⁻¹. Not masked to the model extent.
    """
    gain, age_us, forest_group, region = _as_2d_arrays(
        gain=gain, age_us=age_us, forest_group=forest_group, region=region
    )
    tables = [
        *_lookup_pair(rate_age, rate_age_has, "rate_age"),
        *_lookup_pair(sd_age, sd_age_has, "sd_age"),
        *_lookup_pair(rate_young, rate_young_has, "rate_young"),
        *_lookup_pair(sd_young, sd_young_has, "sd_young"),
    ]
    rate = np.empty(gain.shape, dtype=np.float32)
    sd = np.empty(gain.shape, dtype=np.float32)
    _us_kernel(gain, age_us, forest_group, region, *tables, rate, sd)
    return rate, sd


# --------------------------------------------------------------------------- §6 age


@njit(cache=True)
def _forest_age_kernel(extent, loss, gain, ce, agb, primary, tropics, truncated, rate, has, unknown_nan, out):
    nrow, ncol = out.shape
    n = rate.shape[0]
    for i in range(nrow):
        for j in range(ncol):
            age = 0
            if extent[i, j] > 0:
                g = gain[i, j]
                lyr = loss[i, j]
                if g == 0:
                    if lyr == 0:
                        t = tropics[i, j]
                        if t == 0:
                            age = 2
                        elif t == 1:
                            age = 3 if primary[i, j] == 1 else 2
                    elif lyr > 0:
                        if primary[i, j] == 1:
                            age = 3
                        else:
                            c = np.int64(ce[i, j])
                            if c >= 0 and c < n and has[c] != 0:
                                v = rate[c]
                            elif unknown_nan:
                                v = np.nan
                            else:
                                v = 0.0
                            if truncated[i, j] != 0:
                                v = np.trunc(v)
                            young20 = v * 20.0
                            b = agb[i, j]
                            if b <= young20:
                                age = 1
                            elif b > young20:
                                age = 2
                elif g == 1 and (lyr == 0 or lyr > 0):
                    age = 1
            out[i, j] = age


def forest_age_category(extent, loss, gain, ce, agb_whrc, primary, tropics, young_rate, young_rate_has,
                        *, young_rate_truncated=None, unknown_young_rate_nan=True):
    """IPCC forest age category (spec/stages.md §6).

    Decision tree (later rules overwrite earlier ones; all need ``E > 0``)::

        G==0 & Lyr==0            : 2 outside the tropics band; in it 3 if P==1 else 2
        G==0 & Lyr>0  & P!=1     : 1 if AGB_W <= 20·YoungRate[CE] else 2 (NaN → 0)
        G==0 & Lyr>0  & P==1     : 3
        G==1                     : 1

    Parameters
    ----------
    extent : ndarray, 2-D, uint8
        Model extent (§5), tested ``> 0``.
    loss : ndarray, 2-D, uint8
        Loss year code (0 none, 1…25 = 2001…2025); PRODES loss in ``legal_Amazon_loss``.
    gain : ndarray, 2-D, uint8
        Tree cover gain (1 = gain).
    ce : ndarray, 2-D, int16
        Continent-ecozone code.
    agb_whrc : ndarray, 2-D, int16 (WHRC) or float32 (JPL)
        AGB 2000, Mg dry matter ha⁻¹ (compared in float64 with the threshold).
    primary : ndarray, 2-D, uint8
        IFL 2000 / primary forest 2001 (1 = intact / primary).
    tropics : ndarray, 2-D, uint8
        Per-tile flag, usually a broadcast view: 1 where the pixel's 10° tile has its
        top edge in (−30, 30], 0 elsewhere (Appendix B.11; tested ``== 0`` / ``== 1``).
    young_rate, young_rate_has : ndarray, 1-D, float64 / uint8
        ≤ 20-yr IPCC growth rate by code, t dry matter ha⁻¹ yr⁻¹ (sheet
        ``natrl fores gain, for std model``, column ``growth_secondary_less_20``;
        blank cells are NaN), and its "has key" flags
        (:attr:`fluxgraph.tables.RemovalTables.young_rate`).
    young_rate_truncated : ndarray, 2-D, uint8, optional
        Per-row flag (broadcast over columns): 1 where the original's
        ``np.vectorize(dict.get)`` produced an integer array because the first pixel
        of that tile row (column 0 of the 10° tile) has code 0, whose table value is
        the Python int 0; the rates of that row are then truncated toward zero before
        ``× 20`` (an oddity of the original that spec/stages.md does not describe:
        ``np.vectorize`` takes its output dtype from the first element of each
        40 000 × 1 strip). Default: all 0 (the spec's behaviour).
    unknown_young_rate_nan : bool, default True
        True reproduces Appendix B.7: a code absent from the table gives NaN, so
        loss-only non-primary pixels get age 0 (the original crashes instead when
        the first pixel of a strip is unknown). False uses rate 0 for unknown codes.

    Returns
    -------
    ndarray of uint8, 2-D
        ``forest_age_category_IPCC__1_young_2_mid_3_old``: 1, 2, 3; 0 outside ``E``.
    """
    if young_rate_truncated is None:
        young_rate_truncated = np.uint8(0)
    extent, loss, gain, ce, agb_whrc, primary, tropics, young_rate_truncated = _as_2d_arrays(
        extent=extent, loss=loss, gain=gain, ce=ce, agb_whrc=agb_whrc, primary=primary, tropics=tropics,
        young_rate_truncated=young_rate_truncated,
    )
    _require_integer("ce", ce)
    rv, rh = _lookup_pair(young_rate, young_rate_has, "young_rate", dtype=np.float64)
    out = np.empty(extent.shape, dtype=np.uint8)
    _forest_age_kernel(extent, loss, gain, ce, agb_whrc, primary, tropics, young_rate_truncated, rv, rh,
                       bool(unknown_young_rate_nan), out)
    return out


# --------------------------------------------------------------------------- §7 IPCC


@njit(cache=True)
def _ipcc_kernel(age, ce, ratio, rate_v, rate_h, sd_v, sd_h, passthrough, out_agb, out_bgb, out_sd):
    nrow, ncol = out_agb.shape
    n = min(rate_v.shape[0], sd_v.shape[0])
    for i in range(nrow):
        for j in range(ncol):
            a = age[i, j]
            if a == 1:
                off = 10000
            elif a == 2:
                off = 20000
            elif a == 3:
                off = 30000
            else:
                off = 0
            key = np.int64(ce[i, j]) + off
            inside = key >= 0 and key < n
            kr = inside and rate_h[key] != 0
            ks = inside and sd_h[key] != 0
            rate = _passthrough(kr, rate_v[key] if kr else _F32_ZERO, key, passthrough)
            out_agb[i, j] = rate
            out_bgb[i, j] = rate * ratio[i, j]
            out_sd[i, j] = _passthrough(ks, sd_v[key] if ks else _F32_ZERO, key, passthrough)


def annual_removals_ipcc(age, ce, bgb_ratio, rate, rate_has, sd, sd_has, *, passthrough=True):
    """IPCC Table 4.9 default removal factors (spec/stages.md §7).

    ``key = CE + {0: 0, 1: 10000, 2: 20000, 3: 30000}[age]``;
    ``AGB = table[key]``, ``BGB = AGB · R``, ``SD = sd_table[key]``.

    Parameters
    ----------
    age : ndarray, 2-D, uint8
        Forest age category (§6). Values other than 0–3 (which crash the original)
        use offset 0.
    ce : ndarray, 2-D, int16
        Continent-ecozone code.
    bgb_ratio : ndarray, 2-D, float32
        BGB:AGB ratio ``R`` (Huang et al. 2021 tile; ``np.float32(0.26)`` broadcast
        where the tile is absent).
    rate, rate_has : ndarray, 1-D, float32 / uint8
        AGB removal factor keyed ``CE + 10000·age``, t dry matter ha⁻¹ yr⁻¹, as built
        by :mod:`fluxgraph.tables` (age-0 keys ``CE`` are 0; blank cells have no key).
    sd, sd_has : ndarray, 1-D, float32 / uint8
        AGB removal-factor stdev, same keys.
    passthrough : bool, default True
        True reproduces Appendix B.7: an unknown key keeps its value as the rate
        (e.g. 31020 → 31020 t ha⁻¹ yr⁻¹). False gives 0.

    Returns
    -------
    agb_rate, bgb_rate, agb_sd : ndarray of float32, 2-D
        ``annual_removal_factor_{AGB,BGB}_Mg_ha_IPCC_defaults_all_ages`` and
        ``annual_removal_factor_stdev_AGB_Mg_ha_IPCC_defaults_all_ages``,
        Mg dry matter ha⁻¹ yr⁻¹ (BGB is written but not used downstream, B.15).
    """
    age, ce, bgb_ratio = _as_2d_arrays(age=age, ce=ce, bgb_ratio=bgb_ratio)
    _require_integer("ce", ce)
    _require_float32("bgb_ratio", bgb_ratio)
    rv, rh = _lookup_pair(rate, rate_has, "rate")
    sv, sh = _lookup_pair(sd, sd_has, "sd")
    outs = tuple(np.empty(age.shape, dtype=np.float32) for _ in range(3))
    _ipcc_kernel(age, ce, bgb_ratio, rv, rh, sv, sh, bool(passthrough), *outs)
    return outs


# --------------------------------------------------------------------------- §8 composite


@njit(cache=True)
def _composite_kernel(extent, age, ratio,
                      ipcc_agb, ipcc_sd, young, young_sd, us, us_sd, pf, pf_sd, eu, eu_sd, m_agb, m_bgb, m_sd,
                      p_ipcc, p_young, p_us, p_pf, p_eu, p_mang, no_primary_gain,
                      out_type, out_agc, out_bgc, out_agc_bgc, out_sd):
    nrow, ncol = out_type.shape
    for i in range(nrow):
        for j in range(ncol):
            t = 0
            agc = _F32_ZERO
            bgc = _F32_ZERO
            sd = _F32_ZERO
            r = ratio[i, j]
            e = extent[i, j]
            if p_ipcc[i, j] != 0:
                a = ipcc_agb[i, j]
                if no_primary_gain:
                    if e != 0:
                        t = _IPCC
                elif a != 0:
                    t = _IPCC
                if a != 0:
                    agc = a * _F32_C_NON_MANG
                    bgc = a * _F32_C_NON_MANG * r
                s = ipcc_sd[i, j]
                if s != 0:
                    sd = s * _F32_C_NON_MANG
            if p_young[i, j] != 0:
                y = young[i, j]
                if y > 0 and age[i, j] == 1:
                    t = _YOUNG
                    agc = y
                    bgc = y * r
                ys = young_sd[i, j]
                if ys > 0 and age[i, j] == 1:
                    sd = ys
            if p_us[i, j] != 0:
                u = us[i, j]
                if u != 0:
                    t = _US
                    q = u / (_F32_ONE + r)  # the original computes X/(1+R) twice: same value
                    agc = q
                    bgc = u - q
                us_s = us_sd[i, j]
                if us_s != 0:
                    sd = us_s / (_F32_ONE + r)
            if p_pf[i, j] != 0:
                u = pf[i, j]
                if u != 0:
                    t = _PLANTED
                    q = u / (_F32_ONE + r)  # the original computes X/(1+R) twice: same value
                    agc = q
                    bgc = u - q
                pf_s = pf_sd[i, j]
                if pf_s != 0:
                    sd = pf_s / (_F32_ONE + r)
            if p_eu[i, j] != 0:
                u = eu[i, j]
                if u != 0:
                    t = _EUROPE
                    q = u / (_F32_ONE + r)  # the original computes X/(1+R) twice: same value
                    agc = q
                    bgc = u - q
                eu_s = eu_sd[i, j]
                if eu_s != 0:
                    sd = (eu_s / _F32_TWO) / (_F32_ONE + r)
            if p_mang[i, j] != 0:
                ma = m_agb[i, j]
                if ma != 0:
                    t = _MANGROVE
                    agc = ma * _F32_C_MANG
                mb = m_bgb[i, j]
                if mb != 0:
                    bgc = mb * _F32_C_MANG
                ms = m_sd[i, j]
                if ms != 0:
                    sd = ms * _F32_C_MANG
            if e != 1:
                t = 0
                agc = _F32_ZERO
                bgc = _F32_ZERO
                sd = _F32_ZERO
            out_type[i, j] = t
            out_agc[i, j] = agc
            out_bgc[i, j] = bgc
            out_agc_bgc[i, j] = agc + bgc
            out_sd[i, j] = sd


def annual_removals_all_forest_types(extent, age, bgb_ratio,
                                     ipcc_agb, ipcc_agb_sd,
                                     young_agc, young_agc_sd,
                                     us_agc_bgc, us_agc_bgc_sd,
                                     planted_agc_bgc, planted_agc_bgc_sd,
                                     europe_agc_bgc, europe_agc_bgc_sd,
                                     mangrove_agb, mangrove_bgb, mangrove_agb_sd,
                                     present_ipcc, present_young, present_us, present_planted,
                                     present_europe, present_mangrove,
                                     *, no_primary_gain=False):
    """Composite removal factors, most specific source wins (spec/stages.md §8).

    Sources are applied from rank 1 (IPCC) to rank 6 (mangrove), each overwriting
    where its condition holds; everything is then zeroed where ``E != 1`` and
    ``AGC_BGC = AGC + BGC``. All arithmetic is float32 in the original's order:
    IPCC ``AGC = AGB·0.47``, ``BGC = AGB·0.47·R``, ``SD = sd·0.47``; young
    ``AGC = y``, ``BGC = y·R`` where ``y > 0 & age == 1``; US / planted / Europe
    ``AGC = X/(1+R)``, ``BGC = X − X/(1+R)``, ``SD = sd/(1+R)`` (Europe
    ``(sd/2)/(1+R)``, B.16); mangrove ``AGC = AGB·0.45`` where the AGB rate ≠ 0,
    ``BGC = BGB·0.45`` where the BGB rate ≠ 0 (B.17), ``SD = sd·0.45``. NaN passes
    every ``!= 0`` test and fails every ``> 0`` test, as in the original.

    Parameters
    ----------
    extent : ndarray, 2-D, uint8
        Model extent (§5).
    age : ndarray, 2-D, uint8
        Forest age category (§6).
    bgb_ratio : ndarray, 2-D, float32
        BGB:AGB ratio ``R`` (0.26 broadcast where the tile is absent).
    ipcc_agb, ipcc_agb_sd : ndarray, 2-D, float32
        IPCC default AGB rate and stdev (§7), Mg dry matter ha⁻¹ yr⁻¹.
    young_agc, young_agc_sd : ndarray, 2-D, float32
        Cook-Patton young natural forest AGC rate and stdev, Mg C ha⁻¹ yr⁻¹ (NaN allowed).
    us_agc_bgc, us_agc_bgc_sd : ndarray, 2-D, float32
        US AGC+BGC rate and stdev (§4), Mg C ha⁻¹ yr⁻¹.
    planted_agc_bgc, planted_agc_bgc_sd : ndarray, 2-D, float32
        Planted forest (SDPT v2) AGC+BGC rate and stdev, Mg C ha⁻¹ yr⁻¹.
    europe_agc_bgc, europe_agc_bgc_sd : ndarray, 2-D, float32
        European AGC+BGC rate and (2× too large) stdev, Mg C ha⁻¹ yr⁻¹.
    mangrove_agb, mangrove_bgb, mangrove_agb_sd : ndarray, 2-D, float32
        Mangrove AGB / BGB rates and AGB stdev (§3), Mg dry matter ha⁻¹ yr⁻¹.
    present_ipcc, present_young, present_us, present_planted, present_europe, present_mangrove : ndarray, 2-D, uint8
        Per-tile flags (usually broadcast views): 1 where **all** tiles of that source
        exist for the pixel's 10° tile; a source with any companion tile missing is
        skipped entirely (§8, B.16). Pass ``present_us = 0`` for ``US_removals``.
    no_primary_gain : bool, default False
        ``no_primary_gain`` sensitivity: type 1 where ``E != 0`` instead of where the
        IPCC rate ≠ 0.

    Returns
    -------
    removal_forest_type : ndarray of uint8, 2-D
        6 mangrove, 5 Europe, 4 planted, 3 US, 2 young natural, 1 IPCC, 0 none.
    agc, bgc, agc_bgc, agc_sd : ndarray of float32, 2-D
        ``annual_removal_factor_{AGC,BGC,AGC_BGC}_Mg_ha_all_forest_types`` and
        ``annual_removal_factor_stdev_AGC_Mg_ha_all_forest_types``, Mg C ha⁻¹ yr⁻¹.
    """
    arrays = _as_2d_arrays(
        extent=extent, age=age, bgb_ratio=bgb_ratio,
        ipcc_agb=ipcc_agb, ipcc_agb_sd=ipcc_agb_sd, young_agc=young_agc, young_agc_sd=young_agc_sd,
        us_agc_bgc=us_agc_bgc, us_agc_bgc_sd=us_agc_bgc_sd,
        planted_agc_bgc=planted_agc_bgc, planted_agc_bgc_sd=planted_agc_bgc_sd,
        europe_agc_bgc=europe_agc_bgc, europe_agc_bgc_sd=europe_agc_bgc_sd,
        mangrove_agb=mangrove_agb, mangrove_bgb=mangrove_bgb, mangrove_agb_sd=mangrove_agb_sd,
        present_ipcc=present_ipcc, present_young=present_young, present_us=present_us,
        present_planted=present_planted, present_europe=present_europe, present_mangrove=present_mangrove,
    )
    names = ["bgb_ratio", "ipcc_agb", "ipcc_agb_sd", "young_agc", "young_agc_sd", "us_agc_bgc",
             "us_agc_bgc_sd", "planted_agc_bgc", "planted_agc_bgc_sd", "europe_agc_bgc", "europe_agc_bgc_sd",
             "mangrove_agb", "mangrove_bgb", "mangrove_agb_sd"]
    for name, arr in zip(names, arrays[2:16], strict=True):
        _require_float32(name, arr)
    shape = arrays[0].shape
    out_type = np.empty(shape, dtype=np.uint8)
    outs = tuple(np.empty(shape, dtype=np.float32) for _ in range(4))
    _composite_kernel(*arrays, bool(no_primary_gain), out_type, *outs)
    return (out_type, *outs)


# --------------------------------------------------------------------------- §9 gain years


@njit(cache=True)
def _gain_year_kernel(loss, gain, extent, gain_present, loss_present, loss_years, gain_only_years,
                      loss_and_gain_maxgain, maxgain, missing_gain_inverted,
                      out_lo, out_go, out_nc, out_lg, out_total):
    nrow, ncol = out_total.shape
    for i in range(nrow):
        for j in range(ncol):
            lyr = np.int64(loss[i, j])
            g = gain[i, j]
            e = extent[i, j] > 0
            lo = 0
            go = 0
            nc = 0
            lg = 0
            if missing_gain_inverted and gain_present[i, j] == 0 and loss_present[i, j] != 0:
                # B.9: gain tile missing, loss tile present
                if lyr > 0:
                    nc = loss_years
            else:
                if gain_present[i, j] == 0:
                    g = 0
                if lyr > 0 and g == 0 and e:
                    lo = lyr - 1
                elif lyr == 0 and g == 1 and e:
                    go = gain_only_years
                elif lyr == 0 and g == 0 and e:
                    nc = loss_years
                elif lyr > 0 and g == 1 and e:
                    lg = loss_and_gain_maxgain if maxgain else (lyr - 1) + (loss_years + 1 - lyr) // 2
            lo &= 0xFF
            go &= 0xFF
            nc &= 0xFF
            lg &= 0xFF
            out_lo[i, j] = lo
            out_go[i, j] = go
            out_nc[i, j] = nc
            out_lg[i, j] = lg
            out_total[i, j] = (lo + go + nc + lg) & 0xFF


def gain_year_count(loss, gain, extent, gain_present, loss_present, *, loss_years=25, gain_years=20,
                    maxgain=False, missing_gain_inverted=True):
    """Number of years of removals per pixel (spec/stages.md §9).

    ==============  =======================  =============================================  ===============
    case            condition                years (standard)                               ``maxgain``
    ==============  =======================  =============================================  ===============
    loss only       Lyr>0 & G==0 & E>0       Lyr − 1                                        same
    gain only       Lyr==0 & G==1 & E>0      gain_years // 2 (10)                           loss_years (25)
    no change       Lyr==0 & G==0 & E>0      loss_years (25)                                same
    loss and gain   Lyr>0 & G==1 & E>0       (Lyr − 1) + ⌊(loss_years + 1 − Lyr) / 2⌋       loss_years − 1
    ==============  =======================  =============================================  ===============

    Parameters
    ----------
    loss : ndarray, 2-D, uint8
        Loss year code (1…25); zeros where the loss tile is absent.
    gain : ndarray, 2-D, uint8
        Tree cover gain (1 = gain); zeros where the gain tile is absent.
    extent : ndarray, 2-D, uint8
        Model extent (§5), tested ``> 0``.
    gain_present, loss_present : ndarray, 2-D, uint8
        Per-tile flags (usually broadcast views): 1 where the pixel's gain / loss
        tile exists.
    loss_years : int, default 25
        Length of the loss period (2001–2025).
    gain_years : int, default 20
        Length of the gain period (2000–2020); gain-only pixels get half of it.
    maxgain : bool, default False
        The ``maxgain`` sensitivity variant (gain only → ``loss_years``, loss and gain
        → ``loss_years − 1``).
    missing_gain_inverted : bool, default True
        True reproduces Appendix B.9: where the gain tile is missing but the loss
        tile exists, only no-change is made and it is ``25·(Lyr > 0)`` without the
        extent mask (the other three parts are 0). False treats the missing gain tile
        as "no gain" (G = 0) with the standard rules. The other missing-tile branches
        of the original equal the standard rules with zeros for the absent layer.

    Returns
    -------
    loss_only, gain_only, no_change, loss_and_gain, total : ndarray of uint8, 2-D
        ``gain_year_count_{loss_only,gain_only,no_change,loss_and_gain}`` and
        ``gain_year_count_all_forest_types`` (their sum), years.

    Notes
    -----
    Loss codes above ``loss_years`` are outside the original's domain; they follow the
    same integer formula, wrapped to uint8.
    """
    loss, gain, extent, gain_present, loss_present = _as_2d_arrays(
        loss=loss, gain=gain, extent=extent, gain_present=gain_present, loss_present=loss_present
    )
    loss_years = int(loss_years)
    gain_only = loss_years if maxgain else int(gain_years) // 2
    outs = tuple(np.empty(loss.shape, dtype=np.uint8) for _ in range(5))
    _gain_year_kernel(loss, gain, extent, gain_present, loss_present, loss_years, gain_only, loss_years - 1,
                      bool(maxgain), bool(missing_gain_inverted), *outs)
    return outs


# --------------------------------------------------------------------------- §10, §12b


@njit(cache=True)
def _gross_removals_kernel(agc_rate, bgc_rate, years, out_ag, out_bg, out_total):
    nrow, ncol = out_total.shape
    for i in range(nrow):
        for j in range(ncol):
            y = np.float32(years[i, j])
            ag = agc_rate[i, j] * y * _F32_C_TO_CO2
            bg = bgc_rate[i, j] * y * _F32_C_TO_CO2
            out_ag[i, j] = ag
            out_bg[i, j] = bg
            out_total[i, j] = ag + bg


def gross_removals(agc_rate, bgc_rate, years):
    """Gross removals over the model period (spec/stages.md §10).

    ``AGCO2 = AGC_rate · years · (44/12)``, ``BGCO2 = BGC_rate · years · (44/12)``,
    ``AGCO2_BGCO2 = AGCO2 + BGCO2``, all float32 in this order.

    Parameters
    ----------
    agc_rate, bgc_rate : ndarray, 2-D, float32
        Composite AGC / BGC removal factors (§8), Mg C ha⁻¹ yr⁻¹.
    years : ndarray, 2-D, uint8
        Gain year count (§9), years.

    Returns
    -------
    agco2, bgco2, agco2_bgco2 : ndarray of float32, 2-D
        ``gross_removals_{AGCO2,BGCO2,AGCO2_BGCO2}_Mg_ha_all_forest_types_2001_25``,
        Mg CO2 ha⁻¹ over 2001–2025, positive.
    """
    agc_rate, bgc_rate, years = _as_2d_arrays(agc_rate=agc_rate, bgc_rate=bgc_rate, years=years)
    _require_float32("agc_rate", agc_rate)
    _require_float32("bgc_rate", bgc_rate)
    outs = tuple(np.empty(agc_rate.shape, dtype=np.float32) for _ in range(3))
    _gross_removals_kernel(agc_rate, bgc_rate, years, *outs)
    return outs


@njit(cache=True)
def _net_flux_kernel(emissions, removals, out):
    nrow, ncol = out.shape
    for i in range(nrow):
        for j in range(ncol):
            out[i, j] = np.float32(emissions[i, j]) - np.float32(removals[i, j])


def net_flux(emissions, removals):
    """Net flux = gross emissions − gross removals (spec/stages.md §12b).

    ``net = float32(emissions) − float32(removals)``; absent tiles are zeros.

    Parameters
    ----------
    emissions : ndarray, 2-D, float32
        ``gross_emis_all_gases_all_drivers_Mg_CO2e_ha_biomass_soil_2001_25``,
        Mg CO2e ha⁻¹ over 2001–2025.
    removals : ndarray, 2-D, float32
        ``gross_removals_AGCO2_BGCO2_Mg_ha_all_forest_types_2001_25``, Mg CO2 ha⁻¹.

    Returns
    -------
    ndarray of float32, 2-D
        ``net_flux_Mg_CO2e_ha_biomass_soil_2001_25``, Mg CO2e ha⁻¹ over 2001–2025;
        negative = net sink.
    """
    emissions, removals = _as_2d_arrays(emissions=emissions, removals=removals)
    out = np.empty(emissions.shape, dtype=np.float32)
    _net_flux_kernel(emissions, removals, out)
    return out
