"""Where the graph runs: a local multi-process cluster or an existing scheduler.

:func:`connect` reads the ``[cluster]`` table of the run configuration. Cloud
backends (EC2, Fargate, Kubernetes) plug in here as further ``kind`` values.
"""

from __future__ import annotations

from fluxgraph.cluster.local import connect

__all__ = ["connect"]
