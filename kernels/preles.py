"""PRELES daily GPP, evapotranspiration and soil water: a numba kernel over pixels.

Implements ``/work/shared/spec/preles.md`` (cited below as "spec §n") from the text alone:
the 30-entry parameter vector (spec §3), the five carried states (spec §4, §5), the daily
algorithm in the spec's order (spec §6.1 gap filling, §6.2 temperature acclimation, §6.3
deciduous phenology, §6.4 GPP, §6.5 snow / interception / canopy storage, §6.6
evapotranspiration for ``etmodel`` 0 and 1, §6.7 water balance) and the outputs of spec §7.
Everything is IEEE float64 and compiled without ``fastmath``.

Layout and loop order (spec §8)
-------------------------------
Inputs are 2-D ``(n_days, n_pixels)`` arrays; any of them may be broadcast from
``(n_days, 1)`` (coarse weather shared by all pixels), ``(1, n_pixels)`` (e.g. fAPAR constant
in time) or ``(1, 1)``; the kernel reads a length-1 axis at index 0 (no copies), and
:func:`run_preles` passes all arrays C-contiguous and read-only so that numba compiles a single
signature whatever the input shapes. The compiled kernel loops over **pixels outside and days
inside**: the states, the 30 parameters and yesterday's inputs of one pixel stay in registers
for the whole time series, parameters are read once per pixel, and pixels never interact, so a
run is exactly independent of how the pixel axis is chunked. The strided reads of the weather
columns are served by the cache (a pixel's neighbours share its cache lines); the kernel is
bound by its 4–5 ``exp``/``log``/``pow`` calls per pixel-day, not by memory. Memory use is the
inputs plus the requested outputs only: daily outputs are allocated only when asked for;
otherwise the kernel accumulates sums per caller-chosen period, shape ``(n_periods, n_pixels)``.
Measured on one core (365 days x 20 000 pixels) this was 5–10 % faster than a days-outside /
pixels-inside loop, which reloads parameters and states every pixel-day, and gave identical
numbers (see ``docs/preles.md``).

Restarting (spec §8)
--------------------
A run starts from a ``(10, n_pixels)`` state array (:data:`STATE_NAMES`): the five model states
``SW, CW, SOG, S, PhenoS`` and yesterday's gap-filled inputs ``PAR, TAir, VPD, Precip, CO2``
(needed by the gap-filling rules of spec §6.1). ``NaN`` for yesterday's inputs means "no
yesterday", i.e. the day-0 rules of spec §6.1 apply, which is what the reference does at the
start of every call. The end states are returned, so running two years in one call gives
bit-identical results to running one year and continuing from its end states.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numba import njit, prange

__all__ = [
    "DEFAULT_PARAMS",
    "ETMODELS",
    "HYYTIALA_PARAMS",
    "N_PARAMS",
    "OUTPUT_NAMES",
    "PARAM_NAMES",
    "STATE_NAMES",
    "PrelesResult",
    "check_params",
    "initial_states",
    "preles_kernel",
    "run_preles",
    "states_from_mapping",
]

N_PARAMS = 30

#: Parameter names in spec §3 order (index = spec number − 1), ASCII transliterations.
PARAM_NAMES: tuple[str, ...] = (
    "soildepth",  # 1  mm
    "thetaFC",  # 2  m3 m-3
    "thetaPWP",  # 3  m3 m-3
    "tau_drain",  # 4  d
    "beta",  # 5  g C mol-1
    "tau",  # 6  d
    "S0",  # 7  degC
    "S_max",  # 8  degC
    "kappa",  # 9  kPa-1
    "gamma",  # 10 m2 d mol-1
    "rho_P",  # 11 REW
    "b_CO2",  # 12 -
    "x_CO2",  # 13 -
    "beta_E",  # 14 mm (g C)-1 kPa^(kappa_E-1)
    "kappa_E",  # 15 -
    "chi",  # 16 mm mol-1
    "rho_E",  # 17 REW
    "nu",  # 18 -
    "MeltCoef",  # 19 mm degC-1 d-1
    "I0",  # 20 -
    "CW_max",  # 21 mm
    "SnowThreshold",  # 22 degC (ignored, fixed to 0)
    "T0",  # 23 degC (ignored, fixed to 0)
    "SW_init",  # 24 mm
    "CW_init",  # 25 mm
    "SOG_init",  # 26 mm
    "S_init",  # 27 degC
    "t0",  # 28 DOY (< -998: evergreen)
    "T_crit",  # 29 degC
    "Tsum_crit",  # 30 degC d
)

#: Spec §3 default column (multi-site calibration, R ``control = 0``).
DEFAULT_PARAMS = np.array(
    [413.0, 0.450, 0.118, 3.0, 0.7457, 10.93, -3.063, 17.72, -0.1027, 0.03673,
     0.7779, 0.500, -0.364, 0.2715, 0.8351, 0.07348, 0.9996, 0.4428, 1.2, 0.33,
     4.970496, 0.0, 0.0, 160.0, 0.0, 0.0, 20.0, -999.0, -999.0, -999.0],
    dtype=np.float64,
)  # fmt: skip

#: Spec §3 Hyytiälä 2015 column (Peltoniemi et al. 2015a, R ``control = 1``, etmodel 1).
HYYTIALA_PARAMS = np.array(
    [413.0, 0.450, 0.118, 3.0, 0.748464, 12.74915, -3.566967, 18.4513, -0.136732, 0.033942,
     0.448975, 0.500, -0.364, 0.33271, 0.857291, 0.041781, 0.474173, 0.278332, 1.5, 0.33,
     4.824704, 0.0, 0.0, 180.0, 0.0, 0.0, 10.0, -999.0, -999.0, -999.0],
    dtype=np.float64,
)  # fmt: skip

#: Rows of the state array (spec §4 states, then yesterday's gap-filled inputs, spec §6.1).
STATE_NAMES: tuple[str, ...] = (
    "SW", "CW", "SOG", "S", "PhenoS", "PAR_prev", "TAir_prev", "VPD_prev", "Precip_prev", "CO2_prev",
)  # fmt: skip

#: Daily quantities the kernel can return or sum (spec §7 names; ``fD`` is min(fD, fW) and
#: ``fE`` is the evaporation soil-water modifier fWE, as in the reference's outputs).
OUTPUT_NAMES: tuple[str, ...] = (
    "GPP", "ET", "SW", "SOG", "Canopywater", "S", "fS", "fD", "fW", "fE",
    "Throughfall", "Interception", "Snowmelt", "Drainage", "transp", "evap", "fAPAR",
)  # fmt: skip

#: Supported ``etmodel`` values (spec §6.6; −1 and 2 are uncalibrated legacy variants).
ETMODELS = (0, 1)

_N_OUT = len(OUTPUT_NAMES)
_N_STATE = len(STATE_NAMES)

# Physical constants of spec §6.6.
_CP = 1003.5  # J kg-1 K-1
_PATM = 101300.0  # Pa


@njit(cache=True)
def _run_pixel(j, PAR, TAir, VPD, Precip, CO2, fAPAR, doy, params, etmodel, states,
               period, daily_vars, daily_out, sum_vars, sum_out):  # fmt: skip
    """Run pixel ``j`` through all days (spec §6), updating ``states[:, j]`` in place."""
    n_days = period.shape[0]
    p = params[j if params.shape[0] > 1 else 0]
    # Broadcasting: an input with 1 row (column) is reused for every day (pixel).
    rP, cP = (1 if PAR.shape[0] > 1 else 0), (j if PAR.shape[1] > 1 else 0)
    rT, cT = (1 if TAir.shape[0] > 1 else 0), (j if TAir.shape[1] > 1 else 0)
    rV, cV = (1 if VPD.shape[0] > 1 else 0), (j if VPD.shape[1] > 1 else 0)
    rR, cR = (1 if Precip.shape[0] > 1 else 0), (j if Precip.shape[1] > 1 else 0)
    rC, cC = (1 if CO2.shape[0] > 1 else 0), (j if CO2.shape[1] > 1 else 0)
    rF, cF = (1 if fAPAR.shape[0] > 1 else 0), (j if fAPAR.shape[1] > 1 else 0)
    soildepth = p[0]
    theta_fc = p[1]
    theta_pwp = p[2]
    tau_drain = p[3]
    beta = p[4]
    tau = p[5]
    s0 = p[6]
    s_max = p[7]
    kappa = p[8]
    gamma = p[9]
    rho_p = p[10]
    b_co2 = p[11]
    x_co2 = p[12]
    beta_e = p[13]
    kappa_e = p[14]
    chi = p[15]
    rho_e = p[16]
    nu = p[17]
    melt_coef = p[18]
    i0 = p[19]
    cw_max = p[20]
    # p[21], p[22]: SnowThreshold and T0 are ignored, both fixed to 0 degC (spec §3, §6.5).
    # p[23:27]: initial states, already in ``states`` (spec §5).
    pheno_t0 = p[27]
    t_crit = p[28]
    tsum_crit = p[29]
    phenology = pheno_t0 >= -998.0
    fc_mm = theta_fc * soildepth

    SW = states[0, j]
    CW = states[1, j]
    SOG = states[2, j]
    S = states[3, j]
    PhenoS = states[4, j]
    par_y = states[5, j]
    tair_y = states[6, j]
    vpd_y = states[7, j]
    prec_y = states[8, j]
    co2_y = states[9, j]

    n_daily = daily_vars.shape[0]
    n_sum = sum_vars.shape[0]
    vals = np.empty(_N_OUT)

    for t in range(n_days):
        # ---- spec §6.1 gap filling (NaN is treated like the sentinel) ----
        par = PAR[t * rP, cP]
        if not par >= -900.0:
            par = 5.0 if math.isnan(par_y) else par_y
        tair = TAir[t * rT, cT]
        if not tair >= -900.0:
            tair = 0.0 if math.isnan(tair_y) else tair_y
        vpd = VPD[t * rV, cV]
        if not (vpd >= 0.0 and vpd <= 6.0):
            vpd = 0.5 if math.isnan(vpd_y) else vpd_y
        prec = Precip[t * rR, cR]
        if not prec >= 0.0:
            prec = 0.0 if math.isnan(prec_y) else 0.3 * prec_y
        co2 = CO2[t * rC, cC]
        if math.isnan(co2_y):
            if not co2 >= 0.1:
                co2 = 380.0
        elif not co2 > 0.0:  # reference: CO2 < 0; guard CO2 == 0 (ln 0) too
            co2 = co2_y
        par_y = par
        tair_y = tair
        vpd_y = vpd
        prec_y = prec
        co2_y = co2

        # ---- spec §6.2 temperature acclimation ----
        S = S + (tair - S) / tau
        fS = min(1.0, max(0.0, S - s0) / s_max)

        # ---- spec §6.3 deciduous phenology ----
        fapar = fAPAR[t * rF, cF]
        if phenology:
            d = doy[t]
            in_window = d > pheno_t0 - 0.5 and d < 213
            PhenoS = PhenoS + max(0.0, tair - t_crit) if in_window else 0.0
            f_pheno = 1.0 if PhenoS > tsum_crit - 0.005 else 0.0
            if d > 212:
                f_pheno = fS * fS
                if f_pheno < 0.5:
                    f_pheno = 0.0
            fapar = fapar * f_pheno

        # ---- spec §6.4 GPP (start-of-day SW) ----
        rew = (SW / soildepth - theta_pwp) / (theta_fc - theta_pwp)
        fD = min(1.0, math.exp(kappa * vpd))
        if rho_p < -998.0:
            fW = 1.0
        elif rew < rho_p:
            fW = rew / rho_p if rew > 0.01 else 0.0
        else:
            fW = 1.0
        fL = 1.0 / (gamma * par + 1.0)
        fE = min(fD, fW)
        gpp380 = beta * par * fapar * fS * fL * fE
        ln_co2 = math.log(co2 / 380.0)
        fco2 = 1.0 + b_co2 * ln_co2
        gpp = gpp380 * fco2

        # ---- spec §6.5 snow, rain, interception, canopy storage (thresholds 0 degC) ----
        if tair < 0.0:
            new_snow = prec
            rain = 0.0
        else:
            new_snow = 0.0
            rain = prec
        melt = melt_coef * tair if tair > 0.0 else 0.0
        if SOG + new_snow - melt < 0.0:
            melt = SOG + new_snow
            SOG = 0.0
        else:
            SOG = SOG + new_snow - melt
        intercepted = rain * i0 * fapar / 0.75 if tair > 0.0 else 0.0
        throughfall = rain - intercepted
        cap = cw_max * fapar
        if cw_max <= 1e-8:
            throughfall = throughfall + intercepted
        elif intercepted + CW > cap:
            throughfall = throughfall + intercepted + CW - cap
            CW = cap
        else:
            CW = CW + intercepted

        # ---- spec §6.6 evapotranspiration ----
        if rho_e < -998.0:
            fWE = 1.0
        elif rew < rho_e:
            fWE = rew / rho_e if rew > 0.01 else 0.0
        else:
            fWE = 1.0
        if CW > 1e-8:
            fWE = 1.0
        fco2_e = 1.0 + x_co2 * ln_co2
        dd = max(vpd, 0.01)
        # fW**nu is skipped when fW == 1 (pow(1, nu) == 1 exactly): a pure speed-up.
        fw_nu = 1.0 if fW == 1.0 else fW**nu
        transp = beta_e * gpp380 * (dd * dd ** (-kappa_e)) * fw_nu * fco2_e
        if etmodel == 0:
            # Priestley-Taylor weight w = s / (s + gamma_p), only needed here.
            lam = 1000.0 * (2500.79 - 2.36418 * tair + 0.00158927 * tair * tair
                            - 0.0000614342 * tair * tair * tair)  # fmt: skip
            gamma_p = _CP * _PATM / (lam * 0.622)
            tk = tair + 237.3
            es = 0.6109 * math.exp(17.27 * tair / tk)
            slope = 1000.0 * 4098.0 * es / (tk * tk)
            w = slope / (slope + gamma_p)
            evap = chi * w * (1.0 - fapar) * fWE * par
        else:  # etmodel 1
            evap = chi * (1.0 - fapar) * fWE * par
        et = transp + evap

        # ---- spec §6.7 water balance ----
        if cw_max > 1e-8:
            if CW + SOG - et > 0.0:
                if CW - et > 0.0:
                    CW = CW - et
                elif CW - et < 0.0:
                    SOG = SOG + CW - et
                    CW = 0.0
                soil_et = 0.0
            else:
                soil_et = et - CW - SOG
                CW = 0.0
                SOG = 0.0
        elif SOG - et > 0.0:
            SOG = SOG - et
            soil_et = 0.0
        elif SOG - et < 0.0:
            soil_et = et - SOG
            SOG = 0.0
        else:
            SOG = 0.0
            soil_et = 0.0
        W = SW + throughfall + melt - soil_et
        if W <= 0.0:
            W = 0.0001
        excess = W - fc_mm
        drainage = excess / tau_drain if excess > 0.0 else 0.0
        SW = W - drainage

        # ---- spec §6.8 / §7 outputs ----
        if n_daily > 0 or n_sum > 0:
            vals[0] = gpp
            vals[1] = et
            vals[2] = SW
            vals[3] = SOG
            vals[4] = CW
            vals[5] = S
            vals[6] = fS
            vals[7] = fE
            vals[8] = fW
            vals[9] = fWE
            vals[10] = throughfall
            vals[11] = intercepted
            vals[12] = melt
            vals[13] = drainage
            vals[14] = transp
            vals[15] = evap
            vals[16] = fapar
            for k in range(n_daily):
                daily_out[k, t, j] = vals[daily_vars[k]]
            ip = period[t]
            if ip >= 0:
                for k in range(n_sum):
                    sum_out[k, ip, j] += vals[sum_vars[k]]

    states[0, j] = SW
    states[1, j] = CW
    states[2, j] = SOG
    states[3, j] = S
    states[4, j] = PhenoS
    states[5, j] = par_y
    states[6, j] = tair_y
    states[7, j] = vpd_y
    states[8, j] = prec_y
    states[9, j] = co2_y


@njit(cache=True)
def preles_kernel(PAR, TAir, VPD, Precip, CO2, fAPAR, doy, params, etmodel, states,
                  period, daily_vars, daily_out, sum_vars, sum_out):  # fmt: skip
    """Run PRELES (spec §6) for all pixels, serially; low-level, no argument checking.

    Use :func:`run_preles` unless you need to call the compiled kernel yourself (e.g. from
    another numba function).

    Parameters
    ----------
    PAR, TAir, VPD, Precip, CO2, fAPAR : ndarray of float64, 2-D
        Daily weather and fAPAR in spec §1 units (mol m-2 d-1, degC, kPa, mm d-1, ppm, 0..1),
        each of shape (n_days or 1, n_pixels or 1): a length-1 axis is broadcast. Sentinels
        and NaN are gap-filled (spec §6.1).
    doy : ndarray of int64, shape (n_days,)
        Day of year, used only by the phenology (spec §6.3).
    params : ndarray of float64, shape (n_pixels or 1, 30)
        Spec §3 parameters, one row per pixel or one row for all.
    etmodel : int
        0 or 1 (spec §6.6). Any other value is treated as 1: check it beforehand.
    states : ndarray of float64, shape (10, n_pixels)
        :data:`STATE_NAMES`; updated in place to the end-of-run states.
    period : ndarray of int64, shape (n_days,)
        Period index of each day for the sums; negative = not summed. Its length sets n_days
        (and ``states`` sets n_pixels).
    daily_vars : ndarray of int64, shape (n_daily,)
        Indices into :data:`OUTPUT_NAMES` of the daily outputs to record.
    daily_out : ndarray of float64, shape (n_daily, n_days, n_pixels)
        Receives the daily outputs.
    sum_vars : ndarray of int64, shape (n_sum,)
        Indices into :data:`OUTPUT_NAMES` of the quantities to sum per period.
    sum_out : ndarray of float64, shape (n_sum, n_periods, n_pixels)
        Sums are *added* to it (initialise with zeros).
    """
    for j in range(states.shape[1]):
        _run_pixel(j, PAR, TAir, VPD, Precip, CO2, fAPAR, doy, params, etmodel, states,
                   period, daily_vars, daily_out, sum_vars, sum_out)  # fmt: skip


@njit(cache=True, parallel=True)
def _preles_kernel_parallel(PAR, TAir, VPD, Precip, CO2, fAPAR, doy, params, etmodel, states,
                            period, daily_vars, daily_out, sum_vars, sum_out):  # fmt: skip
    """:func:`preles_kernel` with the pixel loop spread over numba threads (``prange``)."""
    for jj in prange(states.shape[1]):
        j = np.int64(jj)  # prange's index is unsigned; int64 keeps one _run_pixel signature
        _run_pixel(j, PAR, TAir, VPD, Precip, CO2, fAPAR, doy, params, etmodel, states,
                   period, daily_vars, daily_out, sum_vars, sum_out)  # fmt: skip


class PrelesResult(NamedTuple):
    """What :func:`run_preles` returns.

    Attributes
    ----------
    daily : dict of str to ndarray (n_days, n_pixels), or None
        Requested daily outputs (spec §7), keyed by :data:`OUTPUT_NAMES`.
    sums : dict of str to ndarray (n_periods, n_pixels), or None
        Per-period sums of the requested outputs (GPP in g C m-2, ET in mm per period).
    states : ndarray of float64, shape (10, n_pixels)
        End-of-run states (:data:`STATE_NAMES`); pass them as ``states`` to continue the run.
    """

    daily: dict[str, np.ndarray] | None
    sums: dict[str, np.ndarray] | None
    states: np.ndarray


def _as_params(params: np.ndarray | Sequence[float]) -> np.ndarray:
    p = np.asarray(params, dtype=np.float64)
    if p.ndim == 1:
        p = p[np.newaxis, :]
    if p.ndim != 2 or p.shape[1] != N_PARAMS:
        raise ValueError(
            f"params must have shape (30,) or (n_pixels, 30) (spec §3 order); got {np.shape(params)}"
        )
    return p


def check_params(params: np.ndarray | Sequence[float]) -> None:
    """Raise ``ValueError`` if a parameter vector is unusable (spec §8 guards).

    Checks: all finite; soildepth > 0, θFC > θPWP, τ_drain > 0, τ > 0, S_max > 0,
    CW_max ≥ 0, and the phenology parameters 29–30 finite when phenology is on (spec §6.3).

    Parameters
    ----------
    params : array_like, shape (30,) or (n_pixels, 30)
    """
    p = _as_params(params)
    bad_cols = [PARAM_NAMES[k] for k in range(N_PARAMS) if not np.isfinite(p[:, k]).all()]
    if bad_cols:
        raise ValueError(f"PRELES parameters must be finite (use -999 to switch off); not finite: {bad_cols}")
    checks = [
        (p[:, 0] > 0, "soildepth (1) must be > 0"),
        (p[:, 1] > p[:, 2], "thetaFC (2) must be > thetaPWP (3)"),
        (p[:, 3] > 0, "tau_drain (4) must be > 0 (1 = drain all excess the same day)"),
        (p[:, 5] > 0, "tau (6) must be > 0"),
        (p[:, 7] > 0, "S_max (8) must be > 0"),
        (p[:, 20] >= 0, "CW_max (21) must be >= 0"),
    ]
    for ok, msg in checks:
        if not ok.all():
            n_bad = int((~ok).sum())
            raise ValueError(f"invalid PRELES parameters: {msg} ({n_bad} parameter row(s) violate it)")


def initial_states(params: np.ndarray | Sequence[float], n_pixels: int | None = None) -> np.ndarray:
    """Initial state array from parameters 24–27 (spec §5).

    Parameters
    ----------
    params : array_like, shape (30,) or (n_pixels, 30)
    n_pixels : int, optional
        Number of pixels; default: the number of parameter rows.

    Returns
    -------
    ndarray of float64, shape (10, n_pixels)
        ``SW, CW, SOG, S`` from parameters 24–27 (mm, mm, mm, degC), ``PhenoS = 0`` and
        yesterday's inputs ``NaN`` ("no yesterday": the day-0 gap rules of spec §6.1 apply).
    """
    p = _as_params(params)
    if n_pixels is None:
        n_pixels = p.shape[0]
    p = np.broadcast_to(p, (n_pixels, N_PARAMS))
    st = np.full((_N_STATE, n_pixels), np.nan)
    st[0:4] = p[:, 23:27].T
    st[4] = 0.0
    return st


def _readonly_c(a: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(a, dtype=np.float64).view()
    v.flags.writeable = False
    return v


def _names_to_idx(names: Sequence[str], what: str) -> np.ndarray:
    idx = []
    for name in names:
        if name not in OUTPUT_NAMES:
            raise ValueError(f"unknown PRELES {what} output {name!r}; choose from {', '.join(OUTPUT_NAMES)}")
        idx.append(OUTPUT_NAMES.index(name))
    return np.asarray(idx, dtype=np.int64)


def run_preles(
    PAR: np.ndarray,
    TAir: np.ndarray,
    VPD: np.ndarray,
    Precip: np.ndarray,
    CO2: np.ndarray,
    fAPAR: np.ndarray,
    params: np.ndarray | Sequence[float] = DEFAULT_PARAMS,
    *,
    etmodel: int = 0,
    doy: np.ndarray | None = None,
    states: np.ndarray | None = None,
    period: np.ndarray | None = None,
    n_periods: int | None = None,
    daily: bool | Sequence[str] = False,
    sums: Sequence[str] = ("GPP", "ET"),
    parallel: bool = False,
) -> PrelesResult:
    """Run PRELES (spec §6) on numpy arrays for many pixels at once.

    Parameters
    ----------
    PAR : array_like, shape (n_days, n_pixels), (n_days, 1) or (n_days,)
        Daily PAR sum above the canopy, mol m-2 d-1 (spec §1). Values < -900 or NaN are missing.
    TAir : array_like, same shapes
        Daily mean air temperature, degC. Values < -900 or NaN are missing.
    VPD : array_like, same shapes
        Daily mean vapour-pressure deficit, kPa. Values outside [0, 6] or NaN are missing.
    Precip : array_like, same shapes
        Daily precipitation, mm d-1. Negative or NaN is missing.
    CO2 : array_like, same shapes
        Atmospheric CO2, ppm. Negative or NaN is missing (also < 0.1 on a run's first day,
        and 0 on later days, which the reference would turn into ln 0).
    fAPAR : array_like, shape (n_days, n_pixels), (n_days, 1), (1, n_pixels) or (n_days,)
        Fraction of PAR absorbed, 0..1; never gap-filled (spec §6.1).
    params : array_like, shape (30,) or (n_pixels, 30)
        Spec §3 parameters in spec order; default :data:`DEFAULT_PARAMS`.
    etmodel : {0, 1}
        ET equation (spec §6.6): 0 = Priestley–Taylor-weighted evaporation (default, the one
        :data:`DEFAULT_PARAMS` were calibrated for), 1 = unweighted (:data:`HYYTIALA_PARAMS`).
    doy : array_like of int, shape (n_days,), optional
        Day of year (spec §2), used only when phenology is on (parameter 28 >= -998).
        Default: 1…365 repeating from the first day, as the R wrapper does.
    states : array_like, shape (10, n_pixels) or (10,), optional
        Start states (:data:`STATE_NAMES`), e.g. ``result.states`` of the previous run.
        Default: :func:`initial_states` (parameters 24–27, no yesterday).
    period : array_like of int, shape (n_days,), optional
        Period index of each day for the sums (e.g. year − first year); negative = skip.
        Default: all days in period 0.
    n_periods : int, optional
        Number of periods; default ``period.max() + 1``.
    daily : bool or sequence of str
        ``True`` returns every daily output of :data:`OUTPUT_NAMES` (spec §7); a sequence
        returns those; ``False`` (default) returns none (memory: 8 bytes per pixel-day each).
    sums : sequence of str
        Outputs to sum per period (default GPP, g C m-2, and ET, mm). Empty for none.
    parallel : bool
        Spread pixels over numba threads. Leave False inside dask workers that already run
        one task per core.

    Returns
    -------
    PrelesResult
        ``daily`` (dict of (n_days, n_pixels) arrays or None), ``sums`` (dict of
        (n_periods, n_pixels) arrays or None) and end ``states`` (10, n_pixels).

    Raises
    ------
    ValueError
        Bad shapes, parameters (see :func:`check_params`), etmodel or period indices.
    """
    if etmodel not in ETMODELS:
        raise ValueError(
            f"etmodel must be 0 or 1 (spec §6.6; -1 and 2 are uncalibrated legacy variants), got {etmodel!r}"
        )
    check_params(params)
    p = _as_params(params)

    arrays = {}
    for name, a in (("PAR", PAR), ("TAir", TAir), ("VPD", VPD), ("Precip", Precip), ("CO2", CO2),
                    ("fAPAR", fAPAR)):  # fmt: skip
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 1:
            a = a[:, np.newaxis]
        if a.ndim != 2:
            raise ValueError(f"{name} must be 1-D (n_days,) or 2-D (n_days, n_pixels); got shape {a.shape}")
        arrays[name] = a
    n_days = max(a.shape[0] for a in arrays.values())
    cand = [a.shape[1] for a in arrays.values()] + [p.shape[0]]
    if states is not None:
        states = np.asarray(states, dtype=np.float64)
        if states.ndim == 1:
            states = states[:, np.newaxis]
        if states.ndim != 2 or states.shape[0] != _N_STATE:
            raise ValueError(
                f"states must have shape (10,) or (10, n_pixels) ({STATE_NAMES}); got {states.shape}"
            )
        cand.append(states.shape[1])
    n_pixels = max(cand)
    bad = [k for k, a in arrays.items() if a.shape[0] not in (1, n_days) or a.shape[1] not in (1, n_pixels)]
    if p.shape[0] not in (1, n_pixels) or (states is not None and states.shape[1] not in (1, n_pixels)):
        bad.append("params/states")
    if bad:
        shapes = {k: a.shape for k, a in arrays.items()}
        raise ValueError(
            f"PRELES inputs do not broadcast to (n_days, n_pixels) = ({n_days}, {n_pixels}): {shapes}, "
            f"params {p.shape}" + ("" if states is None else f", states {states.shape}")
        )
    # Canonical argument types (C-contiguous, read-only) so that numba compiles one signature.
    for name, a in arrays.items():
        arrays[name] = _readonly_c(a)
    pp = _readonly_c(p)
    if states is None:
        st = initial_states(p, n_pixels)
    else:
        st = np.array(np.broadcast_to(states, (_N_STATE, n_pixels)), dtype=np.float64, order="C")

    if doy is None:
        doy_a = (np.arange(n_days, dtype=np.int64) % 365) + 1
    else:
        doy_a = np.asarray(doy)
        if doy_a.shape != (n_days,):
            raise ValueError(f"doy must have shape ({n_days},), got {doy_a.shape}")
        doy_a = np.array(doy_a, dtype=np.int64)  # a private copy: one numba signature

    if period is None:
        period_a = np.zeros(n_days, dtype=np.int64)
    else:
        period_a = np.asarray(period)
        if period_a.shape != (n_days,) or not np.issubdtype(period_a.dtype, np.integer):
            raise ValueError(f"period must be an integer array of shape ({n_days},)")
        period_a = np.array(period_a, dtype=np.int64)
    if n_periods is None:
        n_periods = int(period_a.max()) + 1 if n_days else 0
    if n_days and period_a.max() >= n_periods:
        raise ValueError(f"period index {int(period_a.max())} >= n_periods = {n_periods}")

    if daily is True:
        daily_names: Sequence[str] = OUTPUT_NAMES
    elif daily is False:
        daily_names = ()
    else:
        daily_names = tuple(daily)
    daily_idx = _names_to_idx(daily_names, "daily")
    sum_names = tuple(sums)
    sum_idx = _names_to_idx(sum_names, "summed")
    daily_out = np.empty((len(daily_idx), n_days, n_pixels))
    sum_out = np.zeros((len(sum_idx), n_periods, n_pixels))

    kernel = _preles_kernel_parallel if parallel else preles_kernel
    kernel(arrays["PAR"], arrays["TAir"], arrays["VPD"], arrays["Precip"], arrays["CO2"], arrays["fAPAR"],
           doy_a, pp, int(etmodel), st, period_a, daily_idx, daily_out, sum_idx, sum_out)  # fmt: skip

    return PrelesResult(
        daily={n: daily_out[k] for k, n in enumerate(daily_names)} if daily_names else None,
        sums={n: sum_out[k] for k, n in enumerate(sum_names)} if sum_names else None,
        states=st,
    )


def states_from_mapping(values: Mapping[str, float], params: np.ndarray | Sequence[float]) -> np.ndarray:
    """A (10,) state vector: :func:`initial_states` of ``params`` overridden by ``values``.

    Parameters
    ----------
    values : mapping of str to float
        Keys from :data:`STATE_NAMES` (e.g. ``{"SW": 180.0, "S": 0.0}``).
    params : array_like, shape (30,)
    """
    st = initial_states(params, 1)[:, 0]
    for k, v in values.items():
        if k not in STATE_NAMES:
            raise ValueError(f"unknown PRELES state {k!r}; known states: {', '.join(STATE_NAMES)}")
        st[STATE_NAMES.index(k)] = float(v)
    return st
