"""The layer catalog: every input, intermediate and output layer, declared once, as data.

Each layer has a short fluxgraph name (Zarr variable, Python API) and the original's
file-name pattern (spec/inputs.md §1.3, stages.md Appendix A.1, emissions.md §7).
Patterns contain placeholders filled from the run configuration
(:class:`fluxgraph.config.Naming`), so a new data year is a configuration change:

``{tile}``           tile id, e.g. ``00N_000E``
``{loss_prefix}``    Hansen loss product prefix, e.g. ``GFW2025``
``{drivers_date}``   date of the drivers product, e.g. ``20260326``
``{gain_period}``    period of the gain product, e.g. ``2000_2020``
``{period}``         model period in output names, e.g. ``2001_25``
``{period_long}``    model period with full years, e.g. ``2001_2025``
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from fluxgraph.errors import UnknownLayerError

__all__ = ["AGGREGATED", "CATALOG", "Layer", "get_layer", "layers_by_stage"]


@dataclass(frozen=True)
class Layer:
    """One raster layer of the model.

    Attributes
    ----------
    name : str
        fluxgraph name (Zarr variable name).
    pattern : str
        The original's file name without ``.tif`` (placeholders, see module docstring).
    dtype : str
        numpy dtype of the values.
    nodata : float
        Nodata value written to files (0 almost everywhere, spec/inputs.md §1.5).
    units : str
        Physical units.
    description : str
        What the layer is.
    stage : str or None
        The stage that produces it; None for raw inputs.
    fill : float
        Value read where a tile of this layer is absent (the original's treatment of
        a missing tile; 0 except where the spec says otherwise).
    sign : str
        Sign convention of a flux layer ("" when not a flux).
    """

    name: str
    pattern: str
    dtype: str
    nodata: float
    units: str
    description: str
    stage: str | None = None
    fill: float = 0.0
    sign: str = ""

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def is_input(self) -> bool:
        return self.stage is None

    def filename(self, naming: Mapping[str, str], tile: str) -> str:
        """The original's file name of this layer for ``tile`` (with ``.tif``)."""
        return self.pattern.format(tile=tile, **naming) + naming.get("file_suffix", "") + ".tif"


def _inputs(rows: list[tuple]) -> list[Layer]:
    return [Layer(*r[:6], stage=None, **(r[6] if len(r) > 6 else {})) for r in rows]


def _produced(stage: str, rows: list[tuple]) -> list[Layer]:
    return [Layer(*r[:6], stage=stage, **(r[6] if len(r) > 6 else {})) for r in rows]


MGHA_YR_BIOMASS = "Mg biomass/ha/yr"
MGC_HA_YR = "Mg C/ha/yr"
MGC_HA = "Mg C/ha"
EMIS_UNITS = "Mg CO2e/ha over the model period"
EMIS_SIGN = "positive = emission to the atmosphere"

# fmt: off
_LAYERS: list[Layer] = [
    # ---- raw inputs (spec/inputs.md §2) ------------------------------------------------------------
    *_inputs([
        ("loss_year", "{loss_prefix}_{tile}", "uint8", 0, "year code", "Hansen tree cover loss year: 0 no loss, k = loss in 2000 + k"),
        ("gain", "{tile}_tree_cover_gain_{gain_period}", "uint8", 0, "flag", "UMD height-based tree cover gain 2000-2020 (1 = gain)"),
        ("tcd2000", "Hansen_GFC2014_treecover2000_{tile}", "uint8", 0, "percent", "tree cover density in 2000"),
        ("pixel_area", "hanson_2013_area_{tile}", "float32", 0, "m2", "pixel area"),
        ("agb_2000", "{tile}_t_aboveground_biomass_ha_2000", "int16", 0, "Mg biomass/ha", "WHRC aboveground biomass 2000"),
        ("mangrove_agb_2000", "{tile}_mangrove_agb_t_ha_2000", "float32", 0, "Mg biomass/ha", "mangrove aboveground biomass 2000 (Simard et al. 2019)"),
        ("agb_2000_jpl", "{tile}_Mg_aboveground_biomass_ha_2000_JPL", "float32", 0, "Mg biomass/ha", "JPL (Saatchi) AGB 2000, biomass_swap sensitivity only"),
        ("continent_ecozone", "{tile}_fao_ecozones_continents_processed", "int16", 0, "code", "continent-ecozone code gainEcoCon (gap-filled)"),
        ("continent_ecozone_raw", "{tile}_fao_ecozones_continents_raw", "int16", 0, "code", "continent-ecozone code before gap filling (not used by the model)"),
        ("climate_domain", "{tile}_fao_ecozones_bor_tem_tro_processed", "int16", 0, "code", "climate domain: 1 tropical, 2 boreal, 3 temperate"),
        ("climate_zone", "{tile}_climate_zone_processed", "uint8", 0, "code", "IPCC climate zone 1-12"),
        ("elevation", "{tile}_elevation", "int16", 0, "m", "elevation above sea level (SRTM)"),
        ("precipitation", "{tile}_precip_mm_annual", "int32", 0, "mm/yr", "annual precipitation"),
        ("bgb_agb_ratio", "{tile}_BGB_AGB_ratio", "float32", 0, "1", "below:above-ground biomass ratio (Huang et al. 2021)", {"fill": 0.26}),
        ("rf_agc_young", "{tile}_annual_gain_rate_AGC_t_ha_natural_forest_young_secondary", "float32", 0, MGC_HA_YR, "young natural forest AGC removal factor (Cook-Patton et al. 2020); contains NaN"),
        ("rf_stdev_agc_young", "{tile}_annual_gain_rate_stdev_AGC_t_ha_natural_forest_young_secondary", "float32", 0, MGC_HA_YR, "stdev of the young natural forest AGC removal factor"),
        ("rf_agc_bgc_europe", "{tile}_annual_gain_rate_AGC_BGC_t_ha_natural_forest_Europe", "float32", 0, MGC_HA_YR, "European natural forest AGC+BGC removal factor"),
        ("rf_stdev_agc_bgc_europe", "{tile}_annual_gain_rate_stdev_AGC_BGC_Mg_ha_natural_forest_Europe", "float32", 0, MGC_HA_YR, "stdev of the European rate (2x too large; halved where used)"),
        ("rf_agc_bgc_planted", "{tile}_annual_gain_rate_AGC_BGC_Mg_ha_planted_forest", "float32", 0, MGC_HA_YR, "planted forest AGC+BGC removal factor (SDPT v2)"),
        ("rf_agc_planted", "{tile}_annual_gain_rate_AGC_Mg_ha_planted_forest", "float32", 0, MGC_HA_YR, "planted forest AGC-only removal factor (not used by the model)"),
        ("rf_stdev_agc_bgc_planted", "{tile}_annual_gain_rate_stdev_AGC_BGC_Mg_ha_planted_forest_unmasked", "float32", 0, MGC_HA_YR, "stdev of the planted forest AGC+BGC rate"),
        ("rf_stdev_agc_planted", "{tile}_annual_gain_rate_stdev_AGC_Mg_ha_planted_forest_unmasked", "float32", 0, MGC_HA_YR, "stdev of the planted forest AGC rate (not used)"),
        ("plantation_type", "{tile}_plantation_type_oilpalm_woodfiber_other", "uint8", 0, "code", "planted forest type: 1 oil palm, 2 wood fibre, 3 other"),
        ("planted_forest_establishment_year", "{tile}_planted_forest_establishment_year", "uint8", 0, "year code", "SDPT establishment year (not used in v1.4.3)"),
        ("plantation_pre2000", "{tile}_plantation_2000_or_earlier_processed", "uint8", 0, "flag", "plantations established in or before 2000 (IDN/MYS)"),
        ("ifl_primary", "{tile}_ifl_2000_primary_2001_merged", "uint8", 0, "flag", "intact forest 2000 / humid tropical primary forest 2001"),
        ("fia_region", "{tile}_FIA_regions_processed", "uint8", 0, "code", "US FIA region"),
        ("fia_forest_group", "{tile}_FIA_forest_group_processed", "uint8", 0, "code", "US FIA forest-type group"),
        ("us_age_category", "{tile}_forest_age_category_natural_forest_US", "uint8", 0, "class", "US forest age: 1 0-20 yr, 2 20-100 yr, 3 >100 yr"),
        ("drivers", "{tile}_drivers_of_TCL_1_km_{drivers_date}", "uint8", 0, "code", "dominant driver of tree cover loss, 1 km (Sims et al. 2025), 1-7"),
        ("tclf", "{tile}_tree_cover_loss_fire_processed", "uint8", 0, "year code", "tree cover loss due to fire (>0 = burned)"),
        ("peat", "{tile}_peat_mask_processed", "uint8", 0, "flag", "peat mask"),
        ("soil_c_2000", "{tile}_soil_C_full_extent_2000_Mg_C_ha", "int16", 0, MGC_HA, "soil organic carbon 2000 (mineral 0-30 cm, mangrove 0-100 cm)"),
        ("soil_c_non_mangrove", "{tile}_soil_C_full_extent_2000_non_mangrove_Mg_C_ha", "int16", 0, MGC_HA, "mineral soil C 2000 (preparation intermediate)"),
        ("mangrove_soil_c", "{tile}_mangrove_soil_C_masked_to_mangrove_AGB_Mg_C_ha", "int16", 0, MGC_HA, "mangrove soil C (preparation intermediate)"),
        ("soil_c_stdev", "{tile}_Mg_soil_C_ha_stdev_full_extent_2000", "float32", 0, MGC_HA, "soil C standard deviation (uncertainty only)"),
        ("legal_amazon_extent_2000", "{tile}_legal_Amazon_forest_extent_2000", "uint8", 0, "flag", "PRODES forest extent 2000 (legal_Amazon_loss sensitivity)"),
        ("legal_amazon_loss", "{tile}_legal_Amazon_annual_loss_{period_long}", "uint8", 0, "year code", "PRODES annual loss (legal_Amazon_loss sensitivity)"),
        ("mekong_loss", "{tile}_Mekong_loss_2001_15", "uint8", 0, "year code", "Mekong first loss year (unsupported since v1.2.0)"),
    ]),
    # ---- optional pre-stages (spec/stages.md §3, §4) --------------------------------------------
    *_produced("annual_removals_mangrove", [
        ("rf_agb_mangrove", "{tile}_annual_removal_factor_AGB_Mg_ha_mangrove", "float32", 0, MGHA_YR_BIOMASS, "mangrove AGB removal factor (IPCC Wetlands Table 4.4)"),
        ("rf_bgb_mangrove", "{tile}_annual_removal_factor_BGB_Mg_ha_mangrove", "float32", 0, MGHA_YR_BIOMASS, "mangrove BGB removal factor"),
        ("rf_stdev_agb_mangrove", "{tile}_annual_removal_factor_stdev_AGB_Mg_ha_mangrove", "float32", 0, MGHA_YR_BIOMASS, "stdev of the mangrove AGB removal factor"),
    ]),
    *_produced("annual_removals_us", [
        ("rf_agc_bgc_us", "{tile}_annual_removal_factor_AGC_BGC_Mg_ha_natural_forest_US", "float32", 0, MGC_HA_YR, "US natural forest AGC+BGC removal factor (FIA)"),
        ("rf_stdev_agc_bgc_us", "{tile}_annual_removal_factor_stdev_AGC_BGC_Mg_ha_natural_forest_US", "float32", 0, MGC_HA_YR, "stdev of the US removal factor"),
    ]),
    # ---- standard chain (spec/stages.md §5-§12b) ------------------------------------------------
    *_produced("model_extent", [
        ("model_extent", "{tile}_model_extent", "uint8", 0, "flag", "1 = pixel in the model extent"),
    ]),
    *_produced("forest_age_category_IPCC", [
        ("forest_age_category", "{tile}_forest_age_category_IPCC__1_young_2_mid_3_old", "uint8", 0, "class", "IPCC age class: 1 young secondary, 2 old secondary, 3 primary"),
    ]),
    *_produced("annual_removals_IPCC", [
        ("rf_agb_ipcc", "{tile}_annual_removal_factor_AGB_Mg_ha_IPCC_defaults_all_ages", "float32", 0, MGHA_YR_BIOMASS, "IPCC default AGB removal factor (Table 4.9)"),
        ("rf_bgb_ipcc", "{tile}_annual_removal_factor_BGB_Mg_ha_IPCC_defaults_all_ages", "float32", 0, MGHA_YR_BIOMASS, "IPCC default BGB removal factor (written, not used downstream)"),
        ("rf_stdev_agb_ipcc", "{tile}_annual_removal_factor_stdev_AGB_Mg_ha_IPCC_defaults_all_ages", "float32", 0, MGHA_YR_BIOMASS, "stdev of the IPCC default AGB removal factor"),
    ]),
    *_produced("annual_removals_all_forest_types", [
        ("removal_forest_type", "{tile}_removal_forest_type", "uint8", 0, "code", "removal factor source: 6 mangrove, 5 Europe, 4 planted, 3 US, 2 young natural, 1 IPCC"),
        ("rf_agc_all", "{tile}_annual_removal_factor_AGC_Mg_ha_all_forest_types", "float32", 0, MGC_HA_YR, "composite AGC removal factor"),
        ("rf_bgc_all", "{tile}_annual_removal_factor_BGC_Mg_ha_all_forest_types", "float32", 0, MGC_HA_YR, "composite BGC removal factor"),
        ("rf_agc_bgc_all", "{tile}_annual_removal_factor_AGC_BGC_Mg_ha_all_forest_types", "float32", 0, MGC_HA_YR, "composite AGC+BGC removal factor (reference only)"),
        ("rf_stdev_agc_all", "{tile}_annual_removal_factor_stdev_AGC_Mg_ha_all_forest_types", "float32", 0, MGC_HA_YR, "stdev of the composite AGC removal factor (uncertainty only)"),
    ]),
    *_produced("gain_year_count", [
        ("gain_year_count_loss_only", "{tile}_gain_year_count_loss_only", "uint8", 0, "years", "removal years of loss-only pixels"),
        ("gain_year_count_gain_only", "{tile}_gain_year_count_gain_only", "uint8", 0, "years", "removal years of gain-only pixels"),
        ("gain_year_count_no_change", "{tile}_gain_year_count_no_change", "uint8", 0, "years", "removal years of pixels without loss or gain"),
        ("gain_year_count_loss_and_gain", "{tile}_gain_year_count_loss_and_gain", "uint8", 0, "years", "removal years of loss-and-gain pixels"),
        ("gain_year_count", "{tile}_gain_year_count_all_forest_types", "uint8", 0, "years", "number of years of removals 2001 to the end of the model period"),
    ]),
    *_produced("gross_removals_all_forest_types", [
        ("gross_removals_agco2", "{tile}_gross_removals_AGCO2_Mg_ha_all_forest_types_{period}", "float32", 0, "Mg CO2/ha over the model period", "gross aboveground removals", {"sign": "positive = removal from the atmosphere"}),
        ("gross_removals_bgco2", "{tile}_gross_removals_BGCO2_Mg_ha_all_forest_types_{period}", "float32", 0, "Mg CO2/ha over the model period", "gross belowground removals", {"sign": "positive = removal from the atmosphere"}),
        ("gross_removals", "{tile}_gross_removals_AGCO2_BGCO2_Mg_ha_all_forest_types_{period}", "float32", 0, "Mg CO2/ha over the model period", "gross removals (above + below ground)", {"sign": "positive = removal from the atmosphere"}),
    ]),
    *_produced("carbon_pools", [
        ("agc_emis_year", "{tile}_Mg_AGC_ha_emis_year", "float32", 0, MGC_HA, "aboveground carbon in the year of loss"),
        ("bgc_emis_year", "{tile}_Mg_BGC_ha_emis_year", "float32", 0, MGC_HA, "belowground carbon in the year of loss"),
        ("deadwood_emis_year", "{tile}_Mg_deadwood_C_ha_emis_year_2000", "float32", 0, MGC_HA, "deadwood carbon (2000 density) on loss pixels"),
        ("litter_emis_year", "{tile}_Mg_litter_C_ha_emis_year_2000", "float32", 0, MGC_HA, "litter carbon (2000 density) on loss pixels"),
        ("soil_emis_year", "{tile}_Mg_soil_C_ha_emis_year_2000", "uint16", 0, MGC_HA, "soil carbon 2000 on loss pixels"),
        ("total_c_emis_year", "{tile}_Mg_total_C_ha_emis_year", "float32", 0, MGC_HA, "total carbon in the year of loss"),
        ("agc_2000", "{tile}_Mg_AGC_ha_2000", "float32", 0, MGC_HA, "aboveground carbon 2000"),
        ("bgc_2000", "{tile}_Mg_BGC_ha_2000", "float32", 0, MGC_HA, "belowground carbon 2000"),
        ("deadwood_2000", "{tile}_Mg_deadwood_C_ha_2000", "float32", 0, MGC_HA, "deadwood carbon 2000"),
        ("litter_2000", "{tile}_Mg_litter_C_ha_2000", "float32", 0, MGC_HA, "litter carbon 2000"),
        ("total_c_2000", "{tile}_Mg_total_C_ha_2000", "float32", 0, MGC_HA, "total carbon 2000"),
    ]),
    *[
        layer
        for variant in ("biomass_soil", "biomass_only", "soil_only")
        for layer in _produced(f"gross_emissions_{variant}", [
            (f"gross_emis_all_gases_{variant}", f"{{tile}}_gross_emis_all_gases_all_drivers_Mg_CO2e_ha_{variant}_{{period}}", "float32", 0, EMIS_UNITS, f"gross emissions, all gases ({variant})", {"sign": EMIS_SIGN}),
            (f"gross_emis_co2_{variant}", f"{{tile}}_gross_emis_CO2_only_all_drivers_Mg_CO2e_ha_{variant}_{{period}}", "float32", 0, EMIS_UNITS, f"gross emissions, CO2 only ({variant})", {"sign": EMIS_SIGN}),
            (f"gross_emis_non_co2_{variant}", f"{{tile}}_gross_emis_non_CO2_all_drivers_Mg_CO2e_ha_{variant}_{{period}}", "float32", 0, EMIS_UNITS, f"gross emissions, CH4 + N2O ({variant})", {"sign": EMIS_SIGN}),
            (f"gross_emis_ch4_{variant}", f"{{tile}}_gross_emis_CH4_only_all_drivers_Mg_CO2e_ha_{variant}_{{period}}", "float32", 0, EMIS_UNITS, f"gross emissions, CH4 only ({variant})", {"sign": EMIS_SIGN}),
            (f"gross_emis_n2o_{variant}", f"{{tile}}_gross_emis_N2O_only_all_drivers_Mg_CO2e_ha_{variant}_{{period}}", "float32", 0, EMIS_UNITS, f"gross emissions, N2O only ({variant})", {"sign": EMIS_SIGN}),
            (f"gross_emis_nodes_{variant}", f"{{tile}}_gross_emis_decision_tree_nodes_{variant}_{{period}}", "uint16", 0, "code", f"emissions decision-tree node ({variant})"),
        ])
    ],
    *_produced("net_flux", [
        ("net_flux", "{tile}_net_flux_Mg_CO2e_ha_biomass_soil_{period}", "float32", 0, "Mg CO2e/ha over the model period", "net flux = gross emissions - gross removals", {"sign": "negative = net sink, positive = net source"}),
    ]),
    *_produced("create_derivative_outputs", [
        ("gross_removals_per_pixel_full", "{tile}_gross_removals_AGCO2_BGCO2_Mg_pixel_all_forest_types_full_extent_{period}", "float32", 0, "Mg CO2/pixel over the model period", "gross removals per pixel, full extent", {"sign": "positive = removal"}),
        ("gross_removals_per_ha_forest", "{tile}_gross_removals_AGCO2_BGCO2_Mg_ha_all_forest_types_forest_extent_{period}", "float32", 0, "Mg CO2/ha over the model period", "gross removals per ha, forest extent", {"sign": "positive = removal"}),
        ("gross_removals_per_pixel_forest", "{tile}_gross_removals_AGCO2_BGCO2_Mg_pixel_all_forest_types_forest_extent_{period}", "float32", 0, "Mg CO2/pixel over the model period", "gross removals per pixel, forest extent", {"sign": "positive = removal"}),
        ("gross_emis_per_pixel_full", "{tile}_gross_emis_all_gases_all_drivers_Mg_CO2e_pixel_biomass_soil_full_extent_{period}", "float32", 0, "Mg CO2e/pixel over the model period", "gross emissions per pixel, full extent", {"sign": EMIS_SIGN}),
        ("gross_emis_per_ha_forest", "{tile}_gross_emis_all_gases_all_drivers_Mg_CO2e_ha_biomass_soil_forest_extent_{period}", "float32", 0, EMIS_UNITS, "gross emissions per ha, forest extent", {"sign": EMIS_SIGN}),
        ("gross_emis_per_pixel_forest", "{tile}_gross_emis_all_gases_all_drivers_Mg_CO2e_pixel_biomass_soil_forest_extent_{period}", "float32", 0, "Mg CO2e/pixel over the model period", "gross emissions per pixel, forest extent", {"sign": EMIS_SIGN}),
        ("net_flux_per_pixel_full", "{tile}_net_flux_Mg_CO2e_pixel_biomass_soil_full_extent_{period}", "float32", 0, "Mg CO2e/pixel over the model period", "net flux per pixel, full extent", {"sign": "negative = net sink"}),
        ("net_flux_per_ha_forest", "{tile}_net_flux_Mg_CO2e_ha_biomass_soil_forest_extent_{period}", "float32", 0, "Mg CO2e/ha over the model period", "net flux per ha, forest extent", {"sign": "negative = net sink"}),
        ("net_flux_per_pixel_forest", "{tile}_net_flux_Mg_CO2e_pixel_biomass_soil_forest_extent_{period}", "float32", 0, "Mg CO2e/pixel over the model period", "net flux per pixel, forest extent", {"sign": "negative = net sink"}),
    ]),
]
# fmt: on

# 0.04° maps aggregated from the forest-extent per-pixel layers (spec/stages.md §13 steps 2-4): one global
# raster each, not per tile, so they are not in CATALOG (the 30 m layers); see fluxgraph.aggregate.
# Placeholders: {tcd} threshold, {model_version_tag} 1_4_3, {model_type} std, {date} YYYYMMDD of aggregation.
_AGG_SUFFIX = "_tcd{tcd}_0_04deg_modelv{model_version_tag}_{model_type}_{date}"
# fmt: off
AGGREGATED: dict[str, Layer] = {layer.name: layer for layer in _produced("create_derivative_outputs", [
    ("gross_removals_4km", "gross_removals_AGCO2_BGCO2_Mt_per_year_all_forest_types_" + _AGG_SUFFIX, "float32", 0, "Mt CO2/yr per 0.04° cell", "gross removals in the forest extent, annual mean, 0.04° cells", {"sign": "negative = removal (flipped from the 30 m layers)"}),
    ("gross_emis_4km", "gross_emis_all_gases_all_drivers_Mt_per_year_CO2e_biomass_soil_" + _AGG_SUFFIX, "float32", 0, "Mt CO2e/yr per 0.04° cell", "gross emissions (all gases, biomass_soil) in the forest extent, annual mean, 0.04° cells", {"sign": EMIS_SIGN}),
    ("net_flux_4km", "net_flux_Mt_per_year_CO2e_biomass_soil_" + _AGG_SUFFIX, "float32", 0, "Mt CO2e/yr per 0.04° cell", "net flux in the forest extent, annual mean, 0.04° cells", {"sign": "negative = net sink, positive = net source"}),
])}
# fmt: on

CATALOG: dict[str, Layer] = {layer.name: layer for layer in _LAYERS}
if len(CATALOG) != len(_LAYERS):  # pragma: no cover - guards the table above
    raise RuntimeError("duplicate layer names in the catalog")


def get_layer(name: str) -> Layer:
    """The catalog entry of ``name``; a clear error listing close names otherwise."""
    try:
        return CATALOG[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, CATALOG, n=4)
        hint = f" Did you mean {', '.join(close)}?" if close else " Run `fluxgraph layers` for the list."
        raise UnknownLayerError(f"unknown layer {name!r}.{hint}") from None


def layers_by_stage() -> Iterator[tuple[str | None, list[Layer]]]:
    """Layers grouped by producing stage (None = raw inputs), in catalog order."""
    groups: dict[str | None, list[Layer]] = {}
    for layer in _LAYERS:
        groups.setdefault(layer.stage, []).append(layer)
    yield from groups.items()
