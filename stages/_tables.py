"""Removal-factor tables for the stages, loaded once per process per configuration."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fluxgraph.tables import RemovalTables, load_removal_tables

__all__ = ["removal_tables"]


@lru_cache(maxsize=8)
def _load(path: str, us_path: str, no_primary_gain: bool) -> RemovalTables:
    return load_removal_tables(path or None, us_table=us_path or None, no_primary_gain=no_primary_gain)


def removal_tables(params: Mapping[str, Any]) -> RemovalTables:
    """The tables named by ``[stages.removals]`` (``removal_table``, ``us_removal_table``; "" = shipped)."""
    return _load(str(params.get("removal_table", "")), str(params.get("us_removal_table", "")),
                 bool(params.get("no_primary_gain", False)))
