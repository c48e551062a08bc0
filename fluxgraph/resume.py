"""The resume manifest: which tile parts of a run are finished, and what they measured.

A run writes ``fluxgraph_manifest.json`` at its output location before computing anything,
and rewrites it (atomically) each time a tile part's Zarr chunks and COGs have all landed. The
part's summary statistics, table values and 4-km map cells go, just before, into a file of its own
(``fluxgraph_parts/{part}.json``, so the manifest stays small at global scale), so a resumed run
(``fluxgraph run --resume``) computes only the parts that are missing and still reports the
statistics and tables of the whole region. A part that was interrupted is not in the manifest
and is rewritten in full: its Zarr chunks are overwritten (or deleted when empty) and its COGs
replaced, so no half-written chunk can survive a resume.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fluxgraph.errors import ResumeError
from fluxgraph.mosaic import Part
from fluxgraph.outputs import OutputLocation

__all__ = ["MANIFEST", "PARTS", "Manifest", "part_key"]

MANIFEST = "fluxgraph_manifest.json"
"""File name of the manifest at the output location."""

PARTS = "fluxgraph_parts"
"""Folder of the finished parts' results at the output location."""

FORMAT = 1


def part_key(part: Part) -> str:
    """A stable name of a tile part: ``{tile}:{row0}-{row1},{col0}-{col1}`` (global pixel indices)."""
    w = part.window
    return f"{part.tile}:{w.row0}-{w.row1},{w.col0}-{w.col1}"


def _encode(value: Any) -> Any:
    """JSON form of a part's computed statistics or table values (numpy arrays keep their dtype)."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


@dataclass
class Manifest:
    """The state of a run at its output location.

    Attributes
    ----------
    config_digest : str
        Digest of the resolved configuration (:meth:`fluxgraph.config.RunConfig.digest`).
    identity : dict
        What else must match for a resume: targets, layers written, naming, parts, inputs.
    done : dict
        Finished parts: :func:`part_key` → ``{"stats": …, "tables": …, "chunks": n}``.
    """

    config_digest: str
    identity: dict[str, Any]
    done: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "config_digest": self.config_digest, "identity": self.identity,
                           "done": self.done}, indent=1)

    @classmethod
    def load(cls, out: OutputLocation) -> Manifest | None:
        """The manifest at ``out``, or None if there is none."""
        text = out.read_text(MANIFEST)
        if text is None:
            return None
        try:
            data = json.loads(text)
            return cls(data["config_digest"], data["identity"], data["done"])
        except (ValueError, KeyError) as exc:
            raise ResumeError(f"{out.join(MANIFEST)} is not a fluxgraph manifest ({exc}); delete the output "
                              "location, or run without --resume to start over") from None

    def save(self, out: OutputLocation) -> None:
        """Write the manifest atomically at ``out``."""
        out.write_text(self.to_json(), MANIFEST)

    def check_resumable(self, *, config_digest: str, identity: Mapping[str, Any], where: str) -> None:
        """Raise :class:`ResumeError` unless a run with this configuration and identity may resume this one."""
        if config_digest != self.config_digest:
            raise ResumeError(
                f"cannot resume the run at {where}: its configuration digest is {self.config_digest}, this run's "
                f"is {config_digest}. Resume with the same configuration (the run's config.toml: --config "
                f"{where}/config.toml, and the same options), or run without --resume to start over"
            )
        for key, value in identity.items():
            if self.identity.get(key) != value:
                raise ResumeError(
                    f"cannot resume the run at {where}: its {key} was {self.identity.get(key)!r}, now {value!r}. "
                    "Resume with the same tiles, stages and options, or run without --resume to start over"
                )

    def is_done(self, part: Part) -> bool:
        """Whether ``part`` is recorded as finished."""
        return part_key(part) in self.done

    def record(self, out: OutputLocation, part: Part, *, stats: Any, tables: Sequence[Any], maps: Any,
               chunks: int) -> None:
        """Mark ``part`` finished: write its results, then the manifest that lists it (both atomically)."""
        name = _file_name(part)
        out.write_text(json.dumps({"stats": _encode(stats), "tables": _encode(list(tables)), "maps": _encode(maps)}),
                       PARTS, name)
        self.done[part_key(part)] = {"chunks": chunks, "results": f"{PARTS}/{name}"}
        self.save(out)

    def results(self, out: OutputLocation, part: Part) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        """``(stats, tables, maps)`` of a finished part, read back from its results file."""
        text = out.read_text(PARTS, _file_name(part))
        if text is None:
            raise ResumeError(f"{out.join(PARTS, _file_name(part))} is missing although the manifest lists the part "
                              "as finished; run without --resume to start over")
        data = json.loads(text)
        return _decode(data["stats"]), _decode(data["tables"]), _decode(data["maps"])


def _file_name(part: Part) -> str:
    return part_key(part).replace(":", "_").replace(",", "_") + ".json"
