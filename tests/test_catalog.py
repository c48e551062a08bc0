"""The layer catalog holds every layer the spec names, with the original's file names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fluxgraph.catalog import CATALOG, get_layer
from fluxgraph.config import load_config
from fluxgraph.errors import UnknownLayerError

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"


def _catalog_names() -> set[str]:
    naming = load_config().naming
    return {layer.filename(naming, "{tile}")[: -len(".tif")] for layer in CATALOG.values()}


def _spec_patterns() -> set[str]:
    """Backticked tile patterns of inputs.md §2 and stages.md Appendix A.1 / emissions.md §7."""
    found: set[str] = set()
    naming = load_config().naming
    subs = {"[_{model}]": "", "[...]": "", ".tif": ""}
    for name in ("inputs.md", "stages.md", "emissions.md"):
        text = (SPEC / name).read_text()
        for raw in re.findall(r"`([^`]*\{tile(?:_id)?\}[^`]*)`", text):
            pat = raw.replace("{tile_id}", "{tile}")
            for a, b in subs.items():
                pat = pat.replace(a, b)
            if "…" in pat or "|" in pat or " " in pat or "{pattern}" in pat or "{type}" in pat or pat == "{tile}":
                continue
            if pat.endswith("_2001_2019"):  # the emissions C++'s stale legal-Amazon name (emissions.md §8)
                continue
            pat = pat.replace("_{model_type}", "")
            pat = pat.replace("P_2001_25", "biomass_soil_2001_25")
            pat = pat.replace("20{loss_years}", "{period_long}").replace("_2001_{period_long}", "_{period_long}")
            found.add(pat.format(tile="{tile}", **naming))
    return found


@pytest.mark.skipif(not SPEC.is_dir(), reason="spec folder ../shared/spec not beside the checkout")
def test_every_spec_pattern_is_in_the_catalog():
    names = _catalog_names()
    missing = sorted(p for p in _spec_patterns() if p not in names)
    assert not missing, f"layers named in the spec but absent from the catalog: {missing}"


def test_dated_parts_come_from_config():
    cfg = load_config(overrides={"naming": {"loss_prefix": "GFW2026", "drivers_date": "20270301"},
                                 "model": {"model_years": 26}})
    assert get_layer("loss_year").filename(cfg.naming, "00N_000E") == "GFW2026_00N_000E.tif"
    assert get_layer("drivers").filename(cfg.naming, "00N_000E") == "00N_000E_drivers_of_TCL_1_km_20270301.tif"
    assert get_layer("net_flux").filename(cfg.naming, "00N_000E") == (
        "00N_000E_net_flux_Mg_CO2e_ha_biomass_soil_2001_26.tif")


def test_original_output_names():
    naming = load_config().naming
    assert get_layer("gross_emis_all_gases_biomass_soil").filename(naming, "00N_000E") == (
        "00N_000E_gross_emis_all_gases_all_drivers_Mg_CO2e_ha_biomass_soil_2001_25.tif")
    assert get_layer("gross_emis_nodes_biomass_only").filename(naming, "10S_040E") == (
        "10S_040E_gross_emis_decision_tree_nodes_biomass_only_2001_25.tif")
    assert get_layer("pixel_area").filename(naming, "00N_000E") == "hanson_2013_area_00N_000E.tif"


def test_unknown_layer_suggests_names():
    with pytest.raises(UnknownLayerError, match="Did you mean net_flux"):
        get_layer("net_flx")
