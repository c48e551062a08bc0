"""Deterministic synthetic generator of every raw input layer of the flux model.

The generator is a pure function of the *global* pixel index ``(row, col)`` on the
0.00025° EPSG:4326 grid (row 0 is the pixel whose top edge is 90°N, column 0 the pixel
whose left edge is 180°W), of the layer name and of an integer seed.  Any block of the
global grid can therefore be generated on its own and blocks cut in any way assemble to
exactly the same mosaic: there is no random-generator state and nothing depends on the
origin or the size of the requested block.

Building blocks
---------------
* ``splitmix64``-style integer hashing of cell indices (``uint64`` arithmetic in numba).
* Gradient (Perlin) noise summed over several spatial scales ("fBm"), mapped to an
  approximately uniform ``[0, 1]`` value by an algebraic approximation of the normal CDF.
* Cell patterns hashed from cell indices: 1-km (40 px) driver blocks, rectangular
  plantations in 50-px cells, disc-shaped loss and gain patches in 8/20/24-px cells.
* Several layers are computed on coarser aligned grids and expanded by nearest
  neighbour, like their real counterparts (precipitation, removal-factor rasters,
  drivers and JPL biomass on 40-px ≈ 1 km cells, SoilGrids on 9-px ≈ 250 m cells,
  zonal maps on 8-px cells).

Only IEEE basic operations and square roots are used on per-pixel data (no
transcendental ufuncs, no fast-math), so values are bit-for-bit reproducible whatever
the block decomposition or the SIMD width.

The synthetic world is not the real one: zones follow latitude, continents are boxes,
coasts and forests are noise patterns. It is designed so that any ~1000 × 1000-px window
(0.25°) contains every code a stage branches on (drivers 0–7, loss years 1–25,
plantation types, fire, peat, mangroves where the latitude allows them, …).

How each layer is made (``u_*`` are fBm fields, "cells" are hashed cell patterns)
------------------------------------------------------------------------------------
* sea / coast: ``u_sea`` (scales 1536/384/96 px) below 0.05 is water (nodata in every land
  layer), 0.05–0.10 is the coastal fringe.
* ``tcd2000``: forest where ``u_forest`` (1024…16 px) exceeds ``1 − f``, ``f`` a target forest
  fraction from a moisture index (precipitation / latitude PET) faded out towards the poles;
  35–99 % inside forest (mostly > 85), mostly 0 outside with sparse 1–30 % pixels;
  plantations 45–90 %, mangroves 55–95 %.
* ``agb_2000``: ``base(lat) · (tcd/100)^1.25`` × regional and pixel factors, 6–330 t/ha,
  0 where tcd is 0 and in 3 % holes; ``agb_2000_jpl`` the same idea on 1-km cells (float).
* ``mangrove_agb_2000``: coastal-fringe patches of ``u_mang`` (96/24 px) with |lat| < 32,
  ``1 + 720 t^1.5`` t/ha (t the patch intensity): 1–900, low values at patch edges.
* ``loss_year``: discs (ragged edges) in 8-px and 24-px cells (1–113 px), existence
  probability scaled by the 1-km driver, one year per patch (slightly increasing trend,
  4 % of pixels one year off), only where tcd > 5; ``tclf``: the patch's loss year on fire
  patches (85 % likely under driver 5), 2.5 % of its pixels one year off.
* ``gain``: discs in 20-px cells where tcd < 60 or loss, plus regrown rotation plantations.
* ``drivers``: a weighted draw per 40-px block (half of them shared by a 4 × 4-block
  super-block), weights by tropical / temperate / boreal latitude.
* ``plantation_type``: rectangles in 50-px cells (1 oil palm only where |lat| < 23.5);
  ``plantation_pre2000`` 40 % of tropical (|lat| < 30) plantations; planted removal
  factors constant per plantation (AGC = AGC+BGC / 1.26, SD 15–50 % of the rate).
* ``continent_ecozone``, ``climate_domain``, ``climate_zone`` (8-px cells): the continent
  digit from lat/lon boxes, the zone band from a fuzzed latitude (tropical < 22.5 ≤
  subtropical < 27.5 ≤ temperate < 52 ≤ boreal < 68.5 ≤ tundra woodland), the zone within
  the band from a wetness index and elevation; only codes with an IPCC Table 4.9 row or
  fallback (plus 3005 in Antarctica); the domain is the code's domain; the IPCC climate
  zone is drawn within the domain's four zones from 1-km patch fields.
* ``elevation``: gentle relief plus isolated peaks (to ~3000 m), pulled to −6 m at coasts;
  ``precipitation``: latitude climatology × dry belts × regional and 1-km factors.
* ``bgb_agb_ratio``, ``rf_agc_young`` (2 % NaN 1-km cells), ``rf_agc_bgc_europe`` (inside
  lon −10…40, lat 35…71, SD twice too large): smooth fields on 1-km cells.
* ``ifl_primary``: ``u_ifl`` (1600/400 px) above a threshold on tcd > 50 non-plantation
  forest; ``peat``: 8-px patches in wet tropical lowlands and boreal lowlands.
* ``fia_region`` (3 × 3 partition of the conterminous-US box), ``fia_forest_group``
  (`US_FOREST_GROUP_CODES`), ``us_age_category`` (1/2/3): patch fields on 8-px cells.
* ``soil_c_2000``: 20–250 Mg C/ha on 9-px (250 m) cells, 200–480 on mangrove pixels.
* ``pixel_area``: exact WGS84 cell area per row (:func:`fluxgraph.grid.row_pixel_area_m2`).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from numba import njit

from fluxgraph.grid import pixel_area_m2

__all__ = [
    "DEMO_LAYERS",
    "DEMO_REGION_TILES",
    "N_GLOBAL_COLS",
    "N_GLOBAL_ROWS",
    "PIXEL_DEG",
    "TILE_PX",
    "US_FOREST_GROUP_CODES",
    "demo_block",
    "demo_blocks",
    "demo_window",
    "tile_pixel_origin",
]

# --------------------------------------------------------------------------------------
# Grid and public constants
# --------------------------------------------------------------------------------------

PIXEL_DEG = 0.00025
"""Pixel size in degrees."""
TILE_PX = 40000
"""Pixels per 10° tile side."""
N_GLOBAL_ROWS = 720000
"""Rows of the global grid (90°N … 90°S)."""
N_GLOBAL_COLS = 1440000
"""Columns of the global grid (180°W … 180°E)."""

DEMO_REGION_TILES = ("00N_110E", "10N_050E", "30N_090W", "70N_000E")
"""The four test tiles whose top-left windows form the project's demo region."""

DEMO_LAYERS: dict[str, np.dtype] = {
    "loss_year": np.dtype(np.uint8),
    "gain": np.dtype(np.uint8),
    "tcd2000": np.dtype(np.uint8),
    "pixel_area": np.dtype(np.float32),
    "agb_2000": np.dtype(np.int16),
    "mangrove_agb_2000": np.dtype(np.float32),
    "continent_ecozone": np.dtype(np.int16),
    "climate_domain": np.dtype(np.int16),
    "climate_zone": np.dtype(np.uint8),
    "elevation": np.dtype(np.int16),
    "precipitation": np.dtype(np.int32),
    "bgb_agb_ratio": np.dtype(np.float32),
    "rf_agc_young": np.dtype(np.float32),
    "rf_stdev_agc_young": np.dtype(np.float32),
    "rf_agc_bgc_europe": np.dtype(np.float32),
    "rf_stdev_agc_bgc_europe": np.dtype(np.float32),
    "rf_agc_bgc_planted": np.dtype(np.float32),
    "rf_stdev_agc_bgc_planted": np.dtype(np.float32),
    "rf_agc_planted": np.dtype(np.float32),
    "rf_stdev_agc_planted": np.dtype(np.float32),
    "plantation_type": np.dtype(np.uint8),
    "plantation_pre2000": np.dtype(np.uint8),
    "ifl_primary": np.dtype(np.uint8),
    "fia_region": np.dtype(np.uint8),
    "fia_forest_group": np.dtype(np.uint8),
    "us_age_category": np.dtype(np.uint8),
    "drivers": np.dtype(np.uint8),
    "tclf": np.dtype(np.uint8),
    "peat": np.dtype(np.uint8),
    "soil_c_2000": np.dtype(np.int16),
    "agb_2000_jpl": np.dtype(np.float32),
}
"""Layer name → dtype of every synthetic raw input layer (nodata is 0 for all)."""

US_FOREST_GROUP_CODES = tuple(range(101, 252, 10))
"""Byte codes of the synthetic FIA forest-type groups: ``101 + (G - 100) // 20 * 10`` for the
FIA group codes ``G = 100, 120, …, 400`` (16 groups)."""

# --------------------------------------------------------------------------------------
# Tile helpers
# --------------------------------------------------------------------------------------


def tile_pixel_origin(tile_id: str) -> tuple[int, int]:
    """Global (row, col) of the top-left pixel of a 10° tile.

    Parameters
    ----------
    tile_id : str
        Hansen-style tile id ``LLH_OOOV`` naming the tile's north-west corner, e.g.
        ``"00N_110E"``.

    Returns
    -------
    tuple of int
        ``(row0, col0)`` on the global 0.00025° grid.

    Raises
    ------
    ValueError
        If the id is malformed.
    """
    try:
        lat_part, lon_part = tile_id.split("_")
        lat = int(lat_part[:-1]) * (1 if lat_part[-1] == "N" else -1)
        lon = int(lon_part[:-1]) * (1 if lon_part[-1] == "E" else -1)
        if lat_part[-1] not in "NS" or lon_part[-1] not in "EW":
            raise ValueError
    except (ValueError, IndexError) as exc:
        raise ValueError(f"malformed tile id {tile_id!r}") from exc
    return (90 - lat) * 4000, (lon + 180) * 4000


def demo_window(tile_id: str, size: int = 1000) -> tuple[int, int, int, int]:
    """Global pixel bounds of the top-left ``size × size`` window of a tile.

    Parameters
    ----------
    tile_id : str
        Tile id, e.g. one of `DEMO_REGION_TILES`.
    size : int, optional
        Window side in pixels (default 1000 px = 0.25°).

    Returns
    -------
    tuple of int
        ``(row0, row1, col0, col1)`` suitable for `demo_block`.
    """
    r0, c0 = tile_pixel_origin(tile_id)
    return r0, r0 + size, c0, c0 + size


# --------------------------------------------------------------------------------------
# Hashing and noise kernels (numba)
# --------------------------------------------------------------------------------------

_M64 = (1 << 64) - 1
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_G1 = np.uint64(0x9E3779B97F4A7C15)
_G2 = np.uint64(0xC2B2AE3D27D4EB4F)
_GX = np.array([math.cos(2.0 * math.pi * (k + 0.5) / 16.0) for k in range(16)])
_GY = np.array([math.sin(2.0 * math.pi * (k + 0.5) / 16.0) for k in range(16)])
_SIGMA1 = 0.2155  # standard deviation of one octave of the gradient noise below
# 0.5 + z (P1 + P3 z² + P5 z⁴ + P7 z⁶) for |z| ≤ _ZMAX (clamped beyond) approximates Φ(z) to 2.5e-3
_P1, _P3, _P5, _P7 = 0.3923466839435727, -0.0564260307651921, 0.005246674492296756, -0.0001959736705144383
_ZMAX = 2.962
_U24 = 1.0 / 16777216.0
_U53 = 1.0 / 9007199254740992.0


def _mix_py(x: int) -> int:
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _key(seed: int, name: str, k: int = 0) -> np.uint64:
    """Hash key of (seed, stream name, sub-stream k)."""
    x = _mix_py((int(seed) & _M64) ^ 0x5DEECE66D2F5A3B1)
    x = _mix_py(x ^ ((zlib.crc32(name.encode()) * 0x9E3779B97F4A7C15) & _M64))
    x = _mix_py(x ^ (((k + 1) * 0xC2B2AE3D27D4EB4F) & _M64))
    return np.uint64(x)


@njit(cache=True, nogil=True)
def _mix(x):
    x = (x ^ (x >> np.uint64(30))) * _C1
    x = (x ^ (x >> np.uint64(27))) * _C2
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True)
def _h2(key, i, j):
    return _mix(_mix(key ^ (np.uint64(i) * _G1)) ^ (np.uint64(j) * _G2))


@njit(cache=True, nogil=True)
def _unit(h):
    return np.float64(h >> np.uint64(11)) * _U53


@njit(cache=True, nogil=True)
def _fbm_kernel(out, keys, scales, weights, rows, cols, inv_sigma):  # pragma: no cover - numba
    """Sum of gradient-noise octaves at global pixel centres, mapped to ~U(0, 1).

    ``rows`` and ``cols`` must be non-decreasing (duplicates allowed). Each octave has its
    own lattice offset so that lattices of different octaves do not align.
    """
    n_oct = keys.shape[0]
    nr = rows.shape[0]
    nc = cols.shape[0]
    if nr == 0 or nc == 0:
        return out
    fxc = np.empty((n_oct, nc))
    ucol = np.empty((n_oct, nc))
    qrow = np.empty((n_oct, nr), np.int64)
    fyr = np.empty((n_oct, nr))
    vrow = np.empty((n_oct, nr))
    iy0 = np.empty(n_oct, np.int64)
    ix0 = np.empty(n_oct, np.int64)
    ny = np.empty(n_oct, np.int64)
    nx = np.empty(n_oct, np.int64)
    segq = np.empty((n_oct, nc), np.int64)
    segs = np.empty((n_oct, nc + 1), np.int64)
    nseg = np.zeros(n_oct, np.int64)
    for o in range(n_oct):
        s = scales[o]
        offr = np.int64(_mix(keys[o] ^ _G1) % np.uint64(s))
        offc = np.int64(_mix(keys[o] ^ _G2) % np.uint64(s))
        ix0[o] = (cols[0] + offc) // s
        qprev = np.int64(-1)
        k = 0
        for b in range(nc):
            x = cols[b] + offc
            q = x // s
            f = ((x - q * s) + 0.5) / s
            fxc[o, b] = f
            ucol[o, b] = f * f * f * (f * (f * 6.0 - 15.0) + 10.0)
            if q != qprev:
                segq[o, k] = q - ix0[o]
                segs[o, k] = b
                k += 1
                qprev = q
        segs[o, k] = nc
        nseg[o] = k
        nx[o] = (cols[nc - 1] + offc) // s - ix0[o] + 2
        for a in range(nr):
            x = rows[a] + offr
            q = x // s
            f = ((x - q * s) + 0.5) / s
            qrow[o, a] = q
            fyr[o, a] = f
            vrow[o, a] = f * f * f * (f * (f * 6.0 - 15.0) + 10.0)
        iy0[o] = qrow[o, 0]
        ny[o] = qrow[o, nr - 1] - iy0[o] + 2
    gx = np.zeros((n_oct, ny.max(), nx.max()))
    gy = np.zeros((n_oct, ny.max(), nx.max()))
    for o in range(n_oct):
        for p in range(ny[o]):
            for q in range(nx[o]):
                kk = np.int64(_h2(keys[o], iy0[o] + p, ix0[o] + q) >> np.uint64(60))
                gx[o, p, q] = _GX[kk]
                gy[o, p, q] = _GY[kk]
    acc = np.empty(nc)
    for a in range(nr):
        acc[:] = 0.0
        for o in range(n_oct):
            p = qrow[o, a] - iy0[o]
            fy = fyr[o, a]
            v = vrow[o, a]
            w = weights[o]
            for k in range(nseg[o]):
                q = segq[o, k]
                a00 = gy[o, p, q] * fy
                a01 = gy[o, p + 1, q] * (fy - 1.0)
                a10 = gy[o, p, q + 1] * fy
                a11 = gy[o, p + 1, q + 1] * (fy - 1.0)
                cp = w * (a00 + v * (a01 - a00))
                cq = w * (gx[o, p, q] + v * (gx[o, p + 1, q] - gx[o, p, q]))
                cr = w * (a10 + v * (a11 - a10))
                cs = w * (gx[o, p, q + 1] + v * (gx[o, p + 1, q + 1] - gx[o, p, q + 1]))
                for b in range(segs[o, k], segs[o, k + 1]):
                    fx = fxc[o, b]
                    left = cp + cq * fx
                    right = cr + cs * (fx - 1.0)
                    acc[b] += left + ucol[o, b] * (right - left)
        for b in range(nc):
            z = acc[b] * inv_sigma
            if z > _ZMAX:
                z = _ZMAX
            if z < -_ZMAX:
                z = -_ZMAX
            z2 = z * z
            out[a, b] = 0.5 + z * (_P1 + z2 * (_P3 + z2 * (_P5 + z2 * _P7)))
    return out


@njit(cache=True, nogil=True)
def _hash_kernel(out, key, ri, ci):  # pragma: no cover - numba
    """Uniform [0, 1) float32 (24 bits) per (ri[a], ci[b]) index pair."""
    for a in range(ri.shape[0]):
        hr = _mix(key ^ (np.uint64(ri[a]) * _G1))
        for b in range(ci.shape[0]):
            out[a, b] = np.float32(np.float64(_mix(hr ^ (np.uint64(ci[b]) * _G2)) >> np.uint64(40)) * _U24)
    return out


@njit(cache=True, nogil=True)
def _expand_kernel(out, small, inv_r, inv_c):  # pragma: no cover - numba
    """Nearest-neighbour expansion ``out[a, b] = small[inv_r[a], inv_c[b]]``."""
    for a in range(inv_r.shape[0]):
        ra = inv_r[a]
        if a > 0 and ra == inv_r[a - 1]:
            out[a, :] = out[a - 1, :]
            continue
        for b in range(inv_c.shape[0]):
            out[a, b] = small[ra, inv_c[b]]
    return out


# ---- drivers of tree cover loss (1-km = 40-px blocks) --------------------------------

# cumulative weights of codes 0..7 for tropical / temperate / boreal blocks
_DRIVER_CUM = np.cumsum(
    np.array(
        [
            [0.08, 0.30, 0.05, 0.27, 0.10, 0.07, 0.06, 0.07],  # tropical
            [0.12, 0.16, 0.05, 0.05, 0.34, 0.12, 0.08, 0.08],  # temperate
            [0.12, 0.05, 0.05, 0.05, 0.31, 0.30, 0.04, 0.08],  # boreal
        ]
    ),
    axis=1,
)
_DRIVER_BLOCK = 40
_DRIVER_SUPER = 4  # blocks per super-block side (clustering of drivers)


@njit(cache=True, nogil=True)
def _driver_at(dkey, bi, bj):
    """Driver code of 40-px block (bi, bj)."""
    lat = 90.0 - (bi * _DRIVER_BLOCK + _DRIVER_BLOCK // 2 + 0.5) * PIXEL_DEG
    alat = abs(lat)
    dom = 0 if alat < 25.0 else (1 if alat < 52.0 else 2)
    h = _h2(dkey, bi, bj)
    if _unit(_mix(h ^ _G1)) < 0.5:  # take the super-block's draw: clusters of blocks
        h = _h2(dkey ^ _G2, bi // _DRIVER_SUPER, bj // _DRIVER_SUPER)
    u = _unit(h)
    code = 7
    for k in range(8):
        if u < _DRIVER_CUM[dom, k]:
            code = k
            break
    return code


@njit(cache=True, nogil=True)
def _driver_kernel(dkey, bi, bj):  # pragma: no cover - numba
    out = np.empty((bi.shape[0], bj.shape[0]), np.uint8)
    for a in range(bi.shape[0]):
        for b in range(bj.shape[0]):
            out[a, b] = _driver_at(dkey, bi[a], bj[b])
    return out


# ---- plantations (rectangles in 50-px cells) -----------------------------------------

_PLANT_CELL = 50


@njit(cache=True, nogil=True)
def _plant_kernel(ptype, ua, ub, pkey, rows, cols, sea, mang_t, sel_a, sel_b):  # pragma: no cover
    """Plantation type and two per-plantation uniforms (streams sel_a, sel_b) for every pixel.

    Plantations are rectangles in 50-px cells, excluding sea and mangrove pixels.
    """
    nr = rows.shape[0]
    nc = cols.shape[0]
    if nr == 0 or nc == 0:
        return ptype, ua, ub
    S = _PLANT_CELL
    j0 = cols[0] // S
    ncell = cols[nc - 1] // S - j0 + 1
    kcol = np.empty(nc, np.int64)
    xcol = np.empty(nc, np.int64)
    for b in range(nc):
        j = cols[b] // S
        kcol[b] = j - j0
        xcol[b] = cols[b] - j * S
    y0 = np.zeros(ncell, np.int64)
    y1 = np.zeros(ncell, np.int64)  # y1 == 0: no plantation in the cell
    x0 = np.zeros(ncell, np.int64)
    x1 = np.zeros(ncell, np.int64)
    typ = np.zeros(ncell, np.uint8)
    fa = np.zeros(ncell, np.float32)
    fb = np.zeros(ncell, np.float32)
    cur = np.int64(-1)
    for a in range(nr):
        r = rows[a]
        i = r // S
        if i != cur:
            cur = i
            lat = 90.0 - (i * S + S // 2 + 0.5) * PIXEL_DEG
            alat = abs(lat)
            p_exist = 0.075 if alat < 30.0 else (0.06 if alat < 62.0 else 0.03)
            if alat >= 70.0 or lat < -56.0:
                p_exist = 0.0
            for jj in range(ncell):
                h = _h2(pkey, i, j0 + jj)
                y1[jj] = 0
                if _unit(h) >= p_exist:
                    continue
                h1 = _mix(h ^ _G1)
                h2 = _mix(h1 ^ _G2)
                h3 = _mix(h2 ^ _G1)
                h4 = _mix(h3 ^ _G2)
                hgt = 16 + np.int64(_unit(h1) * 30.0)
                wid = 16 + np.int64(_unit(h2) * 30.0)
                y0[jj] = np.int64(_unit(h3) * (S - hgt))
                y1[jj] = y0[jj] + hgt
                x0[jj] = np.int64(_unit(h4) * (S - wid))
                x1[jj] = x0[jj] + wid
                h5 = _mix(h4 ^ _G1)
                ut = _unit(h5)
                if alat < 23.5:
                    typ[jj] = 1 if ut < 0.4 else (2 if ut < 0.75 else 3)
                else:
                    typ[jj] = 2 if ut < 0.6 else 3
                fa[jj] = np.float32(_unit(_mix(h5 ^ (np.uint64(sel_a) * _G2))))
                fb[jj] = np.float32(_unit(_mix(h5 ^ (np.uint64(sel_b) * _G2))))
        ry = r - i * S
        for b in range(nc):
            jj = kcol[b]
            if ry < y0[jj] or ry >= y1[jj]:
                continue
            cx = xcol[b]
            if cx < x0[jj] or cx >= x1[jj] or sea[a, b] or mang_t[a, b] > 0.0:
                continue
            ptype[a, b] = typ[jj]
            ua[a, b] = fa[jj]
            ub[a, b] = fb[jj]
    return ptype, ua, ub


@njit(cache=True, nogil=True)
def _planted_kernel(out, ptype, ua, ub, sd, div):  # pragma: no cover - numba
    """Planted-forest AGC+BGC rate (sd=False) or its stdev (sd=True), divided by `div`."""
    lo = (0.0, 6.0, 5.0, 2.6)
    hi = (0.0, 10.0, 15.0, 8.0)
    for a in range(ptype.shape[0]):
        for b in range(ptype.shape[1]):
            t = ptype[a, b]
            if t == 0 or t > 3:
                continue
            rate = lo[t] + (hi[t] - lo[t]) * ua[a, b]
            if sd:
                rate = rate * (0.15 + 0.35 * ub[a, b])
            out[a, b] = np.float32(rate / div)
    return out


# ---- relief, mangroves, biomass -------------------------------------------------------


@njit(cache=True, nogil=True)
def _elev_kernel(out, u, pk, us, t_sea):  # pragma: no cover - numba
    """Elevation (m): gentle relief + isolated peaks, pulled to ~0 (and below) at the coast."""
    for a in range(u.shape[0]):
        for b in range(u.shape[1]):
            s_ = np.float64(us[a, b])
            if s_ < t_sea:
                continue
            k = min(1.0, (s_ - t_sea) / 0.15)
            t = min(1.0, max(0.0, (np.float64(pk[a, b]) - 0.88) / 0.12))
            uu = np.float64(u[a, b])
            e = 10.0 + 500.0 * uu * uu + 3000.0 * t * np.sqrt(t)
            out[a, b] = np.int16(np.floor(e * k * k - 6.0 * (1.0 - k) + 0.5))
    return out


@njit(cache=True, nogil=True)
def _mangrove_kernel(out, us, um, lat, t_sea, t_coast, t_mang):  # pragma: no cover - numba
    """Mangrove intensity in (0, 1] on coastal-fringe patches with |lat| < 32, else 0."""
    for a in range(us.shape[0]):
        if abs(lat[a]) >= 32.0:
            continue
        for b in range(us.shape[1]):
            s_ = us[a, b]
            if s_ < t_sea or s_ >= t_coast:
                continue
            t = (np.float64(um[a, b]) - t_mang) / (1.0 - t_mang)
            if t > 0.0:
                out[a, b] = np.float32(t)
    return out


@njit(cache=True, nogil=True)
def _any_in_range(x, lo, hi):  # pragma: no cover - numba
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            if x[a, b] >= lo and x[a, b] < hi:
                return True
    return False


@njit(cache=True, nogil=True)
def _agb_kernel(out, tcd, ubio, base, hkey, rows, cols):  # pragma: no cover - numba
    """WHRC-like AGB (t/ha, int16): base(lat) · (tcd/100)^1.25 · regional and pixel factors."""
    for a in range(tcd.shape[0]):
        hr = _mix(hkey ^ (np.uint64(rows[a]) * _G1))
        for b in range(tcd.shape[1]):
            if tcd[a, b] == 0:
                continue
            h = _mix(hr ^ (np.uint64(cols[b]) * _G2))
            if np.float64(h & np.uint64(0xFFFFFF)) * _U24 < 0.03:  # nodata holes
                continue
            x = tcd[a, b] / 100.0
            hu = np.float64(h >> np.uint64(40)) * _U24
            v = base[a] * x * np.sqrt(np.sqrt(x)) * (0.55 + 0.9 * ubio[a, b]) * (0.9 + 0.2 * hu)
            out[a, b] = np.int16(min(330.0, max(6.0, np.floor(v + 0.5))))
    return out


@njit(cache=True, nogil=True)
def _mangrove_agb_kernel(out, t, hkey, rows, cols):  # pragma: no cover - numba
    for a in range(t.shape[0]):
        hr = _mix(hkey ^ (np.uint64(rows[a]) * _G1))
        for b in range(t.shape[1]):
            tt = np.float64(t[a, b])
            if tt > 0.0:
                h = _unit(_mix(hr ^ (np.uint64(cols[b]) * _G2)))
                out[a, b] = np.float32(1.0 + 720.0 * tt * np.sqrt(tt) * (0.75 + 0.5 * h))
    return out


# ---- tree cover density ----------------------------------------------------------------


@njit(cache=True, nogil=True)
def _tcd_kernel(out, u_forest, thr, tcdmax, hkey, rows, cols, ptype, pu, mang_t, sea):  # pragma: no cover
    nr = rows.shape[0]
    nc = cols.shape[0]
    for a in range(nr):
        hr = _mix(hkey ^ (np.uint64(rows[a]) * _G1))
        tmax = tcdmax[a]
        for b in range(nc):
            if sea[a, b]:
                continue
            h = _mix(hr ^ (np.uint64(cols[b]) * _G2))
            h1 = np.float64(h >> np.uint64(40)) * _U24
            h2 = np.float64(h & np.uint64(0xFFFFFF)) * _U24
            if mang_t[a, b] > 0.0:
                v = 55.0 + 40.0 * mang_t[a, b] + 6.0 * (h2 - 0.5)
            elif ptype[a, b] > 0:
                v = 45.0 + 45.0 * pu[a, b] + 8.0 * (h2 - 0.5)
            elif thr[a, b] >= 1.0:
                continue  # no trees where the forest fraction is 0 (polar)
            else:
                m = u_forest[a, b] - thr[a, b]
                if m >= 0.0:
                    g = min(1.0, m / 0.12)
                    v = 35.0 + (tmax - 35.0) * g * (2.0 - g) - 12.0 * h1 * (1.0 - g) + 6.0 * (h2 - 0.5)
                    v = max(31.0, v)
                else:
                    g = max(0.0, 1.0 + m / 0.1)
                    v = 30.0 * g * g * h1
                    if h2 < 0.45:
                        v = 0.0
                    elif h2 > 0.97:  # scattered trees outside forest
                        v = max(v, 1.0 + 19.0 * h1)
                    v = min(v, 30.0)
            v = np.floor(v + 0.5)
            out[a, b] = np.uint8(min(100.0, max(0.0, v)))
    return out


# ---- loss, fire and gain patches -------------------------------------------------------

_LOSS_SMALL = 8
_LOSS_LARGE = 24
_GAIN_CELL = 20
# cell-existence multiplier of loss patches by driver code 0..7
_LOSS_MULT = np.array([0.12, 1.0, 0.7, 1.15, 0.95, 1.15, 0.5, 0.75])
# probability that a loss patch is fire-attributed, by driver code 0..7
_FIRE_P = np.array([0.05, 0.06, 0.04, 0.2, 0.08, 0.85, 0.04, 0.2])
# cumulative distribution of loss year 1..25 (slightly increasing trend)
_YEAR_CUM = np.cumsum(1.0 + 0.05 * np.arange(1, 26)) / np.sum(1.0 + 0.05 * np.arange(1, 26))


@njit(cache=True, nogil=True)
def _year_from_u(u):
    y = 25
    for k in range(25):
        if u < _YEAR_CUM[k]:
            y = k + 1
            break
    return y


@njit(cache=True, nogil=True)
def _blob_cells(key, dkey, i, j0, S, p, rmin, rmax, ex, cy, cx, rad2, year, fire):  # pragma: no cover
    """Disc parameters of the S-px cells (i, j0 + jj) of one cell row.

    With ``dkey != 0`` the existence probability ``p`` is scaled by the loss multiplier of the
    driver of the cell centre, and a loss year and fire flag are drawn per cell.
    """
    for jj in range(ex.shape[0]):
        j = j0 + jj
        h = _h2(key, i, j)
        d = 0
        pe = p
        if dkey != np.uint64(0):
            d = _driver_at(dkey, (i * S + S // 2) // _DRIVER_BLOCK, (j * S + S // 2) // _DRIVER_BLOCK)
            pe = p * _LOSS_MULT[d]
        ex[jj] = _unit(h) < pe
        if not ex[jj]:
            continue
        h1 = _mix(h ^ _G1)
        rad = rmin + (rmax - rmin) * _unit(h1)
        h2 = _mix(h1 ^ _G2)
        h3 = _mix(h2 ^ _G1)
        span = S - 2.0 * rad
        cy[jj] = rad + span * _unit(h2)
        cx[jj] = rad + span * _unit(h3)
        rad2[jj] = rad * rad
        h4 = _mix(h3 ^ _G2)
        year[jj] = _year_from_u(_unit(h4))
        h5 = _mix(h4 ^ _G1)
        fire[jj] = _unit(h5) < _FIRE_P[d]


@njit(cache=True, nogil=True)
def _in_disc(dy, xc, c, cy, cx, rad2, hrow):
    """Ragged-edged disc membership; the pixel hash is only drawn near the edge.

    ``dy`` is the pixel-centre row offset in its cell, ``xc`` the column offset.
    """
    dy = dy - cy
    dx = xc - cx
    d2 = (dy * dy + dx * dx) / rad2
    if d2 < 0.7:
        return True
    if d2 >= 1.3:
        return False
    return _unit(_mix(hrow ^ (np.uint64(c) * _G2))) > (d2 - 0.7) / 0.6


@njit(cache=True, nogil=True)
def _col_cells(cols, S):  # pragma: no cover - numba
    """Per column: index of its S-px cell relative to the first one, and centre offset in the cell."""
    j0 = cols[0] // S
    k = np.empty(cols.shape[0], np.int64)
    x = np.empty(cols.shape[0])
    for b in range(cols.shape[0]):
        j = cols[b] // S
        k[b] = j - j0
        x[b] = (cols[b] - j * S) + 0.5
    return j0, k, x


@njit(cache=True, nogil=True)
def _loss_kernel(loss, fire, key_s, key_l, dkey, hkey, rows, cols, tcd, scale):  # pragma: no cover - numba
    """Loss year (patches of 8-px and 24-px cells, radii times ``scale``) and tree-cover-loss-from-fire."""
    nr = rows.shape[0]
    nc = cols.shape[0]
    if nr == 0 or nc == 0:
        return loss, fire
    SL = _LOSS_LARGE
    SS = _LOSS_SMALL
    jl0, kl, xl = _col_cells(cols, SL)
    js0, ks, xs = _col_cells(cols, SS)
    nl = kl[nc - 1] + 1
    ns = ks[nc - 1] + 1
    exl = np.zeros(nl, np.bool_)
    cyl = np.zeros(nl)
    cxl = np.zeros(nl)
    r2l = np.ones(nl)
    yl = np.zeros(nl, np.int64)
    fl = np.zeros(nl, np.bool_)
    exs = np.zeros(ns, np.bool_)
    cys = np.zeros(ns)
    cxs = np.zeros(ns)
    r2s = np.ones(ns)
    ys = np.zeros(ns, np.int64)
    fs = np.zeros(ns, np.bool_)
    curl = np.int64(-1)
    curs = np.int64(-1)
    for a in range(nr):
        r = rows[a]
        il = r // SL
        if il != curl:
            curl = il
            _blob_cells(key_l, dkey, il, jl0, SL, 1.05, 2.0 * scale, 6.0 * scale, exl, cyl, cxl, r2l, yl, fl)
        is_ = r // SS
        if is_ != curs:
            curs = is_
            _blob_cells(key_s, dkey, is_, js0, SS, 0.55, 0.6 * scale, 2.6 * scale, exs, cys, cxs, r2s, ys, fs)
        dyl = (r - il * SL) + 0.5
        dys = (r - is_ * SS) + 0.5
        hr = _mix(hkey ^ (np.uint64(r) * _G1))
        for b in range(nc):
            if tcd[a, b] <= 5:
                continue
            c = cols[b]
            y = 0
            f = False
            k = kl[b]
            if exl[k] and _in_disc(dyl, xl[b], c, cyl[k], cxl[k], r2l[k], hr):
                y = yl[k]
                f = fl[k]
            else:
                k = ks[b]
                if exs[k] and _in_disc(dys, xs[b], c, cys[k], cxs[k], r2s[k], hr):
                    y = ys[k]
                    f = fs[k]
            if y == 0:
                continue
            hq = _mix(_mix(hr ^ (np.uint64(c) * _G2)) ^ _G1)
            uq = _unit(hq)
            if uq < 0.02:  # a few pixels of a patch were cleared a year earlier or later
                y = y + 1 if y < 25 else y - 1
            elif uq < 0.04:
                y = y - 1 if y > 1 else y + 1
            loss[a, b] = y
            if f:
                uf = _unit(_mix(hq ^ _G2))
                if uf < 0.85:
                    fy = y
                    if uf < 0.025:  # rare: fire year differs from the loss year
                        fy = y - 1 if y > 1 else y + 1
                    fire[a, b] = fy
    return loss, fire


@njit(cache=True, nogil=True)
def _gain_kernel(out, gkey, hkey, rows, cols, tcd, loss, ptype, pu, sea):  # pragma: no cover - numba
    """Gain patches (discs in 20-px cells) plus regrown rotation plantations."""
    nr = rows.shape[0]
    nc = cols.shape[0]
    if nr == 0 or nc == 0:
        return out
    S = _GAIN_CELL
    j0, kc, xc = _col_cells(cols, S)
    n = kc[nc - 1] + 1
    ex = np.zeros(n, np.bool_)
    cy = np.zeros(n)
    cx = np.zeros(n)
    r2 = np.ones(n)
    yy = np.zeros(n, np.int64)
    ff = np.zeros(n, np.bool_)
    cur = np.int64(-1)
    for a in range(nr):
        r = rows[a]
        i = r // S
        if i != cur:
            cur = i
            _blob_cells(gkey, np.uint64(0), i, j0, S, 0.2, 1.5, 6.5, ex, cy, cx, r2, yy, ff)
        dy = (r - i * S) + 0.5
        hr = _mix(hkey ^ (np.uint64(r) * _G1))
        for b in range(nc):
            if sea[a, b]:
                continue
            c = cols[b]
            regrown = ptype[a, b] >= 2 and pu[a, b] >= 0.6 and pu[a, b] < 0.8
            if regrown and _unit(_mix(hr ^ (np.uint64(c) * _G2) ^ _G1)) > 0.15:
                out[a, b] = 1  # rotation plantation regrown over 2000-2020
                continue
            if tcd[a, b] < 60 or loss[a, b] > 0:
                k = kc[b]
                if ex[k] and _in_disc(dy, xc[b], c, cy[k], cx[k], r2[k], hr):
                    out[a, b] = 1
    return out


# ---- zones (continent-ecozone, climate domain, IPCC climate zone) -----------------------

# codes (continent digit × 1000 + ecozone index) with an IPCC Table 4.9 row or fallback
_TROP_SUB_TEMP = tuple(range(6, 22))  # ecozone indices 6..21 (subtropical, temperate, tropical)
_VALID_ZONES = {
    1: _TROP_SUB_TEMP,  # Africa
    2: (1, 2, 3, *_TROP_SUB_TEMP),  # Asia
    4: (1, 2, 3, *_TROP_SUB_TEMP),  # North America
    5: _TROP_SUB_TEMP,  # South America
    6: _TROP_SUB_TEMP,  # Oceania
    7: (1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15),  # Europe
    8: (8, 11, 13, 14),  # New Zealand
}
_VALID_CODES = frozenset(cont * 1000 + z for cont, zones in _VALID_ZONES.items() for z in zones)
_ANTARCTIC_CODE = 3005  # polar; no forest there


def _remap_table() -> np.ndarray:
    """code → code actually emitted (invalid combinations mapped to a valid neighbour)."""
    tab = np.zeros(9000, np.int16)
    for cont in range(1, 9):
        for z in range(1, 23):
            code = cont * 1000 + z
            if code in _VALID_CODES:
                tab[code] = code
                continue
            if cont == 8:  # New Zealand rows: 8008 subtropical, 8011/8013/8014 temperate
                alt = 8013 if z in (2, 9, 13, 19) else (8011 if z in (1, 3, 11, 15, 12) else 8014)
                alt = 8008 if z in (6, 7, 10, 16, 17, 18, 20, 21) else alt
            elif cont == 7 and z == 6:
                alt = 7010
            elif z in (1, 2, 3, 5):  # boreal where the continent has none → temperate
                alt = cont * 1000 + (13 if z == 2 else 11)
            else:
                alt = 0
            tab[code] = alt if alt in _VALID_CODES else 0
    tab[_ANTARCTIC_CODE] = _ANTARCTIC_CODE
    return tab


_ECO_REMAP = _remap_table()


@njit(cache=True, nogil=True)
def _continent(lat, lon):
    if lat < -60.0:
        return 3
    if lon < -25.0:
        if lon < -168.0 and lat < 0.0:
            return 6
        return 4 if lat >= 8.0 else 5
    if lat >= 36.0 and lon < 40.0:
        return 7
    if lat >= 45.0 and lon < 60.0:
        return 7
    if lon < 52.0 and lat < 37.0:
        if lon >= 36.0 and lat >= 12.0:
            return 2
        return 1
    if lat < -10.0:
        if lon >= 165.0 and lat < -33.0:
            return 8
        return 6
    return 2


@njit(cache=True, nogil=True)
def _zones_kernel(lat, lon, u_z, u_eco, psm, elev, u_cz1, u_cz2, u_cz3, hole_e, hole_d, hole_z):  # pragma: no cover
    """Continent-ecozone code, climate domain and IPCC climate zone on a (coarse) grid."""
    nr = lat.shape[0]
    nc = lon.shape[0]
    eco = np.zeros((nr, nc), np.int16)
    dom = np.zeros((nr, nc), np.int16)
    cz = np.zeros((nr, nc), np.uint8)
    for a in range(nr):
        la = lat[a]
        alat = abs(la)
        for b in range(nc):
            cont = _continent(la, lon[b])
            ae = alat + 6.0 * (u_z[a, b] - 0.5)
            w = 0.55 * min(1.0, max(0.0, (psm[a, b] - 200.0) / 2600.0)) + 0.45 * u_eco[a, b]
            e = elev[a, b]
            if cont == 3:
                code = 3005
                d = 2
            elif ae < 22.5:  # tropical
                d = 1
                if e > 1300:
                    z = 19
                elif w < 0.12:
                    z = 16
                elif w < 0.25:
                    z = 21
                elif w < 0.42:
                    z = 17
                elif w < 0.58:
                    z = 18
                else:
                    z = 20
                code = cont * 1000 + z
            elif ae < 27.5:  # subtropical
                d = 1
                if e > 1300:
                    z = 9
                elif w < 0.15:
                    z = 6
                elif w < 0.32:
                    z = 10
                elif w < 0.55:
                    z = 7
                else:
                    z = 8
                code = cont * 1000 + z
            elif ae < 52.0 or la < 0.0:  # temperate (no boreal zone in the south)
                d = 3
                if e > 1300:
                    z = 13
                elif w < 0.12:
                    z = 12
                elif w < 0.28:
                    z = 15
                elif w < 0.6:
                    z = 11
                else:
                    z = 14
                code = cont * 1000 + z
            else:  # boreal
                d = 2
                if ae >= 68.5:
                    z = 3
                elif e > 900:
                    z = 2
                else:
                    z = 1
                code = cont * 1000 + z
            code = _ECO_REMAP[code]
            if code != 0 and code != 3005:
                zi = code % 1000
                if zi <= 5:
                    d = 2
                elif zi <= 10 or zi >= 16:
                    d = 1
                else:
                    d = 3
            if hole_e[a, b]:
                code = 0
            eco[a, b] = code
            # IPCC climate zone consistent with the domain
            if d == 1:
                if u_cz3[a, b] > 0.84 or e > 1500:
                    k = 9
                else:
                    pw = psm[a, b] * (0.55 + 0.9 * u_cz1[a, b])
                    k = 10 if pw > 2000.0 else (11 if pw > 1000.0 else 12)
            elif d == 3:
                cool = u_cz2[a, b] > min(0.85, max(0.15, 0.78 - (ae - 28.0) / 25.0))
                dry = u_cz1[a, b] < min(0.75, max(0.2, 0.75 - (psm[a, b] - 500.0) / 1600.0))
                k = (3 if cool else 1) + (1 if dry else 0)
            else:
                polar = u_cz2[a, b] > min(0.9, max(0.1, 0.75 - (ae - 62.0) / 20.0))
                dry = u_cz1[a, b] < 0.4
                k = (5 if polar else 7) + (1 if dry else 0)
            dom[a, b] = 0 if hole_d[a, b] else d
            cz[a, b] = 0 if hole_z[a, b] else k
    return eco, dom, cz


# --------------------------------------------------------------------------------------
# Smooth climatologies (functions of latitude / longitude)
# --------------------------------------------------------------------------------------

_P_BASE_LAT = np.array([0.0, 10.0, 20.0, 27.0, 35.0, 45.0, 55.0, 65.0, 75.0, 90.0])
_P_BASE_MM = np.array([2200.0, 1500.0, 900.0, 750.0, 850.0, 750.0, 600.0, 450.0, 300.0, 150.0])
_PET_LAT = np.array([0.0, 30.0, 50.0, 70.0, 90.0])
_PET_MM = np.array([1500.0, 1300.0, 700.0, 350.0, 250.0])
# dry belts: (lat0, lat1, lon0, lon1)
_DRY_BOXES = (
    (15.0, 32.0, -17.0, 58.0),  # Sahara / Arabia
    (0.0, 14.0, 38.0, 52.0),  # Horn of Africa
    (-28.0, -18.0, 12.0, 25.0),  # Kalahari / Namib
    (-32.0, -19.0, 118.0, 145.0),  # inland Australia
    (24.0, 38.0, -117.0, -102.0),  # SW North America
    (36.0, 48.0, 50.0, 105.0),  # Central Asia
    (-28.0, -15.0, -72.0, -68.0),  # Atacama
)


def _ramp(d: np.ndarray) -> np.ndarray:
    return np.clip(d / 2.0, 0.0, 1.0)


def _precip_base(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Smooth climatological precipitation (mm/yr) on the (lat × lon) grid."""
    base = np.interp(np.abs(lat), _P_BASE_LAT, _P_BASE_MM)
    inside = np.zeros((lat.size, lon.size))
    for la0, la1, lo0, lo1 in _DRY_BOXES:
        rr = np.minimum(_ramp(lat - la0), _ramp(la1 - lat))
        cc = np.minimum(_ramp(lon - lo0), _ramp(lo1 - lon))
        inside = np.maximum(inside, np.minimum(rr[:, None], cc[None, :]))
    return base[:, None] * (1.0 - 0.65 * inside)


def _forest_fraction(psm: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Target forest fraction from a moisture index and a polar/antarctic fade."""
    alat = np.abs(lat)
    pet = np.interp(alat, _PET_LAT, _PET_MM)
    mi = psm / pet[:, None]
    fr = np.clip(0.05 + 0.6 * (mi - 0.2), 0.08, 0.72)
    fade = np.interp(alat, [0.0, 66.0, 74.0, 78.0, 90.0], [1.0, 1.0, 0.2, 0.0, 0.0])
    fade = np.where(lat < -56.0, 0.0, fade)
    return fr * fade[:, None]


def _interp_lat(lat: np.ndarray, xs, ys) -> np.ndarray:
    return np.interp(np.abs(lat), np.asarray(xs, float), np.asarray(ys, float))


# --------------------------------------------------------------------------------------
# The generator context
# --------------------------------------------------------------------------------------

_T_SEA = 0.05  # u_sea below: sea (all land layers nodata)
_T_COAST = 0.10  # u_sea in [_T_SEA, _T_COAST): coastal fringe (mangroves in the (sub)tropics)
_T_MANG = 0.5  # mangrove patch threshold on u_mang
_FAR_SEA = 0.008  # u_sea below: zonal layers are 0 too (rare nodata holes)
_ZONE_GRID = 8
_KM_GRID = 40
_SOIL_GRID = 9
_EUROPE = (35.0, 71.0, -10.0, 40.0)  # lat0, lat1, lon0, lon1
_CONUS = (25.0, 49.0, -125.0, -67.0)


def _hash_grid(key, ri: np.ndarray, ci: np.ndarray) -> np.ndarray:
    out = np.empty((ri.size, ci.size), np.float32)
    _hash_kernel(out, key, ri, ci)
    return out


class _Axes:
    """Global row/col indices of a grid (pixels, or centres of aligned G-px cells)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, g: int):
        self.g = g
        if g == 1:
            self.rows, self.cols = rows, cols
            self.inv_r = self.inv_c = None
        else:
            cr = rows // g
            cc = cols // g
            self.inv_r = cr - (cr[0] if cr.size else 0)
            self.inv_c = cc - (cc[0] if cc.size else 0)
            self.rows = np.unique(cr) * g + g // 2
            self.cols = np.unique(cc) * g + g // 2
        self.lat = 90.0 - (self.rows + 0.5) * PIXEL_DEG
        self.lon = -180.0 + (self.cols + 0.5) * PIXEL_DEG

    def snap(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices snapped to the centres of aligned s-px cells (s a multiple of g)."""
        return (self.rows // s) * s + s // 2, (self.cols // s) * s + s // 2


class _Ctx:
    """Lazily computed, memoised fields of one block."""

    def __init__(self, row0: int, row1: int, col0: int, col1: int, seed: int, loss_scale: float = 1.0):
        self.seed = int(seed)
        self.loss_scale = float(loss_scale)
        self.rows = np.arange(row0, row1, dtype=np.int64)
        self.cols = np.arange(col0, col1, dtype=np.int64)
        self.shape = (row1 - row0, col1 - col0)
        self._axes: dict[int, _Axes] = {}
        self._memo: dict[str, object] = {}

    # ---- infrastructure -------------------------------------------------------------
    def ax(self, g: int = 1) -> _Axes:
        if g not in self._axes:
            self._axes[g] = _Axes(self.rows, self.cols, g)
        return self._axes[g]

    def get(self, name: str):
        if name not in self._memo:
            self._memo[name] = getattr(self, "_f_" + name)()
        return self._memo[name]

    def fbm(self, name, scales, weights, g=1, snap=None) -> np.ndarray:
        """Approximately uniform fBm field on grid g (optionally snapped to s-px cells)."""
        memo = f"fbm:{name}:{scales}:{g}:{snap}"
        if memo in self._memo:
            return self._memo[memo]
        ax = self.ax(g)
        rows, cols = (ax.rows, ax.cols) if snap is None else ax.snap(snap)
        keys = np.array([_key(self.seed, name, k) for k in range(len(scales))], dtype=np.uint64)
        w = np.asarray(weights, dtype=np.float64)
        inv_sigma = 1.0 / (_SIGMA1 * math.sqrt(float(np.sum(w * w))))
        out = np.empty((rows.size, cols.size), np.float32)
        _fbm_kernel(out, keys, np.asarray(scales, dtype=np.int64), w, rows, cols, inv_sigma)
        self._memo[memo] = out
        return out

    def hashu(self, name, g=1, cell=1) -> np.ndarray:
        """Uniform [0, 1) per pixel of grid g (or per aligned `cell`-px cell)."""
        ax = self.ax(g)
        return _hash_grid(_key(self.seed, name), ax.rows // cell, ax.cols // cell)

    def expand(self, small: np.ndarray, g: int) -> np.ndarray:
        if g == 1:
            return small
        ax = self.ax(g)
        out = np.empty((ax.inv_r.size, ax.inv_c.size), small.dtype)
        _expand_kernel(out, small, ax.inv_r, ax.inv_c)
        return out

    @property
    def lat(self) -> np.ndarray:
        return self.ax(1).lat

    @property
    def lon(self) -> np.ndarray:
        return self.ax(1).lon

    def lat_range(self) -> tuple[float, float]:
        lat = self.lat
        return (float(np.abs(lat).min()), float(np.abs(lat).max())) if lat.size else (0.0, 0.0)

    def box(self, bounds, g: int = 1) -> np.ndarray:
        """Boolean (lat × lon) mask of a lat/lon box on grid g."""
        la0, la1, lo0, lo1 = bounds
        ax = self.ax(g)
        rr = (ax.lat >= la0) & (ax.lat < la1)
        cc = (ax.lon >= lo0) & (ax.lon < lo1)
        return rr[:, None] & cc[None, :]

    # ---- land / sea / relief -------------------------------------------------------------
    def _u_sea(self, g=1):
        return self.fbm("sea", (1536, 384, 96), (1.0, 0.85, 0.7), g=g)

    def _f_u_sea(self):
        return self._u_sea(1)

    def _f_sea(self):
        return self.get("u_sea") < _T_SEA

    def _f_coast(self):
        u = self.get("u_sea")
        return (u >= _T_SEA) & (u < _T_COAST)

    def _elev(self, g):
        u = self.fbm("relief", (6000, 1500, 400, 100, 25), (1.0, 0.5, 0.35, 0.2, 0.1), g=g)
        pk = self.fbm("peaks", (800, 200, 50), (1.0, 0.4, 0.2), g=g)
        out = np.zeros(u.shape, np.int16)
        _elev_kernel(out, u, pk, self._u_sea(g), _T_SEA)
        return out

    def _f_elevation(self):
        return self._elev(1)

    def _f_elev_zone(self):
        return self._elev(_ZONE_GRID)

    # ---- climate -------------------------------------------------------------------------
    def _psmooth(self, g):
        ax = self.ax(g)
        wet = self.fbm("wet", (24000, 6000), (1.0, 0.5), g=g).astype(np.float64)
        return _precip_base(ax.lat, ax.lon) * (0.7 + 0.6 * wet)

    def _f_psmooth_zone(self):
        return self._psmooth(_ZONE_GRID)

    def _f_precip_km(self):
        g = _KM_GRID
        u = self.fbm("precip_mid", (800, 200), (1.0, 0.5), g=g).astype(np.float64)
        p = self._psmooth(g) * (0.35 + 1.3 * u)
        return np.clip(np.floor(p + 0.5), 200, 4000).astype(np.int32)

    def _f_precipitation(self):
        p = self.expand(self.get("precip_km"), _KM_GRID)
        p[self.get("sea")] = 0
        return p

    def _f_zones(self):
        g = _ZONE_GRID
        ax = self.ax(g)
        u_z = self.fbm("zone_fuzz", (24000, 6000, 500, 125), (1.0, 0.5, 0.45, 0.25), g=g)
        u_eco = self.fbm("ecozone", (700, 175), (1.0, 0.5), g=g)
        sub = dict(g=g, snap=_KM_GRID)
        u1 = self.fbm("cz_moist", (400, 100), (1.0, 0.5), **sub)
        u2 = self.fbm("cz_cool", (400, 100), (1.0, 0.5), **sub)
        u3 = self.fbm("cz_montane", (300, 80), (1.0, 0.5), **sub)
        far = self._u_sea(g) < _FAR_SEA
        kr, kc = ax.rows // _KM_GRID, ax.cols // _KM_GRID
        hd = _hash_grid(_key(self.seed, "hole_domain"), kr, kc) < 0.003
        hz = _hash_grid(_key(self.seed, "hole_zone"), kr, kc) < 0.003
        eco, dom, cz = _zones_kernel(
            ax.lat,
            ax.lon,
            u_z,
            u_eco,
            self.get("psmooth_zone"),
            self.get("elev_zone"),
            u1,
            u2,
            u3,
            far,
            far | hd,
            far | hz,
        )
        return eco, dom, cz

    def _f_continent_ecozone(self):
        return self.expand(self.get("zones")[0], _ZONE_GRID)

    def _f_climate_domain(self):
        return self.expand(self.get("zones")[1], _ZONE_GRID)

    def _f_climate_zone(self):
        return self.expand(self.get("zones")[2], _ZONE_GRID)

    # ---- forest structure ------------------------------------------------------------------
    def _f_forest_thr(self):
        g = _ZONE_GRID
        fr = _forest_fraction(self.get("psmooth_zone"), self.ax(g).lat)
        return self.expand((1.0 - fr).astype(np.float32), g)

    def _f_mangrove_t(self):
        """Mangrove intensity in (0, 1] on mangrove pixels, 0 elsewhere."""
        lo, _ = self.lat_range()
        us = self.get("u_sea")
        if lo >= 32.0 or not _any_in_range(us, _T_SEA, _T_COAST):
            return np.zeros(self.shape, np.float32)
        um = self.fbm("mangrove", (96, 24), (1.0, 0.5))
        out = np.zeros(self.shape, np.float32)
        _mangrove_kernel(out, us, um, self.lat, _T_SEA, _T_COAST, _T_MANG)
        return out

    def _plant(self, sel_a, sel_b):
        out = (np.zeros(self.shape, np.uint8), np.zeros(self.shape, np.float32), np.zeros(self.shape, np.float32))
        _plant_kernel(
            *out,
            _key(self.seed, "plantation"),
            self.rows,
            self.cols,
            self.get("sea"),
            self.get("mangrove_t"),
            sel_a,
            sel_b,
        )
        return out

    def _f_plant_ac(self):
        return self._plant(1, 3)

    def _f_plantation_type(self):
        return self.get("plant_ac")[0]

    def _f_plant_ua(self):
        return self.get("plant_ac")[1]

    def _f_plant_uc(self):
        return self.get("plant_ac")[2]

    def _f_plant_ub(self):
        return self._plant(2, 2)[1]

    def _f_tcd2000(self):
        u_f = self.fbm("forest", (1024, 256, 64, 16), (1.0, 0.6, 0.4, 0.25))
        tmax = _interp_lat(self.lat, [0, 25, 45, 60, 72, 90], [99, 97, 94, 85, 75, 60])
        out = np.zeros(self.shape, np.uint8)
        _tcd_kernel(
            out,
            u_f,
            self.get("forest_thr"),
            tmax,
            _key(self.seed, "tcd_pix"),
            self.rows,
            self.cols,
            self.get("plantation_type"),
            self.get("plant_ua"),
            self.get("mangrove_t"),
            self.get("sea"),
        )
        return out

    def _agb_base(self, lat):
        return _interp_lat(lat, [0, 20, 30, 45, 55, 65, 75, 90], [245, 230, 175, 170, 115, 85, 55, 40])

    def _f_agb_2000(self):
        ub = self.expand(self.fbm("biomass", (2000, 500, 125), (1.0, 0.5, 0.25), g=_ZONE_GRID), _ZONE_GRID)
        out = np.zeros(self.shape, np.int16)
        _agb_kernel(
            out, self.get("tcd2000"), ub, self._agb_base(self.lat), _key(self.seed, "agb_pix"), self.rows, self.cols
        )
        return out

    def _f_agb_2000_jpl(self):
        g = _KM_GRID
        ax = self.ax(g)
        uf = self.fbm("forest", (1024, 256), (1.0, 0.6), g=g).astype(np.float64)
        fr = _forest_fraction(self._psmooth(g), ax.lat)
        cover = np.clip((uf - (1.0 - fr) + 0.15) / 0.3, 0.0, 1.0)
        ub = self.fbm("biomass", (2000, 500, 125), (1.0, 0.5, 0.25), g=g).astype(np.float64)
        v = self._agb_base(ax.lat)[:, None] * cover * (0.55 + 0.9 * ub) * 0.9
        v[(v < 2.0) | (self._u_sea(g) < _T_SEA)] = 0.0
        return self.expand(v.astype(np.float32), g)

    def _f_mangrove_agb_2000(self):
        out = np.zeros(self.shape, np.float32)
        _mangrove_agb_kernel(out, self.get("mangrove_t"), _key(self.seed, "mangrove_pix"), self.rows, self.cols)
        return out

    def _f_drivers_km(self):
        ax = self.ax(_KM_GRID)
        return _driver_kernel(_key(self.seed, "drivers"), ax.rows // _KM_GRID, ax.cols // _KM_GRID)

    def _f_drivers(self):
        d = self.expand(self.get("drivers_km"), _KM_GRID)
        return d

    def _f_loss(self):
        out = (np.zeros(self.shape, np.uint8), np.zeros(self.shape, np.uint8))
        _loss_kernel(
            *out,
            _key(self.seed, "loss_small"),
            _key(self.seed, "loss_large"),
            _key(self.seed, "drivers"),
            _key(self.seed, "loss_pix"),
            self.rows,
            self.cols,
            self.get("tcd2000"),
            self.loss_scale,
        )
        return out

    def _f_loss_year(self):
        return self.get("loss")[0]

    def _f_tclf(self):
        return self.get("loss")[1]

    def _f_gain(self):
        out = np.zeros(self.shape, np.uint8)
        _gain_kernel(
            out,
            _key(self.seed, "gain"),
            _key(self.seed, "gain_pix"),
            self.rows,
            self.cols,
            self.get("tcd2000"),
            self.get("loss_year"),
            self.get("plantation_type"),
            self.get("plant_uc"),
            self.get("sea"),
        )
        return out

    def _f_plantation_pre2000(self):
        ptype = self.get("plantation_type")
        trop = (np.abs(self.lat) < 30.0)[:, None]
        return ((ptype > 0) & trop & (self.get("plant_uc") < 0.4)).astype(np.uint8)

    def _planted(self, sd, div):
        ptype = self.get("plantation_type")
        ub = self.get("plant_ub") if sd else np.zeros((1, 1), np.float32)
        out = np.zeros(self.shape, np.float32)
        _planted_kernel(out, ptype, self.get("plant_ua"), ub, sd, div)
        return out

    def _f_rf_agc_bgc_planted(self):
        return self._planted(False, 1.0)

    def _f_rf_stdev_agc_bgc_planted(self):
        return self._planted(True, 1.0)

    def _f_rf_agc_planted(self):
        return self._planted(False, 1.26)

    def _f_rf_stdev_agc_planted(self):
        return self._planted(True, 1.26)

    def _f_ifl_primary(self):
        u = self.fbm("ifl", (1600, 400), (1.0, 0.5))
        thr = _interp_lat(self.lat, [0, 25, 30, 50, 55, 90], [0.55, 0.55, 0.75, 0.75, 0.6, 0.6])
        ptype = self.get("plantation_type")
        ok = (u > thr[:, None].astype(np.float32)) & (self.get("tcd2000") > 50) & (ptype == 0)
        return ok.astype(np.uint8)

    def _f_peat(self):
        g = _ZONE_GRID
        ax = self.ax(g)
        u = self.fbm("peat", (600, 150, 40), (1.0, 0.5, 0.25), g=g)
        e = self.get("elev_zone")
        us = self._u_sea(g)
        alat = np.abs(ax.lat)[:, None]
        wet = self.get("psmooth_zone") > 1500.0
        trop = (alat < 25.0) & wet & (u > 0.76) & ((e < 120) | (us < 0.2))
        bor = (alat > 50.0) & (u > 0.7) & (e < 600)
        peat = self.expand((trop | bor).astype(np.uint8), g)
        peat[self.get("sea")] = 0
        return peat

    def _f_soil_c_2000(self):
        g = _SOIL_GRID
        ax = self.ax(g)
        u = self.fbm("soil", (3000, 600, 120), (1.0, 0.5, 0.3), g=g).astype(np.float64)
        base = _interp_lat(ax.lat, [0, 25, 40, 55, 70, 90], [60, 55, 70, 100, 120, 90])
        v = np.clip(np.floor(base[:, None] * (0.45 + 1.1 * u) + 0.5), 20, 250)
        v[self.hashu("soil_hole", g=g) < 0.01] = 0
        v = self.expand(v.astype(np.int16), g)
        t = self.get("mangrove_t")
        if np.any(t > 0):
            h = self.hashu("soil_mang").astype(np.float64)
            vm = np.floor(200.0 + 250.0 * t + 30.0 * h + 0.5).astype(np.int16)
            v = np.where(t > 0, vm, v)
        v[self.get("sea")] = 0
        return v

    def _f_bgb_agb_ratio(self):
        g = _KM_GRID
        ax = self.ax(g)
        u = self.fbm("root_shoot", (6000, 1500, 400), (1.0, 0.5, 0.25), g=g).astype(np.float64)
        base = _interp_lat(ax.lat, [0, 20, 40, 55, 90], [0.22, 0.24, 0.27, 0.31, 0.35])
        v = np.clip(base[:, None] * (0.75 + 0.5 * u), 0.15, 0.6)
        v[self.hashu("root_shoot_hole", g=g) < 0.003] = 0.0
        return self.expand(v.astype(np.float32), g)

    def _f_young_km(self):
        g = _KM_GRID
        ax = self.ax(g)
        u = self.fbm("young_rate", (1500, 400), (1.0, 0.5), g=g).astype(np.float64)
        base = _interp_lat(ax.lat, [0, 20, 30, 50, 60, 70, 90], [2.8, 2.6, 1.8, 1.5, 0.9, 0.6, 0.4])
        rate = np.clip(base[:, None] * (0.45 + 1.1 * u), 0.2, 5.0)
        sd = rate * (0.1 + 0.3 * self.hashu("young_sd", g=g).astype(np.float64))
        absent = (self._u_sea(g) < _T_SEA) | ((ax.lat > 72.0) | (ax.lat < -56.0))[:, None]
        rate[absent] = 0.0
        sd[absent] = 0.0
        nan = (self.hashu("young_nan", g=g) < 0.02) & ~absent
        rate[nan] = np.nan
        sd[nan] = np.nan
        return rate.astype(np.float32), sd.astype(np.float32)

    def _f_rf_agc_young(self):
        return self.expand(self.get("young_km")[0], _KM_GRID)

    def _f_rf_stdev_agc_young(self):
        return self.expand(self.get("young_km")[1], _KM_GRID)

    def _f_europe_km(self):
        g = _KM_GRID
        inside = self.box(_EUROPE, g) & (self._u_sea(g) >= _T_SEA)
        if not inside.any():
            z = np.zeros(inside.shape, np.float32)
            return z, z
        u = self.fbm("europe_rate", (3000, 750), (1.0, 0.5), g=g).astype(np.float64)
        rate = 1.0 + 5.0 * u
        sd = 2.0 * rate * (0.12 + 0.2 * self.hashu("europe_sd", g=g).astype(np.float64))
        rate[~inside] = 0.0
        sd[~inside] = 0.0
        return rate.astype(np.float32), sd.astype(np.float32)

    def _f_rf_agc_bgc_europe(self):
        return self.expand(self.get("europe_km")[0], _KM_GRID)

    def _f_rf_stdev_agc_bgc_europe(self):
        return self.expand(self.get("europe_km")[1], _KM_GRID)

    def _f_us(self):
        g = _ZONE_GRID
        ax = self.ax(g)
        inside = self.box(_CONUS, g) & (self._u_sea(g) >= _T_SEA)
        zero = np.zeros(inside.shape, np.uint8)
        if not inside.any():
            return zero, zero, zero
        fz = self.fbm("fia_fuzz", (8000, 2000), (1.0, 0.5), g=g).astype(np.float64)
        jit = 2.0 * (fz - 0.5)
        lat = ax.lat[:, None] + jit
        lon = ax.lon[None, :] + jit
        lat_band = (lat >= 33.0).astype(np.int64) + (lat >= 41.0)
        lon_band = (lon >= -104.0).astype(np.int64) + (lon >= -88.0)
        region = (1 + 3 * lat_band + lon_band).astype(np.uint8)
        ug = self.fbm("fia_group", (400, 100), (1.0, 0.5), g=g)
        idx = np.clip((ug * 16.0).astype(np.int64), 0, 15)
        group = np.asarray(US_FOREST_GROUP_CODES, np.uint8)[idx]
        ua = self.fbm("us_age", (300, 75), (1.0, 0.5), g=g)
        age = np.where(ua < 0.3, 1, np.where(ua < 0.8, 2, 3)).astype(np.uint8)
        return (np.where(inside, region, zero), np.where(inside, group, zero), np.where(inside, age, zero))

    def _us_layer(self, k):
        v = self.expand(self.get("us")[k], _ZONE_GRID)
        v[self.get("sea")] = 0
        return v

    def _f_fia_region(self):
        return self._us_layer(0)

    def _f_fia_forest_group(self):
        return self._us_layer(1)

    def _f_us_age_category(self):
        return self._us_layer(2)

    def _f_pixel_area(self):
        lat_top = (N_GLOBAL_ROWS // 2 - np.asarray(self.rows, dtype=np.float64)) / (1.0 / PIXEL_DEG)
        areas = pixel_area_m2(lat_top).astype(np.float32)
        return np.repeat(areas[:, None], self.shape[1], axis=1)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _check_layer(layer: str) -> None:
    if layer not in DEMO_LAYERS:
        raise KeyError(f"unknown demo layer {layer!r}; known layers: {sorted(DEMO_LAYERS)}")


def _check_bounds(row0: int, row1: int, col0: int, col1: int) -> None:
    if not (0 <= row0 <= row1 <= N_GLOBAL_ROWS and 0 <= col0 <= col1 <= N_GLOBAL_COLS):
        raise ValueError(
            f"block rows [{row0}, {row1}) × cols [{col0}, {col1}) is not inside the global grid "
            f"[0, {N_GLOBAL_ROWS}) × [0, {N_GLOBAL_COLS})"
        )


def demo_blocks(layers, row0: int, row1: int, col0: int, col1: int, *, seed: int = 0,
                loss_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Several synthetic layers of one block, sharing intermediate fields.

    Gives exactly the same arrays as calling `demo_block` once per layer, faster.
    The numba kernels release the GIL, so blocks can be generated in parallel threads.

    Parameters
    ----------
    layers : iterable of str
        Layer names (keys of `DEMO_LAYERS`).
    row0, row1, col0, col1 : int
        Global pixel bounds, rows ``[row0, row1)`` and columns ``[col0, col1)``.
    seed : int, optional
        Seed of the synthetic world (default 0).
    loss_scale : float, optional
        Factor on the radius of the loss patches (1: about 10 % of the pixels of a forested window
        have loss and carbon; 1.5: about 22 %, the share of the tile the original's emissions
        program was timed on). At most 1.5, so that a patch fits its cell.

    Returns
    -------
    dict of str to numpy.ndarray
        Layer name → array of shape ``(row1 - row0, col1 - col0)`` and dtype
        ``DEMO_LAYERS[name]``.

    Raises
    ------
    KeyError
        For an unknown layer name (the message lists the known layers).
    ValueError
        If the block is not inside the global grid.

    Notes
    -----
    Intermediate fields are kept until the call returns: peak memory is about 35 bytes per
    pixel for one layer and 140 bytes per pixel for all layers (75 of them the result).
    """
    layers = list(layers)
    for name in layers:
        _check_layer(name)
    row0, row1, col0, col1 = int(row0), int(row1), int(col0), int(col1)
    _check_bounds(row0, row1, col0, col1)
    if not 0.0 < loss_scale <= 1.5:
        raise ValueError(f"loss_scale must be in (0, 1.5], not {loss_scale}")
    ctx = _Ctx(row0, row1, col0, col1, seed, loss_scale)
    out = {}
    for name in layers:
        dtype = DEMO_LAYERS[name]
        if ctx.shape[0] == 0 or ctx.shape[1] == 0:
            out[name] = np.zeros(ctx.shape, dtype)
            continue
        arr = np.ascontiguousarray(ctx.get(name), dtype=dtype)
        out[name] = arr.copy() if any(arr is v for v in out.values()) else arr
    return out


def demo_block(layer: str, row0: int, row1: int, col0: int, col1: int, *, seed: int = 0,
               loss_scale: float = 1.0) -> np.ndarray:
    """Synthetic values of one raw input layer for a block of the global grid.

    The result is a pure function of ``(layer, row, col, seed)``: any decomposition of a
    window into sub-blocks gives exactly the same values.

    Parameters
    ----------
    layer : str
        Layer name, one of `DEMO_LAYERS`.
    row0, row1 : int
        Global rows ``[row0, row1)``; row 0 is the pixel row whose top edge is 90°N.
    col0, col1 : int
        Global columns ``[col0, col1)``; column 0 is the pixel column whose left edge is 180°W.
    seed : int, optional
        Seed of the synthetic world (default 0).
    loss_scale : float, optional
        Factor on the radius of the loss patches (:func:`demo_blocks`).

    Returns
    -------
    numpy.ndarray
        Array of shape ``(row1 - row0, col1 - col0)`` and dtype ``DEMO_LAYERS[layer]``;
        0 is nodata.

    Raises
    ------
    KeyError
        For an unknown layer name (the message lists the known layers).
    ValueError
        If the block is not inside the global grid.

    Examples
    --------
    >>> r0, r1, c0, c1 = demo_window("00N_110E", 100)
    >>> demo_block("tcd2000", r0, r1, c0, c1).shape
    (100, 100)
    """
    _check_layer(layer)
    return demo_blocks([layer], row0, row1, col0, col1, seed=seed, loss_scale=loss_scale)[layer]
