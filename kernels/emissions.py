"""Gross greenhouse-gas emissions decision tree (GFW forest carbon flux model v1.4.3).

Per-pixel numba kernel of the gross-emissions stage, bit-identical to the three
original C++ programs (``biomass_soil``, ``biomass_only``, ``soil_only``) as
specified in spec/emissions.md. The computation is strictly per pixel, so any
chunking of the inputs gives identical results (spec/emissions.md §0).

Public API
----------
EmissionParams
    Frozen dataclass with every constant and table of spec/emissions.md §3 and the
    quirk flags of §9; ``DEFAULT_PARAMS`` reproduces v1.4.3.
gross_emissions
    The decision tree (§4–§6): five emission densities in Mg CO2e ha⁻¹ summed over
    the model period plus the decision-tree node code (§5.4).
sum_by_year_driver
    Numba reduction of emission densities to Mg CO2e per loss year × driver × gas.

Floating point
--------------
Every arithmetic step is float32, rounded after each operation, in the operation
order of the spec (§4.3 carbon sums, §4.5 leaf sums, §6 totals); the only float64
steps are the last two multiplications of ``fire()`` (§4.4, §11). The kernels are
compiled with ``@njit(cache=True, nogil=True, error_model="numpy")`` and
**without** ``fastmath`` (no contraction into FMA, no reassociation), which is what
makes them bit-identical to the original (§11). ``error_model="numpy"`` gives IEEE
results (inf/NaN, like the C++) instead of exceptions for a division by zero, and
``nogil`` lets Dask's threaded scheduler run several blocks at once.

A −0.0 gas value is returned as +0.0: the original sums eight per-driver
accumulators, all +0.0 but one, which turns −0.0 into +0.0 (§6). With the default
tables −0.0 only arises for mineral-soil terms with soil 0 and ``loss > model_years``.

Inputs
------
Every input is a 2-D array of one shape, read in its native dtype and indexed
``a[i, j]``; any input may be a strided or zero-stride (``np.broadcast_to``) view,
which is never copied. Absent optional layers (§2.3) can be passed as
``np.broadcast_to(np.uint8(0), shape)`` or as a 0-d scalar ``0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit

__all__ = [
    "DEFAULT_PARAMS",
    "NODE_CODES",
    "VARIANTS",
    "EmissionParams",
    "gross_emissions",
    "sum_by_year_driver",
]

Variant = Literal["biomass_soil", "biomass_only", "soil_only"]

#: Variant name → integer code passed to the kernel (spec/emissions.md §1, §11).
VARIANTS: dict[str, int] = {"biomass_soil": 0, "biomass_only": 1, "soil_only": 2}

#: The 89 leaf node codes of spec/emissions.md §5.4 (0 = not evaluated / no leaf).
NODE_CODES: frozenset[int] = frozenset(
    {
        *(10, 11, 111, 12, 13, 131, 14, 141, 15, 16, 161, 17, 171, 18, 19, 191),  # driver 1
        *(20, 21, 211, 22, 23, 231, 24, 241, 25, 26, 261, 27, 271, 28, 29, 291),  # driver 2
        *(30, 31, 32, 33, 331, 34, 341, 35, 351, 36, 37, 371, 38, 381, 39, 391, 392),  # driver 3
        *(40, 41, 42, 421, 43, 44),  # driver 4
        *(50, 51, 52, 521, 53, 54),  # driver 5
        *(60, 61, 611, 62, 63, 631, 64, 641, 65, 66, 661, 67, 671, 68, 69, 691),  # driver 6
        *(70, 71, 72, 721, 73, 74),  # driver 7
        *(80, 81, 82, 821, 83, 84),  # no driver
    }
)

# Component bits of a leaf (spec/emissions.md §4.5). _PD_CO2 is only used for the
# biomass_only node-62 defect (§5.6): peat-drainage CO2 without its CH4/N2O.
_BN = 1
_BF = 2
_PD = 4
_PB = 8
_MS = 16
_PD_CO2 = 32

# Indices into the packed float32 scalar vector.
_S32_C_TO_CO2 = 0
_S32_BIOMASS_TO_C = 1
_S32_SOIL_PERIOD = 2
_S32_FLU_HARD_COMMOD = 3
_S32_FLU_SHIFTING = 4
_S32_FLU_SETTLEMENTS = 5
_S32_INV_CN = 6
_S32_EF_N_MIN = 7
_S32_N2ON_TO_N2O = 8
_S32_GWP_N2O = 9
_N_S32 = 10
# Indices into the packed float64 scalar vector.
_S64_G_TO_MG = 0
_S64_GWP_CH4 = 1
_S64_GWP_N2O = 2
_N_S64 = 3
# Indices into the packed int64 option vector.
_I_MODEL_YEARS = 0
_I_VARIANT = 1
_I_NODE62_BUG = 2
_I_CAP_SOIL = 3
_I_CLAMP_LOSS = 4
_I_MS_N2O = 5
_N_OPT = 6

_LUT_SIZE = 256  # code look-up tables for the driver and climate layers


def _table(value: object, shape: tuple[int, int], name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"EmissionParams.{name} must have shape {shape}, got {arr.shape}")
    return arr


@dataclass(frozen=True)
class EmissionParams:
    """Constants, tables and quirk flags of the gross-emissions step.

    The defaults reproduce GFW flux model v1.4.3 exactly (spec/emissions.md §3,
    §9, §10). Every value is converted to float32 when packed, except where the
    spec keeps a float64 (``g_to_mg`` and the GWPs inside ``fire()``, §4.4, §11).

    Parameters
    ----------
    model_years : int
        Number of loss years in the model (``MODEL_YEARS``, 25 = 2001–2025);
        soil and peat-drainage terms are multiplied by ``model_years − loss``
        (§4.2, §4.4).
    gwp_ch4, gwp_n2o : float
        100-year global warming potentials (IPCC AR6: 27 and 273), dimensionless
        (§3.1). They enter ``fire()`` as float64; ``gwp_n2o`` also enters the
        mineral-soil N2O term as float32 (§4.4, §11).
    c_to_co2 : float
        Mg CO2 per Mg C (44/12, §3.1).
    biomass_to_c : float
        Carbon fraction of dry matter (0.47) used to turn carbon back into dry
        matter in ``fire()`` (§3.1, §4.4).
    soil_emis_period : int
        IPCC soil carbon transition period in years (20, §3.1): divisor of the
        annual mineral-soil carbon loss, and the cap used by
        ``cap_soil_years_at_20``.
    flu_hard_commod, flu_shifting, flu_settlements : float
        F_lu (fraction of SOC remaining after ``soil_emis_period`` years) for
        drivers 2 (0.80), 3 (0.72) and 6 (0.80) (§3.1, §3.3).
    flu_perm_ag : tuple of tuple of float, shape (4, 3)
        F_lu of permanent agriculture (driver 1, §3.3). Rows: climate group dry,
        wet/moist, montane, none (any code not listed in the ``climate_*``
        fields); columns: ecozone 1 (tropical), ecozone 2 or 3, any other
        ecozone.
    climate_dry, climate_wet, climate_montane : tuple of int
        IPCC climate-zone codes of the three climate groups (§2.2); codes must
        lie in 0…255 and the groups must be disjoint.
    c_n_ratio : float
        C:N ratio of soil organic matter (15, §3.1); the kernel uses
        ``f32(1) / f32(c_n_ratio)``.
    ef_n_min : float
        EF1, kg N2O-N per kg N mineralised (0.010, §3.1).
    n2on_to_n2o : float
        Mg N2O per Mg N2O-N (44/28, §3.1).
    g_to_mg : float
        g gas per kg dry matter → Mg gas per Mg dry matter (0.001, float64, §3.1).
    cf : tuple of tuple of float, shape (4, 4)
        Combustion factor (fraction of fuel combusted, §3.2). Rows: parameter
        set conversion (drivers 1, 2, 3, 6), logging (4), wildfire (5), other
        (7 and no driver); columns: ecozone 2 (boreal), ecozone 3 (temperate),
        any other ecozone with ``ifl > 0``, any other ecozone with ``ifl <= 0``.
    gef : tuple of tuple of float, shape (2, 3)
        Gas emission factors, g gas per kg dry matter (§3.2). Rows: ecozone 2 or
        3, any other ecozone; columns: CO2, CH4, N2O.
    peat_burn : tuple of tuple of float, shape (3, 2)
        One-off peat-fire emissions, Mg CO2e ha⁻¹, already GWP-weighted (§3.2).
        Rows: ecozone 2 or 3; other ecozone and driver ≠ wildfire; other ecozone
        and wildfire; columns: CO2, CH4.
    peat_drain : tuple of tuple of float, shape (5, 3)
        Annual peat-drainage emissions, Mg CO2e ha⁻¹ yr⁻¹, already GWP-weighted
        (§3.2). Rows: ecozone 2; ecozone 3; other ecozone with plantation 1 (oil
        palm); with plantation 2 (wood fibre); with any other plantation value;
        columns: CO2, CH4, N2O.
    driver_codes : tuple of 7 int
        Raster code of each driver class 1…7 of §2.2 (permanent agriculture,
        hard commodities, shifting cultivation, logging, wildfire, settlements,
        other natural disturbances). Any other value is "no driver". Default
        identity (1, …, 7); codes must be distinct and in 0…255.
    include_ms_n2o : bool
        Include the mineral-soil N2O term (added in v1.4.2, §10). Default True.
    replicate_node62_bug : bool
        ``biomass_only`` keeps the peat-drainage CO2 at node 62 as the original
        does (§5.6, §9.1). Default True (parity).
    cap_soil_years_at_20 : bool
        Cap the number of years of **mineral-soil** loss at
        ``soil_emis_period`` so that the loss never exceeds the full IPCC change
        ``(1 − F_lu)·SOC`` (§9.2). Peat drainage is not capped: it is an annual
        emission that continues while the peat is drained. Default False
        (parity: loss years 1–4 get 24…21 years).
    clamp_loss_beyond_model_years : bool
        Treat pixels with ``loss > model_years`` as not evaluated (node 0, all
        outputs 0). Default False (parity): the original evaluates them and
        their mineral-soil and peat-drainage terms become negative (§9.3).

    Notes
    -----
    Surprises of §9 without a flag, because they are data or scientific choices
    reproduced exactly and changeable through the tables: unassigned ecozone
    (§9.4, use the tropical column / node 0), F_lu = 0 for unknown climate
    (§9.5, row "none" of ``flu_perm_ag``), IFL ``== 1``/``== 0`` in the tree but
    ``> 0`` in ``cf`` (§9.6, only matters for IFL values other than 0/1),
    asymmetric biomass accounting and the 0.47 carbon fraction (§9.7, §9.8),
    driver-specific drainage rules (§9.9), the zero rule (§9.10) and the burn
    value not being compared with the loss year (§9.11; a MODIS burn-year
    pre-processing belongs to the stage, not to this kernel).
    """

    model_years: int = 25
    gwp_ch4: float = 27.0
    gwp_n2o: float = 273.0
    c_to_co2: float = 44.0 / 12.0
    biomass_to_c: float = 0.47
    soil_emis_period: int = 20
    flu_hard_commod: float = 0.80
    flu_shifting: float = 0.72
    flu_settlements: float = 0.80
    flu_perm_ag: tuple[tuple[float, ...], ...] = (
        (0.92, 0.77, 0.0),  # dry
        (0.83, 0.70, 0.0),  # wet / moist
        (0.88, 0.74, 0.0),  # montane
        (0.0, 0.0, 0.0),  # none (0, >= 13)
    )
    climate_dry: tuple[int, ...] = (2, 4, 6, 8, 12)
    climate_wet: tuple[int, ...] = (1, 3, 5, 7, 10, 11)
    climate_montane: tuple[int, ...] = (9,)
    c_n_ratio: float = 15.0
    ef_n_min: float = 0.010
    n2on_to_n2o: float = 44.0 / 28.0
    g_to_mg: float = 1e-3
    cf: tuple[tuple[float, ...], ...] = (
        (0.59, 0.51, 0.36, 0.55),  # conversion (1, 2, 3, 6)
        (0.33, 0.62, 0.36, 0.55),  # logging (4)
        (0.59, 0.51, 0.36, 0.55),  # wildfire (5)
        (0.34, 0.45, 0.36, 0.55),  # other (7, no driver)
    )
    gef: tuple[tuple[float, ...], ...] = (
        (1569.0, 4.7, 0.26),  # ecozone 2 or 3
        (1580.0, 6.8, 0.2),  # any other ecozone
    )
    peat_burn: tuple[tuple[float, ...], ...] = (
        (446.0, 82.0),  # ecozone 2 or 3
        (264.0, 88.0),  # other ecozone, driver != wildfire
        (601.0, 200.0),  # other ecozone, wildfire
    )
    peat_drain: tuple[tuple[float, ...], ...] = (
        (1.8, 0.33, 0.19),  # boreal
        (11.0, 0.21, 2.4),  # temperate
        (43.0, 1.2, 1.0),  # other ecozone, oil palm
        (76.0, 1.3, 2.1),  # other ecozone, wood fibre
        (58.0, 1.3, 2.1),  # other ecozone, other plantation value
    )
    driver_codes: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    include_ms_n2o: bool = True
    replicate_node62_bug: bool = True
    cap_soil_years_at_20: bool = False
    clamp_loss_beyond_model_years: bool = False

    def __post_init__(self) -> None:
        if int(self.model_years) != self.model_years or self.model_years < 0:
            raise ValueError(f"model_years must be a non-negative integer, got {self.model_years!r}")
        if int(self.soil_emis_period) != self.soil_emis_period or self.soil_emis_period <= 0:
            raise ValueError(f"soil_emis_period must be a positive integer, got {self.soil_emis_period!r}")
        _table(self.flu_perm_ag, (4, 3), "flu_perm_ag")
        _table(self.cf, (4, 4), "cf")
        _table(self.gef, (2, 3), "gef")
        _table(self.peat_burn, (3, 2), "peat_burn")
        _table(self.peat_drain, (5, 3), "peat_drain")
        codes = list(self.driver_codes)
        if len(codes) != 7 or len(set(codes)) != 7 or not all(0 <= c < _LUT_SIZE for c in codes):
            raise ValueError(f"driver_codes must be 7 distinct integers in 0..255, got {self.driver_codes!r}")
        groups = [*self.climate_dry, *self.climate_wet, *self.climate_montane]
        if len(set(groups)) != len(groups) or not all(0 <= c < _LUT_SIZE for c in groups):
            raise ValueError("climate_dry/wet/montane must be disjoint sets of integers in 0..255")

    def pack(self, variant: Variant = "biomass_soil") -> tuple[np.ndarray, ...]:
        """Pack the parameters into the numpy arrays taken by the numba kernel.

        Parameters
        ----------
        variant : {"biomass_soil", "biomass_only", "soil_only"}
            Emitted pools (spec/emissions.md §1, §5.6).

        Returns
        -------
        s32 : ndarray of float32, shape (10,)
            Scalars used in float32 (C_TO_CO2, BIOMASS_TO_C, soil period,
            F_lu of drivers 2, 3, 6, ``f32(1)/f32(C:N)``, EF_N_MIN, N2ON_TO_N2O,
            ``f32(gwp_n2o)``).
        s64 : ndarray of float64, shape (3,)
            Scalars used in float64 inside ``fire()``: G_TO_MG, GWP_CH4, GWP_N2O.
        cf, gef, peat_burn, peat_drain, flu_perm_ag : ndarray of float32
            The tables, shapes (4, 4), (2, 3), (3, 2), (5, 3), (4, 3).
        climate_lut : ndarray of int8, shape (256,)
            Climate code → row of ``flu_perm_ag`` (0 dry, 1 wet, 2 montane, 3 none).
        driver_lut : ndarray of int8, shape (256,)
            Driver code → driver class 1…7, or 0 for "no driver".
        opts : ndarray of int64, shape (6,)
            model_years, variant code, and the flags ``replicate_node62_bug``,
            ``cap_soil_years_at_20``, ``clamp_loss_beyond_model_years``,
            ``include_ms_n2o`` as 0/1.
        """
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        f32 = np.float32
        s32 = np.empty(_N_S32, dtype=np.float32)
        s32[_S32_C_TO_CO2] = f32(self.c_to_co2)
        s32[_S32_BIOMASS_TO_C] = f32(self.biomass_to_c)
        s32[_S32_SOIL_PERIOD] = f32(self.soil_emis_period)
        s32[_S32_FLU_HARD_COMMOD] = f32(self.flu_hard_commod)
        s32[_S32_FLU_SHIFTING] = f32(self.flu_shifting)
        s32[_S32_FLU_SETTLEMENTS] = f32(self.flu_settlements)
        s32[_S32_INV_CN] = f32(1.0) / f32(self.c_n_ratio)  # float32 quotient (§3.1)
        s32[_S32_EF_N_MIN] = f32(self.ef_n_min)
        s32[_S32_N2ON_TO_N2O] = f32(self.n2on_to_n2o)
        s32[_S32_GWP_N2O] = f32(self.gwp_n2o)
        s64 = np.empty(_N_S64, dtype=np.float64)
        s64[_S64_G_TO_MG] = self.g_to_mg
        s64[_S64_GWP_CH4] = self.gwp_ch4
        s64[_S64_GWP_N2O] = self.gwp_n2o
        climate_lut = np.full(_LUT_SIZE, 3, dtype=np.int8)
        for row, codes in enumerate((self.climate_dry, self.climate_wet, self.climate_montane)):
            climate_lut[list(codes)] = row
        driver_lut = np.zeros(_LUT_SIZE, dtype=np.int8)
        driver_lut[list(self.driver_codes)] = np.arange(1, 8, dtype=np.int8)
        opts = np.array(
            [
                self.model_years,
                VARIANTS[variant],
                self.replicate_node62_bug,
                self.cap_soil_years_at_20,
                self.clamp_loss_beyond_model_years,
                self.include_ms_n2o,
            ],
            dtype=np.int64,
        )
        return (
            s32,
            s64,
            np.asarray(self.cf, dtype=np.float32),
            np.asarray(self.gef, dtype=np.float32),
            np.asarray(self.peat_burn, dtype=np.float32),
            np.asarray(self.peat_drain, dtype=np.float32),
            np.asarray(self.flu_perm_ag, dtype=np.float32),
            climate_lut,
            driver_lut,
            opts,
        )


#: Parameters of v1.4.3 with the original's behaviour for every quirk.
DEFAULT_PARAMS = EmissionParams()


# ---------------------------------------------------------------------------
# numba kernels


@njit(cache=True, nogil=True, error_model="numpy")
def _leaf_conversion(b, peat, burn, eco, ifl, plant):
    """Leaf of drivers 1, 2, 6 (spec/emissions.md §5.1); ``b`` = 10, 20 or 60.

    Returns ``(node, components)``; ``(0, 0)`` when no leaf matches (§5.5).
    """
    if peat > 0:
        if burn > 0:
            return b, _BF | _PD | _PB
        if burn == 0:
            if eco == 1:
                if plant >= 1:
                    return b + 1, _BN | _PD
                if plant == 0:
                    return 10 * (b + 1) + 1, _BN
            elif eco == 2 or eco == 3:
                return b + 2, _BN | _PD
        return 0, 0
    if peat == 0:
        if burn > 0:
            if eco == 1:
                if ifl == 1:
                    k = 3
                elif ifl == 0:
                    k = 4
                else:
                    return 0, 0
                if plant >= 1:
                    return b + k, _BF
                if plant == 0:
                    return 10 * (b + k) + 1, _BF | _MS
            elif eco == 2:
                return b + 5, _BF | _MS
            elif eco == 3:
                if plant >= 1:
                    return b + 6, _BF
                if plant == 0:
                    return 10 * (b + 6) + 1, _BF | _MS
        elif burn == 0:
            if eco == 1:
                if plant >= 1:
                    return b + 7, _BN
                if plant == 0:
                    return 10 * (b + 7) + 1, _BN | _MS
            elif eco == 2:
                return b + 8, _BN | _MS
            elif eco == 3:
                if plant >= 1:
                    return b + 9, _BN
                if plant == 0:
                    return 10 * (b + 9) + 1, _BN | _MS
    return 0, 0


@njit(cache=True, nogil=True, error_model="numpy")
def _leaf_shifting(peat, burn, eco, ifl, plant):
    """Leaf of driver 3, shifting cultivation (spec/emissions.md §5.2)."""
    if peat > 0:
        if burn > 0:
            if eco == 2 or eco == 3:
                return 30, _BF | _PB
            if eco == 1:
                return 31, _BF | _PD | _PB
        elif burn == 0:
            if eco == 2 or eco == 3:
                return 32, _BN
            if eco == 1:
                if plant >= 1:
                    return 33, _BN | _PD
                if plant == 0:
                    return 331, _BN
        return 0, 0
    if peat == 0:
        if burn > 0:
            if eco == 1:
                if ifl == 1:
                    if plant >= 1:
                        return 34, _BF
                    if plant == 0:
                        return 341, _BF | _MS
                elif ifl == 0:
                    if plant >= 1:
                        return 35, _BF
                    if plant == 0:
                        return 351, _BF | _MS
            elif eco == 2:
                return 36, _BF | _MS
            elif eco == 3:
                if plant >= 1:
                    return 37, _BF
                if plant == 0:
                    return 371, _BF | _MS
        elif burn == 0:
            if eco == 1:
                if plant >= 1:
                    return 38, _BN
                if plant == 0:
                    return 381, _BN | _MS
            elif eco == 2:
                return 39, _BN | _MS
            elif eco == 3:
                if plant >= 1:
                    return 391, _BN
                if plant == 0:
                    return 392, _BN | _MS
    return 0, 0


@njit(cache=True, nogil=True, error_model="numpy")
def _leaf_disturbance(b, peat, burn, eco, plant):
    """Leaf of drivers 4, 5, 7 and no driver (spec/emissions.md §5.3); ``b`` = 40, 50, 70, 80."""
    if peat > 0:
        if burn > 0:
            return b, _BF | _PD | _PB
        if burn == 0:
            if eco == 2 or eco == 3:
                return b + 1, _BN
            if eco == 1:
                if plant > 0:
                    return b + 2, _BN | _PD
                if plant == 0:
                    return 10 * (b + 2) + 1, _BN
        return 0, 0
    if peat == 0:
        if burn > 0:
            return b + 3, _BF
        if burn == 0:
            return b + 4, _BN
    return 0, 0


@njit(cache=True, nogil=True, error_model="numpy")
def _fire(pool, cf, gef, gwp, biomass_to_c, g_to_mg):
    """Fire emission of one gas from a carbon pool, IPCC 2006 Eq. 2.27 (spec/emissions.md §4.4).

    Parameters
    ----------
    pool : float32
        Carbon burned, Mg C ha⁻¹.
    cf, gef : float32
        Combustion factor (fraction) and gas emission factor, g gas per kg dry matter.
    gwp, biomass_to_c, g_to_mg : float64, float32, float64
        GWP (1.0 for CO2), carbon fraction of dry matter, 0.001.

    Returns
    -------
    float32
        Mg CO2e ha⁻¹: ``x = f32(f32(f32(pool / biomass_to_c) × cf) × gef)`` (float32
        steps), then ``f32((f64(x) × g_to_mg) × gwp)`` (float64 steps, one rounding).
    """
    x = ((pool / biomass_to_c) * cf) * gef
    return np.float32((np.float64(x) * g_to_mg) * gwp)


@njit(cache=True, nogil=True, error_model="numpy")
def _gross_emissions_kernel(
    agc, bgc, deadwood, litter, soil, loss, burn, ecozone, climate, driver, peat, ifl, plant,
    s32, s64, cf_tab, gef_tab, pb_tab, pd_tab, flu_tab, climate_lut, driver_lut, opts,
    out_all, out_co2, out_non, out_ch4, out_n2o, out_node,
):  # fmt: skip
    """Decision tree of spec/emissions.md §4–§6 over 2-D arrays, into zero-filled outputs.

    Parameters
    ----------
    agc, bgc, deadwood, litter, soil, loss, burn, ecozone, climate, driver, peat, ifl, plant : 2-D arrays
        Inputs of :func:`gross_emissions` (pools Mg C ha⁻¹, codes), one shape,
        any dtype/strides; indexed ``a[i, j]`` only.
    s32, s64, cf_tab, gef_tab, pb_tab, pd_tab, flu_tab, climate_lut, driver_lut, opts : ndarray
        Output of :meth:`EmissionParams.pack`.
    out_all, out_co2, out_non, out_ch4, out_n2o : 2-D float32 arrays, **zero-filled**
        Emission outputs, Mg CO2e ha⁻¹ (written in place).
    out_node : 2-D uint16 array, **zero-filled**
        Node codes (written in place).

    Notes
    -----
    One pass in row-major order with no allocation. Pixels that are not
    evaluated (§4.1), reach no leaf (§5.5) or sum to zero (§6) are skipped after
    at most writing their node code, so the outputs must already be 0. Only the
    component terms of the pixel's leaf are computed.
    """
    model_years = opts[_I_MODEL_YEARS]
    variant = opts[_I_VARIANT]
    node62_bug = opts[_I_NODE62_BUG] != 0
    cap_soil = opts[_I_CAP_SOIL] != 0
    clamp_loss = opts[_I_CLAMP_LOSS] != 0
    with_ms_n2o = opts[_I_MS_N2O] != 0

    c_to_co2 = s32[_S32_C_TO_CO2]
    biomass_to_c = s32[_S32_BIOMASS_TO_C]
    soil_period = s32[_S32_SOIL_PERIOD]
    flu_hard_commod = s32[_S32_FLU_HARD_COMMOD]
    flu_shifting = s32[_S32_FLU_SHIFTING]
    flu_settlements = s32[_S32_FLU_SETTLEMENTS]
    inv_cn = s32[_S32_INV_CN]
    ef_n_min = s32[_S32_EF_N_MIN]
    n2on_to_n2o = s32[_S32_N2ON_TO_N2O]
    gwp_n2o_32 = s32[_S32_GWP_N2O]
    g_to_mg = s64[_S64_G_TO_MG]
    gwp_ch4 = s64[_S64_GWP_CH4]
    gwp_n2o = s64[_S64_GWP_N2O]
    model_years_32 = np.float32(model_years)
    zero = np.float32(0.0)
    lut_size = driver_lut.shape[0]

    if variant == 2:  # soil_only: drop BN and BF (§5.6)
        keep = _PD | _PB | _MS
    elif variant == 1:  # biomass_only: drop PD, PB, MS (§5.6)
        keep = _BN | _BF
    else:
        keep = _BN | _BF | _PD | _PB | _MS

    nrow, ncol = agc.shape
    for i in range(nrow):
        for j in range(ncol):
            # §4.1 gate
            ls = loss[i, j]
            if not ls > 0:
                continue
            if clamp_loss and ls > model_years:
                continue
            a = agc[i, j]
            if not a > 0:
                continue

            # §2.2 driver class (0 = no driver) and §5 tree
            d = driver[i, j]
            dc = 0
            if d >= 0 and d < lut_size:
                dc = driver_lut[d]
            pt = peat[i, j]
            bn = burn[i, j]
            eco = ecozone[i, j]
            fl = ifl[i, j]
            pl = plant[i, j]
            group_a = dc == 1 or dc == 2 or dc == 3 or dc == 6
            if dc == 3:
                node, comps = _leaf_shifting(pt, bn, eco, fl, pl)
            elif group_a:
                node, comps = _leaf_conversion(10 * dc, pt, bn, eco, fl, pl)
            elif dc == 0:
                node, comps = _leaf_disturbance(80, pt, bn, eco, pl)
            else:
                node, comps = _leaf_disturbance(10 * dc, pt, bn, eco, pl)
            if node == 0:
                continue
            out_node[i, j] = node

            # §5.6 variants
            comps &= keep
            if variant == 1 and node62_bug and node == 62:
                comps |= _PD_CO2
            if comps == 0:
                continue  # all gases 0 → zero rule (§6), node already written

            extra_tropical = eco == 2 or eco == 3
            y = model_years_32 - np.float32(ls)  # years after loss (§4.2, §4.4)

            # §4.5: per gas, float32 sum in the order BN|BF, PD, PB, MS
            co2 = zero
            ch4 = zero
            n2o = zero

            if comps & (_BN | _BF):
                # §4.2 parameter set and §3.2 tables
                if group_a:
                    pset = 0
                elif dc == 4:
                    pset = 1
                elif dc == 5:
                    pset = 2
                else:
                    pset = 3
                if eco == 2:
                    cf = cf_tab[pset, 0]
                elif eco == 3:
                    cf = cf_tab[pset, 1]
                elif fl > 0:
                    cf = cf_tab[pset, 2]
                else:
                    cf = cf_tab[pset, 3]
                grow = 0 if extra_tropical else 1
                # §4.3 carbon sums, §4.4 biomass terms
                if group_a:
                    c_all = ((a + bgc[i, j]) + deadwood[i, j]) + litter[i, j]
                    co2 += c_all * c_to_co2  # BN_CO2 == BF_CO2
                    if comps & _BF:
                        ch4 += _fire(c_all, cf, gef_tab[grow, 1], gwp_ch4, biomass_to_c, g_to_mg)
                        n2o += _fire(c_all, cf, gef_tab[grow, 2], gwp_n2o, biomass_to_c, g_to_mg)
                elif comps & _BN:
                    co2 += (a + bgc[i, j]) * c_to_co2
                else:
                    c_nobgc = (a + deadwood[i, j]) + litter[i, j]
                    x = ((a / biomass_to_c) * cf) * gef_tab[grow, 0]
                    co2 += np.float32(np.float64(x) * g_to_mg)  # fire(agc, Gef_CO2, 1)
                    ch4 += _fire(c_nobgc, cf, gef_tab[grow, 1], gwp_ch4, biomass_to_c, g_to_mg)
                    n2o += _fire(c_nobgc, cf, gef_tab[grow, 2], gwp_n2o, biomass_to_c, g_to_mg)

            if comps & (_PD | _PD_CO2):
                if eco == 2:
                    prow = 0
                elif eco == 3:
                    prow = 1
                elif pl == 1:
                    prow = 2
                elif pl == 2:
                    prow = 3
                else:
                    prow = 4
                co2 += y * pd_tab[prow, 0]
                if comps & _PD:
                    ch4 += y * pd_tab[prow, 1]
                    n2o += y * pd_tab[prow, 2]

            if comps & _PB:
                if extra_tropical:
                    brow = 0
                elif dc == 5:
                    brow = 2
                else:
                    brow = 1
                co2 += pb_tab[brow, 0]
                ch4 += pb_tab[brow, 1]

            if comps & _MS:
                if dc == 1:
                    c = climate[i, j]
                    cgroup = 3
                    if c >= 0 and c < climate_lut.shape[0]:
                        cgroup = climate_lut[c]
                    if eco == 1:
                        f = flu_tab[cgroup, 0]
                    elif extra_tropical:
                        f = flu_tab[cgroup, 1]
                    else:
                        f = flu_tab[cgroup, 2]
                elif dc == 2:
                    f = flu_hard_commod
                elif dc == 3:
                    f = flu_shifting
                else:
                    f = flu_settlements
                s = np.float32(soil[i, j])
                y_soil = y
                if cap_soil and y_soil > soil_period:
                    y_soil = soil_period
                total = ((s - s * f) / soil_period) * y_soil
                co2 += total * c_to_co2
                if with_ms_n2o:
                    n2o += (((total * inv_cn) * ef_n_min) * n2on_to_n2o) * gwp_n2o_32

            # §6 output assembly and zero rule
            all_gases = (co2 + ch4) + n2o
            if all_gases != 0:
                out_all[i, j] = all_gases
                out_co2[i, j] = co2
                out_non[i, j] = ch4 + n2o
                out_ch4[i, j] = ch4
                out_n2o[i, j] = n2o


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_by_year_driver_kernel(loss, driver, area, all_gases, co2, ch4, n2o, model_years, out):
    """Accumulate ``(f64(value) × f64(area)) / 10 000`` into ``out[row, driver, gas]``.

    Parameters
    ----------
    loss, driver : 2-D integer arrays
        Loss-year and driver codes.
    area : 2-D array
        Pixel area, m² (may be a zero-stride view).
    all_gases, co2, ch4, n2o : 2-D arrays
        Emission densities, Mg CO2e ha⁻¹.
    model_years : int
        Rows 0…model_years are loss codes; row model_years + 1 is "out of range".
    out : float64 array, shape (model_years + 2, 8, 4)
        Accumulator, Mg CO2e (updated in place, row-major pixel order).
    """
    nrow, ncol = loss.shape
    out_of_range = model_years + 1
    for i in range(nrow):
        for j in range(ncol):
            v0 = all_gases[i, j]
            v1 = co2[i, j]
            v2 = ch4[i, j]
            v3 = n2o[i, j]
            if v0 == 0 and v1 == 0 and v2 == 0 and v3 == 0:
                continue  # adding +0.0 to a float64 sum changes nothing
            ls = np.int64(loss[i, j])
            r = ls if ls >= 0 and ls <= model_years else out_of_range
            d = np.int64(driver[i, j])
            k = d if d >= 1 and d <= 7 else 0
            px = np.float64(area[i, j])
            out[r, k, 0] += (np.float64(v0) * px) / 10000.0
            out[r, k, 1] += (np.float64(v1) * px) / 10000.0
            out[r, k, 2] += (np.float64(v2) * px) / 10000.0
            out[r, k, 3] += (np.float64(v3) * px) / 10000.0


# ---------------------------------------------------------------------------
# Python wrappers


def _as_2d(x: object, name: str, shape: tuple[int, ...] | None, kind: str) -> np.ndarray:
    """View ``x`` as a 2-D array without copying (1-D → (1, n); 0-d → broadcast).

    ``kind`` is "float32" (cast float pools to float32; no copy if already float32),
    "number" (integer or float, used as is) or "code" (integer; bool viewed as uint8).
    """
    arr = np.asarray(x)
    if kind == "float32":
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"{name} must be a float array, got dtype {arr.dtype}")
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
    elif kind == "number":
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"{name} must be an integer or float array, got dtype {arr.dtype}")
    else:
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be an integer code array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if shape is None:
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 1-D or 2-D, got {arr.ndim}-D")
        return arr
    if arr.ndim == 0:
        return np.broadcast_to(arr, shape)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape} (the shape of the first input)")
    return arr


def gross_emissions(
    agc: np.ndarray,
    bgc: np.ndarray,
    deadwood: np.ndarray,
    litter: np.ndarray,
    soil: np.ndarray,
    loss: np.ndarray,
    burn: np.ndarray,
    ecozone: np.ndarray,
    climate: np.ndarray,
    driver: np.ndarray,
    peat: np.ndarray,
    ifl: np.ndarray,
    plant: np.ndarray,
    *,
    variant: Variant = "biomass_soil",
    params: EmissionParams = DEFAULT_PARAMS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gross GHG emissions of tree-cover loss, per pixel (spec/emissions.md §4–§6).

    Walks the decision tree of §5 for every pixel with ``loss > 0`` and
    ``agc > 0`` (§4.1) and sums the leaf's components (biomass without/with fire,
    peat drainage, peat burning, mineral soil; §4.4, §4.5) per gas.

    Parameters
    ----------
    agc, bgc, deadwood, litter : array_like of float32, 2-D (or 1-D)
        Above- and belowground carbon in the loss year, deadwood and litter
        carbon, Mg C ha⁻¹ (§2.1 layers 1–4; nodata 0). Other float dtypes are
        cast to float32.
    soil : array_like of int (uint16/int16) or float, 2-D
        Mineral soil organic carbon 0–30 cm, Mg C ha⁻¹ (§2.1 layer 5), converted
        to float32 per pixel.
    loss : array_like of int (uint8), 2-D
        Tree-cover loss year code, 0 = no loss, 1…``model_years`` = 2001…
    burn : array_like of int (uint8), 2-D
        Tree-cover loss due to fire; burned ⇔ ``burn > 0`` (not compared with the
        loss year, §2.2).
    ecozone : array_like of int (int16), 2-D
        1 tropical, 2 boreal, 3 temperate, other = unassigned (§2.2, §5.5).
    climate : array_like of int (uint8), 2-D
        IPCC climate zone, used only for permanent-agriculture F_lu (§3.3).
    driver : array_like of int (uint8), 2-D
        Driver of loss 1…7; any other value is "no driver" (§2.2).
    peat : array_like of int (uint8), 2-D
        Peat ⇔ ``peat > 0``; not peat ⇔ ``peat == 0``.
    ifl : array_like of int (uint8), 2-D
        IFL 2000 / primary forest 2001; tree tests ``== 1`` and ``== 0``,
        combustion factor tests ``> 0`` (§2.2, §9.6).
    plant : array_like of int (uint8), 2-D
        Plantation type, 0 none, 1 oil palm, 2 wood fibre, 3 other (§2.2).
    variant : {"biomass_soil", "biomass_only", "soil_only"}, keyword-only
        Emitted pools (§1, §5.6).
    params : EmissionParams, keyword-only
        Constants, tables and quirk flags; default v1.4.3 (``DEFAULT_PARAMS``).

    Returns
    -------
    all_gases, co2_only, non_co2, ch4_only, n2o_only : ndarray of float32
        Emission densities, Mg CO2e ha⁻¹ summed over the model period
        (2001…2000+``model_years``); 0 where not evaluated, where no leaf matched
        and where all gases sum to exactly 0 (§6). ``non_co2`` = CH4 + N2O.
    node : ndarray of uint16
        Decision-tree node code of §5.4 (0 = not evaluated / no leaf); kept
        when the emissions are zeroed by the zero rule.

    All outputs are new C-contiguous arrays with the shape of the inputs.

    Raises
    ------
    ValueError
        Unknown ``variant``; inputs of different shapes (0-d scalars are
        broadcast, 1-D inputs are viewed as one row); inputs with more than two
        dimensions.
    TypeError
        A code layer that is not of integer (or bool) dtype, or a non-numeric
        carbon pool.

    Notes
    -----
    Arithmetic is float32 in the order of the spec, with the float64 steps of
    ``fire()`` only (§4.4, §11), so the result is bit-identical to the
    original C++. A gas that would be −0.0 is returned as +0.0, as in the
    original, which sums eight per-driver accumulators (§6). Inputs are never
    copied (float32 pools, integer codes); any of them may be a strided or
    zero-stride broadcast view. Years after loss are ``f32(model_years) −
    f32(loss)`` (§4.4), equal to ``f32(model_years − loss)`` of §4.2 for
    integer codes. With the default flags, ``loss > model_years`` gives negative
    soil and peat-drainage terms, exactly as the original (§9.3); set
    ``params.clamp_loss_beyond_model_years`` to treat such pixels as not
    evaluated.

    Examples
    --------
    Reference vector T01 of spec §12 (driver 1, tropical, not peat, not burned):

    >>> import numpy as np
    >>> f, u = np.float32, np.uint8
    >>> out = gross_emissions(f([100]), f([25]), f([5]), f([2]), np.uint16([80]), u([5]), u([0]),
    ...                       np.int16([1]), u([10]), u([1]), u([0]), u([0]), u([0]))
    >>> int(out[5][0]), float(out[1][0]), float(out[0][0])
    (171, 533.8666381835938, 537.7562255859375)
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    agc2 = _as_2d(agc, "agc", None, "float32")
    shape = agc2.shape
    bgc2 = _as_2d(bgc, "bgc", shape, "float32")
    deadwood2 = _as_2d(deadwood, "deadwood", shape, "float32")
    litter2 = _as_2d(litter, "litter", shape, "float32")
    soil2 = _as_2d(soil, "soil", shape, "number")
    codes = [
        _as_2d(x, name, shape, "code")
        for x, name in (
            (loss, "loss"),
            (burn, "burn"),
            (ecozone, "ecozone"),
            (climate, "climate"),
            (driver, "driver"),
            (peat, "peat"),
            (ifl, "ifl"),
            (plant, "plant"),
        )
    ]
    outs = [np.zeros(shape, dtype=np.float32) for _ in range(5)]
    node = np.zeros(shape, dtype=np.uint16)
    _gross_emissions_kernel(agc2, bgc2, deadwood2, litter2, soil2, *codes, *params.pack(variant), *outs, node)
    out_shape = np.shape(agc)
    if len(out_shape) == 1:
        outs = [o.reshape(out_shape) for o in outs]
        node = node.reshape(out_shape)
    return outs[0], outs[1], outs[2], outs[3], outs[4], node


def sum_by_year_driver(
    loss: np.ndarray,
    driver: np.ndarray,
    pixel_area_m2: np.ndarray,
    all_gases: np.ndarray,
    co2: np.ndarray,
    ch4: np.ndarray,
    n2o: np.ndarray,
    *,
    model_years: int = 25,
) -> np.ndarray:
    """Total emissions in Mg CO2e by loss year, driver and gas.

    Converts emission densities (Mg CO2e ha⁻¹, output of :func:`gross_emissions`)
    to per-pixel totals with the pixel area and sums them, in float64.

    Parameters
    ----------
    loss : array_like of int, 2-D (or 1-D)
        Loss year code (0 = no loss, 1…``model_years``).
    driver : array_like of int, 2-D
        Raw driver code; 1…7 are the classes of spec/emissions.md §2.2, any other
        value is counted as "no driver" (index 0). The ``driver_codes`` remapping
        of :class:`EmissionParams` is **not** applied.
    pixel_area_m2 : array_like of float, broadcastable to the shape of ``loss``
        Pixel area, m². Area varies by row only on the geographic grid, so a
        ``(nrow, 1)`` column or a ``np.broadcast_to`` view is enough (no copy).
    all_gases, co2, ch4, n2o : array_like of float32, 2-D
        Emission densities, Mg CO2e ha⁻¹.
    model_years : int, keyword-only
        Number of loss years (25 for v1.4.3).

    Returns
    -------
    ndarray of float64, shape (model_years + 2, 8, 4)
        ``[row, driver, gas]`` in Mg CO2e, the sum over pixels of
        ``(f64(value) × f64(area)) / 10 000`` in row-major pixel order. Row
        ``r`` in 0…``model_years`` holds pixels with ``loss == r`` (row 0, no
        loss, is all zeros for outputs of :func:`gross_emissions`); row
        ``model_years + 1`` holds pixels whose loss code is out of range
        (``< 0`` or ``> model_years``), which carry emissions with the default
        ``clamp_loss_beyond_model_years=False`` (spec §9.3). Driver index
        0 = no driver (code outside 1…7), 1…7 = driver code. Gas index 0 all
        gases, 1 CO2, 2 CH4, 3 N2O (non-CO2 = CH4 + N2O is not repeated).
    """
    if int(model_years) != model_years or model_years < 0:
        raise ValueError(f"model_years must be a non-negative integer, got {model_years!r}")
    loss2 = _as_2d(loss, "loss", None, "code")
    shape = loss2.shape
    driver2 = _as_2d(driver, "driver", shape, "code")
    area = np.asarray(pixel_area_m2)
    if not (np.issubdtype(area.dtype, np.floating) or np.issubdtype(area.dtype, np.integer)):
        raise TypeError(f"pixel_area_m2 must be numeric, got dtype {area.dtype}")
    if area.ndim == 1 and np.ndim(loss) == 1:
        area = area[np.newaxis, :]
    try:
        area2 = np.broadcast_to(area, shape)
    except ValueError as err:
        raise ValueError(f"pixel_area_m2 of shape {area.shape} does not broadcast to {shape}") from err
    gases = [
        _as_2d(x, name, shape, "number")
        for x, name in ((all_gases, "all_gases"), (co2, "co2"), (ch4, "ch4"), (n2o, "n2o"))
    ]
    out = np.zeros((int(model_years) + 2, 8, 4), dtype=np.float64)
    _sum_by_year_driver_kernel(loss2, driver2, area2, *gases, int(model_years), out)
    return out
