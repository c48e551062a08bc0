"""PRELES for one site: a pandas front end to :mod:`fluxgraph.kernels.preles`.

:func:`run_site` runs PRELES (``/work/shared/spec/preles.md``, "spec §n" below) on a daily
weather table and returns every daily output of spec §7. :func:`synthetic_weather` makes a
plausible boreal (Hyytiälä-like) daily weather series for tests and demonstrations.
See ``docs/preles.md`` for usage, the parameter table and how to feed station or ERA5 data.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from fluxgraph.errors import PrelesInputError
from fluxgraph.kernels.preles import (
    DEFAULT_PARAMS,
    ETMODELS,
    HYYTIALA_PARAMS,
    N_PARAMS,
    PARAM_NAMES,
    STATE_NAMES,
    check_params,
    initial_states,
    run_preles,
)

__all__ = [
    "BIRCH_PARAMS",
    "OUTPUT_COLUMNS",
    "PHENOLOGY_DEFAULTS",
    "WEATHER_COLUMNS",
    "param_number",
    "resolve_params",
    "run_site",
    "synthetic_weather",
]

#: Required weather columns (spec §2, units spec §1); ``DOY`` is optional.
WEATHER_COLUMNS = ("PAR", "TAir", "VPD", "Precip", "CO2", "fAPAR")

#: Columns of :func:`run_site`'s result, in order (spec §7 names).
OUTPUT_COLUMNS = (
    "GPP", "ET", "SW", "SOG", "Canopywater", "S", "fS", "fD", "fW", "fE",
    "Throughfall", "Interception", "Snowmelt", "Drainage", "transp", "evap", "fAPAR",
)  # fmt: skip

#: Budburst parameters 28–30 used by ``deciduous=True`` when not given (spec §3 birch
#: example, Linkosalo et al.): t0 = DOY 57, T_crit = 1.5 °C, Tsum_crit = 134 °C d.
PHENOLOGY_DEFAULTS = {28: 57.0, 29: 1.5, 30: 134.0}

#: The spec §3 deciduous (birch) example: changes to the multi-site defaults (etmodel 0).
BIRCH_PARAMS: dict[str, float] = {
    "soildepth": 700.0,
    "thetaFC": 0.45,
    "thetaPWP": 0.05,
    "beta": 0.94,
    "kappa": -0.4,
    "SW_init": 700.0 * (0.45 - 0.05),
    "CW_init": 0.0,
    "SOG_init": 0.0,
    "S_init": 0.0,
    "t0": 57.0,
    "T_crit": 1.5,
    "Tsum_crit": 134.0,
}

# Other accepted names per parameter number: the spec §3 symbols (Greek, subscripts) and the
# spec's descriptive aliases. Matching ignores spaces, "_" and "-" and applies NFKC (S₀ = S0);
# it is case-sensitive first (t0 = 28 vs T0 = 23), then case-insensitive if unambiguous.
_ALIASES: dict[int, tuple[str, ...]] = {
    2: ("θFC",),
    3: ("θPWP",),
    4: ("τ_drain",),
    5: ("β", "β (LUE)", "LUE"),
    6: ("τ",),
    7: ("S₀",),
    9: ("κ",),
    10: ("γ",),
    11: ("ρ_P", "soilthres GPP", "soilthres"),
    14: ("β_E",),
    15: ("κ_E",),
    16: ("χ",),
    17: ("ρ_E", "soilthres ET"),
    18: ("ν",),
    20: ("I₀",),
    23: ("T₀",),
    28: ("t₀",),
}


def _norm(name: str) -> str:
    s = unicodedata.normalize("NFKC", name)
    return "".join(ch for ch in s if ch not in " _-\t")


_NAME_TO_NUMBER: dict[str, int] = {}
for _k, _name in enumerate(PARAM_NAMES, start=1):
    _NAME_TO_NUMBER[_norm(_name)] = _k
    for _alias in _ALIASES.get(_k, ()):
        _NAME_TO_NUMBER[_norm(_alias)] = _k


def param_number(key: str | int) -> int:
    """The 1-based spec §3 number of a parameter given by number or name.

    Parameters
    ----------
    key : int or str
        1…30, a digit string, an ASCII name of :data:`fluxgraph.kernels.preles.PARAM_NAMES`
        (``"beta"``, ``"S_max"``, ``"rho_P"``…) or a spec symbol (``"β"``, ``"S₀"``, ``"θFC"``).

    Raises
    ------
    PrelesInputError
        Unknown name or number out of range.
    """
    if isinstance(key, bool):
        raise PrelesInputError(f"PRELES parameter key must be a number 1..30 or a name, got {key!r}")
    if isinstance(key, int | np.integer):
        if 1 <= int(key) <= N_PARAMS:
            return int(key)
        raise PrelesInputError(f"PRELES parameter number {int(key)} is out of range 1..30 (spec §3)")
    if not isinstance(key, str):
        raise PrelesInputError(f"PRELES parameter key must be a number 1..30 or a name, got {key!r}")
    s = key.strip()
    if s.isdigit():
        return param_number(int(s))
    n = _norm(s)
    if n in _NAME_TO_NUMBER:
        return _NAME_TO_NUMBER[n]
    hits = {v for k, v in _NAME_TO_NUMBER.items() if k.lower() == n.lower()}
    if len(hits) == 1:
        return hits.pop()
    known = ", ".join(f"{i}={nm}" for i, nm in enumerate(PARAM_NAMES, start=1))
    raise PrelesInputError(f"unknown PRELES parameter {key!r}; use a number 1..30 or a name: {known}")


def resolve_params(
    params: Mapping[str | int, float] | None = None,
    *,
    etmodel: int = 0,
    deciduous: bool | None = None,
    defaults: Literal["multisite", "hyytiala"] | None = None,
) -> np.ndarray:
    """The full 30-parameter vector (spec §3 order) for a site run.

    Parameters
    ----------
    params : mapping of (name or 1-based number) to float, optional
        Parameters to set; every other one takes the default.
    etmodel : {0, 1}
        Chooses the defaults when ``defaults`` is None, as the R wrapper's ``control`` does
        (spec §2): 0 → multi-site set, 1 → Hyytiälä 2015 set.
    deciduous : bool or None
        None: phenology as parameter 28 says (default −999 = evergreen). True: phenology on;
        parameters 28–30 not given take :data:`PHENOLOGY_DEFAULTS`. False: phenology off
        (parameter 28 = −999), like the R wrapper's ``pft = "evergreen"``.
    defaults : {"multisite", "hyytiala"}, optional
        Default column of spec §3 to start from.

    Raises
    ------
    PrelesInputError
        Unknown parameter, non-numeric or non-finite value, conflicting phenology settings,
        or a parameter set failing the spec §8 guards.
    """
    if defaults is None:
        defaults = "hyytiala" if etmodel == 1 else "multisite"
    if defaults == "multisite":
        p = DEFAULT_PARAMS.copy()
    elif defaults == "hyytiala":
        p = HYYTIALA_PARAMS.copy()
    else:
        raise PrelesInputError(f"defaults must be 'multisite' or 'hyytiala', got {defaults!r}")
    given: dict[int, float] = {}
    for key, value in (params or {}).items():
        k = param_number(key)
        if k in given:
            raise PrelesInputError(f"PRELES parameter {k} ({PARAM_NAMES[k - 1]}) is given twice (as {key!r})")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise PrelesInputError(f"PRELES parameter {key!r} must be a number, got {value!r}") from None
        if not math.isfinite(v):
            raise PrelesInputError(
                f"PRELES parameter {key!r} must be finite (use -999 to switch off), got {v}"
            )
        given[k] = v
    for k, v in given.items():
        p[k - 1] = v
    if deciduous is True:
        if 28 in given and given[28] < -998:
            raise PrelesInputError("deciduous=True but parameter 28 (t0) < -998 switches phenology off")
        for k, v in PHENOLOGY_DEFAULTS.items():
            if k not in given:
                p[k - 1] = v
    elif deciduous is False:
        if 28 in given and given[28] >= -998:
            raise PrelesInputError(
                "deciduous=False but parameter 28 (t0) >= -998 switches phenology on; drop one of them"
            )
        p[27] = -999.0
    if p[27] >= -998 and not (p[28] >= -998 and p[29] >= -998):
        raise PrelesInputError(
            "phenology is on (parameter 28 t0 >= -998) but T_crit (29) or Tsum_crit (30) is unset"
        )
    try:
        check_params(p)
    except ValueError as exc:
        raise PrelesInputError(str(exc)) from None
    return p


def _states_vector(states: object, p: np.ndarray) -> np.ndarray:
    st = initial_states(p, 1)[:, 0]
    if states is None:
        return st
    if isinstance(states, Mapping):
        for k, v in states.items():
            if k not in STATE_NAMES:
                raise PrelesInputError(f"unknown PRELES state {k!r}; known states: {', '.join(STATE_NAMES)}")
            try:
                st[STATE_NAMES.index(k)] = float(v)
            except (TypeError, ValueError):
                raise PrelesInputError(f"PRELES state {k!r} must be a number, got {v!r}") from None
    else:
        a = np.asarray(states, dtype=np.float64).reshape(-1)
        if a.shape != (len(STATE_NAMES),):
            raise PrelesInputError(
                f"states must be a mapping or a vector of {len(STATE_NAMES)}: {STATE_NAMES}"
            )
        st = a.copy()
    for k in range(5):
        if not math.isfinite(st[k]):
            raise PrelesInputError(f"PRELES state {STATE_NAMES[k]} must be finite, got {st[k]}")
    return st


def _where(index: pd.Index, mask: np.ndarray) -> str:
    pos = np.flatnonzero(mask)
    first = index[pos[0]]
    return f"{len(pos)} row(s), first at {first!r}" if len(pos) > 1 else f"row {first!r}"


def _column(weather: pd.DataFrame, name: str) -> np.ndarray:
    try:
        return pd.to_numeric(weather[name], errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise PrelesInputError(f"weather column {name!r} must be numeric: {exc}") from None


def run_site(
    weather: pd.DataFrame,
    *,
    etmodel: int = 0,
    params: Mapping[str | int, float] | None = None,
    states: Mapping[str, float] | np.ndarray | None = None,
    deciduous: bool | None = None,
    defaults: Literal["multisite", "hyytiala"] | None = None,
) -> pd.DataFrame:
    """Run PRELES for one site over a daily weather table (spec §6).

    Parameters
    ----------
    weather : pandas.DataFrame
        One row per consecutive day with columns ``PAR`` (mol m-2 d-1), ``TAir`` (°C),
        ``VPD`` (kPa), ``Precip`` (mm d-1), ``CO2`` (ppm) and ``fAPAR`` (0..1), and
        optionally ``DOY`` (spec §1–2). Missing values in PAR, TAir, VPD, Precip and CO2
        (NaN or the spec's sentinels, e.g. −999) are gap-filled by spec §6.1; fAPAR and DOY
        must be complete. DOY, if absent, comes from a DatetimeIndex, else 1…365 repeating
        (the R wrapper's rule); it matters only for deciduous phenology.
    etmodel : {0, 1}
        ET equation (spec §6.6). Also picks the default parameter column, as in the R wrapper:
        0 → multi-site set, 1 → Hyytiälä 2015 set (override with ``defaults``).
    params : mapping, optional
        Parameters by 1-based number (1…30) or name (``"beta"``, ``"β"``, ``"S_max"``…,
        see :func:`param_number`); unnamed ones take the defaults of spec §3.
    states : mapping or array, optional
        Start states: a mapping with keys of
        :data:`fluxgraph.kernels.preles.STATE_NAMES` (missing keys from parameters 24–27, no
        yesterday), or a full (10,) vector such as ``previous.attrs["end_states"]``. Given
        states override parameters 24–27.
    deciduous : bool or None
        Deciduous phenology (spec §6.3); see :func:`resolve_params`. None (default) follows
        parameter 28, whose default is −999 = evergreen.
    defaults : {"multisite", "hyytiala"}, optional
        Which spec §3 default column fills unnamed parameters (default: by ``etmodel``).

    Returns
    -------
    pandas.DataFrame
        Index of ``weather``; columns :data:`OUTPUT_COLUMNS`: GPP (g C m-2 d-1), ET (mm d-1),
        SW (end-of-day soil water, mm), SOG (snow, mm), Canopywater (mm), S (°C), the
        modifiers fS, fD (= min(fD, fW), the reference's naming), fW, fE (the evaporation
        soil-water modifier fWE), Throughfall, Interception, Snowmelt, Drainage, transp,
        evap (mm d-1) and the effective fAPAR. ``attrs`` holds ``end_states`` (a dict of the
        10 states, to continue with ``states=``), ``params`` (the 30 values used, by name),
        ``etmodel`` and ``gap_filled`` (count of filled values per column).

    Raises
    ------
    PrelesInputError
        Missing or non-numeric column, NaN or infinite value where not allowed, fAPAR outside
        [0, 1], bad DOY, unknown parameter name or number, invalid parameter value or state,
        or etmodel not 0 or 1.
    """
    if not isinstance(weather, pd.DataFrame):
        raise PrelesInputError(f"weather must be a pandas DataFrame, got {type(weather).__name__}")
    missing = [c for c in WEATHER_COLUMNS if c not in weather.columns]
    if missing:
        raise PrelesInputError(
            f"weather is missing column(s) {', '.join(missing)}; required: {', '.join(WEATHER_COLUMNS)} "
            f"(optional DOY); found: {', '.join(map(str, weather.columns))}"
        )
    if len(weather) == 0:
        raise PrelesInputError("weather has no rows")
    idx = weather.index
    if isinstance(idx, pd.DatetimeIndex) and len(idx) > 1:
        expected = pd.date_range(idx[0], periods=len(idx), freq="D")
        if not (idx == expected).all():
            raise PrelesInputError(
                "weather must have one row per consecutive day, but its DatetimeIndex is not daily and "
                "gap-free; insert missing days with weather.asfreq('D') (PAR, TAir, VPD, Precip and CO2 "
                "are then gap-filled; interpolate fAPAR)"
            )
    if isinstance(etmodel, bool) or etmodel not in ETMODELS:
        raise PrelesInputError(
            f"etmodel must be 0 or 1 (spec §6.6; -1 and 2 are uncalibrated legacy variants), got {etmodel!r}"
        )
    p = resolve_params(params, etmodel=etmodel, deciduous=deciduous, defaults=defaults)
    st = _states_vector(states, p)

    cols = {c: _column(weather, c) for c in WEATHER_COLUMNS}
    gap_filled = {}
    for c, a in cols.items():
        inf = np.isinf(a)
        if inf.any():
            raise PrelesInputError(f"weather column {c!r} has infinite values ({_where(weather.index, inf)})")
        if c != "fAPAR":
            gap_filled[c] = int(np.isnan(a).sum())
    fapar = cols["fAPAR"]
    bad = np.isnan(fapar)
    if bad.any():
        raise PrelesInputError(
            f"weather column 'fAPAR' has NaN ({_where(weather.index, bad)}); fAPAR is never gap-filled "
            "(spec §6.1): interpolate it first"
        )
    bad = (fapar < 0) | (fapar > 1)
    if bad.any():
        raise PrelesInputError(f"fAPAR must be within [0, 1] ({_where(weather.index, bad)})")

    if "DOY" in weather.columns:
        d = _column(weather, "DOY")
        bad = ~np.isfinite(d) | (d != np.round(d)) | (d < 1) | (d > 366)
        if bad.any():
            raise PrelesInputError(f"DOY must be whole numbers 1..366 ({_where(weather.index, bad)})")
        doy = d.astype(np.int64)
    elif isinstance(weather.index, pd.DatetimeIndex):
        doy = weather.index.day_of_year.to_numpy().astype(np.int64)
    else:
        doy = None  # kernel: 1..365 repeating

    res = run_preles(
        cols["PAR"], cols["TAir"], cols["VPD"], cols["Precip"], cols["CO2"], fapar, p,
        etmodel=int(etmodel), doy=doy, states=st, daily=OUTPUT_COLUMNS, sums=(),
    )  # fmt: skip
    assert res.daily is not None
    out = pd.DataFrame({k: res.daily[k][:, 0] for k in OUTPUT_COLUMNS}, index=weather.index)
    out.attrs["end_states"] = {k: float(v) for k, v in zip(STATE_NAMES, res.states[:, 0], strict=True)}
    out.attrs["params"] = {k: float(v) for k, v in zip(PARAM_NAMES, p, strict=True)}
    out.attrs["etmodel"] = int(etmodel)
    out.attrs["gap_filled"] = gap_filled
    return out


def _es_kpa(t: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure (kPa), the Tetens form used in spec §6.6."""
    return 0.6109 * np.exp(17.27 * t / (t + 237.3))


def synthetic_weather(
    n_years: int = 2,
    *,
    lat: float = 61.8,
    seed: int = 0,
    start: str = "2020-01-01",
    forest: Literal["evergreen", "deciduous"] = "evergreen",
) -> pd.DataFrame:
    """A synthetic boreal daily weather series in PRELES units (Hyytiälä-like by default).

    Not a weather generator for science: a smooth climatology plus random day-to-day
    variation, with magnitudes of a southern-boreal site (annual mean temperature ≈ 4 °C,
    January ≈ −7 °C, July ≈ +16 °C; precipitation ≈ 550–750 mm/yr on about half the days;
    annual PAR ≈ 6500–7500 mol m-2 at 61.8° N).

    Parameters
    ----------
    n_years : int
        Number of calendar years from ``start``.
    lat : float
        Latitude in degrees; sets day length and clear-sky radiation.
    seed : int
        Seed of the random generator (same seed → same series).
    start : str
        First day (ISO date).
    forest : {"evergreen", "deciduous"}
        fAPAR shape: evergreen ≈ 0.72 all year (small seasonal swing); deciduous a seasonal
        curve (0.1 leafless, ≈ 0.8 from mid-June to early September).

    Returns
    -------
    pandas.DataFrame
        DatetimeIndex ``date``; columns PAR (mol m-2 d-1), TAir (°C), VPD (kPa), Precip (mm d-1),
        CO2 (ppm), fAPAR, DOY.
    """
    if n_years < 1:
        raise PrelesInputError(f"n_years must be >= 1, got {n_years}")
    if forest not in ("evergreen", "deciduous"):
        raise PrelesInputError(f"forest must be 'evergreen' or 'deciduous', got {forest!r}")
    t0 = pd.Timestamp(start)
    dates = pd.date_range(t0, t0 + pd.DateOffset(years=n_years), inclusive="left", name="date")
    n = len(dates)
    doy = dates.day_of_year.to_numpy()
    ang = 2 * np.pi * doy / 365.0
    rng = np.random.default_rng(seed)

    # Extraterrestrial radiation (FAO-56 eq. 21), MJ m-2 d-1.
    phi = np.deg2rad(lat)
    dr = 1 + 0.033 * np.cos(ang)
    dec = 0.409 * np.sin(ang - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(dec), -1.0, 1.0))
    ra = (
        24
        * 60
        / np.pi
        * 0.0820
        * dr
        * (ws * np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.sin(ws))
    )
    rso = 0.75 * np.maximum(ra, 0.0)

    # Wet/dry days: two-state Markov chain (about half the days wet), gamma amounts.
    wet = np.zeros(n, dtype=bool)
    u = rng.random(n)
    for i in range(n):
        p_wet = 0.62 if (i > 0 and wet[i - 1]) else 0.38
        wet[i] = u[i] < p_wet
    mean_mm = 3.9 * (1 + 0.35 * np.sin(ang - 2 * np.pi * 130 / 365))  # wetter late summer
    precip = np.where(wet, rng.gamma(0.75, mean_mm / 0.75), 0.0)

    # Radiation: clear-sky times a cloud transmittance (lower on wet days).
    trans = np.where(wet, rng.uniform(0.25, 0.65, n), rng.uniform(0.6, 1.0, n))
    rs = rso * trans  # MJ m-2 d-1 global radiation
    par = rs * 0.46 * 4.56  # PAR fraction 0.46, 4.56 mol PAR per MJ

    # Temperature: seasonal cycle + AR(1) anomaly (larger in winter) + sky effect.
    clim = 4.0 + 11.5 * np.sin(2 * np.pi * (doy - 110) / 365.0)
    sd = 2.5 + 2.0 * np.cos(2 * np.pi * (doy - 15) / 365.0)  # ~4.5 in winter, ~2 in summer
    anom = np.empty(n)
    a = 0.0
    e = rng.normal(0.0, 1.0, n)
    for i in range(n):
        a = 0.8 * a + math.sqrt(1 - 0.8**2) * e[i]
        anom[i] = a
    summer = np.sin(2 * np.pi * (doy - 110) / 365.0)  # +1 mid-July, -1 mid-January
    tair = clim + sd * anom + np.where(wet, -1.0, 1.0) * summer

    # Humidity: daily mean RH ~0.88 in winter, ~0.67 in early summer; wetter on rainy days.
    rh = 0.775 - 0.105 * np.sin(2 * np.pi * (doy - 80) / 365.0) + np.where(wet, 0.08, -0.03)
    rh = np.clip(rh + rng.normal(0.0, 0.04, n), 0.35, 0.98)
    vpd = np.clip(_es_kpa(tair) * (1 - rh), 0.0, 6.0)

    years = (dates - t0).days.to_numpy() / 365.25
    co2 = 410.0 + 2.4 * years + 5.0 * np.cos(2 * np.pi * (doy - 120) / 365.0)

    if forest == "evergreen":
        fapar = 0.72 + 0.03 * np.sin(2 * np.pi * (doy - 110) / 365.0)
    else:
        up = 1 / (1 + np.exp(-(doy - 145) / 5.0))
        down = 1 / (1 + np.exp((doy - 265) / 7.0))
        fapar = 0.1 + 0.7 * up * down

    return pd.DataFrame(
        {"PAR": par, "TAir": tair, "VPD": vpd, "Precip": precip, "CO2": co2, "fAPAR": fapar, "DOY": doy},
        index=dates,
    )
