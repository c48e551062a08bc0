"""The ``[cluster]`` table: its validation, and the two backends that need no extra package.

The default cluster is a multi-process ``LocalCluster`` sized to the machine; ``tcp://host:port``
connects to a scheduler that is already running. The helpers here (secret rejection, redaction,
typed getters, adaptive bounds) are shared with the cloud backends of :mod:`fluxgraph.cluster.cloud`.

Credentials never belong in the table: keys that look like secrets are rejected
(:func:`reject_secrets`) and anything logged goes through :func:`redact`.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Mapping
from typing import Any

from fluxgraph.errors import ConfigError

__all__ = [
    "COMMON_KEYS",
    "DEFAULT_IMAGE",
    "LOCAL_KEYS",
    "REDACTED",
    "adapt_bounds",
    "connect",
    "connect_local",
    "connect_scheduler",
    "get_bool",
    "get_int",
    "get_memory",
    "get_str",
    "image",
    "initial_workers",
    "local_cluster_kwargs",
    "looks_secret",
    "memory_bytes",
    "redact",
    "reject_secrets",
    "worker_env",
]

log = logging.getLogger("fluxgraph.cluster")

#: The one image for client, scheduler and workers; a placeholder to replace with the image built
#: from the repository's Dockerfile (docs/cluster.md).
DEFAULT_IMAGE = "ghcr.io/fluxgraph/fluxgraph:0.1.0"

#: What :func:`redact` puts in place of a secret-looking value.
REDACTED = "***"

#: Keys every kind reads (``kind`` selects the backend).
COMMON_KEYS = frozenset({
    "kind", "n_workers", "threads_per_worker", "memory_limit", "adapt_minimum", "adapt_maximum",
    "image", "env", "timeout", "name", "worker_malloc",
})
#: Keys read only by ``kind = "local"``.
LOCAL_KEYS = frozenset({"dashboard_address"})

_SECRET_WORDS = ("secret", "token", "password", "passwd", "credential", "access_key", "private_key",
                 "api_key", "apikey")
_AWS_KEY_ID = re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USE_ROLES = (
    "Credentials are never read from the run configuration: leave them to the environment of the launching "
    "shell (AWS_PROFILE / the AWS_* variables, kubeconfig), an EC2 instance profile (iam_instance_profile), "
    "an ECS task role (task_role_arn / task_role_policies) or a Kubernetes service account "
    "(service_account; IRSA on EKS). See docs/cluster.md."
)


# --------------------------------------------------------------------------- secrets


def looks_secret(name: str) -> bool:
    """Whether a key or environment-variable name looks like it holds a credential.

    Parameters
    ----------
    name : str
        A configuration key or environment-variable name; case is ignored.

    Returns
    -------
    bool
        True for names containing ``secret``, ``token``, ``password``, ``credential``,
        ``access_key``, ``private_key`` or ``api_key``.
    """
    low = str(name).lower().replace("-", "_")
    return any(word in low for word in _SECRET_WORDS)


def reject_secrets(spec: Mapping[str, Any], *, where: str = "[cluster]") -> None:
    """Raise if any key of ``spec``, at any depth, looks like a credential.

    Parameters
    ----------
    spec : mapping
        The ``[cluster]`` table (nested tables such as ``env`` are searched too).
    where : str, optional
        How the table is named in the message.

    Raises
    ------
    fluxgraph.errors.ConfigError
        Naming the offending key, never its value, and saying where credentials come from instead.
    """
    for path, key, value in _walk(spec, where):
        if looks_secret(key):
            raise ConfigError(f"{path} looks like a secret and is not accepted. {_USE_ROLES}")
        if isinstance(value, str) and _AWS_KEY_ID.search(value):
            raise ConfigError(f"the value of {path} looks like an AWS access key id and is not accepted. {_USE_ROLES}")


def _walk(obj: Any, path: str) -> Any:
    """Yield ``(path, key, value)`` for every key of nested mappings, lists included."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            sub = f"{path}.{key}"
            yield sub, str(key), value
            yield from _walk(value, sub)
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            if isinstance(value, Mapping) and "name" in value and "value" in value:  # k8s env entry
                yield f"{path}[{i}]", str(value["name"]), value["value"]
            yield from _walk(value, f"{path}[{i}]")


def redact(obj: Any) -> Any:
    """A copy of ``obj`` safe to log: values under secret-looking names are replaced by ``***``.

    Mappings are searched at every depth, Kubernetes ``[{"name": ..., "value": ...}]`` env lists
    included, and strings that look like AWS access key ids are masked wherever they are.

    Parameters
    ----------
    obj : Any
        A spec, a constructor-keyword dict or any nesting of mappings, lists and scalars.

    Returns
    -------
    Any
        The same structure with secret values replaced by :data:`REDACTED`.
    """
    if isinstance(obj, Mapping):
        if set(obj) >= {"name", "value"} and looks_secret(str(obj["name"])):
            return {**{k: redact(v) for k, v in obj.items()}, "value": REDACTED}
        return {k: REDACTED if looks_secret(str(k)) else redact(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v) for v in obj)
    if isinstance(obj, str):
        return _AWS_KEY_ID.sub(REDACTED, obj)
    return obj


# --------------------------------------------------------------------------- typed getters


def get_int(spec: Mapping[str, Any], key: str, *, default: int, minimum: int = 0) -> int:
    """An integer value of the table, at least ``minimum``.

    Raises
    ------
    fluxgraph.errors.ConfigError
        If the value is not an integer (booleans are refused) or is below ``minimum``.
    """
    value = spec.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"[cluster] {key} must be an integer >= {minimum}, got {value!r}")
    return value


def get_bool(spec: Mapping[str, Any], key: str, *, default: bool | None = None) -> bool | None:
    """A boolean value of the table (``true``/``false`` in TOML), or ``default`` when absent."""
    value = spec.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"[cluster] {key} must be true or false, got {value!r}")
    return value


def get_str(spec: Mapping[str, Any], key: str, *, default: str | None = None) -> str | None:
    """A non-empty string value of the table, or ``default`` when absent."""
    value = spec.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"[cluster] {key} must be a non-empty string, got {value!r}")
    return value


def get_memory(spec: Mapping[str, Any], key: str, *, default: str | int | None = "auto") -> str | int | None:
    """A memory size: ``"auto"``, bytes as an integer, or a string such as ``"4GiB"``.

    Strings are checked with :func:`dask.utils.parse_bytes` and returned unchanged, so the
    value keeps the user's spelling; use :func:`memory_bytes` for the number.

    Raises
    ------
    fluxgraph.errors.ConfigError
        If the value cannot be read as a size.
    """
    value = spec.get(key, default)
    if value is None or value == "auto":
        return value
    memory_bytes(value, key=key)
    return value


def memory_bytes(value: str | int, *, key: str) -> int:
    """Bytes of a memory size given as an integer or a string such as ``"16GiB"``."""
    from dask.utils import parse_bytes

    if isinstance(value, bool):
        raise ConfigError(f"[cluster] {key} must be a memory size such as '4GiB', got {value!r}")
    try:
        n = int(value) if isinstance(value, int) else int(parse_bytes(str(value)))
    except (TypeError, ValueError):
        raise ConfigError(f"[cluster] {key} must be a memory size such as '4GiB' or '16 GB', got {value!r}") from None
    if n < 0:
        raise ConfigError(f"[cluster] {key} must not be negative, got {value!r}")
    return n


def adapt_bounds(spec: Mapping[str, Any]) -> tuple[int, int] | None:
    """The ``(minimum, maximum)`` worker counts of an adaptive cluster, or None for a fixed size.

    The cluster is adaptive when ``adapt_maximum`` is given; ``adapt_minimum`` defaults to 0.

    Raises
    ------
    fluxgraph.errors.ConfigError
        If only ``adapt_minimum`` is given, or ``adapt_minimum > adapt_maximum``.
    """
    if spec.get("adapt_maximum") is None:
        if spec.get("adapt_minimum") is not None:
            raise ConfigError("[cluster] adapt_minimum needs adapt_maximum (the upper bound of adaptive scaling)")
        return None
    high = get_int(spec, "adapt_maximum", default=0, minimum=1)
    low = get_int(spec, "adapt_minimum", default=0, minimum=0)
    if low > high:
        raise ConfigError(f"[cluster] adapt_minimum ({low}) must be <= adapt_maximum ({high})")
    return low, high


def initial_workers(spec: Mapping[str, Any], *, kind: str) -> int:
    """Workers to start a cloud cluster with: ``n_workers``, else ``adapt_minimum`` when adaptive.

    Raises
    ------
    fluxgraph.errors.ConfigError
        If the cluster would have no worker and no adaptive bounds.
    """
    n = get_int(spec, "n_workers", default=0, minimum=0)
    bounds = adapt_bounds(spec)
    if bounds is not None:
        return n or bounds[0]
    if n == 0:
        raise ConfigError(
            f"[cluster] n_workers = 0 ('one per core') only applies to kind = 'local': for kind = {kind!r} "
            "set n_workers >= 1, or adapt_maximum (and adapt_minimum) for adaptive scaling"
        )
    return n


def image(spec: Mapping[str, Any]) -> str:
    """The Docker image of client, scheduler and workers (``image``; default :data:`DEFAULT_IMAGE`)."""
    return get_str(spec, "image", default=DEFAULT_IMAGE) or DEFAULT_IMAGE


def worker_env(spec: Mapping[str, Any]) -> dict[str, str]:
    """The non-secret environment variables of scheduler and workers (the ``env`` table).

    Raises
    ------
    fluxgraph.errors.ConfigError
        If ``env`` is not a table of names to scalars, or a name looks like a credential.
    """
    env = spec.get("env") or {}
    if not isinstance(env, Mapping):
        raise ConfigError(f"[cluster] env must be a table of NAME = value, got {type(env).__name__}")
    reject_secrets(env, where="[cluster].env")
    out: dict[str, str] = {}
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(str(name)):
            raise ConfigError(f"[cluster].env: {name!r} is not a valid environment variable name")
        if isinstance(value, Mapping | list | tuple) or value is None:
            raise ConfigError(f"[cluster].env.{name} must be a string, number or boolean")
        out[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def pre_spawn_environ(spec: Mapping[str, Any]) -> dict[str, str]:
    """The environment a worker process starts with: dask's ``pre-spawn-environ`` plus ``[cluster.worker_malloc]``.

    glibc reads its ``MALLOC_*`` settings once, when a process starts, so they must be in the environment
    before a nanny spawns its worker (distributed's ``env=`` arrives too late). distributed sets
    ``MALLOC_TRIM_THRESHOLD_=65536`` there, which also switches off glibc's adaptive mmap threshold: every
    array over 128 KiB is then mapped afresh and page-faulted in. On the 1e8-pixel standard chain
    (1 worker) that cost 15.4 s of system time out of 47 CPU s; fluxgraph's defaults (trim at 256 MiB, mmap
    from 32 MiB) gave 4.4 s (bench/README.md).
    """
    import dask

    env = {str(k): str(v) for k, v in dict(dask.config.get("distributed.nanny.pre-spawn-environ", {})).items()}
    malloc = spec.get("worker_malloc") or {}
    if not isinstance(malloc, Mapping):
        raise ConfigError(f"[cluster.worker_malloc] must be a table of MALLOC_* = value, got {type(malloc).__name__}")
    for name, value in malloc.items():
        if not str(name).startswith("MALLOC_") or not _ENV_NAME.fullmatch(str(name)):
            raise ConfigError(f"[cluster.worker_malloc]: {name!r} is not a glibc MALLOC_* variable")
        env[str(name)] = str(value)
    return env


def remote_worker_env(spec: Mapping[str, Any]) -> dict[str, str]:
    """:func:`worker_env` plus, for workers fluxgraph starts on EC2, Fargate or Kubernetes, the dask setting
    that makes their nannies spawn workers with :func:`pre_spawn_environ` (read by dask from the environment)."""
    return {**worker_env(spec), "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": repr(pre_spawn_environ(spec))}


def worker_environ_config(spec: Mapping[str, Any]) -> Any:
    """A ``dask.config.set`` context under which nannies spawn workers with :func:`pre_spawn_environ`."""
    import dask

    return dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn_environ(spec)})


# --------------------------------------------------------------------------- local


def local_cluster_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`distributed.LocalCluster` from a ``[cluster]`` table.

    One worker process per core and one thread per worker by default: GDAL dataset
    handles must not be shared between threads, and numba kernels release nothing to
    gain from threads within a process.

    Parameters
    ----------
    spec : mapping
        ``n_workers`` (0 = one per core, or ``adapt_minimum`` when adaptive), ``threads_per_worker``,
        ``memory_limit`` (per worker: ``"auto"``, bytes or ``"4GiB"``), ``dashboard_address``, ``env``.

    Returns
    -------
    dict
        ``n_workers``, ``threads_per_worker``, ``processes=True``, ``memory_limit``,
        ``dashboard_address`` and, when ``env`` is given, ``env`` (passed to each worker's nanny).
    """
    reject_secrets(spec)
    bounds = adapt_bounds(spec)
    n = get_int(spec, "n_workers", default=0, minimum=0)
    if n == 0:
        n = bounds[0] if bounds is not None else (os.cpu_count() or 1)
    kwargs: dict[str, Any] = {
        "n_workers": n,
        "threads_per_worker": get_int(spec, "threads_per_worker", default=1, minimum=1),
        "processes": True,
        "memory_limit": get_memory(spec, "memory_limit"),
        "dashboard_address": get_str(spec, "dashboard_address", default=":0"),
    }
    env = worker_env(spec)
    if env:
        kwargs["env"] = env
    return kwargs


def connect_local(spec: Mapping[str, Any]) -> Any:
    """Start a multi-process ``LocalCluster`` and return a client that owns it.

    Parameters
    ----------
    spec : mapping
        The ``[cluster]`` table (see :func:`local_cluster_kwargs`; ``adapt_minimum`` /
        ``adapt_maximum`` make it adaptive).

    Returns
    -------
    distributed.Client
        With ``_fluxgraph_owns_cluster = True``: the CLI closes the cluster with the client.
    """
    from distributed import LocalCluster

    kwargs = local_cluster_kwargs(spec)
    bounds = adapt_bounds(spec)
    log.info("starting LocalCluster with %s", redact(kwargs))
    with worker_environ_config(spec):
        cluster = LocalCluster(**kwargs)
    return own_client(cluster, bounds)


def own_client(cluster: Any, bounds: tuple[int, int] | None) -> Any:
    """A Client on a cluster fluxgraph started (adaptive within ``bounds``); closing it closes the cluster."""
    from distributed import Client

    try:
        if bounds is not None:
            cluster.adapt(minimum=bounds[0], maximum=bounds[1])
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    client._fluxgraph_owns_cluster = True  # type: ignore[attr-defined]
    return client


def close(client: Any) -> None:
    """Close a client, and the cluster with it if fluxgraph started that cluster."""
    if client is None:
        return
    cluster = client.cluster if getattr(client, "_fluxgraph_owns_cluster", False) else None
    client.close()
    if cluster is not None:
        cluster.close()


# --------------------------------------------------------------------------- existing scheduler


def connect_scheduler(address: str, *, timeout: str | float = "10s") -> Any:
    """A client of a scheduler that is already running (``tcp://host:port`` or ``tls://host:port``).

    The address is probed with a plain TCP connection first, so a refused port fails at once
    instead of after the client's retry timeout.

    Parameters
    ----------
    address : str
        Scheduler address; the port defaults to 8786.
    timeout : str or float, optional
        Seconds (or ``"20s"``) to wait for the scheduler.

    Returns
    -------
    distributed.Client
        The cluster is not owned: closing the client leaves the scheduler running.

    Raises
    ------
    fluxgraph.errors.ConfigError
        If the address is malformed or nothing answers there in time.
    """
    from dask.utils import parse_timedelta
    from distributed import Client
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        seconds = float(parse_timedelta(timeout, default="seconds"))
        scheme, location = parse_address(address)
        host, port = parse_host_port(location, default_port=8786)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[cluster] kind {address!r} is not a scheduler address tcp://host:port ({exc})") from None
    if scheme not in {"tcp", "tls"}:
        raise ConfigError(f"[cluster] kind {address!r}: only tcp:// and tls:// scheduler addresses are supported")
    hint = ("start one with `dask scheduler` (and `dask worker ADDRESS`), check host, port and firewall, "
            "or set [cluster] kind = 'local'")
    t0 = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=seconds):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {reason}; {hint}") from None
    try:
        return Client(address, timeout=max(seconds - (time.monotonic() - t0), 1.0))
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot connect to the Dask scheduler at {address}: {exc}; {hint}") from None


def connect(spec: Mapping[str, Any]) -> Any:
    """A client for ``kind = "local"`` or ``kind = "tcp://host:port"`` (no extra package needed).

    :func:`fluxgraph.cluster.connect` dispatches every kind, the cloud ones included; this
    function is kept for callers that only want the two built-in backends.

    Parameters
    ----------
    spec : mapping
        The ``[cluster]`` table.

    Returns
    -------
    distributed.Client
        Closing the client also closes a LocalCluster it started.
    """
    reject_secrets(spec)
    kind = str(spec.get("kind", "local"))
    if kind.startswith(("tcp://", "tls://")):
        return connect_scheduler(kind, timeout=spec.get("timeout", "10s"))
    if kind == "local":
        return connect_local(spec)
    raise ConfigError(f"[cluster] kind {kind!r} is not a built-in backend: use fluxgraph.cluster.connect")
