"""Where the graph runs: one ``[cluster]`` table selects and shapes the Dask cluster.

``kind`` is ``local`` (a multi-process LocalCluster, the default), ``tcp://host:port`` (a
scheduler already running), ``ec2`` or ``fargate`` (dask-cloudprovider, ``pip install
"fluxgraph[aws]"``) or ``k8s`` (the dask-kubernetes operator, ``pip install "fluxgraph[k8s]"``).
The constructor arguments of every backend are built by pure functions that need neither the
network nor the cloud packages; credentials never come from the table (docs/cluster.md).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from fluxgraph.cluster.cloud import (
    ALL_KEYS,
    CLOUD_KINDS,
    check_keys,
    connect_cloud,
    ec2_cluster_kwargs,
    fargate_cluster_kwargs,
    kube_cluster_kwargs,
    kube_cluster_spec,
)
from fluxgraph.cluster.local import (
    DEFAULT_IMAGE,
    adapt_bounds,
    close,
    connect_local,
    connect_scheduler,
    local_cluster_kwargs,
    redact,
)

from fluxgraph.errors import ConfigError

__all__ = [
    "ALL_KEYS",
    "DEFAULT_IMAGE",
    "KINDS",
    "adapt_bounds",
    "check_keys",
    "close",
    "connect",
    "ec2_cluster_kwargs",
    "fargate_cluster_kwargs",
    "kube_cluster_kwargs",
    "kube_cluster_spec",
    "local_cluster_kwargs",
    "redact",
]

#: The values ``kind`` may take (``tls://host:port`` is accepted like ``tcp://``).
KINDS = ("local", "tcp://host:port", *CLOUD_KINDS)


def connect(spec: Mapping[str, Any]) -> Any:
    """A ``distributed.Client`` for the ``[cluster]`` table of the run configuration.

    Parameters
    ----------
    spec : mapping
        ``kind`` selects the backend (``local``, ``tcp://host:port``, ``ec2``, ``fargate``, ``k8s``);
        the other keys shape it (docs/cluster.md lists them per kind).

    Returns
    -------
    distributed.Client
        For a cluster it started the client carries ``_fluxgraph_owns_cluster = True`` and the
        caller closes the cluster after the client; a ``tcp://`` scheduler is left running.

    Raises
    ------
    fluxgraph.errors.ConfigError
        For a secret-looking or unknown key, an invalid value (naming the key), an unknown kind,
        an unreachable scheduler, or a backend package that is not installed (naming the pip extra).

    Examples
    --------
    >>> client = connect({"kind": "local", "n_workers": 2, "threads_per_worker": 1})  # doctest: +SKIP
    """
    check_keys(spec)
    kind = spec.get("kind", "local")
    if not isinstance(kind, str):
        raise ConfigError(f"[cluster] kind must be a string such as 'local', got {kind!r}")
    if kind.startswith(("tcp://", "tls://")):
        return connect_scheduler(kind, timeout=spec.get("timeout", "10s"))
    if kind == "local":
        return connect_local(spec)
    if kind in CLOUD_KINDS:
        return connect_cloud(spec)
    close = difflib.get_close_matches(kind, ["local", *CLOUD_KINDS], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"[cluster] kind {kind!r} is unknown{hint}: use one of {', '.join(KINDS)}")
