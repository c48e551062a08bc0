"""Plain-numpy PRELES reference, written from /work/shared/spec/preles.md for the tests.

A straightforward loop over days; each day is evaluated for all pixels at once with numpy
(``np.where`` for the spec's branches). Deliberately written in a different style from the
numba kernel (no shared code), so that the two check each other. Slow; for small inputs only.
"""

from __future__ import annotations

import numpy as np

OUTPUTS = (
    "GPP", "ET", "SW", "SOG", "Canopywater", "S", "fS", "fD", "fW", "fE",
    "Throughfall", "Interception", "Snowmelt", "Drainage", "transp", "evap", "fAPAR",
)  # fmt: skip


def _modifier(rew: np.ndarray, thres: np.ndarray) -> np.ndarray:
    """Piecewise-linear soil-water modifier of spec §6.4 / §6.6."""
    below = np.where(rew > 0.01, rew / thres, 0.0)
    f = np.where(rew < thres, below, 1.0)
    return np.where(thres < -998, 1.0, f)


def preles_reference(
    weather: dict[str, np.ndarray],
    params: np.ndarray,
    *,
    etmodel: int = 0,
    doy: np.ndarray | None = None,
    states: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run PRELES day by day.

    Parameters
    ----------
    weather : dict with PAR, TAir, VPD, Precip, CO2, fAPAR arrays of shape (n_days, n_pixels)
    params : (30,) or (n_pixels, 30) in spec §3 order
    etmodel : 0 or 1
    doy : (n_days,) ints, default 1..365 repeating
    states : optional dict with SW, CW, SOG, S, PhenoS and prev_PAR, prev_TAir, prev_VPD,
        prev_Precip, prev_CO2 (NaN = no previous day), each (n_pixels,)

    Returns
    -------
    daily : dict of (n_days, n_pixels) arrays, keys :data:`OUTPUTS`
    end_states : dict like ``states``
    """
    w = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in weather.items()}
    n_days = max(v.shape[0] for v in w.values())
    n_pix = max(v.shape[1] for v in w.values())
    w = {k: np.broadcast_to(v, (n_days, n_pix)) for k, v in w.items()}
    p = np.broadcast_to(np.asarray(params, dtype=float).reshape(-1, 30), (n_pix, 30)).T  # p[k] per pixel
    (soildepth, thetaFC, thetaPWP, tauDrain, beta, tau, S0, Smax, kappa, gamma, rhoP, bCO2, xCO2,
     betaE, kappaE, chi, rhoE, nu, meltcoef, I0, CWmax, _snowthr, _t0melt, SWinit, CWinit, SOGinit,
     Sinit, t0, Tcrit, Tsumcrit) = p  # fmt: skip
    if doy is None:
        doy = np.arange(n_days) % 365 + 1

    if states is None:
        nan = np.full(n_pix, np.nan)
        states = {"SW": SWinit, "CW": CWinit, "SOG": SOGinit, "S": Sinit, "PhenoS": np.zeros(n_pix),
                  "prev_PAR": nan, "prev_TAir": nan, "prev_VPD": nan, "prev_Precip": nan,
                  "prev_CO2": nan}  # fmt: skip
    st = {k: np.array(np.broadcast_to(v, (n_pix,)), dtype=float) for k, v in states.items()}
    SW, CW, SOG, S, PhenoS = st["SW"], st["CW"], st["SOG"], st["S"], st["PhenoS"]
    prev = {k: st["prev_" + k] for k in ("PAR", "TAir", "VPD", "Precip", "CO2")}

    out = {k: np.zeros((n_days, n_pix)) for k in OUTPUTS}
    for t in range(n_days):
        # §6.1 gap filling; "no yesterday" (NaN) -> day-0 rule
        first = {k: np.isnan(v) for k, v in prev.items()}
        PAR = w["PAR"][t].copy()
        miss = ~(PAR >= -900)
        PAR[miss] = np.where(first["PAR"], 5.0, prev["PAR"])[miss]
        TAir = w["TAir"][t].copy()
        miss = ~(TAir >= -900)
        TAir[miss] = np.where(first["TAir"], 0.0, prev["TAir"])[miss]
        VPD = w["VPD"][t].copy()
        miss = ~((VPD >= 0) & (VPD <= 6))
        VPD[miss] = np.where(first["VPD"], 0.5, prev["VPD"])[miss]
        P = w["Precip"][t].copy()
        miss = ~(P >= 0)
        P[miss] = np.where(first["Precip"], 0.0, 0.3 * prev["Precip"])[miss]
        CO2 = w["CO2"][t].copy()
        miss = np.where(first["CO2"], ~(CO2 >= 0.1), ~(CO2 > 0))
        CO2[miss] = np.where(first["CO2"], 380.0, prev["CO2"])[miss]
        prev = {"PAR": PAR, "TAir": TAir, "VPD": VPD, "Precip": P, "CO2": CO2}

        # §6.2
        S = S + (TAir - S) / tau
        fS = np.minimum(1.0, np.maximum(0.0, S - S0) / Smax)

        # §6.3
        fAPAR = w["fAPAR"][t].copy()
        pheno = t0 >= -998
        d = doy[t]
        in_window = (d > t0 - 0.5) & (d < 213)
        PhenoS = np.where(pheno, np.where(in_window, PhenoS + np.maximum(0.0, TAir - Tcrit), 0.0), PhenoS)
        fPheno = np.where(PhenoS > Tsumcrit - 0.005, 1.0, 0.0)
        if d > 212:
            fPheno = np.where(fS * fS < 0.5, 0.0, fS * fS)
        fAPAR = np.where(pheno, fAPAR * fPheno, fAPAR)

        # §6.4
        REW = (SW / soildepth - thetaPWP) / (thetaFC - thetaPWP)
        fD = np.minimum(1.0, np.exp(kappa * VPD))
        fW = _modifier(REW, rhoP)
        fL = 1.0 / (gamma * PAR + 1.0)
        fEg = np.minimum(fD, fW)
        GPP380 = beta * PAR * fAPAR * fS * fL * fEg
        GPP = GPP380 * (1.0 + bCO2 * np.log(CO2 / 380.0))

        # §6.5
        snow = TAir < 0
        newsnow = np.where(snow, P, 0.0)
        rain = np.where(snow, 0.0, P)
        melt = np.where(TAir > 0, meltcoef * TAir, 0.0)
        neg = SOG + newsnow - melt < 0
        melt = np.where(neg, SOG + newsnow, melt)
        SOG = np.where(neg, 0.0, SOG + newsnow - melt)
        icpt = np.where(TAir > 0, rain * I0 * fAPAR / 0.75, 0.0)
        thr = rain - icpt
        cap = CWmax * fAPAR
        nostore = CWmax <= 1e-8
        over = ~nostore & (icpt + CW > cap)
        thr = np.where(nostore, thr + icpt, np.where(over, thr + icpt + CW - cap, thr))
        CW = np.where(nostore, CW, np.where(over, cap, CW + icpt))

        # §6.6
        lam = 1000 * (2500.79 - 2.36418 * TAir + 0.00158927 * TAir**2 - 0.0000614342 * TAir**3)
        gam_p = 1003.5 * 101300.0 / (lam * 0.622)
        es = 0.6109 * np.exp(17.27 * TAir / (TAir + 237.3))
        s = 1000 * 4098 * es / (TAir + 237.3) ** 2
        wPT = s / (s + gam_p)
        fWE = np.where(CW > 1e-8, 1.0, _modifier(REW, rhoE))
        fCO2E = 1.0 + xCO2 * np.log(CO2 / 380.0)
        D = np.maximum(VPD, 0.01)
        transp = betaE * GPP380 * D ** (1.0 - kappaE) * fW**nu * fCO2E
        if etmodel == 0:
            evap = chi * wPT * (1.0 - fAPAR) * fWE * PAR
        elif etmodel == 1:
            evap = chi * (1.0 - fAPAR) * fWE * PAR
        else:
            raise ValueError(etmodel)
        ET = transp + evap

        # §6.7
        soilET = np.zeros(n_pix)
        store = CWmax > 1e-8
        enough = CW + SOG - ET > 0
        a = store & enough & (CW - ET > 0)
        b = store & enough & (CW - ET < 0)
        c = store & ~enough
        CW_new = np.where(a, CW - ET, CW)
        SOG_new = np.where(b, SOG + CW - ET, SOG)
        CW_new = np.where(b, 0.0, CW_new)
        soilET = np.where(c, ET - CW - SOG, soilET)
        CW_new = np.where(c, 0.0, CW_new)
        SOG_new = np.where(c, 0.0, SOG_new)
        d1 = ~store & (SOG - ET > 0)
        d2 = ~store & (SOG - ET < 0)
        d3 = ~store & (SOG - ET == 0)
        SOG_new = np.where(d1, SOG - ET, SOG_new)
        soilET = np.where(d2, ET - SOG, soilET)
        SOG_new = np.where(d2 | d3, 0.0, SOG_new)
        CW, SOG = CW_new, SOG_new
        W = SW + thr + melt - soilET
        W = np.where(W <= 0, 0.0001, W)
        excess = W - thetaFC * soildepth
        drain = np.where(excess > 0, excess / tauDrain, 0.0)
        SW = W - drain

        for k, v in (("GPP", GPP), ("ET", ET), ("SW", SW), ("SOG", SOG), ("Canopywater", CW), ("S", S),
                     ("fS", fS), ("fD", fEg), ("fW", fW), ("fE", fWE), ("Throughfall", thr),
                     ("Interception", icpt), ("Snowmelt", melt), ("Drainage", drain),
                     ("transp", transp), ("evap", evap), ("fAPAR", fAPAR)):  # fmt: skip
            out[k][t] = v

    end = {"SW": SW, "CW": CW, "SOG": SOG, "S": S, "PhenoS": PhenoS}
    end.update({"prev_" + k: v for k, v in prev.items()})
    return out, end
