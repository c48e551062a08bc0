"""The default cluster: a multi-process ``LocalCluster`` sized to the machine, or a running scheduler."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fluxgraph.errors import ConfigError

__all__ = ["connect", "local_cluster_kwargs"]


def local_cluster_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`distributed.LocalCluster` from a ``[cluster]`` table.

    One worker process per core and one thread per worker by default: GDAL dataset
    handles must not be shared between threads, and numba kernels release nothing to
    gain from threads within a process.
    """
    n = int(spec.get("n_workers", 0) or 0) or (os.cpu_count() or 1)
    threads = int(spec.get("threads_per_worker", 1) or 1)
    return {
        "n_workers": n,
        "threads_per_worker": threads,
        "processes": True,
        "memory_limit": spec.get("memory_limit", "auto"),
        "dashboard_address": spec.get("dashboard_address", ":0"),
    }


def connect(spec: Mapping[str, Any]) -> Any:
    """A ``distributed.Client`` for the ``[cluster]`` configuration.

    Parameters
    ----------
    spec : mapping
        ``kind`` is ``local`` (a new LocalCluster) or ``tcp://host:port`` (an existing
        scheduler); other keys shape the local cluster.

    Returns
    -------
    distributed.Client
        Closing the client also closes a LocalCluster it started.
    """
    from distributed import Client, LocalCluster

    kind = str(spec.get("kind", "local"))
    if kind.startswith(("tcp://", "tls://")):
        try:
            return Client(kind, timeout=spec.get("timeout", "20s"))
        except OSError as exc:
            raise ConfigError(f"cannot reach the scheduler at {kind}: {exc}") from None
    if kind == "local":
        cluster = LocalCluster(**local_cluster_kwargs(spec))
        client = Client(cluster)
        client._fluxgraph_owns_cluster = True  # type: ignore[attr-defined]
        return client
    raise ConfigError(
        f"cluster kind {kind!r} is not available: use 'local' or 'tcp://host:port' "
        "(EC2, Fargate and Kubernetes backends are configured as described in docs/cluster.md)"
    )
