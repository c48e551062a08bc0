"""The gross-emissions stages end to end: GFW-named tiles in, the original's six files out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from fluxgraph.kernels.emissions import EmissionParams, gross_emissions

from fluxgraph.config import load_config
from fluxgraph.errors import MissingLayerError
from fluxgraph.runner import run
from fluxgraph.writers import read_cog_tags

N = 400
ORDER = ("agc_emis_year", "bgc_emis_year", "deadwood_emis_year", "litter_emis_year", "soil_emis_year", "loss_year",
         "tclf", "climate_domain", "climate_zone", "drivers", "peat", "ifl_primary", "plantation_type")


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    agc = np.where(rng.random((N, N)) < 0.6, rng.uniform(1, 200, (N, N)), 0).astype("float32")
    loss = np.where(rng.random((N, N)) < 0.5, rng.integers(1, 26, (N, N)), 0).astype("uint8")
    return {
        "agc_emis_year": agc, "bgc_emis_year": (agc * 0.26).astype("float32"),
        "deadwood_emis_year": (agc * 0.05).astype("float32"), "litter_emis_year": (agc * 0.02).astype("float32"),
        "soil_emis_year": rng.integers(0, 300, (N, N)).astype("uint16"), "loss_year": loss,
        "tclf": np.where(rng.random((N, N)) < 0.2, loss, 0).astype("uint8"),
        "climate_domain": rng.integers(0, 4, (N, N)).astype("int16"),
        "climate_zone": rng.integers(0, 13, (N, N)).astype("uint8"),
        "drivers": rng.integers(0, 8, (N, N)).astype("uint8"), "peat": rng.integers(0, 2, (N, N)).astype("uint8"),
        "ifl_primary": rng.integers(0, 2, (N, N)).astype("uint8"),
        "plantation_type": rng.integers(0, 4, (N, N)).astype("uint8"),
    }


@pytest.fixture
def tiles(tmp_path, write_tile):
    data = _inputs()
    for name, values in data.items():
        write_tile(tmp_path / "in", name, "00N_110E", values)
    return tmp_path / "in", data


@pytest.mark.parametrize("variant", ["biomass_soil", "biomass_only", "soil_only"])
def test_run_writes_the_originals_files_bit_identical(tmp_path, tiles, variant):
    folder, data = tiles
    cfg = load_config(overrides={"grid": {"chunks": [400, 400]}})
    res = run([folder], out=tmp_path / "out", tiles="00N_110E", stages=f"gross_emissions_{variant}",
              config=cfg, naming="gfw", progress=False)
    expected = gross_emissions(*(data[n] for n in ORDER), variant=variant, params=EmissionParams())
    files = {
        "all_gases_all_drivers_Mg_CO2e_ha": expected[0], "CO2_only_all_drivers_Mg_CO2e_ha": expected[1],
        "non_CO2_all_drivers_Mg_CO2e_ha": expected[2], "CH4_only_all_drivers_Mg_CO2e_ha": expected[3],
        "N2O_only_all_drivers_Mg_CO2e_ha": expected[4], "decision_tree_nodes": expected[5],
    }
    for part, values in files.items():
        path = tmp_path / "out" / "cog" / f"00N_110E_gross_emis_{part}_{variant}_2001_25.tif"
        with rasterio.open(path) as src:
            assert src.nodata == 0 and src.dtypes[0] == ("uint16" if part == "decision_tree_nodes" else "float32")
            got = src.read(1)
        assert got.tobytes() == values.tobytes(), part  # bit for bit
    # the annual table sums to the cumulative output's total
    table = pd.read_csv(tmp_path / "out" / "tables" / f"emissions_by_year_driver_{variant}.csv")
    region = table[(table.tile == "region") & (table.gas == "all_gases")]
    assert region.emissions_Mt_CO2e.sum() == pytest.approx(res.summary[f"gross_emis_all_gases_{variant}"]["total_Mt"],
                                                           rel=1e-12)
    assert set(region.loss_year.astype(str)) <= {str(y) for y in range(2001, 2026)}


def test_missing_optional_layers_read_as_zero(tmp_path, tiles):
    folder, data = tiles
    (folder / "00N_110E_peat_mask_processed.tif").unlink()
    (folder / "00N_110E_Mg_soil_C_ha_emis_year_2000.tif").unlink()
    run([folder], out=tmp_path / "out", tiles="00N_110E", stages="gross_emissions_biomass_soil", progress=False)
    zeros = dict(data, peat=np.zeros((N, N), "uint8"), soil_emis_year=np.zeros((N, N), "uint16"))
    expected = gross_emissions(*(zeros[n] for n in ORDER))
    ds = xr.open_zarr(tmp_path / "out" / "fluxgraph.zarr", consolidated=False)
    got = ds.gross_emis_all_gases_biomass_soil.sel(lat=slice(0, -0.1), lon=slice(110, 110.1)).values
    assert got.tobytes() == expected[0].tobytes()


def test_missing_required_layer_is_a_clear_error(tmp_path, tiles):
    folder, _ = tiles
    (folder / "GFW2025_00N_110E.tif").unlink()
    with pytest.raises(MissingLayerError, match=r"'loss_year' \(GFW2025_00N_110E.tif\).*for tile 00N_110E"):
        run([folder], out=tmp_path / "out", tiles="00N_110E", stages="gross_emissions_biomass_soil",
            progress=False)


def test_annual_layers_keep_only_their_years_pixels(tmp_path, tiles):
    folder, data = tiles
    run([folder], out=tmp_path / "out", tiles="00N_110E", stages="gross_emissions_biomass_soil",
        annual_layers=True, progress=False)
    total = gross_emissions(*(data[n] for n in ORDER))[0]
    summed = np.zeros_like(total)
    for k in range(1, 26):
        with rasterio.open(tmp_path / "out" / "cog" / "annual" / "gross_emis_all_gases_biomass_soil" /
                           str(2000 + k) / "00N_110E.tif") as src:
            layer = src.read(1)
        assert read_cog_tags(src.name)["loss_year"] == str(2000 + k)
        assert not layer[data["loss_year"] != k].any()
        summed += layer
    assert summed.tobytes() == total.tobytes()  # each pixel is in exactly one year's layer


def test_three_variants_on_the_demo_source(tmp_path):
    res = run(["demo://?size=200"], out=tmp_path, tiles="00N_110E",
              stages="gross_emissions_biomass_soil,gross_emissions_biomass_only,gross_emissions_soil_only",
              progress=False)
    tot = {v: res.summary[f"gross_emis_all_gases_{v}"]["total_Mt"] for v in ("biomass_soil", "biomass_only",
                                                                             "soil_only")}
    assert all(t > 0 for t in tot.values())
    # biomass and soil parts add up to the standard variant, up to float32 rounding per pixel
    assert tot["biomass_only"] + tot["soil_only"] == pytest.approx(tot["biomass_soil"], rel=1e-3)
