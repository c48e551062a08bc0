"""Tests of the gross-emissions kernel (fluxgraph.kernels.emissions).

Authority: spec/emissions.md. Exact float32 reference vectors of §12 for the three
variants, bit-for-bit agreement with an independent numpy reference
(tests/reference/emissions_numpy.py) on random and exhaustive inputs, coverage of
all 89 leaves of §5.4, zero-stride inputs, the quirk flags of §9 and the
loss-year × driver × gas reduction.
"""

from __future__ import annotations

import dataclasses
import doctest
import itertools

import fluxgraph.kernels.emissions as emissions_module
import numpy as np
import pytest
from fluxgraph.kernels.emissions import (
    DEFAULT_PARAMS,
    NODE_CODES,
    VARIANTS,
    EmissionParams,
    gross_emissions,
    sum_by_year_driver,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference.emissions_numpy import LEAVES
from reference.emissions_numpy import gross_emissions as reference_gross_emissions

INPUT_NAMES = (
    "agc", "bgc", "deadwood", "litter", "soil", "loss", "burn",
    "ecozone", "climate", "driver", "peat", "ifl", "plant",
)  # fmt: skip
INPUT_DTYPES = {
    "agc": np.float32,
    "bgc": np.float32,
    "deadwood": np.float32,
    "litter": np.float32,
    "soil": np.uint16,
    "loss": np.uint8,
    "burn": np.uint8,
    "ecozone": np.int16,
    "climate": np.uint8,
    "driver": np.uint8,
    "peat": np.uint8,
    "ifl": np.uint8,
    "plant": np.uint8,
}
OUTPUT_NAMES = ("all_gases", "co2_only", "non_co2", "ch4_only", "n2o_only", "node")
FLAG_NAMES = (
    "replicate_node62_bug",
    "cap_soil_years_at_20",
    "clamp_loss_beyond_model_years",
    "include_ms_n2o",
)

# spec/emissions.md §5.4, typed from the table (independent of the kernel's NODE_CODES).
SPEC_NODE_CODES = {
    10, 11, 111, 12, 13, 131, 14, 141, 15, 16, 161, 17, 171, 18, 19, 191,
    20, 21, 211, 22, 23, 231, 24, 241, 25, 26, 261, 27, 271, 28, 29, 291,
    30, 31, 32, 33, 331, 34, 341, 35, 351, 36, 37, 371, 38, 381, 39, 391, 392,
    40, 41, 42, 421, 43, 44, 50, 51, 52, 521, 53, 54,
    60, 61, 611, 62, 63, 631, 64, 641, 65, 66, 661, 67, 671, 68, 69, 691,
    70, 71, 72, 721, 73, 74, 80, 81, 82, 821, 83, 84,
}  # fmt: skip

# ---------------------------------------------------------------------------
# spec/emissions.md §12, copied verbatim from the spec tables.
# Inputs: # | AGC | BGC | DW | LT | SOC | loss | burn | eco | clim | drv | peat | ifl | plant
SPEC_INPUTS = """
| T01 | 100 | 25 | 5 | 2 | 80 | 5 | 0 | 1 | 10 | 1 | 0 | 0 | 0 |
| T02 | 150 | 40 | 8 | 3 | 120 | 10 | 10 | 1 | 11 | 1 | 1 | 1 | 1 |
| T03 | 60 | 15 | 6 | 4 | 150 | 3 | 3 | 2 | 7 | 2 | 0 | 0 | 0 |
| T04 | 80 | 20 | 4 | 2 | 100 | 12 | 12 | 3 | 1 | 3 | 1 | 0 | 0 |
| T05 | 120.5 | 30.25 | 6.1 | 2.9 | 70 | 1 | 0 | 1 | 12 | 3 | 0 | 1 | 0 |
| T06 | 200 | 50 | 10 | 4 | 90 | 20 | 20 | 1 | 10 | 4 | 0 | 1 | 0 |
| T07 | 90 | 22 | 5 | 2 | 0 | 15 | 15 | 1 | 11 | 5 | 1 | 0 | 2 |
| T08 | 50 | 12 | 3 | 1 | 200 | 8 | 0 | 2 | 7 | 6 | 1 | 0 | 0 |
| T09 | 70 | 18 | 4 | 1.5 | 60 | 25 | 0 | 1 | 10 | 7 | 1 | 0 | 3 |
| T10 | 40 | 10 | 2 | 1 | 50 | 7 | 0 | 3 | 3 | 0 | 0 | 0 | 0 |
| T11 | 100 | 25 | 5 | 2 | 80 | 5 | 0 | 0 | 10 | 1 | 0 | 0 | 0 |
| T12 | 100 | 20 | 5 | 2 | 100 | 10 | 0 | 3 | 0 | 1 | 0 | 0 | 0 |
| T13 | 100 | 25 | 5 | 2 | 80 | 0 | 0 | 1 | 10 | 1 | 0 | 0 | 0 |
| T14 | 0 | 25 | 5 | 2 | 80 | 5 | 0 | 1 | 10 | 1 | 0 | 0 | 0 |
| T15 | 100 | 25 | 5 | 2 | 80 | 5 | 4 | 1 | 10 | 1 | 0 | 2 | 0 |
| T16 | 100 | 25 | 5 | 2 | 80 | 5 | 0 | 1 | 10 | 2 | 0 | 0 | 1 |
| T17 | 55 | 14 | 3 | 1 | 90 | 9 | 9 | 2 | 8 | 8 | 1 | 0 | 0 |
| T18 | 100 | 25 | 5 | 2 | 80 | 5 | 0 | 1 | 9 | 1 | 0 | 0 | 0 |
"""

# Expected: # | node | CO2 | CH4 | N2O | non-CO2 | all gases
SPEC_EXPECTED = {
    "biomass_soil": """
| T01 | 171 | 533.86664 | 0.0 | 3.8895998 | 3.8895998 | 537.7562 |
| T02 | 10 | 1646.0 | 134.26659 | 23.406078 | 157.67267 | 1803.6727 |
| T03 | 25 | 432.6667 | 13.540499 | 17.011715 | 30.552214 | 463.2189 |
| T04 | 30 | 834.6667 | 96.5962 | 8.16421 | 104.76041 | 939.42706 |
| T05 | 381 | 671.99 | 0.0 | 6.7267194 | 6.7267194 | 678.71674 |
| T06 | 43 | 242.04256 | 30.094776 | 8.949754 | 39.04453 | 281.0871 |
| T07 | 50 | 1527.4043 | 233.84055 | 27.197681 | 261.03824 | 1788.4425 |
| T08 | 62 | 272.6 | 5.61 | 3.23 | 8.84 | 281.44 |
| T09 | 72 | 322.6667 | 0.0 | 0.0 | 0.0 | 322.6667 |
| T10 | 84 | 183.33334 | 0.0 | 0.0 | 0.0 | 183.33334 |
| T11 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T12 | 191 | 740.6667 | 0.0 | 21.45 | 21.45 | 762.1167 |
| T13 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T14 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T15 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T16 | 27 | 484.0 | 0.0 | 0.0 | 0.0 | 484.0 |
| T17 | 80 | 537.2262 | 92.6962 | 6.0694866 | 98.765686 | 635.9918 |
| T18 | 171 | 519.2 | 0.0 | 2.7455995 | 2.7455995 | 521.9456 |
""",
    "soil_only": """
| T01 | 171 | 49.86666 | 0.0 | 3.8895998 | 3.8895998 | 53.75626 |
| T02 | 10 | 909.0 | 106.0 | 15.0 | 121.0 | 1030.0 |
| T03 | 25 | 121.0 | 0.0 | 9.438 | 9.438 | 130.438 |
| T04 | 30 | 446.0 | 82.0 | 0.0 | 82.0 | 528.0 |
| T05 | 381 | 86.23999 | 0.0 | 6.7267194 | 6.7267194 | 92.96671 |
| T06 | 43 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T07 | 50 | 1361.0 | 213.0 | 21.0 | 234.0 | 1595.0 |
| T08 | 62 | 30.599998 | 5.61 | 3.23 | 8.84 | 39.44 |
| T09 | 72 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T10 | 84 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T11 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T12 | 191 | 275.0 | 0.0 | 21.45 | 21.45 | 296.45 |
| T13 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T14 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T15 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T16 | 27 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T17 | 80 | 474.8 | 87.28 | 3.04 | 90.32 | 565.11993 |
| T18 | 171 | 35.199997 | 0.0 | 2.7455995 | 2.7455995 | 37.945595 |
""",
    "biomass_only": """
| T01 | 171 | 484.0 | 0.0 | 0.0 | 0.0 | 484.0 |
| T02 | 10 | 737.0 | 28.26659 | 8.406077 | 36.67267 | 773.67267 |
| T03 | 25 | 311.6667 | 13.540499 | 7.573716 | 21.114216 | 332.7809 |
| T04 | 30 | 388.6667 | 14.596199 | 8.16421 | 22.76041 | 411.4271 |
| T05 | 381 | 585.75 | 0.0 | 0.0 | 0.0 | 585.75 |
| T06 | 43 | 242.04256 | 30.094776 | 8.949754 | 39.04453 | 281.0871 |
| T07 | 50 | 166.40427 | 20.840553 | 6.1976814 | 27.038235 | 193.44249 |
| T08 | 62 | 272.6 | 0.0 | 0.0 | 0.0 | 272.6 |
| T09 | 72 | 322.6667 | 0.0 | 0.0 | 0.0 | 322.6667 |
| T10 | 84 | 183.33334 | 0.0 | 0.0 | 0.0 | 183.33334 |
| T11 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T12 | 191 | 465.6667 | 0.0 | 0.0 | 0.0 | 465.6667 |
| T13 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T14 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T15 | 0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |
| T16 | 27 | 484.0 | 0.0 | 0.0 | 0.0 | 484.0 |
| T17 | 80 | 62.42617 | 5.4161997 | 3.0294867 | 8.445686 | 70.87186 |
| T18 | 171 | 484.0 | 0.0 | 0.0 | 0.0 | 484.0 |
""",
}


def _parse_table(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.strip().splitlines()]


def _spec_inputs() -> tuple[list[str], dict[str, np.ndarray]]:
    rows = _parse_table(SPEC_INPUTS)
    ids = [r[0] for r in rows]
    cols = list(zip(*(r[1:] for r in rows), strict=True))
    arrays = {}
    for name, col in zip(INPUT_NAMES, cols, strict=True):
        dtype = INPUT_DTYPES[name]
        values = [float(c) for c in col] if dtype is np.float32 else [int(c) for c in col]
        arrays[name] = np.array(values, dtype=dtype)
    return ids, arrays


def _spec_expected(variant: str) -> dict[str, np.ndarray]:
    rows = _parse_table(SPEC_EXPECTED[variant])
    node = np.array([int(r[1]) for r in rows], dtype=np.uint16)
    # spec column order: node, CO2, CH4, N2O, non-CO2, all gases; values as np.float32(decimal)
    co2, ch4, n2o, non, all_gases = (np.array([np.float32(r[k]) for r in rows]) for k in range(2, 7))
    return {
        "all_gases": all_gases,
        "co2_only": co2,
        "non_co2": non,
        "ch4_only": ch4,
        "n2o_only": n2o,
        "node": node,
    }


def _run(impl, inputs: dict[str, np.ndarray], **kwargs) -> dict[str, np.ndarray]:
    return dict(zip(OUTPUT_NAMES, impl(*(inputs[n] for n in INPUT_NAMES), **kwargs), strict=True))


def _assert_bitwise_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray], context: str = "") -> None:
    for name in OUTPUT_NAMES:
        g, w = got[name], want[name]
        assert g.shape == w.shape, (name, g.shape, w.shape, context)
        if name == "node":
            assert g.dtype == np.uint16
            assert np.array_equal(g, w), (name, context)
        else:
            assert g.dtype == np.float32, (name, g.dtype)
            assert w.dtype == np.float32, (name, w.dtype)
            bad = g.view(np.uint32) != w.view(np.uint32)
            assert not bad.any(), (name, context, np.argwhere(bad)[:5].tolist(), g[bad][:5], w[bad][:5])


def _params(flags: dict[str, bool] | None = None, **kwargs) -> EmissionParams:
    return dataclasses.replace(DEFAULT_PARAMS, **(flags or {}), **kwargs)


ALL_FLAG_COMBOS = [
    dict(zip(FLAG_NAMES, bits, strict=True)) for bits in itertools.product([False, True], repeat=4)
]


# ---------------------------------------------------------------------------
# §12 reference vectors


@pytest.mark.parametrize("impl", [gross_emissions, reference_gross_emissions], ids=["numba", "numpy"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_spec_reference_vectors(impl, variant):
    ids, inputs = _spec_inputs()
    expected = _spec_expected(variant)
    got = _run(impl, inputs, variant=variant)
    for name in OUTPUT_NAMES:
        for k, tid in enumerate(ids):
            assert got[name][k] == expected[name][k], (variant, tid, name, got[name][k], expected[name][k])
    assert got["node"].dtype == np.uint16
    for name in OUTPUT_NAMES[:5]:
        assert got[name].dtype == np.float32


def test_spec_reference_vectors_as_2d_views():
    """The same vectors laid out as a 2-D, Fortran-ordered block give the same values."""
    _, inputs = _spec_inputs()
    blocks = {k: np.asfortranarray(v.reshape(3, 6)) for k, v in inputs.items()}
    for variant in VARIANTS:
        got = _run(gross_emissions, blocks, variant=variant)
        want = _run(gross_emissions, inputs, variant=variant)
        _assert_bitwise_equal({k: v.ravel() for k, v in got.items()}, want, variant)


def test_hand_check_t01():
    """§12 hand check of T01 from the float32 constants of §3.1."""
    f = np.float32
    c2co2 = f(44 / 12)
    annual = (f(80) - f(80) * f(0.83)) / f(20)
    total = annual * (f(25) - f(5))
    ms_n2o = (((total * (f(1) / f(15))) * f(0.01)) * f(44 / 28)) * f(273)
    co2 = f(132) * c2co2 + total * c2co2
    out = gross_emissions(
        f([100]), f([25]), f([5]), f([2]), np.uint16([80]), np.uint8([5]), np.uint8([0]),
        np.int16([1]), np.uint8([10]), np.uint8([1]), np.uint8([0]), np.uint8([0]), np.uint8([0]),
    )  # fmt: skip
    assert out[1][0] == co2
    assert out[4][0] == ms_n2o
    assert out[0][0] == (co2 + f(0)) + ms_n2o


# ---------------------------------------------------------------------------
# numba == numpy reference, bit for bit


def _random_inputs(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    def pool(lo, hi):
        x = rng.uniform(lo, hi, shape).astype(np.float32)
        x[rng.random(shape) < 0.1] = 0
        return x

    agc = pool(-20, 400)
    agc[rng.random(shape) < 0.02] = -0.0
    return {
        "agc": agc,
        "bgc": pool(-5, 100),
        "deadwood": pool(-2, 40),
        "litter": pool(-1, 20),
        "soil": rng.integers(0, 65536, shape).astype(np.uint16),
        "loss": rng.integers(0, 28, shape).astype(np.uint8),
        "burn": rng.integers(0, 28, shape).astype(np.uint8),
        "ecozone": rng.integers(0, 6, shape).astype(np.int16),
        "climate": rng.integers(0, 15, shape).astype(np.uint8),
        "driver": rng.integers(0, 10, shape).astype(np.uint8),
        "peat": rng.integers(0, 3, shape).astype(np.uint8),
        "ifl": rng.integers(0, 3, shape).astype(np.uint8),
        "plant": rng.integers(0, 5, shape).astype(np.uint8),
    }


def _no_negative_zero(outs: dict[str, np.ndarray]) -> bool:
    return not any((outs[n].view(np.uint32) == 0x80000000).any() for n in OUTPUT_NAMES[:5])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_random_tile_matches_reference_all_flag_combinations(variant):
    rng = np.random.default_rng(20260430 + VARIANTS[variant])
    inputs = _random_inputs(rng, (64, 256))
    for flags in ALL_FLAG_COMBOS:
        params = _params(flags)
        got = _run(gross_emissions, inputs, variant=variant, params=params)
        want = _run(reference_gross_emissions, inputs, variant=variant, params=params)
        _assert_bitwise_equal(got, want, f"{variant} {flags}")
        assert _no_negative_zero(got)


def _codes(dtype, lo, hi):
    return hnp.arrays(dtype, st.shared(_SHAPES, key="shape"), elements=st.integers(lo, hi))


def _floats(lo, hi):
    special = st.sampled_from([0.0, -0.0, 1.0, 1e-30, -1.0])
    return hnp.arrays(
        np.float32,
        st.shared(_SHAPES, key="shape"),
        elements=st.one_of(st.floats(lo, hi, width=32), special),
    )


_SHAPES = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24)

_INPUT_STRATEGY = st.fixed_dictionaries(
    {
        "agc": _floats(-100.0, 1000.0),
        "bgc": _floats(-100.0, 500.0),
        "deadwood": _floats(-10.0, 100.0),
        "litter": _floats(-10.0, 50.0),
        "soil": _codes(np.uint16, 0, 65535),
        "loss": _codes(np.uint8, 0, 27),
        "burn": _codes(np.uint8, 0, 27),
        "ecozone": _codes(np.int16, 0, 5),
        "climate": _codes(np.uint8, 0, 14),
        "driver": _codes(np.uint8, 0, 9),
        "peat": _codes(np.uint8, 0, 2),
        "ifl": _codes(np.uint8, 0, 2),
        "plant": _codes(np.uint8, 0, 4),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs=_INPUT_STRATEGY,
    variant=st.sampled_from(list(VARIANTS)),
    flags=st.fixed_dictionaries({name: st.booleans() for name in FLAG_NAMES}),
    model_years=st.sampled_from([19, 22, 25]),
)
def test_property_kernel_equals_reference(inputs, variant, flags, model_years):
    params = _params(flags, model_years=model_years)
    got = _run(gross_emissions, inputs, variant=variant, params=params)
    want = _run(reference_gross_emissions, inputs, variant=variant, params=params)
    _assert_bitwise_equal(got, want, f"{variant} {flags} {model_years}")
    assert _no_negative_zero(got)
    # invariants of §4.1 and §6
    evaluated = (inputs["loss"] > 0) & (inputs["agc"] > 0)
    if flags["clamp_loss_beyond_model_years"]:
        evaluated &= inputs["loss"] <= model_years
    assert not got["node"][~evaluated].any()
    for name in OUTPUT_NAMES[:5]:
        assert not got[name][got["node"] == 0].any()
    assert set(np.unique(got["node"]).tolist()) <= SPEC_NODE_CODES | {0}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    variant=st.sampled_from(list(VARIANTS)),
    gwp_ch4=st.sampled_from([27, 28, 29.8]),
    gwp_n2o=st.sampled_from([273, 265, 298.0]),
    cf_scale=st.sampled_from([1.0, 0.5, 1.3]),
)
def test_property_other_parameters(seed, variant, gwp_ch4, gwp_n2o, cf_scale):
    """Non-default GWPs and tables (§10 'parameterise') agree bitwise with the reference."""
    rng = np.random.default_rng(seed)
    inputs = _random_inputs(rng, (8, 64))
    cf = tuple(tuple(v * cf_scale for v in row) for row in DEFAULT_PARAMS.cf)
    params = _params(gwp_ch4=gwp_ch4, gwp_n2o=gwp_n2o, cf=cf, soil_emis_period=int(rng.integers(5, 30)))
    got = _run(gross_emissions, inputs, variant=variant, params=params)
    want = _run(reference_gross_emissions, inputs, variant=variant, params=params)
    _assert_bitwise_equal(got, want, variant)


def test_nan_pools_propagate_like_reference():
    """§4.4: NaN agc fails the gate; NaN in another pool reaches the leaves that use it."""
    rng = np.random.default_rng(7)
    inputs = _random_inputs(rng, (32, 128))
    for name in ("agc", "bgc", "deadwood", "litter"):
        inputs[name][rng.random(inputs[name].shape) < 0.05] = np.nan
    for variant in VARIANTS:
        got = _run(gross_emissions, inputs, variant=variant)
        want = _run(reference_gross_emissions, inputs, variant=variant)
        _assert_bitwise_equal(got, want, variant)
        assert not got["node"][np.isnan(inputs["agc"])].any()
        # soil_only never reads the carbon pools other than the agc gate
        assert np.isnan(got["all_gases"]).any() == (variant != "soil_only")


# ---------------------------------------------------------------------------
# node coverage (§5.4, §5.5)


def _exhaustive_grid() -> dict[str, np.ndarray]:
    """Every combination of driver 0..9, peat 0..2, burn {0, 4}, ecozone 0..5, ifl 0..2, plant 0..4."""
    driver, peat, burn, eco, ifl, plant, climate = np.meshgrid(
        np.arange(10), np.arange(3), np.array([0, 4]), np.arange(6), np.arange(3), np.arange(5),
        np.array([0, 2, 9, 11, 13]), indexing="ij",
    )  # fmt: skip
    n = driver.size
    ones = np.ones(n, dtype=np.float32)
    return {
        "agc": 100 * ones,
        "bgc": 25 * ones,
        "deadwood": 5 * ones,
        "litter": 2 * ones,
        "soil": np.full(n, 80, dtype=np.uint16),
        "loss": np.full(n, 5, dtype=np.uint8),
        "burn": burn.ravel().astype(np.uint8),
        "ecozone": eco.ravel().astype(np.int16),
        "climate": climate.ravel().astype(np.uint8),
        "driver": driver.ravel().astype(np.uint8),
        "peat": peat.ravel().astype(np.uint8),
        "ifl": ifl.ravel().astype(np.uint8),
        "plant": plant.ravel().astype(np.uint8),
    }


def test_node_code_set_matches_spec():
    assert set(NODE_CODES) == SPEC_NODE_CODES
    assert {row[0] for row in LEAVES} == SPEC_NODE_CODES
    assert len(SPEC_NODE_CODES) == 89


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_node_code_is_reached(variant):
    grid = _exhaustive_grid()
    got = _run(gross_emissions, grid, variant=variant)
    assert set(np.unique(got["node"]).tolist()) == SPEC_NODE_CODES | {0}
    want = _run(reference_gross_emissions, grid, variant=variant)
    _assert_bitwise_equal(got, want, variant)
    # node codes do not depend on the variant (§5.6)
    base = _run(gross_emissions, grid, variant="biomass_soil")
    assert np.array_equal(got["node"], base["node"])


def test_no_leaf_cases_of_section_5_5():
    grid = _exhaustive_grid()
    node = _run(gross_emissions, grid)["node"]
    drv, peat, burn, eco, ifl = (grid[k] for k in ("driver", "peat", "burn", "ecozone", "ifl"))
    assigned = np.isin(eco, (1, 2, 3))
    conv = np.isin(drv, (1, 2, 6))
    expect_zero = (
        (conv & ~assigned & ~((peat > 0) & (burn > 0)))
        | (np.isin(drv, (1, 2, 3, 6)) & (peat == 0) & (burn > 0) & (eco == 1) & (ifl > 1))
        | ((drv == 3) & ~assigned)
        | (~np.isin(drv, (1, 2, 3, 6)) & (peat > 0) & (burn == 0) & ~assigned)
    )
    assert np.array_equal(node == 0, expect_zero)


# ---------------------------------------------------------------------------
# strided and zero-stride inputs


def test_broadcast_and_strided_inputs_equal_materialised():
    rng = np.random.default_rng(11)
    shape = (40, 96)
    base = _random_inputs(rng, shape)
    base["ecozone"] = np.broadcast_to(base["ecozone"][:, :1], shape)  # constant along rows
    base["climate"] = np.broadcast_to(base["climate"][:1, :], shape)  # constant along columns
    base["ifl"] = np.broadcast_to(np.uint8(1), shape)
    base["plant"] = np.broadcast_to(np.uint8(0), shape)  # absent optional layer (§2.3)
    base["peat"] = np.broadcast_to(np.uint8(2), shape)
    big = rng.uniform(0, 100, (2 * shape[0], 3 * shape[1])).astype(np.float32)
    base["litter"] = big[::2, ::3]  # strided, non-contiguous
    base["soil"] = np.asfortranarray(base["soil"])
    base["burn"] = np.ascontiguousarray(base["burn"].T).T  # transposed view
    for arr in base.values():
        assert arr.shape == shape
    assert base["plant"].strides == (0, 0)
    materialised = {k: np.ascontiguousarray(v) for k, v in base.items()}
    for variant in VARIANTS:
        got = _run(gross_emissions, base, variant=variant)
        want = _run(gross_emissions, materialised, variant=variant)
        _assert_bitwise_equal(got, want, variant)
        ref = _run(reference_gross_emissions, materialised, variant=variant)
        _assert_bitwise_equal(got, ref, variant)
        assert got["node"].any()


def test_scalar_inputs_are_broadcast():
    _, inputs = _spec_inputs()
    scalar = dict(inputs)
    scalar["peat"] = np.uint8(0)
    scalar["plant"] = 0
    explicit = dict(inputs)
    explicit["peat"] = np.zeros_like(inputs["peat"])
    explicit["plant"] = np.zeros_like(inputs["plant"])
    _assert_bitwise_equal(_run(gross_emissions, scalar), _run(gross_emissions, explicit))


def test_one_dimensional_inputs_keep_their_shape():
    _, inputs = _spec_inputs()
    out = _run(gross_emissions, inputs)
    assert all(v.shape == (18,) for v in out.values())
    two_d = _run(gross_emissions, {k: v[np.newaxis, :] for k, v in inputs.items()})
    assert all(v.shape == (1, 18) for v in two_d.values())
    assert all(v.flags.c_contiguous for v in two_d.values())


def test_bool_codes_and_int16_soil():
    _, inputs = _spec_inputs()
    other = dict(inputs)
    other["peat"] = inputs["peat"].astype(bool)
    other["soil"] = inputs["soil"].astype(np.int16)
    other["ecozone"] = inputs["ecozone"].astype(np.uint8)
    _assert_bitwise_equal(_run(gross_emissions, other), _run(gross_emissions, inputs))


# ---------------------------------------------------------------------------
# flags and parameters (§5.6, §9, §10)


def _one(**overrides) -> dict[str, np.ndarray]:
    """One pixel of §12 T01 with fields overridden."""
    _, inputs = _spec_inputs()
    pixel = {k: v[:1].copy() for k, v in inputs.items()}
    for k, v in overrides.items():
        pixel[k][0] = v
    return pixel


def test_node62_bug_flag():
    _, inputs = _spec_inputs()
    t08 = {k: v[7:8] for k, v in inputs.items()}
    with_bug = _run(gross_emissions, t08, variant="biomass_only")
    without = _run(gross_emissions, t08, variant="biomass_only", params=_params(replicate_node62_bug=False))
    f = np.float32
    bn_co2 = (((f(50) + f(12)) + f(3)) + f(1)) * f(44 / 12)
    assert with_bug["node"][0] == without["node"][0] == 62
    assert with_bug["co2_only"][0] == f(272.6)
    assert without["co2_only"][0] == bn_co2 == f(242.0)
    assert without["ch4_only"][0] == without["n2o_only"][0] == 0
    # the flag does not affect the other variants
    for variant in ("biomass_soil", "soil_only"):
        a = _run(gross_emissions, t08, variant=variant)
        b = _run(gross_emissions, t08, variant=variant, params=_params(replicate_node62_bug=False))
        _assert_bitwise_equal(a, b, variant)


def test_cap_soil_years_flag():
    """T05 (loss 2001): 24 years of mineral-soil loss by default, 20 with the cap (§9.2)."""
    f = np.float32
    _, inputs = _spec_inputs()
    t05 = {k: v[4:5] for k, v in inputs.items()}
    default = _run(gross_emissions, t05, variant="soil_only")
    capped = _run(gross_emissions, t05, variant="soil_only", params=_params(cap_soil_years_at_20=True))
    s = f(70)
    annual = (s - s * f(0.72)) / f(20)
    assert default["co2_only"][0] == (annual * f(24)) * f(44 / 12) == f(86.23999)
    assert capped["co2_only"][0] == (annual * f(20)) * f(44 / 12)
    assert capped["node"][0] == 381
    # peat drainage is not capped: T07 (loss 15, 10 years) and a loss-year-1 peat pixel
    t = _one(driver=7, peat=1, burn=0, ecozone=1, plant=1, loss=1)
    a = _run(gross_emissions, t, variant="soil_only")
    b = _run(gross_emissions, t, variant="soil_only", params=_params(cap_soil_years_at_20=True))
    assert a["node"][0] == 72
    assert a["co2_only"][0] == b["co2_only"][0] == f(24) * f(43)


def test_loss_beyond_model_years():
    """§9.3: loss > model_years gives negative soil and drainage terms unless clamped."""
    f = np.float32
    t = _one(driver=7, peat=1, burn=0, ecozone=1, plant=3, loss=27)
    default = _run(gross_emissions, t, variant="soil_only")
    assert default["node"][0] == 72
    assert default["co2_only"][0] == f(-2) * f(58) < 0
    assert default["ch4_only"][0] == f(-2) * f(1.3)
    clamp = _params(clamp_loss_beyond_model_years=True)
    clamped = _run(gross_emissions, t, variant="soil_only", params=clamp)
    assert not any(clamped[n].any() for n in OUTPUT_NAMES)
    ms = _run(gross_emissions, _one(loss=26), variant="soil_only")
    assert ms["node"][0] == 171 and ms["co2_only"][0] < 0 and ms["n2o_only"][0] < 0
    # loss == model_years is still evaluated (zero soil/drainage years, §12 T09)
    last = _run(gross_emissions, _one(loss=25), params=_params(clamp_loss_beyond_model_years=True))
    assert last["node"][0] == 171 and last["n2o_only"][0] == 0


def test_soil_zero_with_negative_years_gives_positive_zero():
    """MS terms are −0.0 for soil 0 and loss > model_years; outputs carry +0.0 (§6)."""
    out = _run(gross_emissions, _one(soil=0, loss=27))
    assert out["node"][0] == 171
    assert out["n2o_only"].view(np.uint32)[0] == 0
    assert out["co2_only"][0] == np.float32(132) * np.float32(44 / 12)


def test_include_ms_n2o_flag():
    off = _run(gross_emissions, _one(), params=_params(include_ms_n2o=False))
    on = _run(gross_emissions, _one())
    assert off["n2o_only"][0] == 0 and off["non_co2"][0] == 0
    assert off["co2_only"][0] == on["co2_only"][0]
    assert off["all_gases"][0] == off["co2_only"][0]


def test_driver_codes_remap():
    rng = np.random.default_rng(3)
    inputs = _random_inputs(rng, (16, 64))
    codes = (17, 12, 30, 200, 5, 0, 9)
    params = _params(driver_codes=codes)
    remapped = dict(inputs)
    lut = np.full(256, 255, dtype=np.uint8)  # 255 is no driver under `codes`
    lut[[1, 2, 3, 4, 5, 6, 7]] = codes
    remapped["driver"] = lut[inputs["driver"]]
    got = _run(gross_emissions, remapped, params=params)
    _assert_bitwise_equal(got, _run(gross_emissions, inputs))
    _assert_bitwise_equal(got, _run(reference_gross_emissions, remapped, params=params))


def test_zero_rule_keeps_node():
    """§6: a leaf summing to 0 writes 0 emissions but keeps its node code (soil_only leaf 17)."""
    out = _run(gross_emissions, _one(plant=1), variant="soil_only")
    assert out["node"][0] == 17
    assert not any(out[n][0] for n in OUTPUT_NAMES[:5])


def test_zero_rule_tests_the_sum_of_all_gases():
    """§6 tests ALL = (CO2 + CH4) + N2O, not a single gas (made visible with custom tables)."""
    # CO2 exactly 0 but CH4/N2O not: outputs are written
    no_co2 = _params(gef=((0.0, 4.7, 0.26), (0.0, 6.8, 0.2)))
    out = _run(gross_emissions, _one(driver=4, burn=3), params=no_co2)
    assert out["node"][0] == 43
    assert out["co2_only"][0] == 0 and out["ch4_only"][0] > 0 and out["all_gases"][0] == out["non_co2"][0]
    # gases cancelling exactly: everything zeroed, node kept (soil_only leaf 30 = {PB})
    cancel = _params(peat_burn=((10.0, -10.0), (264.0, 88.0), (601.0, 200.0)))
    out = _run(gross_emissions, _one(driver=3, peat=1, burn=3, ecozone=2), variant="soil_only", params=cancel)
    assert out["node"][0] == 30
    assert not any(out[n][0] for n in OUTPUT_NAMES[:5])


def test_params_pack_dtypes():
    packed = DEFAULT_PARAMS.pack("soil_only")
    s32, s64 = packed[0], packed[1]
    assert s32.dtype == np.float32 and s64.dtype == np.float64
    assert s64.tolist() == [0.001, 27.0, 273.0]
    assert packed[-1].tolist() == [25, 2, 1, 0, 0, 1]
    assert packed[-3][9] == 2 and packed[-3][13] == 3 and packed[-3][0] == 3  # climate groups
    assert packed[-2][1:8].tolist() == [1, 2, 3, 4, 5, 6, 7] and packed[-2][8] == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model_years": -1},
        {"soil_emis_period": 0},
        {"cf": ((0.5,) * 4,) * 3},
        {"peat_drain": ((1.0, 2.0),) * 5},
        {"driver_codes": (1, 2, 3, 4, 5, 6, 6)},
        {"driver_codes": (1, 2, 3, 4, 5, 6, 300)},
        {"climate_wet": (1, 2)},
    ],
)
def test_invalid_params_raise(kwargs):
    with pytest.raises(ValueError):
        EmissionParams(**kwargs)


def test_invalid_inputs_raise():
    _, inputs = _spec_inputs()
    with pytest.raises(ValueError, match="variant"):
        _run(gross_emissions, inputs, variant="biomass")
    bad = dict(inputs, loss=inputs["loss"][:5])
    with pytest.raises(ValueError, match="loss"):
        _run(gross_emissions, bad)
    bad = dict(inputs, driver=inputs["driver"].astype(np.float32))
    with pytest.raises(TypeError, match="driver"):
        _run(gross_emissions, bad)
    bad = {k: v.reshape(1, 1, 18) for k, v in inputs.items()}
    with pytest.raises(ValueError, match="agc"):
        _run(gross_emissions, bad)


def test_module_doctests():
    result = doctest.testmod(emissions_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------
# sum_by_year_driver


def _expected_sums(loss, driver, area, gases, model_years):
    loss = loss.astype(np.int64)
    driver = driver.astype(np.int64)
    row = np.where((loss >= 0) & (loss <= model_years), loss, model_years + 1)
    drv = np.where((driver >= 1) & (driver <= 7), driver, 0)
    out = np.zeros((model_years + 2, 8, 4))
    for g, values in enumerate(gases):
        contrib = (values.astype(np.float64) * area.astype(np.float64)) / 10000.0
        np.add.at(out[:, :, g], (row.ravel(), drv.ravel()), contrib.ravel())
    return out


@pytest.mark.parametrize("model_years", [25, 22])
def test_sum_by_year_driver_matches_numpy(model_years):
    rng = np.random.default_rng(5 + model_years)
    shape = (50, 120)
    inputs = _random_inputs(rng, shape)
    out = _run(gross_emissions, inputs, params=_params(model_years=model_years))
    gases = [out["all_gases"], out["co2_only"], out["ch4_only"], out["n2o_only"]]
    area_col = rng.uniform(700.0, 770.0, (shape[0], 1))  # m², varies by row only
    area = np.broadcast_to(area_col, shape)
    table = sum_by_year_driver(inputs["loss"], inputs["driver"], area, *gases, model_years=model_years)
    assert table.shape == (model_years + 2, 8, 4) and table.dtype == np.float64
    want = _expected_sums(inputs["loss"], inputs["driver"], area, gases, model_years)
    np.testing.assert_allclose(table, want, rtol=1e-12, atol=0)
    for g, values in enumerate(gases):
        total = np.sum(values.astype(np.float64) * area / 1e4)
        np.testing.assert_allclose(table[:, :, g].sum(), total, rtol=1e-10)
    assert not table[0].any()  # no loss → no emissions
    assert table[model_years + 1].any()  # loss codes 26, 27 (and > model_years) still emit (§9.3)
    # the column form of the area gives the same table
    np.testing.assert_array_equal(
        sum_by_year_driver(inputs["loss"], inputs["driver"], area_col, *gases, model_years=model_years), table
    )


def test_sum_by_year_driver_single_pixel_units():
    """One 10 000 m² (1 ha) pixel of 2 Mg CO2e/ha gives 2 Mg CO2e."""
    f = np.float32
    table = sum_by_year_driver(
        np.uint8([3]), np.uint8([9]), np.float64([10000.0]), f([2.0]), f([1.5]), f([0.25]), f([0.25])
    )
    assert table[3, 0].tolist() == [2.0, 1.5, 0.25, 0.25]
    assert table.sum() == 4.0


def test_sum_by_year_driver_clamped_run_has_empty_out_of_range_row():
    rng = np.random.default_rng(9)
    inputs = _random_inputs(rng, (20, 50))
    out = _run(gross_emissions, inputs, params=_params(clamp_loss_beyond_model_years=True))
    table = sum_by_year_driver(
        inputs["loss"], inputs["driver"], np.float32(900.0),
        out["all_gases"], out["co2_only"], out["ch4_only"], out["n2o_only"],
    )  # fmt: skip
    assert not table[26].any() and table[1:26].any()
