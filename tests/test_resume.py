"""Resumable runs: an interrupted run keeps its finished parts, and ``--resume`` computes only the rest.

The interruption is real: a source that raises when the computation reaches the third tile
part, after the first two parts were committed and while some chunks of the third were already
written. Reads are counted with :func:`fluxgraph.sources.record_reads`, independently of the
runner's own bookkeeping.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import rasterio
import xarray as xr

from fluxgraph.config import load_config
from fluxgraph.errors import ResumeError
from fluxgraph.grid import PixelWindow, TileId
from fluxgraph.resume import MANIFEST
from fluxgraph.runner import run
from fluxgraph.sources import DemoSource, TileFile, record_reads

BBOX = "109.8,-0.1,110.2,0.1"  # around a corner of 4 tiles: 4 parts of 400 x 800 px, 2 chunks each
TILES = "00N_100E,00N_110E,10N_100E,10N_110E"
DEMO = "demo://?seed=5"
KW = {"bbox": BBOX, "stages": "net_flux", "progress": False}


class InterruptedRunError(RuntimeError):
    """What the interrupting source raises."""


class InterruptingSource:
    """The demo source, except that reading ``loss_year`` of tile ``stop_at`` raises :class:`InterruptedRunError`."""

    def __init__(self, inner: DemoSource, stop_at: str) -> None:
        self.inner = inner
        self.label = inner.label  # the same inputs, as far as a resume is concerned
        self.stop_at = stop_at

    def locate(self, filename: str, layer: str, tile: TileId) -> tuple[TileFile | None, list[str]]:
        found, tried = self.inner.locate(filename, layer, tile)
        return (dataclasses.replace(found, source=self) if found else None), tried

    def read_window(self, tf: TileFile, window: PixelWindow) -> np.ndarray:
        if tf.layer == "loss_year" and str(tf.tile) == self.stop_at:
            raise InterruptedRunError(f"interrupted while reading {tf.path} {window}")
        return self.inner.read_window(tf, window)


@pytest.fixture(scope="module")
def config():
    return load_config(overrides={"grid": {"chunks": [400, 400]}})


def _loss_reads(reads: list[tuple[str, PixelWindow]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path, _window in reads:
        if path.startswith("demo://loss_year/"):
            tile = path.rsplit("/", 1)[1]
            counts[tile] = counts.get(tile, 0) + 1
    return counts


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, config):
    with record_reads() as reads:
        full = run([DEMO], out=tmp_path / "full", config=config, **KW)
    full_reads = _loss_reads(reads)
    assert sorted(full_reads) == sorted(TILES.split(",")) and full.computed_parts == 4

    order = [str(p.tile) for p in full.parts]
    with pytest.raises(InterruptedRunError):
        run([InterruptingSource(DemoSource.from_url(DEMO), order[2])], out=tmp_path / "cut", config=config, **KW)
    manifest = json.loads((tmp_path / "cut" / MANIFEST).read_text())
    assert sorted(k.split(":")[0] for k in manifest["done"]) == sorted(order[:2])
    assert not (tmp_path / "cut" / "run.json").exists()

    with record_reads() as reads:
        resumed = run([DEMO], out=tmp_path / "cut", config=config, resume=True, **KW)
    resumed_reads = _loss_reads(reads)
    missing = order[2:]
    # only the missing parts were read and computed, chunk for chunk as in the uninterrupted run
    assert resumed_reads == {t: full_reads[t] for t in missing}
    assert resumed.resumed_parts == 2 and resumed.computed_parts == 2
    assert full.computed_chunks == 4 * 2 and resumed.computed_chunks == 2 * 2
    assert resumed.summary == full.summary

    a = xr.open_zarr(tmp_path / "full" / "fluxgraph.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "cut" / "fluxgraph.zarr", consolidated=False)
    assert a.net_flux.values.any() and a.net_flux.values.tobytes() == b.net_flux.values.tobytes()
    for part in full.parts:
        with rasterio.open(tmp_path / "full" / "cog" / "net_flux" / f"{part.tile}.tif") as fa, \
                rasterio.open(tmp_path / "cut" / "cog" / "net_flux" / f"{part.tile}.tif") as fb:
            assert fa.read(1).tobytes() == fb.read(1).tobytes()
    for name in ("emissions_by_year_driver_biomass_soil.csv",):
        assert (tmp_path / "full" / "tables" / name).read_text() == (tmp_path / "cut" / "tables" / name).read_text()
    assert not list((tmp_path / "cut").rglob(".*partial*"))

    # resuming a finished run computes nothing
    again = run([DEMO], out=tmp_path / "cut", config=config, resume=True, **KW)
    assert again.computed_parts == 0 and again.summary == full.summary


def test_resume_refuses_another_configuration_or_no_run(tmp_path, config):
    run([DEMO], out=tmp_path / "r", config=config, bbox=BBOX, stages="model_extent", progress=False)
    other = config.with_overrides({"stages": {"model_extent": {"mangrove_cast_wrap": False}}})
    with pytest.raises(ResumeError, match="configuration digest") as err:
        run([DEMO], out=tmp_path / "r", config=other, bbox=BBOX, stages="model_extent", progress=False,
            resume=True)
    assert "config.toml" in str(err.value) and str(tmp_path / "r") in str(err.value)
    with pytest.raises(ResumeError, match="targets"):
        run([DEMO], out=tmp_path / "r", config=config, bbox=BBOX, stages="gain_year_count", progress=False,
            resume=True)
    with pytest.raises(ResumeError, match="nothing to resume"):
        run([DEMO], out=tmp_path / "empty", config=config, bbox=BBOX, stages="model_extent", progress=False,
            resume=True)


@pytest.mark.slow
def test_killed_cli_run_resumes_to_the_same_result(tmp_path):
    """SIGKILL a ``fluxgraph run`` process after its first part is committed; ``--resume`` finishes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    bbox = "109.75,-0.25,110.25,0.25"  # 4 parts of 1000 x 1000 px
    args = [sys.executable, "-m", "fluxgraph.cli", "run", "--inputs", DEMO, "--bbox", bbox, "--stages", "net_flux",
            "--cluster", "none"]
    full = subprocess.run([*args, "--out", str(tmp_path / "full")], capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "cut")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    manifest = tmp_path / "cut" / MANIFEST
    done = 0
    while proc.poll() is None:
        if manifest.exists():
            done = len(json.loads(manifest.read_text())["done"])
            if done >= 1:
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and 1 <= done < 4, "the run was not killed between parts"
    assert not (tmp_path / "cut" / "run.json").exists()
    res = subprocess.run([*args, "--out", str(tmp_path / "cut"), "--resume"], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert report["resumed_parts"] >= done and report["computed"]["parts"] == 4 - report["resumed_parts"]
    a = xr.open_zarr(tmp_path / "full" / "fluxgraph.zarr", consolidated=False).net_flux.values
    b = xr.open_zarr(tmp_path / "cut" / "fluxgraph.zarr", consolidated=False).net_flux.values
    assert a.any() and a.tobytes() == b.tobytes()
    assert report["summary"] == json.loads((tmp_path / "full" / "run.json").read_text())["summary"]
