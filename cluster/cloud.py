"""Cloud clusters: ``EC2Cluster`` and ``FargateCluster`` (dask-cloudprovider) and ``KubeCluster`` (dask-kubernetes).

The constructor arguments are built from the ``[cluster]`` table by pure functions,
:func:`ec2_cluster_kwargs`, :func:`fargate_cluster_kwargs` and :func:`kube_cluster_spec`: no
network, and no cloud package needed (``make_cluster_spec`` of dask-kubernetes is used when it is
importable, an identical builder otherwise). :func:`connect_cloud` imports the backend lazily and
says which pip extra to install when it is missing.

Only keys present in the table are passed on, so anything left out keeps the backend's own default,
including those of Dask's YAML configuration (``cloudprovider.ec2.*``, ``cloudprovider.ecs.*``,
``kubernetes.*``). The image is the exception: it is always the fluxgraph image (``image``).
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from fluxgraph.cluster.local import (
    COMMON_KEYS,
    LOCAL_KEYS,
    adapt_bounds,
    get_bool,
    get_int,
    get_memory,
    get_str,
    image,
    initial_workers,
    log,
    memory_bytes,
    own_client,
    redact,
    reject_secrets,
    remote_worker_env,
)

from fluxgraph.errors import ConfigError

__all__ = [
    "ALL_KEYS",
    "CLOUD_KINDS",
    "EC2_KEYS",
    "FARGATE_KEYS",
    "K8S_KEYS",
    "check_keys",
    "connect_cloud",
    "ec2_cluster_kwargs",
    "fargate_cluster_kwargs",
    "kube_cluster_kwargs",
    "kube_cluster_spec",
]

#: Keys read by ``kind = "ec2"`` (besides :data:`~fluxgraph.cluster.local.COMMON_KEYS`).
EC2_KEYS = frozenset({
    "region", "availability_zone", "instance_type", "scheduler_instance_type", "worker_instance_type", "spot",
    "iam_instance_profile", "filesystem_size", "vpc", "subnet_id", "security_groups", "ami", "key_name",
    "bootstrap", "security", "use_private_ip", "instance_tags", "debug", "docker_args",
})
#: Keys read by ``kind = "fargate"``.
FARGATE_KEYS = frozenset({
    "region", "worker_cpu", "worker_memory", "scheduler_cpu", "scheduler_memory", "spot", "task_role_arn",
    "task_role_policies", "execution_role_arn", "cloudwatch_logs_group", "vpc", "subnets", "security_groups",
    "cluster_arn", "use_private_ip", "tags", "skip_cleanup", "scheduler_timeout", "cpu_architecture",
})
#: Keys read by ``kind = "k8s"``.
K8S_KEYS = frozenset({
    "name", "namespace", "worker_cpu", "worker_memory", "scheduler_cpu", "scheduler_memory", "resources",
    "service_account", "node_selector", "idle_timeout", "scheduler_service_type",
})
#: Every key the ``[cluster]`` table may hold (the keys of other kinds are ignored, not refused).
ALL_KEYS = COMMON_KEYS | LOCAL_KEYS | EC2_KEYS | FARGATE_KEYS | K8S_KEYS
#: The kinds this module starts.
CLOUD_KINDS = ("ec2", "fargate", "k8s")

# Fargate task sizes: CPU units -> allowed memory in MiB (AWS ECS developer guide, "Task CPU and memory").
_FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
_MIB = 2**20
_K8S_CPU = re.compile(r"\d+(\.\d+)?m?")
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


# --------------------------------------------------------------------------- validation


def check_keys(spec: Mapping[str, Any]) -> None:
    """Refuse secret-looking and unknown keys of the ``[cluster]`` table.

    Keys of another kind than the selected one are accepted (and ignored), so switching
    ``kind`` on the command line keeps a table valid.

    Raises
    ------
    fluxgraph.errors.ConfigError
        Naming the key (never a value), with the closest known key as a suggestion.
    """
    reject_secrets(spec)
    for key in spec:
        if key not in ALL_KEYS:
            close = difflib.get_close_matches(str(key), sorted(ALL_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"[cluster] has an unknown key {key!r}{hint}; the keys of each kind are listed in docs/cluster.md"
            )


def _str_list(spec: Mapping[str, Any], key: str) -> list[str] | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"[cluster] {key} must be a list of strings, got {value!r}")
    return list(value)


def _str_table(spec: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(v, str | int | float) for v in value.values()):
        raise ConfigError(f"[cluster] {key} must be a table of name = string, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _put(kwargs: dict[str, Any], name: str, value: Any) -> None:
    """Set ``kwargs[name]`` only for a value the table gave (None keeps the backend default)."""
    if value is not None:
        kwargs[name] = value


# --------------------------------------------------------------------------- EC2


def _iam_instance_profile(spec: Mapping[str, Any]) -> dict[str, str] | None:
    value = spec.get("iam_instance_profile")
    if value is None:
        return None
    if isinstance(value, str) and value:
        return {"Arn": value} if value.startswith("arn:") else {"Name": value}
    if isinstance(value, Mapping) and set(value) <= {"Name", "Arn"} and value:
        return {str(k): str(v) for k, v in value.items()}
    raise ConfigError(
        f"[cluster] iam_instance_profile must be a profile name, an ARN or a table {{Name = ...}} / {{Arn = ...}}, "
        f"got {value!r}"
    )


def ec2_cluster_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`dask_cloudprovider.aws.EC2Cluster` from a ``[cluster]`` table.

    One VM per worker (and one for the scheduler), each running the fluxgraph image under Docker.

    Parameters
    ----------
    spec : mapping
        ``n_workers`` (VMs; or ``adapt_minimum`` when ``adapt_maximum`` is given), ``threads_per_worker``,
        ``memory_limit``, ``image``, ``env``, ``region``, ``availability_zone``, ``instance_type``,
        ``scheduler_instance_type``, ``worker_instance_type``, ``spot``, ``iam_instance_profile`` (name, ARN or
        table), ``filesystem_size`` (GB), ``vpc``, ``subnet_id``, ``security_groups``, ``ami``, ``key_name``,
        ``bootstrap``, ``security`` (TLS), ``use_private_ip``, ``instance_tags``, ``debug``, ``docker_args``.

    Returns
    -------
    dict
        Always ``docker_image``, ``n_workers``, ``worker_options`` (``nthreads``, ``memory_limit`` unless
        ``"auto"``) and ``docker_args``; ``env_vars`` and the other keys only when the table gives them.
        ``docker_args`` starts with ``--entrypoint=``: dask-cloudprovider appends its own command to
        ``docker run IMAGE``, which must not go to an image ENTRYPOINT.
    """
    check_keys(spec)
    worker_options: dict[str, Any] = {"nthreads": get_int(spec, "threads_per_worker", default=1, minimum=1)}
    memory = get_memory(spec, "memory_limit")
    if memory != "auto":
        worker_options["memory_limit"] = memory
    extra = get_str(spec, "docker_args")
    kwargs: dict[str, Any] = {
        "docker_image": image(spec),
        "n_workers": initial_workers(spec, kind="ec2"),
        "worker_options": worker_options,
        "docker_args": "--entrypoint=" + (f" {extra}" if extra else ""),
    }
    _put(kwargs, "env_vars", remote_worker_env(spec))
    for key in ("region", "instance_type", "scheduler_instance_type", "worker_instance_type", "vpc", "subnet_id",
                "ami", "key_name"):
        _put(kwargs, key, get_str(spec, key))
    zones = _str_list(spec, "availability_zone")
    _put(kwargs, "availability_zone", zones[0] if zones and len(zones) == 1 else zones)
    for key in ("spot", "bootstrap", "security", "use_private_ip", "debug"):
        _put(kwargs, key, get_bool(spec, key))
    if spec.get("filesystem_size") is not None:
        kwargs["filesystem_size"] = get_int(spec, "filesystem_size", default=40, minimum=1)
    _put(kwargs, "security_groups", _str_list(spec, "security_groups"))
    _put(kwargs, "instance_tags", _str_table(spec, "instance_tags"))
    _put(kwargs, "iam_instance_profile", _iam_instance_profile(spec))
    return kwargs


# --------------------------------------------------------------------------- Fargate


def _fargate_cpu(spec: Mapping[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    allowed = ", ".join(f"{c / 1024:g}" for c in _FARGATE_MEMORY)
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value * 1024) not in _FARGATE_MEMORY:
        raise ConfigError(f"[cluster] {key} is in vCPUs and Fargate accepts {allowed}; got {value!r}")
    return int(value * 1024)


def _fargate_memory(spec: Mapping[str, Any], key: str, cpu: int | None, *, cpu_key: str,
                    fallback: str | None = None) -> int | None:
    source = key if spec.get(key) is not None else fallback
    value = spec.get(source) if source else None
    if value is None or value == "auto":
        if cpu is not None:
            raise ConfigError(f"[cluster] {cpu_key} needs {key} too (Fargate sizes a task by both)")
        return None
    if cpu is None:
        raise ConfigError(f"[cluster] {source} needs {cpu_key} too (Fargate sizes a task by both)")
    mib, rest = divmod(memory_bytes(value, key=str(source)), _MIB)
    allowed = _FARGATE_MEMORY[cpu]
    if rest or mib not in allowed:
        shown = ", ".join(f"{m / 1024:g}GiB" for m in allowed)
        raise ConfigError(
            f"[cluster] {source} = {value!r} is not a Fargate task size for {cpu_key} = {cpu / 1024:g}: "
            f"use one of {shown}"
        )
    return mib


def fargate_cluster_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`dask_cloudprovider.aws.FargateCluster` from a ``[cluster]`` table.

    One Fargate task per worker. ``worker_cpu`` is in vCPUs (0.25 to 16) and ``worker_memory``
    (or ``memory_limit`` when it is not ``"auto"``) a size such as ``"8GiB"``; the pair must be a
    valid Fargate task size. The worker's Dask memory limit is the task memory.

    Parameters
    ----------
    spec : mapping
        ``n_workers`` (or ``adapt_minimum``), ``threads_per_worker``, ``image``, ``env``, ``region``,
        ``worker_cpu``, ``worker_memory``, ``scheduler_cpu``, ``scheduler_memory``, ``spot``, ``task_role_arn``,
        ``task_role_policies``, ``execution_role_arn``, ``cloudwatch_logs_group``, ``vpc``, ``subnets``,
        ``security_groups``, ``cluster_arn``, ``use_private_ip``, ``tags``, ``skip_cleanup``,
        ``scheduler_timeout``, ``cpu_architecture``.

    Returns
    -------
    dict
        Always ``image``, ``n_workers`` and ``worker_nthreads``; ``environment``, ``worker_cpu`` (CPU units,
        1024 per vCPU), ``worker_mem`` (MiB), ``fargate_spot``, ``region_name``, ``fargate_use_private_ip`` and
        the other keys only when given.
    """
    check_keys(spec)
    kwargs: dict[str, Any] = {
        "image": image(spec),
        "n_workers": initial_workers(spec, kind="fargate"),
        "worker_nthreads": get_int(spec, "threads_per_worker", default=1, minimum=1),
    }
    _put(kwargs, "environment", remote_worker_env(spec))
    worker_cpu = _fargate_cpu(spec, "worker_cpu")
    _put(kwargs, "worker_cpu", worker_cpu)
    _put(kwargs, "worker_mem", _fargate_memory(spec, "worker_memory", worker_cpu, cpu_key="worker_cpu",
                                               fallback="memory_limit"))
    scheduler_cpu = _fargate_cpu(spec, "scheduler_cpu")
    _put(kwargs, "scheduler_cpu", scheduler_cpu)
    _put(kwargs, "scheduler_mem", _fargate_memory(spec, "scheduler_memory", scheduler_cpu, cpu_key="scheduler_cpu"))
    _put(kwargs, "region_name", get_str(spec, "region"))
    _put(kwargs, "fargate_spot", get_bool(spec, "spot"))
    _put(kwargs, "fargate_use_private_ip", get_bool(spec, "use_private_ip"))
    _put(kwargs, "skip_cleanup", get_bool(spec, "skip_cleanup"))
    for key in ("task_role_arn", "execution_role_arn", "cloudwatch_logs_group", "vpc", "cluster_arn",
                "scheduler_timeout"):
        _put(kwargs, key, get_str(spec, key))
    arch = get_str(spec, "cpu_architecture")
    if arch is not None and arch.upper() not in {"X86_64", "ARM64"}:
        raise ConfigError(f"[cluster] cpu_architecture must be X86_64 or ARM64, got {arch!r}")
    _put(kwargs, "cpu_architecture", arch and arch.upper())
    policies = _str_list(spec, "task_role_policies")
    if policies and not all(p.startswith("arn:") for p in policies):
        raise ConfigError("[cluster] task_role_policies must be IAM policy ARNs (arn:aws:iam::...)")
    _put(kwargs, "task_role_policies", policies)
    _put(kwargs, "subnets", _str_list(spec, "subnets"))
    _put(kwargs, "security_groups", _str_list(spec, "security_groups"))
    _put(kwargs, "tags", _str_table(spec, "tags"))
    return kwargs


# --------------------------------------------------------------------------- Kubernetes


def _k8s_cpu(value: Any, *, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"[cluster] {key} must be vCPUs (2, 0.5) or a Kubernetes quantity ('500m'), got {value!r}")
    if isinstance(value, str):
        if not _K8S_CPU.fullmatch(value):
            raise ConfigError(f"[cluster] {key} must be a Kubernetes CPU quantity such as '2' or '500m', got {value!r}")
        return value
    if value <= 0:
        raise ConfigError(f"[cluster] {key} must be positive, got {value!r}")
    milli = round(value * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _k8s_memory(value: Any, *, key: str) -> str:
    n = memory_bytes(value, key=key)
    if n == 0:
        raise ConfigError(f"[cluster] {key} must be positive, got {value!r}")
    for unit, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _k8s_resources(spec: Mapping[str, Any], *, cpu_key: str, memory_key: str,
                   fallback: str | None = None) -> dict[str, dict[str, str]] | None:
    """``{"requests": ..., "limits": ...}`` with equal values (Guaranteed QoS), or None when not given."""
    memory = spec.get(memory_key)
    if memory is None and fallback and spec.get(fallback) not in (None, "auto"):
        memory, memory_key = spec.get(fallback), fallback
    quantities: dict[str, str] = {}
    if spec.get(cpu_key) is not None:
        quantities["cpu"] = _k8s_cpu(spec[cpu_key], key=cpu_key)
    if memory is not None:
        quantities["memory"] = _k8s_memory(memory, key=memory_key)
    return {"requests": dict(quantities), "limits": dict(quantities)} if quantities else None


def _explicit_resources(spec: Mapping[str, Any]) -> dict[str, dict[str, str]] | None:
    value = spec.get("resources")
    if value is None:
        return None
    if spec.get("worker_cpu") is not None or spec.get("worker_memory") is not None:
        raise ConfigError("[cluster] give either resources or worker_cpu / worker_memory, not both")
    if not isinstance(value, Mapping) or not value or not set(value) <= {"requests", "limits"}:
        raise ConfigError("[cluster] resources must be a table with requests and/or limits, "
                          "e.g. {requests = {cpu = '2', memory = '8Gi'}, limits = {memory = '8Gi'}}")
    out: dict[str, dict[str, str]] = {}
    for part, table in value.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"[cluster] resources.{part} must be a table such as {{cpu = '2', memory = '8Gi'}}")
        out[part] = {}
        for name, quantity in table.items():
            if name == "cpu":
                out[part][name] = _k8s_cpu(quantity, key=f"resources.{part}.cpu")
            elif name == "memory":
                out[part][name] = _k8s_memory(quantity, key=f"resources.{part}.memory")
            else:
                out[part][str(name)] = str(quantity)
    return out


def _make_cluster_spec_fallback(name: str, image: str = "ghcr.io/dask/dask:latest", n_workers: int | None = None,
                                resources: dict | None = None, env: dict | list | None = None,
                                worker_command: str | list[str] = "dask-worker",
                                scheduler_service_type: str = "ClusterIP", idle_timeout: int = 0,
                                jupyter: bool = False) -> dict[str, Any]:
    """The ``DaskCluster`` resource of ``dask_kubernetes.operator.make_cluster_spec`` (2026.3.0), rebuilt."""
    env_list = [{"name": k, "value": v} for k, v in env.items()] if isinstance(env, dict) else env
    command = worker_command.split(" ") if isinstance(worker_command, str) else list(worker_command)
    dashboard = {"httpGet": {"port": "http-dashboard", "path": "/health"}}
    worker = {
        "name": "worker", "image": image,
        "args": [*command, "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address", "8788"],
        "env": env_list, "resources": resources,
        "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
    }
    scheduler = {
        "name": "scheduler", "image": image,
        "args": ["dask-scheduler", "--host", "0.0.0.0", *(["--jupyter"] if jupyter else [])],
        "env": env_list, "resources": resources,
        "ports": [{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                  {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}],
        "readinessProbe": {**dashboard, "initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 300},
        "livenessProbe": {**dashboard, "initialDelaySeconds": 15, "periodSeconds": 20},
    }
    service = {
        "type": scheduler_service_type,
        "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
        "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
                  {"name": "http-dashboard", "protocol": "TCP", "port": 8787, "targetPort": "http-dashboard"}],
    }
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": name},
        "spec": {
            "idleTimeout": idle_timeout,
            "worker": {"replicas": n_workers, "spec": {"containers": [worker]}},
            "scheduler": {"spec": {"containers": [scheduler]}, "service": service},
        },
    }


def _make_cluster_spec() -> Callable[..., dict[str, Any]]:
    """dask-kubernetes' ``make_cluster_spec`` when importable, else the identical fallback."""
    try:
        from dask_kubernetes.operator import make_cluster_spec
    except ImportError:
        return _make_cluster_spec_fallback
    return make_cluster_spec


def kube_cluster_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ``DaskCluster`` custom resource of a ``KubeCluster`` from a ``[cluster]`` table.

    Built by ``dask_kubernetes.operator.make_cluster_spec`` (or the same dict without that
    package), then completed: container commands use the ``dask`` CLI (``dask-scheduler`` and
    ``dask-worker`` are gone since distributed 2026.6) and are set as ``command`` so that no image
    ENTRYPOINT is prepended; namespace, service account and node selector are added when given.

    Parameters
    ----------
    spec : mapping
        ``name`` (default ``fluxgraph``), ``namespace``, ``n_workers`` (or ``adapt_minimum``),
        ``threads_per_worker``, ``memory_limit``, ``image``, ``env``, ``worker_cpu``, ``worker_memory``
        (requests = limits; ``memory_limit`` stands in for ``worker_memory`` when it is not ``"auto"``),
        or ``resources`` (an explicit ``{requests, limits}`` table), ``scheduler_cpu``, ``scheduler_memory``,
        ``service_account``, ``node_selector``, ``idle_timeout`` (s), ``scheduler_service_type``.

    Returns
    -------
    dict
        ``{"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskCluster", "metadata": ..., "spec": ...}``.
    """
    check_keys(spec)
    name = get_str(spec, "name", default="fluxgraph") or "fluxgraph"
    if len(name) > 63 or not _K8S_NAME.fullmatch(name):
        raise ConfigError(f"[cluster] name {name!r} must be a Kubernetes name: lowercase letters, digits and '-'")
    threads = get_int(spec, "threads_per_worker", default=1, minimum=1)
    memory = get_memory(spec, "memory_limit")
    command = ["dask", "worker", "--nthreads", str(threads)]
    if memory != "auto":
        command += ["--memory-limit", str(memory)]
    service_type = get_str(spec, "scheduler_service_type", default="ClusterIP")
    if service_type not in _SERVICE_TYPES:
        raise ConfigError(f"[cluster] scheduler_service_type must be one of {', '.join(_SERVICE_TYPES)}")
    resources = _explicit_resources(spec) or _k8s_resources(spec, cpu_key="worker_cpu", memory_key="worker_memory",
                                                           fallback="memory_limit")
    body = _make_cluster_spec()(
        name=name,
        image=image(spec),
        n_workers=initial_workers(spec, kind="k8s"),
        resources=resources,
        env=remote_worker_env(spec),
        worker_command=command,
        scheduler_service_type=service_type,
        idle_timeout=get_int(spec, "idle_timeout", default=0, minimum=0),
    )
    namespace = get_str(spec, "namespace")
    if namespace is not None:
        body["metadata"]["namespace"] = namespace
    scheduler = body["spec"]["scheduler"]["spec"]["containers"][0]
    scheduler["args"] = ["dask", "scheduler", "--host", "0.0.0.0"]
    scheduler_resources = _k8s_resources(spec, cpu_key="scheduler_cpu", memory_key="scheduler_memory")
    if scheduler_resources is not None:
        scheduler["resources"] = scheduler_resources
    node_selector = _str_table(spec, "node_selector")
    account = get_str(spec, "service_account")
    for pod in (body["spec"]["worker"]["spec"], body["spec"]["scheduler"]["spec"]):
        for container in pod["containers"]:
            container["command"] = container.pop("args")
        if account is not None:
            pod["serviceAccountName"] = account
        if node_selector:
            pod["nodeSelector"] = node_selector
    return body


def kube_cluster_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`dask_kubernetes.operator.KubeCluster` from a ``[cluster]`` table.

    Returns
    -------
    dict
        ``custom_cluster_spec`` (:func:`kube_cluster_spec`), ``shutdown_on_close=True`` and ``namespace``
        when given (otherwise the kubeconfig context's namespace, or Dask's ``kubernetes.namespace``).
    """
    kwargs: dict[str, Any] = {"custom_cluster_spec": kube_cluster_spec(spec), "shutdown_on_close": True}
    _put(kwargs, "namespace", get_str(spec, "namespace"))
    return kwargs


# --------------------------------------------------------------------------- connect

_BACKENDS: dict[str, tuple[str, str, str, str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    # kind: (module, class, pip extra, distribution, kwargs builder)
    "ec2": ("dask_cloudprovider.aws", "EC2Cluster", "aws", "dask-cloudprovider[aws]", ec2_cluster_kwargs),
    "fargate": ("dask_cloudprovider.aws", "FargateCluster", "aws", "dask-cloudprovider[aws]", fargate_cluster_kwargs),
    "k8s": ("dask_kubernetes.operator", "KubeCluster", "k8s", "dask-kubernetes", kube_cluster_kwargs),
}
_CREDENTIAL_ERRORS = {"NoCredentialsError", "PartialCredentialsError", "NoRegionError", "UnauthorizedSSOTokenError"}


def _backend_class(kind: str) -> type:
    module, cls, extra, dist, _ = _BACKENDS[kind]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise ConfigError(
            f"[cluster] kind = {kind!r} needs {dist}, which is not installed ({exc}): "
            f'pip install "fluxgraph[{extra}]"'
        ) from None


def connect_cloud(spec: Mapping[str, Any]) -> Any:
    """Start an EC2, Fargate or Kubernetes cluster and return a client that owns it.

    Parameters
    ----------
    spec : mapping
        The ``[cluster]`` table; ``kind`` is ``ec2``, ``fargate`` or ``k8s``.

    Returns
    -------
    distributed.Client
        With ``_fluxgraph_owns_cluster = True``: closing it through the CLI shuts the cluster down.

    Raises
    ------
    fluxgraph.errors.ConfigError
        For an invalid table, a missing backend package (naming the pip extra) or missing AWS credentials.
    """

    kind = str(spec.get("kind"))
    if kind not in _BACKENDS:
        raise ConfigError(f"[cluster] kind {kind!r} is not a cloud backend: use one of {', '.join(CLOUD_KINDS)}")
    cls_name, build = _BACKENDS[kind][1], _BACKENDS[kind][4]
    kwargs = build(spec)
    bounds = adapt_bounds(spec)
    cls = _backend_class(kind)
    log.info("starting %s with %s", cls_name, redact(kwargs))
    try:
        cluster = cls(**kwargs)
    except Exception as exc:
        if type(exc).__name__ in _CREDENTIAL_ERRORS:
            raise ConfigError(
                f"cannot start {cls_name}: {exc}. Provide AWS credentials and region through the environment "
                "(AWS_PROFILE, AWS_REGION) or an instance profile / role, never the run configuration"
            ) from None
        raise
    return own_client(cluster, bounds)
