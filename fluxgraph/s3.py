"""S3 access options, shared by s3fs (listing, Zarr, uploads) and GDAL ``/vsis3/`` (GeoTIFF reads).

The ``[s3]`` table of the run configuration holds only *how* to reach the store: anonymous
access, requester-pays, an endpoint URL for S3-compatible stores and a region. Credentials are
never part of it: they come from the environment (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID`` …),
an EC2 instance profile, an ECS task role or a Kubernetes service account, and every message
that quotes an S3 error goes through :func:`scrub` first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from fluxgraph.errors import ConfigError, StorageError

__all__ = [
    "CREDENTIALS_HELP",
    "check_writable",
    "filesystem",
    "gdal_env",
    "is_s3",
    "scrub",
    "storage_error",
    "storage_options",
]

CREDENTIALS_HELP = (
    "credentials come from the environment (AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), "
    "an EC2 instance profile, an ECS task role or a Kubernetes service account; public buckets need "
    "--s3-anon, requester-pays buckets --s3-requester-pays, S3-compatible stores --s3-endpoint-url"
)

_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY_ID")
_KEYS = frozenset({"anon", "requester_pays", "endpoint_url", "region"})


def is_s3(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is an ``s3://`` URL."""
    return str(location).startswith("s3://")


def storage_options(s3: Mapping[str, Any]) -> dict[str, Any]:
    """s3fs keyword arguments from the ``[s3]`` table of the run configuration.

    Parameters
    ----------
    s3 : mapping
        ``anon`` (bool), ``requester_pays`` (bool), ``endpoint_url`` (str, "" = AWS),
        ``region`` (str, "" = from the environment).

    Returns
    -------
    dict
        Options for :class:`s3fs.S3FileSystem` (and xarray/zarr ``storage_options``).

    Raises
    ------
    fluxgraph.errors.ConfigError
        On an unknown key, a key that looks like a credential, or a value of the wrong type.
    """
    from fluxgraph.cluster.local import reject_secrets

    reject_secrets(s3, where="[s3]")
    unknown = set(s3) - _KEYS
    if unknown:
        raise ConfigError(f"[s3]: unknown key(s) {sorted(unknown)}; known keys: {sorted(_KEYS)}")
    opts: dict[str, Any] = {}
    for key in ("anon", "requester_pays"):
        value = s3.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"[s3] {key} must be true or false, got {value!r}")
        if value:
            opts[key] = True
    endpoint = s3.get("endpoint_url") or ""
    if endpoint:
        if not str(endpoint).startswith(("http://", "https://")):
            raise ConfigError(f"[s3] endpoint_url must start with http:// or https://, got {endpoint!r}")
        opts["endpoint_url"] = str(endpoint)
    if s3.get("region"):
        opts["client_kwargs"] = {"region_name": str(s3["region"])}
    return opts


def _endpoint(opts: Mapping[str, Any]) -> str | None:
    return opts.get("endpoint_url") or (opts.get("client_kwargs") or {}).get("endpoint_url")


def gdal_env(opts: Mapping[str, Any]) -> dict[str, str]:
    """GDAL configuration options for ``/vsis3/`` equivalent to the s3fs ``opts``.

    Parameters
    ----------
    opts : mapping
        s3fs options as built by :func:`storage_options`.

    Returns
    -------
    dict
        ``AWS_NO_SIGN_REQUEST``, ``AWS_REQUEST_PAYER``, ``AWS_S3_ENDPOINT`` / ``AWS_HTTPS`` /
        ``AWS_VIRTUAL_HOSTING`` and ``AWS_REGION`` as needed (no credentials).
    """
    env: dict[str, str] = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
    if opts.get("anon"):
        env["AWS_NO_SIGN_REQUEST"] = "YES"
    if opts.get("requester_pays"):
        env["AWS_REQUEST_PAYER"] = "requester"
    endpoint = _endpoint(opts)
    if endpoint:
        parsed = urlparse(endpoint)
        env["AWS_S3_ENDPOINT"] = parsed.netloc or parsed.path
        env["AWS_HTTPS"] = "YES" if parsed.scheme == "https" else "NO"
        env["AWS_VIRTUAL_HOSTING"] = "FALSE"
    region = (opts.get("client_kwargs") or {}).get("region_name")
    if region:
        env["AWS_REGION"] = str(region)
    return env


def filesystem(opts: Mapping[str, Any] | None = None) -> Any:
    """An :class:`s3fs.S3FileSystem` with ``opts`` (fsspec keeps one instance per options, thread and process)."""
    import s3fs

    return s3fs.S3FileSystem(**dict(opts or {}))


def scrub(text: str) -> str:
    """``text`` with every credential value of the environment and every AWS key id replaced by ``***``."""
    from fluxgraph.cluster.local import redact

    for name in _SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return str(redact(text))


def storage_error(url: str, exc: BaseException, *, action: str) -> StorageError:
    """A :class:`StorageError` naming ``url``, what failed and how to fix it, with no secret in it."""
    kind = type(exc).__name__
    detail = scrub(str(exc)) or kind
    if kind in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"):
        hint = f"no S3 credentials were found: {CREDENTIALS_HELP}"
    elif isinstance(exc, FileNotFoundError) or "NoSuchBucket" in detail:
        hint = "the bucket or prefix does not exist: check its name (and the endpoint/region)"
    elif isinstance(exc, PermissionError) or "AccessDenied" in detail or "Forbidden" in detail:
        hint = f"access was denied: check the IAM permissions (docs/cluster.md) and that {CREDENTIALS_HELP}"
    else:
        hint = f"check the location, the endpoint and that {CREDENTIALS_HELP}"
    return StorageError(f"cannot {action} {url}: {kind}: {detail}. Fix: {hint}")


def _bucket(url: str) -> str:
    bucket = url[len("s3://"):].split("/", 1)[0]
    if not bucket:
        raise ConfigError(f"{url!r} names no bucket: use s3://bucket/prefix")
    return bucket


def check_writable(url: str, opts: Mapping[str, Any] | None = None) -> None:
    """Fail early if an object cannot be written below ``url`` (writes, then deletes, a probe)."""
    _bucket(url)
    probe = f"{url.rstrip('/')}/.fluxgraph-write-probe"
    fs = filesystem(opts)
    try:
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except Exception as exc:
        raise storage_error(url, exc, action="write to") from None
