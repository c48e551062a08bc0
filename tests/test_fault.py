"""Fault tolerance on a real multi-process cluster: a worker process killed mid-run.

The kill is real (``SIGKILL`` of a worker's pid while it runs tasks); the nanny restarts it and
Dask reschedules the lost tasks. The result must equal an in-process run bit for bit, and the
run's log and ``run.json`` must say that a worker was lost and how many tasks were retried.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import xarray as xr

from fluxgraph.runner import run

pytestmark = [pytest.mark.cluster, pytest.mark.slow]  # ~50 s: two worker processes start, one restarts

KW = {"tiles": "00N_110E,70N_000E", "stages": "net_flux,gross_emissions_biomass_soil",
      "progress": False}
DEMO = "demo://?size=400&seed=7"


def _kill_a_busy_worker(client, stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the process of the first worker seen running tasks (once)."""
    pids = client.run(os.getpid)
    while not stop.is_set():
        busy = [addr for addr, keys in client.processing().items() if keys and addr in pids]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(pids[busy[0]])
            return
        time.sleep(0.02)


def test_worker_killed_mid_run_leaves_the_result_unchanged(tmp_path):
    from distributed import Client, LocalCluster

    reference = run([DEMO], out=tmp_path / "ref", **KW)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        stop, killed = threading.Event(), []
        killer = threading.Thread(target=_kill_a_busy_worker, args=(client, stop, killed), daemon=True)
        killer.start()
        try:
            result = run([DEMO], out=tmp_path / "dist", client=client, **KW)
        finally:
            stop.set()
            killer.join(timeout=10)
    assert killed, "no worker was running tasks: the run finished before the kill"

    assert result.summary == reference.summary and reference.summary["net_flux"]["nonzero"] > 0
    a = xr.open_zarr(tmp_path / "ref" / "fluxgraph.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "dist" / "fluxgraph.zarr", consolidated=False)
    for part in reference.parts:  # the store spans the bounding box of the tiles: compare each part's window
        w, s, e, n = part.window.bounds
        for name in reference.layers:
            va = a[name].sel(lat=slice(n, s), lon=slice(w, e)).values
            vb = b[name].sel(lat=slice(n, s), lon=slice(w, e)).values
            assert va.shape == (400, 400) and va.tobytes() == vb.tobytes(), (part.tile, name)
    events = json.loads((tmp_path / "dist" / "run.json").read_text())["cluster_events"]
    assert len(events["workers_lost"]) == 1 and events["tasks_retried"] >= 1
    log = next((tmp_path / "dist").glob("fluxgraph_log_*.txt")).read_text()
    assert f"worker {events['workers_lost'][0]} lost" in log and "will be retried" in log
    assert (tmp_path / "dist" / "dask-report.html").stat().st_size > 10_000  # the performance report
