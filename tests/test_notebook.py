"""notebooks/explore.ipynb runs from top to bottom on a real 2-process cluster, and its total is right."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from fluxgraph.explore import stage_outputs
from fluxgraph.grid import PixelWindow, row_pixel_area_m2

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"


@pytest.mark.cluster
def test_explore_notebook_executes_and_its_total_matches_a_row_area_sum():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert re.search(r"Dask dashboard: http://127\.0\.0\.1:\d+/status", text), text
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", [])), "the map cell drew no image"
    total = float(re.search(r"gross emissions over the region: (\S+) Mt CO2e", text).group(1))

    # the same region, computed in-process, with the areas of whole grid rows (the runner's way)
    bbox = (110.02, -0.10, 110.10, -0.02)
    emis = stage_outputs("demo://?size=500", stages="gross_emissions_biomass_soil", bbox=bbox)
    values = emis.gross_emis_all_gases_biomass_soil.values.astype(np.float64)
    window = PixelWindow.from_bounds(*bbox)
    assert values.shape == window.shape
    expected = (values * row_pixel_area_m2(window.row0, window.row1)[:, None]).sum() / 1e4 / 1e6
    assert expected > 0
    assert total == pytest.approx(expected, rel=1e-9)

    # zonal: the two halves of the region add up to the forest-extent per-pixel net flux of the whole region
    halves = ast.literal_eval(re.search(r"zonal net flux, Mt CO2e: (\{.*\})", text).group(1))
    assert set(halves) == {"west", "east"} and halves["west"] != halves["east"]
    deriv = stage_outputs("demo://?size=500", stages="create_derivative_outputs", bbox=bbox)
    whole = float(deriv.net_flux_per_pixel_forest.values.astype(np.float64).sum()) / 1e6
    assert whole != 0
    assert halves["west"] + halves["east"] == pytest.approx(whole, rel=1e-6, abs=1e-9)
