"""Rebuild the shipped default removal-factor CSVs from the shared evidence tables.

Usage::

    python fluxgraph/data/removal_factors/build_defaults.py [SHARED_DIR] [--out DIR] [--check]

``SHARED_DIR`` is the folder with ``ecozone_codes.csv``,
``natural_forest_growth_ipcc2019.csv`` and ``mangrove_growth_ipcc2013.csv``
(default ``../shared/data/removal_factors`` beside the repository checkout).
``--check`` compares instead of writing and exits with status 1 on a difference.

Rules (documented in README.md next to this script and in docs/removal_factors.md):

* every code of ``ecozone_codes.csv`` except 0 gets one row in each sheet;
* natural forest: the code's ``table49_row_id``, else its ``fallback_row_id``;
  a blank ≤ 20 / > 20 yr growth with a range is filled with the range midpoint; a
  blank primary growth copies the > 20 yr value (and its SD); codes with no row get
  0 (no IPCC default removals); blank SDs get 0 (no uncertainty value);
* mangroves: the row of the code's ``mang_type`` in ``mangrove_growth_ipcc2013.csv``
  (growth, SD = (CI high − CI low) / (2 × 1.96)); ``mang_type`` 4 (water / no data)
  has no IPCC value and gets 0;
* the per-value evidence flags (confirmed / unverified / absent) of the shared
  tables are kept in ``verify_*`` columns and every fill is described in ``basis_*``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
DEFAULT_SHARED = HERE.parents[3] / "shared" / "data" / "removal_factors"

AGE_COLUMNS = (  # (shipped suffix, shared suffix)
    ("primary", "primary"),
    ("secondary_greater_20", "gt20"),
    ("secondary_less_20", "le20"),
)
FILES = {
    "natrl_fores_gain.csv": "natural forest growth (sheet 'natrl fores gain, for std model')",
    "natrl_fores_stdv.csv": "natural forest growth stdev (sheet 'natrl fores stdv, for std model')",
    "mangrove_gain.csv": "mangrove growth (sheet 'mangrove gain, for model')",
    "mangrove_stdev.csv": "mangrove growth stdev (sheet 'mangrove stdev, for model')",
}


def _blank(x: object) -> bool:
    return x is None or (isinstance(x, float) and pd.isna(x))


def _midpoint(rng: object) -> float | None:
    if _blank(rng):
        return None
    lo, hi = (float(v) for v in str(rng).split("-"))
    return round((lo + hi) / 2.0, 6)


def _growth_flag(flag: str) -> str:
    """Evidence of a growth value: 'confirmed_sd_unverified' confirms the growth."""
    return "confirmed" if flag in ("confirmed", "confirmed_sd_unverified") else flag


def _sd_flag(flag: str) -> str:
    """Evidence of an SD value: only 'confirmed' confirms it."""
    return "confirmed" if flag == "confirmed" else "unverified"


def build(shared: Path) -> dict[str, pd.DataFrame]:
    """Build the four sheets (DataFrames keyed by shipped file name)."""
    codes = pd.read_csv(shared / "ecozone_codes.csv")
    nat = pd.read_csv(shared / "natural_forest_growth_ipcc2019.csv").set_index("row_id")
    mang = pd.read_csv(shared / "mangrove_growth_ipcc2013.csv").set_index("mang_type")
    codes = codes[codes["code"] != 0].sort_values("code")

    gain_rows, sd_rows, mgain_rows, msd_rows = [], [], [], []
    for c in codes.itertuples(index=False):
        meta = {
            "continent": c.continent,
            "ecozone_fra2000": c.ecozone_fra2000,
            "in_original_code_list": c.in_original_code_list,
        }
        if not _blank(c.table49_row_id):
            row_id, mapping, how = c.table49_row_id, "direct", f"Table 4.9 row {c.table49_row_id}"
        elif not _blank(c.fallback_row_id):
            row_id, mapping = c.fallback_row_id, "fallback"
            how = f"fallback to row {c.fallback_row_id} ({c.fallback_basis})"
        else:
            row_id, mapping, how = None, "none", ""

        g = {"gainEcoCon": int(c.code)}
        s = {"gainEcoCon": int(c.code)}
        if row_id is None:
            for col, _ in AGE_COLUMNS:
                g[f"growth_{col}"] = 0.0
                s[f"stdev_{col}"] = 0.0
            for col, _ in AGE_COLUMNS:
                g[f"verify_{col}"] = "absent"
                s[f"verify_{col}"] = "absent"
            for col, _ in AGE_COLUMNS:
                g[f"basis_{col}"] = "no Table 4.9 row for this zone and continent: 0 (no IPCC default removals)"
                s[f"basis_{col}"] = "no Table 4.9 row: 0 (no uncertainty value)"
        else:
            r = nat.loc[row_id]
            values, sds, flags, bases, sd_bases, sd_flags = {}, {}, {}, {}, {}, {}
            for col, short in (("secondary_greater_20", "gt20"), ("secondary_less_20", "le20")):
                v = r[f"growth_secondary_{short}"]
                flags[col] = _growth_flag(r[f"verify_{short}"])
                bases[col] = how
                if _blank(v):
                    v = _midpoint(r[f"range_secondary_{short}"])
                    bases[col] = f"{how}; no point value: midpoint of range {r[f'range_secondary_{short}']}"
                    flags[col] = "unverified"
                values[col] = v
                sd = r[f"sd_secondary_{short}"]
                if _blank(sd):
                    sds[col], sd_flags[col], sd_bases[col] = 0.0, "absent", f"{how}; no SD found: 0"
                else:
                    sds[col], sd_flags[col], sd_bases[col] = float(sd), _sd_flag(r[f"verify_{short}"]), how
            v = r["growth_primary"]
            if _blank(v):
                values["primary"] = values["secondary_greater_20"]
                flags["primary"] = "absent"
                bases["primary"] = (f"{how}; no old-growth value in Table 4.9: copy of "
                                    "growth_secondary_greater_20 (EX-ACT practice)")
                sds["primary"] = sds["secondary_greater_20"]
                sd_flags["primary"] = "absent"
                sd_bases["primary"] = f"{how}; copy of stdev_secondary_greater_20"
            else:
                values["primary"] = float(v)
                flags["primary"] = _growth_flag(r["verify_primary"])
                bases["primary"] = how
                if _blank(r["sd_primary"]):
                    sds["primary"], sd_flags["primary"] = 0.0, "absent"
                    sd_bases["primary"] = f"{how}; no SD found: 0"
                else:
                    sds["primary"] = float(r["sd_primary"])
                    sd_flags["primary"] = _sd_flag(r["verify_primary"])
                    sd_bases["primary"] = how
            for col, _ in AGE_COLUMNS:
                g[f"growth_{col}"] = float(values[col])
                s[f"stdev_{col}"] = float(sds[col])
            for col, _ in AGE_COLUMNS:
                g[f"verify_{col}"] = flags[col]
                s[f"verify_{col}"] = sd_flags[col]
            for col, _ in AGE_COLUMNS:
                g[f"basis_{col}"] = bases[col]
                s[f"basis_{col}"] = sd_bases[col]
        for d in (g, s):
            d["ipcc_row_id"] = row_id or ""
            d["mapping"] = mapping
            d.update(meta)
        gain_rows.append(g)
        sd_rows.append(s)

        mtype = int(c.mang_type)
        m = mang.loc[mtype]
        mg = {"gainEcoCon": int(c.code), "mangType": mtype}
        ms = {"gainEcoCon": int(c.code)}
        if mtype == 4:
            mg["AGB_gain_tons_ha_yr"] = 0.0
            mg["verify_AGB_gain"] = "absent"
            mg["basis_AGB_gain"] = ("mangType 4 (water / no data) is not an IPCC class: 0 (no mangrove removals); "
                                    "GFW's BGB rate is NaN and its pool ratios 100 for this type (B.6, B.8)")
            ms["AGB_gain_stdev_tons_ha_yr"] = 0.0
            ms["verify_AGB_gain_stdev"] = "absent"
            ms["basis_AGB_gain_stdev"] = "mangType 4: 0"
        else:
            mg["AGB_gain_tons_ha_yr"] = float(m["agb_growth"])
            mg["verify_AGB_gain"] = m["verify_growth"]
            mg["basis_AGB_gain"] = f"Wetlands Supplement Table 4.4, {m['climate_class']}"
            ms["AGB_gain_stdev_tons_ha_yr"] = float(m["agb_growth_sd_from_ci95"])
            ms["verify_AGB_gain_stdev"] = "unverified"
            ms["basis_AGB_gain_stdev"] = (f"(CI high - CI low) / (2 x 1.96) of the Table 4.4 95% CI "
                                          f"{m['agb_growth_ci95_low']}-{m['agb_growth_ci95_high']} "
                                          f"({m['climate_class']}); GFW's derivation is not recorded")
        mg["mang_type_basis"] = c.mang_type_basis
        for d in (mg, ms):
            d.update(meta)
        mgain_rows.append(mg)
        msd_rows.append(ms)

    return {
        "natrl_fores_gain.csv": pd.DataFrame(gain_rows),
        "natrl_fores_stdv.csv": pd.DataFrame(sd_rows),
        "mangrove_gain.csv": pd.DataFrame(mgain_rows),
        "mangrove_stdev.csv": pd.DataFrame(msd_rows),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared", nargs="?", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = ap.parse_args(argv)
    frames = build(args.shared)
    status = 0
    for name, df in frames.items():
        path = args.out / name
        text = df.to_csv(index=False, lineterminator="\n")
        if args.check:
            if not path.exists() or path.read_text() != text:
                print(f"differs: {path}")
                status = 1
        else:
            path.write_text(text)
            print(f"wrote {path} ({len(df)} rows): {FILES[name]}")
    return status


if __name__ == "__main__":
    sys.exit(main())
