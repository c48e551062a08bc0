"""What a run says about its cluster: lost workers, retried tasks, the Dask performance report.

The scheduler publishes every worker removal on its ``all`` event topic (with the tasks that
worker was running, which Dask then reschedules elsewhere). :func:`watch_cluster` subscribes the
client to that topic for the duration of a run and writes one line per lost worker to the run's
log, and counts them for ``run.json``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ClusterEvents", "performance_report", "watch_cluster"]

log = logging.getLogger("fluxgraph")

TOPIC = "all"
"""The scheduler's event topic that carries ``remove-worker`` events (distributed >= 2024)."""


@dataclass
class ClusterEvents:
    """Workers lost during a run and the tasks Dask had to run again because of it."""

    workers_lost: list[str] = field(default_factory=list)
    tasks_retried: int = 0
    results_recomputed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"workers_lost": self.workers_lost, "tasks_retried": self.tasks_retried,
                "results_recomputed": self.results_recomputed}

    def handle(self, event: tuple[float, Any]) -> None:
        """Record one scheduler event (only unexpected worker removals matter)."""
        _stamp, msg = event
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        worker = str(msg.get("worker", "?"))
        running = len(msg.get("processing-tasks") or ())
        lost = len(msg.get("lost-computed-tasks") or ())
        if msg.get("expected"):
            log.info("worker %s left the cluster as planned", worker)
            return
        self.workers_lost.append(worker)
        self.tasks_retried += running
        self.results_recomputed += lost
        log.warning("worker %s lost: %d running task(s) will be retried and %d finished result(s) it held "
                    "recomputed on the remaining workers", worker, running, lost)


@contextlib.contextmanager
def watch_cluster(client: Any) -> Iterator[ClusterEvents]:
    """Log lost workers and retried tasks while the block runs (nothing to watch without a client)."""
    events = ClusterEvents()
    if client is None:
        yield events
        return
    client.subscribe_topic(TOPIC, events.handle)
    try:
        yield events
    finally:
        with contextlib.suppress(Exception):  # the client may already be closing
            client.unsubscribe_topic(TOPIC)
    if events.workers_lost:
        log.warning("run finished despite %d lost worker(s); %d task(s) were retried",
                    len(events.workers_lost), events.tasks_retried)


@contextlib.contextmanager
def performance_report(client: Any, path: Path) -> Iterator[Path | None]:
    """Keep a Dask performance report (HTML) of the block at ``path`` when running on a cluster."""
    if client is None:
        yield None
        return
    from distributed import performance_report as dask_report

    with dask_report(filename=str(path)):
        yield path
    log.info("Dask performance report: %s", path)
