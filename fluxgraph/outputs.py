"""Where a run's outputs go: a local folder or an ``s3://`` prefix, with atomic commits.

Large outputs (the Zarr store, COGs) are written by the workers straight to the output
location. Small files (the log, the resolved configuration, ``run.json``, tables, the Dask
performance report, the resume manifest) are written into a local folder first: for a local
output that folder *is* the output; for S3 it is a staging folder whose files are uploaded.

Nothing is ever left half-written under its final name: a file is written under a temporary
name and then renamed (local) or uploaded in one PUT (S3, where an object appears only once
complete), see :func:`commit_file`.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxgraph.s3 import check_writable, filesystem, is_s3, storage_error

__all__ = ["Location", "OutputLocation", "commit_file", "temporary_path"]


def temporary_path(final: str, *, suffix: str = "") -> str:
    """A unique local path to write ``final``'s content to before :func:`commit_file`.

    Local targets get a hidden sibling (same filesystem, so the rename is atomic); S3 targets
    a file in the system's temporary folder.
    """
    token = uuid.uuid4().hex[:12]
    if is_s3(final):
        return os.path.join(tempfile.gettempdir(), f"fluxgraph-{token}{suffix or Path(final).suffix}")
    parent, name = os.path.split(final)
    return os.path.join(parent, f".{name}.partial-{token}{suffix}")


def commit_file(tmp: str, final: str, *, storage_options: Mapping[str, Any] | None = None) -> str:
    """Move a finished local file ``tmp`` to ``final`` atomically; returns ``final``.

    Parameters
    ----------
    tmp : str
        A complete local file (from :func:`temporary_path`); removed afterwards.
    final : str
        Local path (renamed over, atomically on POSIX) or ``s3://`` URL (one upload).
    storage_options : mapping, optional
        s3fs options for S3 targets (no credentials: those come from the environment).
    """
    if not is_s3(final):
        Path(final).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return final
    try:
        filesystem(storage_options).put_file(tmp, final)
    except Exception as exc:
        raise storage_error(final, exc, action="upload to") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return final


@dataclass
class Location:
    """A run's folder or ``s3://`` prefix, read only (a finished run's outputs, e.g. for zonal statistics).

    Attributes
    ----------
    url : str
        The location as given (a local path or ``s3://bucket/prefix``), without a trailing slash.
    storage_options : dict
        s3fs options (``anon``, ``requester_pays``, ``endpoint_url``…), never credentials.
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = str(self.url).rstrip("/")

    @property
    def remote(self) -> bool:
        """Whether the location is on S3."""
        return is_s3(self.url)

    def join(self, *parts: str) -> str:
        """The URL or path of ``parts`` below the location."""
        if self.remote:
            return "/".join([self.url, *parts])
        return str(Path(self.url).expanduser().joinpath(*parts))

    def exists(self, *parts: str) -> bool:
        """Whether a file or folder exists below the location."""
        if not self.remote:
            return Path(self.join(*parts)).exists()
        try:
            return bool(filesystem(self.storage_options).exists(self.join(*parts)))
        except Exception as exc:
            raise storage_error(self.join(*parts), exc, action="read") from None

    def read_text(self, *parts: str) -> str | None:
        """The text of a file below the location, or None if there is none."""
        if not self.exists(*parts):
            return None
        if not self.remote:
            return Path(self.join(*parts)).read_text()
        try:
            return filesystem(self.storage_options).cat_file(self.join(*parts)).decode()
        except Exception as exc:
            raise storage_error(self.join(*parts), exc, action="read") from None


@dataclass
class OutputLocation(Location):
    """The output folder or ``s3://`` prefix of a run, written to.

    Attributes
    ----------
    local : Path
        Folder for small files: the output folder itself (created), or a staging folder for S3.
    """

    local: Path = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.remote:
            self.local = Path(tempfile.mkdtemp(prefix="fluxgraph-out-"))
        else:
            self.local = Path(self.url).expanduser()
            self.local.mkdir(parents=True, exist_ok=True)

    def check(self) -> None:
        """Fail early with a clear :class:`~fluxgraph.errors.StorageError` if the location is not writable."""
        if self.remote:
            check_writable(self.url, self.storage_options)

    def write_text(self, text: str, *parts: str) -> str:
        """Write a small text file atomically (a local copy is kept in :attr:`local`)."""
        local = self.local.joinpath(*parts)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_path(str(local))
        Path(tmp).write_text(text)
        os.replace(tmp, local)
        if self.remote:
            self.upload(local, *parts)
        return self.join(*parts)

    def remove(self, *parts: str) -> None:
        """Delete a file or folder (recursively) below the location, if it exists."""
        import shutil

        if not self.remote:
            shutil.rmtree(self.join(*parts), ignore_errors=True)
            return
        fs = filesystem(self.storage_options)
        try:
            if fs.exists(self.join(*parts)):
                fs.rm(self.join(*parts), recursive=True)
        except Exception as exc:
            raise storage_error(self.join(*parts), exc, action="delete") from None

    def upload(self, local: Path, *parts: str) -> None:
        """Copy a local file to ``parts`` below a remote location (nothing to do for a local one)."""
        if not self.remote:
            return
        try:
            filesystem(self.storage_options).put_file(str(local), self.join(*parts))
        except Exception as exc:
            raise storage_error(self.join(*parts), exc, action="upload to") from None

    def upload_folder(self) -> None:
        """Upload every file of the staging folder (log, tables, report…) to the remote location."""
        if not self.remote:
            return
        for path in sorted(self.local.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                self.upload(path, *path.relative_to(self.local).parts)
