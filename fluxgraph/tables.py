"""Removal-factor tables: read the original's workbooks or the project's CSVs, build kernel lookups.

The original model reads its default removal factors from an Excel workbook
(``gain_rate_continent_ecozone_age_*.xlsx``, spec/inputs.md §3.1) and, for the US
pre-stage, from ``ICLEI R factors_…xlsx`` (§3.2). This module reads those workbooks
with exactly the original's sheet and column names, or the project's CSV tables
(same columns plus evidence columns that are carried along but unused), and turns
them into the dense lookup arrays the numba kernels of :mod:`fluxgraph.kernels` take.

Every lookup is built the way the original builds its Python dictionaries
(spec/stages.md §3, §4, §6, §7, §11): de-duplication on ``gainEcoCon`` keeping the
first row, blank cells dropped (IPCC, US) or kept as NaN (age stage, mangroves),
key 0 (and 10000/20000/30000 for IPCC) set to 0, later keys overwriting earlier ones.
Pass-through lookups are densified by replaying the original's sequential in-place
replacement (``arr[arr == key] = value`` over the dictionary in insertion order) on
every float32 code 0…65535, so even chained replacements are reproduced.

Public API
----------
RemovalTables
    Frozen dataclass of dense lookups (value array + uint8 "has key" array) and the
    sheets they were built from.
load_removal_tables
    ``None`` → shipped defaults; ``.xlsx`` → original workbook; folder → project
    CSVs (one per sheet); ``.csv`` → one combined project CSV.
build_removal_tables
    Build :class:`RemovalTables` from sheet DataFrames.
missing_codes
    Continent-ecozone codes of a raster that a table does not cover.
write_removal_csvs
    Write sheets as project CSVs (one per sheet, or one combined file).
dense_lookup
    Densify an ordered mapping (exposed for tests and custom tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from fluxgraph.errors import TableError

__all__ = [
    "CSV_FILES",
    "DEFAULT_TABLE_DIR",
    "SHEET_COLUMNS",
    "SHEET_MANGROVE_GAIN",
    "SHEET_MANGROVE_STDEV",
    "SHEET_NATURAL_GAIN",
    "SHEET_NATURAL_GAIN_NO_PRIM",
    "SHEET_NATURAL_STDEV",
    "SHEET_NATURAL_STDEV_NO_PRIM",
    "SHEET_US",
    "TABLE_SIZE",
    "RemovalTables",
    "build_removal_tables",
    "dense_lookup",
    "load_removal_tables",
    "missing_codes",
    "write_removal_csvs",
]

#: Length of every dense lookup: any int16 / uint16 code (and CE + 30000) indexes safely.
TABLE_SIZE = 65536

SHEET_NATURAL_GAIN = "natrl fores gain, for std model"
SHEET_NATURAL_STDEV = "natrl fores stdv, for std model"
SHEET_NATURAL_GAIN_NO_PRIM = "natrl fores gain, no_prim_gain"
SHEET_NATURAL_STDEV_NO_PRIM = "natrl fores stdv, no_prim_gain"
SHEET_MANGROVE_GAIN = "mangrove gain, for model"
SHEET_MANGROVE_STDEV = "mangrove stdev, for model"
SHEET_US = "US_rates_AGC+BGC"

_GAIN_COLS = ("growth_primary", "growth_secondary_greater_20", "growth_secondary_less_20")
_STDEV_COLS = ("stdev_primary", "stdev_secondary_greater_20", "stdev_secondary_less_20")
_US_RATE_COLS = ("growth_young", "growth_middle", "growth_old")
_US_SD_COLS = ("SD_young", "SD_middle", "SD_old")

#: Columns the model reads from each sheet (spec/inputs.md §3.1, §3.2).
SHEET_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    SHEET_NATURAL_GAIN: ("gainEcoCon", *_GAIN_COLS),
    SHEET_NATURAL_STDEV: ("gainEcoCon", *_STDEV_COLS),
    SHEET_NATURAL_GAIN_NO_PRIM: ("gainEcoCon", *_GAIN_COLS),
    SHEET_NATURAL_STDEV_NO_PRIM: ("gainEcoCon", *_STDEV_COLS),
    SHEET_MANGROVE_GAIN: ("gainEcoCon", "mangType", "AGB_gain_tons_ha_yr"),
    SHEET_MANGROVE_STDEV: ("gainEcoCon", "AGB_gain_stdev_tons_ha_yr"),
    SHEET_US: ("FIA_region_code", "forest_group_code", *_US_RATE_COLS, *_US_SD_COLS),
})

#: Project CSV file name of each sheet (inside a table folder).
CSV_FILES: Mapping[str, str] = MappingProxyType({
    SHEET_NATURAL_GAIN: "natrl_fores_gain.csv",
    SHEET_NATURAL_STDEV: "natrl_fores_stdv.csv",
    SHEET_NATURAL_GAIN_NO_PRIM: "natrl_fores_gain_no_prim_gain.csv",
    SHEET_NATURAL_STDEV_NO_PRIM: "natrl_fores_stdv_no_prim_gain.csv",
    SHEET_MANGROVE_GAIN: "mangrove_gain.csv",
    SHEET_MANGROVE_STDEV: "mangrove_stdev.csv",
    SHEET_US: "US_rates_AGC_BGC.csv",
})

#: The shipped default tables (built from IPCC 2019 Table 4.9 / Wetlands Supplement Table 4.4).
DEFAULT_TABLE_DIR = Path(__file__).resolve().parent / "data" / "removal_factors"

_REQUIRED = (SHEET_NATURAL_GAIN, SHEET_NATURAL_STDEV, SHEET_MANGROVE_GAIN, SHEET_MANGROVE_STDEV)
_NO_PRIM = {SHEET_NATURAL_GAIN: SHEET_NATURAL_GAIN_NO_PRIM, SHEET_NATURAL_STDEV: SHEET_NATURAL_STDEV_NO_PRIM}

# Mangrove ratios by mangType (spec/stages.md §1; 1 tropical dry, 2 tropical wet, 3 subtropical)
_MANG_BGB_RATE_RATIO = {1: 0.29, 2: 0.49, 3: 0.96}  # §3: no key 4 → NaN BGB rate (B.8)
_MANG_POOL_RATIOS = {  # §11: key 4 (water) → sentinel 100 (B.6)
    "bgb": {1: 0.29, 2: 0.49, 3: 0.96, 4: 100.0},
    "deadwood": {1: 0.258, 2: 0.123, 3: 0.258, 4: 100.0},
    "litter": {1: 0.0169, 2: 0.008, 3: 0.0169, 4: 100.0},
}

_HOW_TO_FIX = (
    "Supply the original workbook (gain_rate_continent_ecozone_age_*.xlsx) or a project CSV folder "
    "with these sheets/columns via --removal-table PATH; see docs/removal_factors.md"
)


def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class RemovalTables:
    """Dense removal-factor lookups for the kernels, indexed by integer code.

    Every lookup is a pair ``(<name>, <name>_has)`` of 1-D arrays of length
    :data:`TABLE_SIZE`: the value for each code and a uint8 flag, 1 where the code
    is a key of the original's dictionary. Pass-through tables (IPCC, mangrove)
    hold ``float32(code)`` for unknown codes, as the original does (B.7).

    Attributes
    ----------
    source : str
        Where the tables came from (file / folder or "shipped defaults").
    no_primary_gain : bool
        True if the IPCC lookups come from the ``no_prim_gain`` sheets.
    young_rate, young_rate_has : ndarray of float64 / uint8
        §6: ≤ 20-yr growth (t d.m. ha⁻¹ yr⁻¹) by ``gainEcoCon``; blank cells NaN;
        unknown codes have no key (the kernel gives NaN). Code 0 → 0.
    ipcc_rate, ipcc_rate_has, ipcc_sd, ipcc_sd_has : ndarray of float32 / uint8
        §7: AGB removal factor and stdev (t d.m. ha⁻¹ yr⁻¹) keyed
        ``gainEcoCon + {1: 10000, 2: 20000, 3: 30000}[age]`` (age-0 keys
        ``gainEcoCon`` → 0; blank cells have no key).
    mangrove_agb_rate, mangrove_bgb_rate, mangrove_agb_sd (+ ``_has``) : ndarray of float32 / uint8
        §3: mangrove AGB / BGB removal factors and AGB stdev (t d.m. ha⁻¹ yr⁻¹) by
        ``gainEcoCon``; the BGB rate is NaN for ``mangType`` 4 (B.8).
    mangrove_ratio_bgb, mangrove_ratio_deadwood, mangrove_ratio_litter : ndarray of float32
        §11: BGB:AGB, deadwood:AGB and litter:AGB by ``gainEcoCon`` (``mangType``
        4 → 100, B.6; code 0 → 0).
    mangrove_ratio_has, mangrove_ratio_valid : ndarray of uint8
        Keys of the ratio dictionaries, and 1 where the code's ``mangType`` is 1/2/3
        (code 0 counts as valid).
    us_rate_age, us_sd_age (+ ``_has``) : ndarray of float32 / uint8
        §4: US AGC+BGC rate and stdev (Mg C ha⁻¹ yr⁻¹) keyed
        ``age·10000 + forest_group·100 + region``; empty without a US table.
    us_rate_young, us_sd_young (+ ``_has``) : ndarray of float32 / uint8
        §4: young rate and stdev keyed ``forest_group·100 + region``.
    dicts : mapping of str to dict
        The original's ordered dictionaries each lookup was built from (keys as
        the original has them), for reports and independent tests.
    sheets : mapping of str to DataFrame
        The sheets as read (after column-name normalisation, before de-duplication),
        including any evidence columns.
    """

    source: str
    no_primary_gain: bool
    young_rate: np.ndarray
    young_rate_has: np.ndarray
    ipcc_rate: np.ndarray
    ipcc_rate_has: np.ndarray
    ipcc_sd: np.ndarray
    ipcc_sd_has: np.ndarray
    mangrove_agb_rate: np.ndarray
    mangrove_agb_rate_has: np.ndarray
    mangrove_bgb_rate: np.ndarray
    mangrove_bgb_rate_has: np.ndarray
    mangrove_agb_sd: np.ndarray
    mangrove_agb_sd_has: np.ndarray
    mangrove_ratio_bgb: np.ndarray
    mangrove_ratio_deadwood: np.ndarray
    mangrove_ratio_litter: np.ndarray
    mangrove_ratio_has: np.ndarray
    mangrove_ratio_valid: np.ndarray
    us_rate_age: np.ndarray
    us_rate_age_has: np.ndarray
    us_sd_age: np.ndarray
    us_sd_age_has: np.ndarray
    us_rate_young: np.ndarray
    us_rate_young_has: np.ndarray
    us_sd_young: np.ndarray
    us_sd_young_has: np.ndarray
    dicts: Mapping[str, dict] = field(repr=False)
    sheets: Mapping[str, pd.DataFrame] = field(repr=False)

    # argument groups in the order the kernels take them
    @property
    def young_rate_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """``(young_rate, young_rate_has)`` for :func:`~fluxgraph.kernels.removals.forest_age_category`."""
        return self.young_rate, self.young_rate_has

    @property
    def ipcc_lookups(self) -> tuple[np.ndarray, ...]:
        """``(rate, rate_has, sd, sd_has)`` for :func:`~fluxgraph.kernels.removals.annual_removals_ipcc`."""
        return self.ipcc_rate, self.ipcc_rate_has, self.ipcc_sd, self.ipcc_sd_has

    @property
    def mangrove_rate_lookups(self) -> tuple[np.ndarray, ...]:
        """The six lookup arrays of :func:`~fluxgraph.kernels.removals.annual_removals_mangrove`."""
        return (self.mangrove_agb_rate, self.mangrove_agb_rate_has, self.mangrove_bgb_rate,
                self.mangrove_bgb_rate_has, self.mangrove_agb_sd, self.mangrove_agb_sd_has)

    @property
    def mangrove_ratio_lookups(self) -> tuple[np.ndarray, ...]:
        """``(bgb, deadwood, litter, has, valid)`` for the carbon-pool kernels."""
        return (self.mangrove_ratio_bgb, self.mangrove_ratio_deadwood, self.mangrove_ratio_litter,
                self.mangrove_ratio_has, self.mangrove_ratio_valid)

    @property
    def us_lookups(self) -> tuple[np.ndarray, ...]:
        """The eight lookup arrays of :func:`~fluxgraph.kernels.removals.annual_removals_us`."""
        return (self.us_rate_age, self.us_rate_age_has, self.us_sd_age, self.us_sd_age_has,
                self.us_rate_young, self.us_rate_young_has, self.us_sd_young, self.us_sd_young_has)

    @property
    def has_us(self) -> bool:
        """True if a US table was loaded."""
        return bool(self.us_rate_age_has.any() or self.us_rate_young_has.any())


# --------------------------------------------------------------------------- dictionaries


def _int_key(key: object, size: int) -> int | None:
    """The integer index of a dictionary key, or None if no integer code can match it."""
    try:
        k = float(key)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(k) or k != int(k) or not (0 <= k < size):
        return None
    return int(k)


def dense_lookup(mapping: Mapping, *, size: int = TABLE_SIZE, sequential: bool = True,
                 dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``(values, has)`` arrays of an ordered ``{code: value}`` mapping.

    Parameters
    ----------
    mapping : mapping
        Keys are codes (int or float), in the original's insertion order.
    size : int
        Length of the arrays.
    sequential : bool
        True replays the original's ``arr[arr == key] = value`` loop in float32 on
        every code 0…size−1 (unknown codes keep ``float32(code)``, chains of
        replacements are followed). False assigns ``values[key] = value`` directly
        (unknown codes: NaN for float arrays).
    dtype : numpy dtype
        dtype of ``values`` (float32 for pass-through tables).

    Returns
    -------
    values : ndarray, shape (size,)
    has : ndarray of uint8, shape (size,)
        1 where the code is a key.
    """
    has = np.zeros(size, dtype=np.uint8)
    for key in mapping:
        k = _int_key(key, size)
        if k is not None:
            has[k] = 1
    if sequential:
        x = np.arange(size, dtype=np.float64).astype(np.float32)
        for key, value in mapping.items():
            try:
                kf = np.float32(float(key))
            except (TypeError, ValueError):
                continue
            x[x == kf] = np.float32(value)
        values = x.astype(dtype)
    else:
        values = np.full(size, np.nan, dtype=dtype)
        for key, value in mapping.items():
            k = _int_key(key, size)
            if k is not None:
                values[k] = value
    return _ro(values), _ro(has)


def _dedup(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop_duplicates(subset="gainEcoCon", keep="first")


def _series_dict(keys: Iterable, values: Iterable) -> dict:
    """``pd.Series(values, index=keys).to_dict()``: later duplicates overwrite, first position kept."""
    out: dict = {}
    for k, v in zip(keys, values, strict=True):
        out[_py(k)] = _py(v)
    return out


def _py(x: object) -> object:
    return x.item() if isinstance(x, np.generic) else x


def _young_rate_dict(gain: pd.DataFrame) -> dict:
    """§6: ``{gainEcoCon: growth_secondary_less_20}`` (NaN kept) plus ``{0: 0}``."""
    g = _dedup(gain)
    d = _series_dict(g["gainEcoCon"], g["growth_secondary_less_20"])
    d[0] = 0
    return d


def _ipcc_dict(sheet: pd.DataFrame, cols: tuple[str, str, str]) -> dict:
    """§7 lookup: melt, drop blanks, age-0 keys → 0, ``code + 10000·age`` keys, 0/10000/20000/30000 → 0."""
    primary, gt20, le20 = cols
    long = pd.melt(_dedup(sheet), id_vars=["gainEcoCon"], value_vars=[primary, gt20, le20]).dropna()
    offsets = {le20: 10000, gt20: 20000, primary: 30000}
    d: dict = {}
    for code in long["gainEcoCon"].drop_duplicates(keep="first"):
        d[_py(code)] = 0
    for code, var, value in zip(long["gainEcoCon"], long["variable"], long["value"], strict=True):
        d[_py(code) + offsets[var]] = _py(value)
    for k in (0, 10000, 20000, 30000):
        d[k] = 0
    return {float(k): v for k, v in d.items()}


def _mangrove_dicts(gain: pd.DataFrame, stdev: pd.DataFrame) -> dict[str, dict]:
    """§3 and §11 lookups from the mangrove sheets."""
    g = _dedup(gain)
    codes = list(g["gainEcoCon"])
    agb = g["AGB_gain_tons_ha_yr"]
    bgb = agb * g["mangType"].map(_MANG_BGB_RATE_RATIO)
    out = {
        "mangrove_agb_rate": _series_dict(codes, agb),
        "mangrove_bgb_rate": _series_dict(codes, bgb),
    }
    s = _dedup(stdev)
    out["mangrove_agb_sd"] = _series_dict(s["gainEcoCon"], s["AGB_gain_stdev_tons_ha_yr"])
    for name, ratios in _MANG_POOL_RATIOS.items():
        out[f"mangrove_ratio_{name}"] = _series_dict(codes, g["mangType"].map(ratios))
    for d in out.values():
        d[0] = 0
    return {name: {float(k): v for k, v in d.items()} for name, d in out.items()}


def _us_dicts(us: pd.DataFrame) -> dict[str, dict]:
    """§4 lookups: ``age·10000 + group·100 + region`` and young ``group·100 + region``."""
    out = {}
    for kind, cols in (("rate", _US_RATE_COLS), ("sd", _US_SD_COLS)):
        long = pd.melt(us, id_vars=["FIA_region_code", "forest_group_code"], value_vars=list(cols)).dropna()
        age = long["variable"].map({cols[0]: 10000, cols[1]: 20000, cols[2]: 30000})
        key_age = age + long["forest_group_code"] * 100 + long["FIA_region_code"]
        out[f"us_{kind}_age"] = _series_dict(key_age, long["value"])
        young = long[age == 10000]
        key_young = young["forest_group_code"] * 100 + young["FIA_region_code"]
        out[f"us_{kind}_young"] = _series_dict(key_young, young["value"])
    return out


# --------------------------------------------------------------------------- building


def build_removal_tables(sheets: Mapping[str, pd.DataFrame], *, source: str = "<frames>",
                         us: pd.DataFrame | None = None, no_primary_gain: bool = False,
                         where: str | None = None) -> RemovalTables:
    """Build :class:`RemovalTables` from sheet DataFrames.

    Parameters
    ----------
    sheets : mapping of sheet name to DataFrame
        At least the four sheets ``natrl fores gain, for std model``, ``natrl fores
        stdv, for std model``, ``mangrove gain, for model``, ``mangrove stdev, for
        model`` with the columns of :data:`SHEET_COLUMNS`; with ``no_primary_gain``
        the ``no_prim_gain`` sheets are used for the IPCC lookups if present, else
        derived by setting the primary columns to 0.
    source : str
        Description stored in :attr:`RemovalTables.source`.
    us : DataFrame, optional
        Sheet ``US_rates_AGC+BGC``.
    no_primary_gain : bool
        Build the IPCC lookups of the ``no_primary_gain`` sensitivity run.
    where : str, optional
        File name used in error messages (defaults to ``source``).

    Raises
    ------
    TableError
        A required sheet or column is missing.
    """
    where = where or source
    sheets = dict(sheets)
    for sheet in _REQUIRED:
        if sheet not in sheets:
            raise TableError(f"{where}: sheet '{sheet}' not found (sheets present: {sorted(sheets)}). "
                             f"{_HOW_TO_FIX}.")
        _check_columns(sheets[sheet], sheet, where)
    ipcc_sheets = {}
    for sheet, cols in ((SHEET_NATURAL_GAIN, _GAIN_COLS), (SHEET_NATURAL_STDEV, _STDEV_COLS)):
        df = sheets[sheet]
        if no_primary_gain:
            alt = _NO_PRIM[sheet]
            if alt in sheets:
                df = sheets[alt]
                _check_columns(df, alt, where)
            else:
                df = df.copy()
                df[cols[0]] = 0.0
        ipcc_sheets[sheet] = df
    dicts: dict[str, dict] = {
        "young_rate": _young_rate_dict(sheets[SHEET_NATURAL_GAIN]),
        "ipcc_rate": _ipcc_dict(ipcc_sheets[SHEET_NATURAL_GAIN], _GAIN_COLS),
        "ipcc_sd": _ipcc_dict(ipcc_sheets[SHEET_NATURAL_STDEV], _STDEV_COLS),
        **_mangrove_dicts(sheets[SHEET_MANGROVE_GAIN], sheets[SHEET_MANGROVE_STDEV]),
    }
    if us is not None:
        _check_columns(us, SHEET_US, where)
        dicts.update(_us_dicts(us))
        sheets[SHEET_US] = us
    else:
        dicts.update({k: {} for k in ("us_rate_age", "us_rate_young", "us_sd_age", "us_sd_young")})

    arrays: dict[str, np.ndarray] = {}
    arrays["young_rate"], arrays["young_rate_has"] = dense_lookup(
        dicts["young_rate"], sequential=False, dtype=np.float64)
    for name in ("ipcc_rate", "ipcc_sd", "mangrove_agb_rate", "mangrove_bgb_rate", "mangrove_agb_sd"):
        arrays[name], arrays[f"{name}_has"] = dense_lookup(dicts[name])
    for name in ("bgb", "deadwood", "litter"):
        arrays[f"mangrove_ratio_{name}"], has = dense_lookup(dicts[f"mangrove_ratio_{name}"])
    arrays["mangrove_ratio_has"] = has
    valid = np.zeros(TABLE_SIZE, dtype=np.uint8)
    valid[0] = 1
    g = _dedup(sheets[SHEET_MANGROVE_GAIN])
    for code, mtype in zip(g["gainEcoCon"], g["mangType"], strict=True):
        k = _int_key(code, TABLE_SIZE)
        if k is not None and k != 0:
            valid[k] = 1 if mtype in (1, 2, 3) else 0
    arrays["mangrove_ratio_valid"] = _ro(valid)
    for name in ("us_rate_age", "us_sd_age", "us_rate_young", "us_sd_young"):
        values, has = dense_lookup(dicts[name], sequential=False)
        arrays[name] = _ro(np.where(has != 0, values, np.float32(0.0)).astype(np.float32))
        arrays[f"{name}_has"] = has
    return RemovalTables(
        source=source,
        no_primary_gain=bool(no_primary_gain),
        dicts=MappingProxyType(dicts),
        sheets=MappingProxyType(sheets),
        **arrays,
    )


def _check_columns(df: pd.DataFrame, sheet: str, where: str) -> None:
    missing = [c for c in SHEET_COLUMNS[sheet] if c not in df.columns]
    if missing:
        raise TableError(
            f"{where}: sheet '{sheet}' has no column {', '.join(repr(c) for c in missing)} "
            f"(columns present: {list(df.columns)}). The model needs the columns "
            f"{list(SHEET_COLUMNS[sheet])} in this sheet; rename the header or add the column. {_HOW_TO_FIX}."
        )


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    return df


# --------------------------------------------------------------------------- reading


def _read_workbook(path: Path, wanted: Iterable[str], optional: Iterable[str] = ()) -> dict[str, pd.DataFrame]:
    try:
        book = pd.ExcelFile(path)
    except FileNotFoundError as err:
        raise TableError(f"{path}: removal-factor workbook not found. {_HOW_TO_FIX}.") from err
    except Exception as err:  # openpyxl / xlrd errors of every kind
        raise TableError(f"{path}: cannot read the workbook ({err}). {_HOW_TO_FIX}.") from err
    with book:
        names = [str(n) for n in book.sheet_names]
        stripped = {n.strip(): n for n in names}
        out = {}
        for sheet in wanted:
            if sheet not in stripped:
                raise TableError(
                    f"{path}: sheet '{sheet}' not found (sheets present: {names}). {_HOW_TO_FIX}.")
            out[sheet] = _normalise(pd.read_excel(book, sheet_name=stripped[sheet]))
        for sheet in optional:
            if sheet in stripped:
                out[sheet] = _normalise(pd.read_excel(book, sheet_name=stripped[sheet]))
    return out


def _read_csv(path: Path, sheet: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except FileNotFoundError as err:
        raise TableError(
            f"{path}: CSV for sheet '{sheet}' not found (expected file name {CSV_FILES[sheet]!r} with the "
            f"columns {list(SHEET_COLUMNS[sheet])}). {_HOW_TO_FIX}.") from err
    except Exception as err:
        raise TableError(f"{path}: cannot read the CSV for sheet '{sheet}' ({err}). {_HOW_TO_FIX}.") from err
    return _normalise(df)


def _read_csv_folder(folder: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for sheet, fname in CSV_FILES.items():
        path = folder / fname
        if sheet in _REQUIRED or path.exists():
            out[sheet] = _read_csv(path, sheet)
            _check_columns(out[sheet], sheet, str(path))
    return out


def _read_combined_csv(path: Path) -> dict[str, pd.DataFrame]:
    """One CSV with ``gainEcoCon`` and the value columns of the four sheets.

    A code belongs to a sheet where at least one of that sheet's value columns is
    not blank (so a row may carry, e.g., only mangrove values).
    """
    df = _read_csv_any(path)
    out = {}
    for sheet in _REQUIRED:
        cols = SHEET_COLUMNS[sheet]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise TableError(
                f"{path}: combined removal-factor CSV has no column {', '.join(repr(c) for c in missing)} "
                f"needed for sheet '{sheet}' (columns present: {list(df.columns)}); rename the header or "
                f"add the column. {_HOW_TO_FIX}.")
        value_cols = [c for c in cols if c != "gainEcoCon"]
        rows = df[value_cols].notna().any(axis=1)
        out[sheet] = df.loc[rows].reset_index(drop=True)
    return out


def _read_csv_any(path: Path) -> pd.DataFrame:
    try:
        return _normalise(pd.read_csv(path))
    except FileNotFoundError as err:
        raise TableError(f"{path}: removal-factor CSV not found. {_HOW_TO_FIX}.") from err
    except Exception as err:
        raise TableError(f"{path}: cannot read the CSV ({err}). {_HOW_TO_FIX}.") from err


def _read_us(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        df = _read_workbook(path, [SHEET_US])[SHEET_US]
    elif path.is_dir():
        df = _read_csv(path / CSV_FILES[SHEET_US], SHEET_US)
    else:
        df = _read_csv_any(path)
    _check_columns(df, SHEET_US, str(path))
    return df


def load_removal_tables(path: str | Path | None = None, *, us_table: str | Path | None = None,
                        no_primary_gain: bool = False) -> RemovalTables:
    """Load removal-factor tables and build the kernel lookups.

    Parameters
    ----------
    path : str or Path, optional
        ``None``: the shipped defaults (:data:`DEFAULT_TABLE_DIR`, see
        docs/removal_factors.md). A ``.xlsx`` / ``.xlsm`` / ``.xls`` file: the
        original's workbook with the sheets ``natrl fores gain, for std model``,
        ``natrl fores stdv, for std model``, ``mangrove gain, for model``,
        ``mangrove stdev, for model`` (and the ``no_prim_gain`` sheets). A folder:
        project CSVs, one per sheet (:data:`CSV_FILES`; ``US_rates_AGC_BGC.csv`` is
        read if present). A ``.csv`` file: one combined project CSV with
        ``gainEcoCon`` and the value columns of the four sheets.
    us_table : str or Path, optional
        US workbook (sheet ``US_rates_AGC+BGC``) or CSV with its columns.
    no_primary_gain : bool
        Use the ``no_prim_gain`` sheets (or primary rates 0) for the IPCC lookups.

    Returns
    -------
    RemovalTables

    Raises
    ------
    TableError
        File, sheet or column missing or unreadable; the message names the file,
        the sheet and the column and says how to fix it.
    """
    if path is None:
        folder = DEFAULT_TABLE_DIR
        sheets = _read_csv_folder(folder)
        source = f"shipped defaults ({folder})"
    else:
        p = Path(path).expanduser()
        source = str(p)
        if p.is_dir():
            sheets = _read_csv_folder(p)
        elif p.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            optional = list(_NO_PRIM.values()) if no_primary_gain else []
            sheets = _read_workbook(p, _REQUIRED, optional)
        elif p.suffix.lower() == ".csv":
            sheets = _read_combined_csv(p)
        elif not p.exists():
            raise TableError(f"{p}: removal-factor table not found. {_HOW_TO_FIX}.")
        else:
            raise TableError(f"{p}: unknown removal-factor table type (expected a .xlsx workbook, a .csv "
                             f"file or a folder of CSVs). {_HOW_TO_FIX}.")
    us = sheets.pop(SHEET_US, None)
    if us_table is not None:
        us = _read_us(Path(us_table).expanduser())
    return build_removal_tables(sheets, source=source, us=us, no_primary_gain=no_primary_gain)


# --------------------------------------------------------------------------- reports and writing


def missing_codes(tables: RemovalTables, codes: Iterable[int], *, kind: str = "all",
                  detail: bool = False) -> list[int] | dict[int, list[str]]:
    """Continent-ecozone codes present in a raster that the tables do not cover.

    Parameters
    ----------
    tables : RemovalTables
    codes : iterable of int
        Codes present in a raster (e.g. ``np.unique(ce)``); 0 (nodata) is ignored.
    kind : {"all", "natural_forest", "mangrove"}
        ``natural_forest``: the age-stage rate (§6) and the IPCC rate and stdev for
        ages 1–3 (§7); ``mangrove``: the mangrove rates, stdev (§3) and pool ratios
        (§11); ``all``: both.
    detail : bool
        Return ``{code: [lookups lacking it]}`` instead of a sorted list.

    Returns
    -------
    list of int, or dict of int to list of str
        Codes for which the original would pass the code value through as a rate,
        give NaN (age stage) or, for the US tables, 0.
    """
    if kind not in ("all", "natural_forest", "mangrove"):
        raise ValueError(f"kind must be 'all', 'natural_forest' or 'mangrove', got {kind!r}")
    checks: list[tuple[str, np.ndarray, int]] = []
    if kind in ("all", "natural_forest"):
        checks.append(("young_rate", tables.young_rate_has, 0))
        for age in (1, 2, 3):
            checks.append((f"ipcc_rate[age {age}]", tables.ipcc_rate_has, age * 10000))
            checks.append((f"ipcc_sd[age {age}]", tables.ipcc_sd_has, age * 10000))
    if kind in ("all", "mangrove"):
        checks += [("mangrove_agb_rate", tables.mangrove_agb_rate_has, 0),
                   ("mangrove_bgb_rate", tables.mangrove_bgb_rate_has, 0),
                   ("mangrove_agb_sd", tables.mangrove_agb_sd_has, 0),
                   ("mangrove_ratio", tables.mangrove_ratio_has, 0)]
    out: dict[int, list[str]] = {}
    for code in sorted({int(c) for c in codes}):
        if code == 0:
            continue
        lacking = [name for name, has, off in checks
                   if not (0 <= code + off < has.shape[0] and has[code + off])]
        if lacking:
            out[code] = lacking
    return out if detail else sorted(out)


def write_removal_csvs(sheets: Mapping[str, pd.DataFrame], path: str | Path, *,
                       combined: bool = False) -> list[Path]:
    """Write sheets as project CSVs.

    Parameters
    ----------
    sheets : mapping of sheet name to DataFrame
        E.g. :attr:`RemovalTables.sheets`.
    path : str or Path
        Folder (created if needed) for one CSV per sheet (:data:`CSV_FILES`), or the
        ``.csv`` file to write with ``combined=True``.
    combined : bool
        Write one combined CSV: the four required sheets outer-joined on
        ``gainEcoCon`` (each sheet de-duplicated first, as the model does).

    Returns
    -------
    list of Path
        Files written.
    """
    p = Path(path)
    if combined:
        merged = None
        for sheet in _REQUIRED:
            df = _dedup(sheets[sheet])[list(SHEET_COLUMNS[sheet])]
            merged = df if merged is None else merged.merge(df, on="gainEcoCon", how="outer", sort=False)
        p.parent.mkdir(parents=True, exist_ok=True)
        merged.to_csv(p, index=False)
        return [p]
    p.mkdir(parents=True, exist_ok=True)
    written = []
    for sheet, df in sheets.items():
        if sheet not in CSV_FILES:
            continue
        out = p / CSV_FILES[sheet]
        df.to_csv(out, index=False)
        written.append(out)
    return written
