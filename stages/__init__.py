"""Model stages, one module per stage, each declared as data around a numba kernel.

``STAGES`` lists every registered stage in the original's run order
(spec/stages.md §2).
"""

from __future__ import annotations

from fluxgraph.stages import gross_emissions

from fluxgraph.graph import Stage

STAGES: list[Stage] = [
    *gross_emissions.STAGES,
]

__all__ = ["STAGES"]
