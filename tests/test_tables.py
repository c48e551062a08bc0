"""Tests of fluxgraph.tables: workbook and CSV reading, lookup construction, errors, shipped defaults.

Authority: spec/inputs.md §3.1–§3.2 (sheets and columns) and spec/stages.md §3, §4, §6,
§7, §11 (how the original turns the sheets into lookups: first duplicate kept, blank
cells dropped or NaN, key 0 → 0, pass-through of unknown codes).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxgraph.errors import TableError
from fluxgraph.tables import (
    CSV_FILES,
    DEFAULT_TABLE_DIR,
    SHEET_MANGROVE_GAIN,
    SHEET_MANGROVE_STDEV,
    SHEET_NATURAL_GAIN,
    SHEET_NATURAL_GAIN_NO_PRIM,
    SHEET_NATURAL_STDEV,
    SHEET_NATURAL_STDEV_NO_PRIM,
    SHEET_US,
    TABLE_SIZE,
    dense_lookup,
    load_removal_tables,
    missing_codes,
    write_removal_csvs,
)

NAN = float("nan")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "removal_factors"

GAIN = pd.DataFrame({  # 1020 duplicated (second row must be ignored); blank cells; 2002 all blank
    "gainEcoCon": [1020, 1021, 1020, 2001, 2002, 4022],
    "growth_primary": [1.3, NAN, 99.0, 0.4, NAN, 0.0],
    "growth_secondary_greater_20": [3.5, 0.9, 99.0, NAN, NAN, 0.0],
    "growth_secondary_less_20": [7.6, NAN, 99.0, 0.5, NAN, 0.0],
    "notes": ["Table 4.9", "blank primary", "duplicate", "", "all blank", "water"],
})
STDV = pd.DataFrame({
    "gainEcoCon": [1020, 1020, 1021, 2001],
    "stdev_primary": [NAN, 5.0, 0.1, NAN],
    "stdev_secondary_greater_20": [3.3, 5.0, NAN, 0.2],
    "stdev_secondary_less_20": [5.9, 5.0, 0.3, 0.1],
})
MANG = pd.DataFrame({
    "gainEcoCon": [1020, 1022, 1020, 2001],
    "mangType": [2, 4, 1, 3],
    "AGB_gain_tons_ha_yr": [9.9, 0.0, 3.3, 18.1],
})
MANG_SD = pd.DataFrame({"gainEcoCon": [1020, 2001], "AGB_gain_stdev_tons_ha_yr": [0.255, NAN]})
US = pd.DataFrame({
    "FIA_region_code": [1, 1, 2],
    "forest_group_code": [2, 2, 5],
    "growth_young": [1.1, 1.5, NAN],
    "growth_middle": [2.2, 2.5, 0.9],
    "growth_old": [NAN, 0.5, 0.4],
    "SD_young": [0.11, 0.15, 0.2],
    "SD_middle": [0.22, NAN, 0.09],
    "SD_old": [0.1, 0.05, NAN],
})


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame({"read me": ["not a model sheet"]}).to_excel(xw, sheet_name="README", index=False)
        for name, df in sheets.items():
            df.to_excel(xw, sheet_name=name, index=False)
    return path


@pytest.fixture
def workbook(tmp_path) -> Path:
    no_prim = GAIN.assign(growth_primary=0.0)
    no_prim_sd = STDV.assign(stdev_primary=0.0)
    return write_workbook(tmp_path / "gain_rate_continent_ecozone_age_20230821.xlsx", {
        SHEET_NATURAL_GAIN: GAIN, SHEET_NATURAL_STDEV: STDV,
        SHEET_NATURAL_GAIN_NO_PRIM: no_prim, SHEET_NATURAL_STDEV_NO_PRIM: no_prim_sd,
        SHEET_MANGROVE_GAIN: MANG, SHEET_MANGROVE_STDEV: MANG_SD,
    })


def arrays_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        return a.dtype == b.dtype and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))
    return np.array_equal(a, b)


LOOKUPS = ("young_rate", "young_rate_has", "ipcc_rate", "ipcc_rate_has", "ipcc_sd", "ipcc_sd_has",
           "mangrove_agb_rate", "mangrove_agb_rate_has", "mangrove_bgb_rate", "mangrove_bgb_rate_has",
           "mangrove_agb_sd", "mangrove_agb_sd_has", "mangrove_ratio_bgb", "mangrove_ratio_deadwood",
           "mangrove_ratio_litter", "mangrove_ratio_has", "mangrove_ratio_valid", "us_rate_age",
           "us_rate_age_has", "us_sd_age", "us_sd_age_has", "us_rate_young", "us_rate_young_has", "us_sd_young",
           "us_sd_young_has")


# --------------------------------------------------------------------------- workbook


def test_workbook_lookups(workbook):
    t = load_removal_tables(workbook)
    assert t.source == str(workbook)
    # §6 age stage: first duplicate wins, blank ≤20 → NaN (key kept), code 0 → 0, unknown → no key
    assert t.young_rate[1020] == 7.6 and t.young_rate_has[1020]
    assert math.isnan(t.young_rate[1021]) and t.young_rate_has[1021]
    assert math.isnan(t.young_rate[2002]) and t.young_rate_has[2002]
    assert t.young_rate[0] == 0 and t.young_rate_has[0]
    assert not t.young_rate_has[1022]
    # §7 IPCC: blank cells dropped → pass-through of the key; age-0 key only if a value exists
    assert t.ipcc_rate[11020] == np.float32(7.6) and t.ipcc_rate[21020] == np.float32(3.5)
    assert t.ipcc_rate[31020] == np.float32(1.3)
    assert not t.ipcc_rate_has[31021] and t.ipcc_rate[31021] == np.float32(31021)
    assert t.ipcc_rate_has[1021] and t.ipcc_rate[1021] == 0
    assert not t.ipcc_rate_has[2002] and not t.ipcc_rate_has[12002]
    assert all(t.ipcc_rate_has[k] and t.ipcc_rate[k] == 0 for k in (0, 10000, 20000, 30000))
    assert t.ipcc_sd[11020] == np.float32(5.9) and not t.ipcc_sd_has[31020]
    assert t.ipcc_sd[31021] == np.float32(0.1)
    # §3 mangrove: BGB = AGB × BGB:AGB of the mangType in float64, then float32; type 4 → NaN (B.8)
    assert t.mangrove_agb_rate[1020] == np.float32(9.9)
    assert t.mangrove_bgb_rate[1020] == np.float32(9.9 * 0.49)
    assert math.isnan(t.mangrove_bgb_rate[1022]) and t.mangrove_bgb_rate_has[1022]
    assert math.isnan(t.mangrove_agb_sd[2001]) and t.mangrove_agb_sd[1020] == np.float32(0.255)
    assert not t.mangrove_agb_sd_has[1022] and t.mangrove_agb_sd[1022] == np.float32(1022)
    # §11 ratios: wet 0.49 / 0.123 / 0.008, subtropical 0.96 / 0.258 / 0.0169, water sentinel 100 (B.6)
    assert (t.mangrove_ratio_bgb[1020], t.mangrove_ratio_deadwood[1020], t.mangrove_ratio_litter[1020]) == (
        np.float32(0.49), np.float32(0.123), np.float32(0.008))
    assert t.mangrove_ratio_litter[2001] == np.float32(0.0169)
    assert t.mangrove_ratio_deadwood[1022] == 100 and not t.mangrove_ratio_valid[1022]
    assert t.mangrove_ratio_valid[1020] and t.mangrove_ratio_valid[0]
    assert not t.has_us
    # evidence / extra columns are carried along
    assert "notes" in t.sheets[SHEET_NATURAL_GAIN].columns


def test_workbook_no_primary_gain_and_us(workbook, tmp_path):
    t = load_removal_tables(workbook, no_primary_gain=True)
    assert t.no_primary_gain and t.ipcc_rate[31020] == 0 and t.ipcc_rate[11020] == np.float32(7.6)
    assert t.young_rate[1020] == 7.6  # the age stage always reads the std sheet
    us_book = write_workbook(tmp_path / "ICLEI R factors_livebiomass.xlsx", {SHEET_US: US})
    t = load_removal_tables(workbook, us_table=us_book)
    assert t.has_us
    assert t.us_rate_age[10201] == np.float32(1.5)  # age 1, group 2, region 1: later duplicate wins
    assert t.us_rate_young[201] == np.float32(1.5) and t.us_sd_young[201] == np.float32(0.15)
    assert not t.us_rate_young_has[502]  # blank young rate dropped
    assert t.us_sd_age[30502] == 0 and not t.us_sd_age_has[30502]


def test_workbook_missing_column_and_sheet(tmp_path):
    bad = write_workbook(tmp_path / "bad.xlsx", {
        SHEET_NATURAL_GAIN: GAIN.drop(columns="growth_secondary_less_20"), SHEET_NATURAL_STDEV: STDV,
        SHEET_MANGROVE_GAIN: MANG, SHEET_MANGROVE_STDEV: MANG_SD,
    })
    with pytest.raises(TableError) as err:
        load_removal_tables(bad)
    msg = str(err.value)
    assert "bad.xlsx" in msg and "natrl fores gain, for std model" in msg
    assert "'growth_secondary_less_20'" in msg and "--removal-table" in msg
    nosheet = write_workbook(tmp_path / "nosheet.xlsx", {SHEET_NATURAL_GAIN: GAIN, SHEET_NATURAL_STDEV: STDV})
    with pytest.raises(TableError, match=r"nosheet\.xlsx: sheet 'mangrove gain, for model' not found"):
        load_removal_tables(nosheet)
    with pytest.raises(TableError, match="not found"):
        load_removal_tables(tmp_path / "nope.xlsx")
    with pytest.raises(TableError, match="unknown removal-factor table type"):
        (tmp_path / "x.txt").write_text("x")
        load_removal_tables(tmp_path / "x.txt")


# --------------------------------------------------------------------------- CSV


def test_csv_round_trip(workbook, tmp_path):
    t1 = load_removal_tables(workbook)
    folder = tmp_path / "tables"
    written = write_removal_csvs(t1.sheets, folder)
    assert {p.name for p in written} >= {CSV_FILES[s] for s in (SHEET_NATURAL_GAIN, SHEET_MANGROVE_STDEV)}
    t2 = load_removal_tables(folder)
    for name in LOOKUPS:
        assert arrays_equal(getattr(t1, name), getattr(t2, name)), name
    assert t2.sheets[SHEET_NATURAL_GAIN]["notes"].tolist()[:2] == ["Table 4.9", "blank primary"]


def test_combined_csv_round_trip(tmp_path):
    t1 = load_removal_tables()
    path = tmp_path / "my_rates.csv"
    write_removal_csvs(t1.sheets, path, combined=True)
    t2 = load_removal_tables(path)
    for name in LOOKUPS:
        assert arrays_equal(getattr(t1, name), getattr(t2, name)), name
    pd.read_csv(path).drop(columns="mangType").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(TableError, match=r"bad\.csv.*'mangType'.*mangrove gain, for model"):
        load_removal_tables(tmp_path / "bad.csv")


def test_csv_folder_errors_and_no_prim(tmp_path):
    folder = tmp_path / "t"
    write_removal_csvs({SHEET_NATURAL_GAIN: GAIN, SHEET_NATURAL_STDEV: STDV, SHEET_MANGROVE_GAIN: MANG}, folder)
    with pytest.raises(TableError, match=r"mangrove_stdev\.csv.*'mangrove stdev, for model'"):
        load_removal_tables(folder)
    MANG_SD.rename(columns={"AGB_gain_stdev_tons_ha_yr": "sd"}).to_csv(folder / "mangrove_stdev.csv", index=False)
    with pytest.raises(TableError) as err:
        load_removal_tables(folder)
    assert "mangrove_stdev.csv" in str(err.value) and "'AGB_gain_stdev_tons_ha_yr'" in str(err.value)
    MANG_SD.to_csv(folder / "mangrove_stdev.csv", index=False)
    t = load_removal_tables(folder, no_primary_gain=True)  # no no_prim CSV → primary rates set to 0
    assert t.ipcc_rate[31020] == 0 and t.ipcc_rate_has[31021] and t.ipcc_rate[21020] == np.float32(3.5)


# --------------------------------------------------------------------------- lookups and reports


def test_dense_lookup_replays_sequential_replacement():
    values, has = dense_lookup({5.0: 7.0, 7.0: 1.5, 1e9: 2.0, 0: 0})
    assert values[5] == np.float32(1.5)  # 5 → 7 → 1.5, as arr[arr == key] = value in order
    assert values[7] == np.float32(1.5) and values[6] == 6 and values[0] == 0
    assert has[5] and has[7] and has[0] and not has[6] and has.sum() == 3
    v, h = dense_lookup({5.0: 7.0, 7.0: 1.5}, sequential=False)
    assert v[5] == 7 and math.isnan(v[6]) and h.sum() == 2


def test_missing_codes(workbook):
    t = load_removal_tables(workbook)
    assert missing_codes(t, [0, 1020], kind="mangrove") == []
    assert missing_codes(t, [1020], detail=True) == {1020: ["ipcc_sd[age 3]"]}  # blank stdev_primary
    assert missing_codes(t, np.array([0, 1021, 1022, 9999]), kind="natural_forest") == [1021, 1022, 9999]
    detail = missing_codes(t, [1021, 1022], detail=True)
    assert detail[1021] == ["ipcc_rate[age 1]", "ipcc_sd[age 2]", "ipcc_rate[age 3]", "mangrove_agb_rate",
                            "mangrove_bgb_rate", "mangrove_agb_sd", "mangrove_ratio"]
    assert "young_rate" in detail[1022] and "mangrove_ratio" not in detail[1022]
    assert missing_codes(t, [70000, -5], kind="mangrove") == [-5, 70000]
    with pytest.raises(ValueError, match="kind"):
        missing_codes(t, [1], kind="bogus")


# --------------------------------------------------------------------------- shipped defaults


def test_shipped_defaults():
    t = load_removal_tables()
    assert "shipped defaults" in t.source
    codes = pd.read_csv(DEFAULT_TABLE_DIR / "natrl_fores_gain.csv")["gainEcoCon"]
    assert len(codes) == 176 and codes.is_unique
    assert missing_codes(t, codes) == []
    assert (t.young_rate[1020], t.ipcc_rate[11020], t.ipcc_rate[21020], t.ipcc_rate[31020]) == (
        7.6, np.float32(7.6), np.float32(3.5), np.float32(1.3))
    assert t.mangrove_agb_rate[1020] == np.float32(9.9)  # confirmed by the 00N_000E strip
    assert t.young_rate.shape == (TABLE_SIZE,)
    for sheet in (SHEET_NATURAL_GAIN, SHEET_NATURAL_STDEV, SHEET_MANGROVE_GAIN, SHEET_MANGROVE_STDEV):
        df = t.sheets[sheet]
        value_cols = [c for c in df.columns if c.startswith(("growth_", "stdev_", "AGB_gain", "mangType"))]
        assert not df[value_cols].isna().any().any(), sheet  # no blank → no pass-through with the defaults
        verify = [c for c in df.columns if c.startswith("verify_")]
        assert verify and set(np.unique(df[verify].to_numpy())) <= {"confirmed", "unverified", "absent"}
    # the water sentinel reproduces B.6 / B.8 on mangType-4 codes
    assert np.isnan(t.mangrove_bgb_rate[1022]) and t.mangrove_ratio_deadwood[1022] == 100
    assert not t.mangrove_ratio_valid[1022]


def test_shipped_defaults_match_build_script(tmp_path):
    if not SHARED.is_dir():
        pytest.skip(f"shared removal-factor evidence tables not found at {SHARED}")
    spec = importlib.util.spec_from_file_location("build_defaults", DEFAULT_TABLE_DIR / "build_defaults.py")
    mod = importlib.util.module_from_spec(spec)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # keep __pycache__ out of the package data folder
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = dont_write
    assert mod.main([str(SHARED), "--out", str(DEFAULT_TABLE_DIR), "--check"]) == 0
