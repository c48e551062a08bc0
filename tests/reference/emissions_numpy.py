"""Plain-numpy reference of the gross-emissions step (spec/emissions.md §4–§6).

Independent of the numba kernel in ``fluxgraph.kernels.emissions``: written from
the spec text with a different structure. Every component term of §4.4 is
computed for **all** pixels with vectorised float32 numpy arithmetic, then the
leaf table of §5.4 (transcribed row by row below) is turned into one boolean
mask per leaf, and each leaf's sums are assigned under its mask. Only the
parameter container :class:`EmissionParams` is shared with the kernel (its
fields are read directly; ``pack()`` is not used).

Slow (89 masks per call) and memory hungry; for tests only.
"""

from __future__ import annotations

import numpy as np
from fluxgraph.kernels.emissions import DEFAULT_PARAMS, EmissionParams

__all__ = ["LEAVES", "gross_emissions"]

F32 = np.float32
F64 = np.float64

# §5.4, one row per leaf:
# (node, driver class (0 = no driver), peat, burned, ecozone, ifl, plantation, biomass_soil components)
# ecozone: "trop" (1), "bor" (2), "tem" (3), "bor/tem", "any"; ifl: 1, 0 or "any";
# plantation: "pl" (>= 1 for drivers 1, 2, 3, 6; > 0 for the others), "none" (== 0), "any".
LEAVES: list[tuple[int, int, bool, bool, str, object, str, tuple[str, ...]]] = []


def _conversion_rows(d: int) -> None:
    b = 10 * d
    LEAVES.extend(
        [
            (b, d, True, True, "any", "any", "any", ("BF", "PD", "PB")),
            (b + 1, d, True, False, "trop", "any", "pl", ("BN", "PD")),
            (10 * (b + 1) + 1, d, True, False, "trop", "any", "none", ("BN",)),
            (b + 2, d, True, False, "bor/tem", "any", "any", ("BN", "PD")),
            (b + 3, d, False, True, "trop", 1, "pl", ("BF",)),
            (10 * (b + 3) + 1, d, False, True, "trop", 1, "none", ("BF", "MS")),
            (b + 4, d, False, True, "trop", 0, "pl", ("BF",)),
            (10 * (b + 4) + 1, d, False, True, "trop", 0, "none", ("BF", "MS")),
            (b + 5, d, False, True, "bor", "any", "any", ("BF", "MS")),
            (b + 6, d, False, True, "tem", "any", "pl", ("BF",)),
            (10 * (b + 6) + 1, d, False, True, "tem", "any", "none", ("BF", "MS")),
            (b + 7, d, False, False, "trop", "any", "pl", ("BN",)),
            (10 * (b + 7) + 1, d, False, False, "trop", "any", "none", ("BN", "MS")),
            (b + 8, d, False, False, "bor", "any", "any", ("BN", "MS")),
            (b + 9, d, False, False, "tem", "any", "pl", ("BN",)),
            (10 * (b + 9) + 1, d, False, False, "tem", "any", "none", ("BN", "MS")),
        ]
    )


def _disturbance_rows(d: int, b: int) -> None:
    LEAVES.extend(
        [
            (b, d, True, True, "any", "any", "any", ("BF", "PD", "PB")),
            (b + 1, d, True, False, "bor/tem", "any", "any", ("BN",)),
            (b + 2, d, True, False, "trop", "any", "pl", ("BN", "PD")),
            (10 * (b + 2) + 1, d, True, False, "trop", "any", "none", ("BN",)),
            (b + 3, d, False, True, "any", "any", "any", ("BF",)),
            (b + 4, d, False, False, "any", "any", "any", ("BN",)),
        ]
    )


_conversion_rows(1)
_conversion_rows(2)
LEAVES.extend(
    [
        (30, 3, True, True, "bor/tem", "any", "any", ("BF", "PB")),
        (31, 3, True, True, "trop", "any", "any", ("BF", "PD", "PB")),
        (32, 3, True, False, "bor/tem", "any", "any", ("BN",)),
        (33, 3, True, False, "trop", "any", "pl", ("BN", "PD")),
        (331, 3, True, False, "trop", "any", "none", ("BN",)),
        (34, 3, False, True, "trop", 1, "pl", ("BF",)),
        (341, 3, False, True, "trop", 1, "none", ("BF", "MS")),
        (35, 3, False, True, "trop", 0, "pl", ("BF",)),
        (351, 3, False, True, "trop", 0, "none", ("BF", "MS")),
        (36, 3, False, True, "bor", "any", "any", ("BF", "MS")),
        (37, 3, False, True, "tem", "any", "pl", ("BF",)),
        (371, 3, False, True, "tem", "any", "none", ("BF", "MS")),
        (38, 3, False, False, "trop", "any", "pl", ("BN",)),
        (381, 3, False, False, "trop", "any", "none", ("BN", "MS")),
        (39, 3, False, False, "bor", "any", "any", ("BN", "MS")),
        (391, 3, False, False, "tem", "any", "pl", ("BN",)),
        (392, 3, False, False, "tem", "any", "none", ("BN", "MS")),
    ]
)
_disturbance_rows(4, 40)
_disturbance_rows(5, 50)
_conversion_rows(6)
_disturbance_rows(7, 70)
_disturbance_rows(0, 80)
assert len(LEAVES) == 89
assert len({row[0] for row in LEAVES}) == 89


def _fire(pool, cf, gef, gwp, p: EmissionParams):
    """§4.4 ``fire()``: three float32 steps, two float64 steps, one rounding to float32."""
    x = ((pool / F32(p.biomass_to_c)) * cf) * gef
    return ((x.astype(F64) * F64(p.g_to_mg)) * F64(gwp)).astype(F32)


def gross_emissions(
    agc,
    bgc,
    deadwood,
    litter,
    soil,
    loss,
    burn,
    ecozone,
    climate,
    driver,
    peat,
    ifl,
    plant,
    *,
    variant: str = "biomass_soil",
    params: EmissionParams = DEFAULT_PARAMS,
):
    """Same contract as ``fluxgraph.kernels.emissions.gross_emissions`` (numpy only)."""
    if variant not in ("biomass_soil", "biomass_only", "soil_only"):
        raise ValueError(variant)
    p = params
    shape = np.shape(agc)
    a = np.broadcast_to(np.asarray(agc, dtype=F32), shape)
    bg = np.broadcast_to(np.asarray(bgc, dtype=F32), shape)
    dw = np.broadcast_to(np.asarray(deadwood, dtype=F32), shape)
    lt = np.broadcast_to(np.asarray(litter, dtype=F32), shape)
    soc = np.broadcast_to(np.asarray(soil), shape).astype(F32)
    ls, bn, eco, clim, drv, pt, fl, pl = (
        np.broadcast_to(np.asarray(x), shape).astype(np.int64)
        for x in (loss, burn, ecozone, climate, driver, peat, ifl, plant)
    )

    # §2.2 driver classes
    cls = np.zeros(shape, dtype=np.int64)
    for k, code in enumerate(p.driver_codes, start=1):
        cls[drv == code] = k
    group_a = np.isin(cls, (1, 2, 3, 6))

    # §4.1 gate
    evaluated = (ls > 0) & (a > 0)
    if p.clamp_loss_beyond_model_years:
        evaluated &= ls <= p.model_years

    with np.errstate(all="ignore"):
        # §4.3 carbon sums
        c_all = ((a + bg) + dw) + lt
        c_nobgc = (a + dw) + lt
        c_ab = a + bg

        # §3.2 combustion factor
        pset = np.select([group_a, cls == 4, cls == 5], [0, 1, 2], default=3)
        cf_tab = np.asarray(p.cf, dtype=F32)
        col = np.where(eco == 2, 0, np.where(eco == 3, 1, np.where(fl > 0, 2, 3)))
        cf = cf_tab[pset, col]
        extra = (eco == 2) | (eco == 3)
        gef_tab = np.asarray(p.gef, dtype=F32)
        gef_co2, gef_ch4, gef_n2o = (np.where(extra, gef_tab[0, g], gef_tab[1, g]) for g in range(3))

        # §4.4 biomass terms
        c2co2 = F32(p.c_to_co2)
        terms: dict[str, dict[str, np.ndarray]] = {}
        terms["BN"] = {"CO2": np.where(group_a, c_all * c2co2, c_ab * c2co2)}
        terms["BF"] = {
            "CO2": np.where(group_a, c_all * c2co2, _fire(a, cf, gef_co2, 1, p)),
            "CH4": np.where(
                group_a, _fire(c_all, cf, gef_ch4, p.gwp_ch4, p), _fire(c_nobgc, cf, gef_ch4, p.gwp_ch4, p)
            ),
            "N2O": np.where(
                group_a, _fire(c_all, cf, gef_n2o, p.gwp_n2o, p), _fire(c_nobgc, cf, gef_n2o, p.gwp_n2o, p)
            ),
        }

        # §4.2 peat drainage: f32(integer years) × annual rate
        years_int = p.model_years - ls
        pd_tab = np.asarray(p.peat_drain, dtype=F32)
        pd_row = np.select([eco == 2, eco == 3, pl == 1, pl == 2], [0, 1, 2, 3], default=4)
        years_pd = years_int.astype(F32)
        terms["PD"] = {g: years_pd * pd_tab[pd_row, k] for k, g in enumerate(("CO2", "CH4", "N2O"))}

        # §3.2 peat burning
        pb_tab = np.asarray(p.peat_burn, dtype=F32)
        pb_row = np.where(extra, 0, np.where(cls == 5, 2, 1))
        terms["PB"] = {"CO2": pb_tab[pb_row, 0], "CH4": pb_tab[pb_row, 1]}

        # §3.3 F_lu and §4.4 mineral soil
        clim_row = np.select(
            [np.isin(clim, p.climate_dry), np.isin(clim, p.climate_wet), np.isin(clim, p.climate_montane)],
            [0, 1, 2],
            default=3,
        )
        eco_col = np.where(eco == 1, 0, np.where(extra, 1, 2))
        flu_tab = np.asarray(p.flu_perm_ag, dtype=F32)
        flu = np.select(
            [cls == 1, cls == 2, cls == 3, cls == 6],
            [flu_tab[clim_row, eco_col], F32(p.flu_hard_commod), F32(p.flu_shifting), F32(p.flu_settlements)],
            default=F32(0),
        ).astype(F32)
        period = F32(p.soil_emis_period)
        years = F32(p.model_years) - ls.astype(F32)
        if p.cap_soil_years_at_20:
            years = np.minimum(years, period)
        annual = (soc - soc * flu) / period
        total = annual * years
        inv_cn = F32(1) / F32(p.c_n_ratio)
        ms_n2o = (((total * inv_cn) * F32(p.ef_n_min)) * F32(p.n2on_to_n2o)) * F32(p.gwp_n2o)
        terms["MS"] = {"CO2": total * c2co2}
        if p.include_ms_n2o:
            terms["MS"]["N2O"] = ms_n2o

        node = np.zeros(shape, dtype=np.uint16)
        gas = {g: np.zeros(shape, dtype=F32) for g in ("CO2", "CH4", "N2O")}
        for code, d, is_peat, is_burned, ez, ifl_test, plant_test, comps in LEAVES:
            m = evaluated & (cls == d)
            m &= (pt > 0) if is_peat else (pt == 0)
            m &= (bn > 0) if is_burned else (bn == 0)
            if ez != "any":
                m &= {"trop": eco == 1, "bor": eco == 2, "tem": eco == 3, "bor/tem": extra}[ez]
            if ifl_test != "any":
                m &= fl == ifl_test
            if plant_test == "pl":
                m &= (pl >= 1) if d in (1, 2, 3, 6) else (pl > 0)
            elif plant_test == "none":
                m &= pl == 0
            if not m.any():
                continue
            node[m] = code
            # §5.6 variant component sets
            if variant == "soil_only":
                kept = [c for c in comps if c in ("PD", "PB", "MS")]
            elif variant == "biomass_only":
                kept = [c for c in comps if c in ("BN", "BF")]
            else:
                kept = list(comps)
            for g in ("CO2", "CH4", "N2O"):
                parts = [terms[c][g] for c in kept if g in terms[c]]
                if variant == "biomass_only" and code == 62 and p.replicate_node62_bug and g == "CO2":
                    parts.append(terms["PD"]["CO2"])
                if not parts:
                    continue  # stays 0
                acc = parts[0]
                for part in parts[1:]:
                    acc = acc + part
                gas[g][m] = np.broadcast_to(acc, shape)[m]

        # §6: −0.0 → +0.0 (the original adds eight per-driver accumulators), totals, zero rule
        co2, ch4, n2o = (gas[g] + F32(0) for g in ("CO2", "CH4", "N2O"))
        all_gases = (co2 + ch4) + n2o
        non_co2 = ch4 + n2o
        nonzero = all_gases != 0
        outs = [np.where(nonzero, x, F32(0)).astype(F32) for x in (all_gases, co2, non_co2, ch4, n2o)]
    return outs[0], outs[1], outs[2], outs[3], outs[4], node
