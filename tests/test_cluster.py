"""The ``[cluster]`` table: backend arguments built without network, secrets refused, real local clusters."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from fluxgraph.cluster import (
    DEFAULT_IMAGE,
    adapt_bounds,
    cloud,
    connect,
    ec2_cluster_kwargs,
    fargate_cluster_kwargs,
    kube_cluster_kwargs,
    kube_cluster_spec,
    local_cluster_kwargs,
    redact,
)

from fluxgraph.config import load_config
from fluxgraph.errors import ConfigError

# The run configuration's defaults (fluxgraph/data/defaults.toml) are always in the table.
DEFAULTS = load_config().data["cluster"]
ENV = {"GDAL_CACHEMAX": 512, "FLUXGRAPH_LOG": "info", "CPL_VSIL_CURL_USE_HEAD": False}


def table(**keys: object) -> dict[str, object]:
    """A ``[cluster]`` table as the run configuration hands it over: defaults plus the user's keys."""
    return {**DEFAULTS, **keys}


# --------------------------------------------------------------------------- EC2


def test_ec2_kwargs() -> None:
    kw = ec2_cluster_kwargs(table(
        kind="ec2", n_workers=4, threads_per_worker=4, memory_limit="14GiB", image="123.dkr.ecr/fluxgraph:abc",
        region="us-east-1", worker_instance_type="r6i.xlarge", scheduler_instance_type="t3.large", spot=True,
        iam_instance_profile="fluxgraph-worker", env=ENV, security_groups=["sg-1"], filesystem_size=100,
    ))
    assert kw["docker_image"] == "123.dkr.ecr/fluxgraph:abc"
    assert kw["n_workers"] == 4
    assert kw["worker_options"] == {"nthreads": 4, "memory_limit": "14GiB"}
    assert kw["worker_instance_type"] == "r6i.xlarge" and kw["scheduler_instance_type"] == "t3.large"
    assert kw["region"] == "us-east-1" and kw["spot"] is True
    assert kw["iam_instance_profile"] == {"Name": "fluxgraph-worker"}
    env = dict(kw["env_vars"])
    pre = ast.literal_eval(env.pop("DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"))
    assert env == {"GDAL_CACHEMAX": "512", "FLUXGRAPH_LOG": "info", "CPL_VSIL_CURL_USE_HEAD": "false"}
    assert pre["MALLOC_TRIM_THRESHOLD_"] == "268435456" and pre["MALLOC_MMAP_THRESHOLD_"] == "33554432"
    assert kw["security_groups"] == ["sg-1"] and kw["filesystem_size"] == 100
    assert kw["docker_args"].startswith("--entrypoint=")
    assert "instance_type" not in kw and "vpc" not in kw  # unset keys keep dask-cloudprovider's config


def test_ec2_defaults_and_adapt() -> None:
    profile = "arn:aws:iam::1:instance-profile/x"
    spec = table(kind="ec2", adapt_minimum=1, adapt_maximum=20, iam_instance_profile=profile)
    kw = ec2_cluster_kwargs(spec)
    assert kw["docker_image"] == DEFAULT_IMAGE
    assert kw["n_workers"] == 1  # starts at adapt_minimum
    assert kw["worker_options"] == {"nthreads": 1}  # memory_limit "auto" is the worker's own default
    assert kw["iam_instance_profile"] == {"Arn": "arn:aws:iam::1:instance-profile/x"}
    assert set(kw["env_vars"]) == {"DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"}  # only the malloc settings
    assert adapt_bounds(spec) == (1, 20)
    assert adapt_bounds(table(kind="ec2", n_workers=3)) is None


# --------------------------------------------------------------------------- Fargate


def test_fargate_kwargs() -> None:
    policy = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    kw = fargate_cluster_kwargs(table(
        kind="fargate", n_workers=8, threads_per_worker=2, worker_cpu=2, worker_memory="8GiB", scheduler_cpu=1,
        scheduler_memory="4GiB", spot=True, region="us-west-2", task_role_policies=[policy], env=ENV,
        cloudwatch_logs_group="/fluxgraph",
    ))
    assert kw["image"] == DEFAULT_IMAGE
    assert kw["n_workers"] == 8 and kw["worker_nthreads"] == 2
    assert kw["worker_cpu"] == 2048 and kw["worker_mem"] == 8192  # CPU units and MiB
    assert kw["scheduler_cpu"] == 1024 and kw["scheduler_mem"] == 4096
    assert kw["fargate_spot"] is True and kw["region_name"] == "us-west-2"
    assert kw["task_role_policies"] == [policy]
    assert kw["environment"]["GDAL_CACHEMAX"] == "512"
    assert kw["cloudwatch_logs_group"] == "/fluxgraph"


def test_fargate_memory_limit_stands_in_for_worker_memory() -> None:
    kw = fargate_cluster_kwargs(table(kind="fargate", n_workers=1, worker_cpu=4, memory_limit="16GiB"))
    assert (kw["worker_cpu"], kw["worker_mem"]) == (4096, 16384)
    assert "worker_cpu" not in fargate_cluster_kwargs(table(kind="fargate", n_workers=1))


@pytest.mark.parametrize(("keys", "words"), [
    ({"worker_cpu": 3, "worker_memory": "8GiB"}, ["worker_cpu", "vCPUs"]),
    ({"worker_cpu": 2, "worker_memory": "32GiB"}, ["worker_memory", "16GiB"]),
    ({"worker_cpu": 2, "worker_memory": "8 GB"}, ["worker_memory", "Fargate task size"]),  # not whole MiB
    ({"worker_cpu": 2}, ["worker_cpu needs worker_memory"]),
    ({"worker_memory": "8GiB"}, ["worker_memory needs worker_cpu"]),
    ({"task_role_policies": ["AmazonS3ReadOnlyAccess"]}, ["task_role_policies", "ARN"]),
])
def test_fargate_invalid(keys: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        fargate_cluster_kwargs(table(kind="fargate", n_workers=1, **keys))
    assert all(w in str(err.value) for w in words), err.value


# --------------------------------------------------------------------------- Kubernetes


def _containers(body: dict) -> tuple[dict, dict]:
    spec = body["spec"]
    return spec["worker"]["spec"]["containers"][0], spec["scheduler"]["spec"]["containers"][0]


def test_kube_cluster_spec() -> None:
    body = kube_cluster_spec(table(
        kind="k8s", name="flux-run", namespace="carbon", n_workers=6, threads_per_worker=2, worker_cpu=2,
        worker_memory="8GiB", scheduler_cpu=0.5, scheduler_memory="2GiB", env=ENV, service_account="fluxgraph",
        node_selector={"eks.amazonaws.com/capacityType": "SPOT"}, idle_timeout=600,
    ))
    assert body["apiVersion"] == "kubernetes.dask.org/v1" and body["kind"] == "DaskCluster"
    assert body["metadata"] == {"name": "flux-run", "namespace": "carbon"}
    assert body["spec"]["idleTimeout"] == 600
    assert body["spec"]["worker"]["replicas"] == 6
    worker, scheduler = _containers(body)
    assert worker["image"] == scheduler["image"] == DEFAULT_IMAGE
    assert worker["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}
    assert scheduler["resources"] == {"requests": {"cpu": "500m", "memory": "2Gi"},
                                      "limits": {"cpu": "500m", "memory": "2Gi"}}
    assert worker["command"][:4] == ["dask", "worker", "--nthreads", "2"] and "args" not in worker
    assert scheduler["command"][:2] == ["dask", "scheduler"]
    assert {"name": "GDAL_CACHEMAX", "value": "512"} in worker["env"]
    for pod in (body["spec"]["worker"]["spec"], body["spec"]["scheduler"]["spec"]):
        assert pod["serviceAccountName"] == "fluxgraph"
        assert pod["nodeSelector"] == {"eks.amazonaws.com/capacityType": "SPOT"}
    kw = kube_cluster_kwargs(table(kind="k8s", n_workers=1, namespace="carbon"))
    assert kw["namespace"] == "carbon" and kw["shutdown_on_close"] is True
    assert kw["custom_cluster_spec"]["metadata"]["name"] == "fluxgraph"


def test_kube_explicit_resources_and_memory_limit() -> None:
    body = kube_cluster_spec(table(kind="k8s", n_workers=2, memory_limit="6GiB",
                                   resources={"requests": {"cpu": 1, "memory": "6GiB"}, "limits": {"memory": "6Gi"}}))
    worker, _ = _containers(body)
    assert worker["resources"] == {"requests": {"cpu": "1", "memory": "6Gi"}, "limits": {"memory": "6Gi"}}
    assert worker["command"][4:6] == ["--memory-limit", "6GiB"]
    with pytest.raises(ConfigError, match="either resources or worker_cpu"):
        kube_cluster_spec(table(kind="k8s", n_workers=1, worker_cpu=1, resources={"limits": {"cpu": "1"}}))


def test_kube_spec_fallback_matches_dask_kubernetes(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = table(kind="k8s", n_workers=3, worker_cpu=2, worker_memory="8GiB", env=ENV, namespace="ns")
    try:
        from dask_kubernetes.operator import make_cluster_spec
    except ImportError:
        make_cluster_spec = None
    args = {"name": "x", "image": "img:1", "n_workers": 2, "resources": {"limits": {"cpu": "1"}}, "env": {"A": "1"},
            "worker_command": ["dask", "worker"], "scheduler_service_type": "NodePort", "idle_timeout": 5}
    if make_cluster_spec is not None:
        assert cloud._make_cluster_spec_fallback(**args) == make_cluster_spec(**args)
    with_package = kube_cluster_spec(spec)
    monkeypatch.setitem(sys.modules, "dask_kubernetes.operator", None)  # import now raises ImportError
    assert cloud._make_cluster_spec() is cloud._make_cluster_spec_fallback
    assert kube_cluster_spec(spec) == with_package


# --------------------------------------------------------------------------- validation and secrets


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


@pytest.mark.parametrize("keys", [
    {"aws_secret_access_key": SECRET},
    {"aws_access_key_id": SECRET},
    {"github_token": SECRET},
    {"db_password": SECRET},
    {"env": {"AWS_SECRET_ACCESS_KEY": SECRET}},
    {"env": {"AWS_SESSION_TOKEN": SECRET}},
    {"env": {"SOME_ID": "AKIAIOSFODNN7EXAMPLE"}},  # an access key id under an innocent name
])
@pytest.mark.parametrize("build", [ec2_cluster_kwargs, fargate_cluster_kwargs, kube_cluster_spec,
                                   local_cluster_kwargs, connect])
def test_secrets_refused_without_echo(keys: dict[str, object], build) -> None:
    with pytest.raises(ConfigError) as err:
        build(table(kind="fargate", n_workers=1, **keys))
    message = str(err.value)
    assert "instance profile" in message and "task role" in message  # says what to use instead
    assert SECRET not in message and "AKIAIOSFODNN7EXAMPLE" not in message


def test_redact() -> None:
    shown = redact({"env_vars": {"AWS_SECRET_ACCESS_KEY": SECRET, "GDAL_CACHEMAX": "512"},
                    "env": [{"name": "API_TOKEN", "value": SECRET}, {"name": "A", "value": "1"}],
                    "note": "key AKIAIOSFODNN7EXAMPLE"})
    assert SECRET not in repr(shown) and "AKIAIOSFODNN7EXAMPLE" not in repr(shown)
    assert shown["env_vars"]["GDAL_CACHEMAX"] == "512" and shown["env"][1] == {"name": "A", "value": "1"}


@pytest.mark.parametrize(("keys", "key"), [
    ({"threads_per_worker": 0}, "threads_per_worker"),
    ({"n_workers": -1}, "n_workers"),
    ({"n_workers": "4"}, "n_workers"),
    ({"n_workers": True}, "n_workers"),
    ({"memory_limit": "lots"}, "memory_limit"),
    ({"adapt_minimum": 5, "adapt_maximum": 2}, "adapt_minimum"),
    ({"adapt_minimum": 1}, "adapt_maximum"),
    ({"adapt_maximum": 0}, "adapt_maximum"),
    ({"env": {"BAD NAME": "x"}}, "env"),
    ({"worker_instance": "m5.large"}, "worker_instance_type"),  # unknown key: suggests the close one
])
def test_invalid_values_name_the_key(keys: dict[str, object], key: str) -> None:
    for build in (ec2_cluster_kwargs, kube_cluster_spec, connect):
        with pytest.raises(ConfigError, match=key):
            build({**table(kind="ec2", n_workers=1), **keys})


def test_invalid_backend_values() -> None:
    with pytest.raises(ConfigError, match="spot must be true or false"):
        ec2_cluster_kwargs(table(kind="ec2", n_workers=1, spot="yes"))
    with pytest.raises(ConfigError, match="name 'Flux_Run' must be a Kubernetes name"):
        kube_cluster_spec(table(kind="k8s", n_workers=1, name="Flux_Run"))
    with pytest.raises(ConfigError, match="worker_cpu must be a Kubernetes CPU quantity"):
        kube_cluster_spec(table(kind="k8s", n_workers=1, worker_cpu="two"))


def test_cloud_needs_workers() -> None:
    with pytest.raises(ConfigError, match="n_workers = 0"):
        ec2_cluster_kwargs(table(kind="ec2"))


def test_local_kwargs() -> None:
    kw = local_cluster_kwargs(table(n_workers=3, threads_per_worker=2, memory_limit="2GiB", env={"A": 1}))
    assert kw == {"n_workers": 3, "threads_per_worker": 2, "processes": True, "memory_limit": "2GiB",
                  "dashboard_address": ":0", "env": {"A": "1"}}
    assert local_cluster_kwargs(table())["n_workers"] == (os.cpu_count() or 1)
    assert local_cluster_kwargs(table(adapt_minimum=1, adapt_maximum=4))["n_workers"] == 1


def test_unknown_kind() -> None:
    with pytest.raises(ConfigError, match=r"'ec3' is unknown \(did you mean 'ec2'\?\).*local.*tcp://host:port"):
        connect(table(kind="ec3"))


@pytest.mark.parametrize(("kind", "extra", "module"), [
    ("ec2", "aws", "dask_cloudprovider.aws"),
    ("fargate", "aws", "dask_cloudprovider.aws"),
    ("k8s", "k8s", "dask_kubernetes.operator"),
])
def test_missing_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch, kind: str, extra: str, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match=rf'pip install "fluxgraph\[{extra}\]"'):
        connect(table(kind=kind, n_workers=1))


def test_unreachable_scheduler_fails_fast() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1"):
        connect({"kind": "tcp://127.0.0.1:1"})
    assert time.perf_counter() - t0 < 5


# --------------------------------------------------------------------------- real clusters


def _square_sum(client) -> int:
    """A small task graph (100 tasks and a reduction) computed on the cluster."""
    import dask

    squares = [dask.delayed(pow)(i, 2) for i in range(0, 1000, 10)]
    return int(client.compute(dask.delayed(sum)(squares)).result())


@pytest.mark.cluster
@pytest.mark.timeout(60)
def test_local_cluster_two_processes() -> None:
    client = connect(table(n_workers=2, threads_per_worker=1, memory_limit="1GiB"))
    try:
        assert client._fluxgraph_owns_cluster
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not threads of this one
        assert _square_sum(client) == sum(i * i for i in range(0, 1000, 10))
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler_address() -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, terminated afterwards."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask_cli = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if procs[0].poll() is not None or time.monotonic() > deadline:
                    pytest.fail("dask scheduler did not start")
                time.sleep(0.1)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [*dask_cli, "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
                 "--no-dashboard", "--memory-limit", "1GiB"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield address
    finally:
        for proc in reversed(procs):  # workers first: a worker whose scheduler is gone waits to reconnect
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.cluster
@pytest.mark.timeout(60)
def test_existing_scheduler(scheduler_address: str) -> None:
    client = connect(table(kind=scheduler_address))
    try:
        assert not getattr(client, "_fluxgraph_owns_cluster", False)  # the scheduler stays up
        client.wait_for_workers(2, timeout=30)
        assert len(client.scheduler_info()["workers"]) == 2
        assert _square_sum(client) == sum(i * i for i in range(0, 1000, 10))
    finally:
        client.close()


def test_connect_cloud_dispatch(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """``connect`` builds the kwargs, starts the backend class, adapts and owns the cluster (a threaded stand-in)."""
    from distributed import LocalCluster

    seen: dict[str, object] = {}

    class FakeEC2(LocalCluster):
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)
            super().__init__(n_workers=1, processes=False, dashboard_address=":0")

        def adapt(self, **bounds: object):
            seen["adapt"] = bounds
            return super().adapt(**bounds)

    monkeypatch.setattr(cloud, "_backend_class", lambda kind: FakeEC2)
    caplog.set_level("INFO", logger="fluxgraph.cluster")
    client = connect(table(kind="ec2", adapt_minimum=1, adapt_maximum=3, region="eu-west-1", env={"A": "1"}))
    try:
        assert client._fluxgraph_owns_cluster
        assert seen["region"] == "eu-west-1" and seen["n_workers"] == 1
        assert seen["adapt"] == {"minimum": 1, "maximum": 3}
        assert "starting EC2Cluster" in caplog.text and "eu-west-1" in caplog.text
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_demo_chain_on_separate_scheduler_and_worker_processes(scheduler_address: str, tmp_path) -> None:
    """The whole standard chain on `dask scheduler` + 2 `dask worker` processes equals an in-process run."""
    import xarray as xr

    from fluxgraph.runner import run

    kw = {"tiles": "00N_110E", "stages": "all", "progress": False}
    local = run(["demo://?size=200"], out=tmp_path / "local", **kw)
    client = connect(table(kind=scheduler_address))
    try:
        client.wait_for_workers(2, timeout=30)
        dist = run(["demo://?size=200"], out=tmp_path / "dist", client=client, **kw)
        assert len(client.scheduler_info()["workers"]) == 2
    finally:
        client.close()
    assert dist.summary == local.summary and "net_flux" in dist.layers
    a = xr.open_zarr(tmp_path / "local" / "fluxgraph.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "dist" / "fluxgraph.zarr", consolidated=False)
    w, s, e, n = local.parts[0].window.bounds
    for name in ("net_flux", "gross_removals", "gross_emis_all_gases_biomass_soil"):
        va = a[name].sel(lat=slice(n, s), lon=slice(w, e)).values
        assert va.any() and va.tobytes() == b[name].sel(lat=slice(n, s), lon=slice(w, e)).values.tobytes()


def test_local_workers_start_with_the_malloc_settings():
    """glibc reads MALLOC_* at process start: the worker's environment at exec must hold fluxgraph's values."""
    from fluxgraph.cluster.local import close, connect_local

    def exec_environ() -> dict[str, str]:
        with open("/proc/self/environ", "rb") as f:  # the environment the process was started with
            items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
        return {k.decode(): v.decode() for k, v in items}

    client = connect_local(table(n_workers=1, dashboard_address=None))
    try:
        (env,) = client.run(exec_environ).values()
    finally:
        close(client)
    assert env["MALLOC_TRIM_THRESHOLD_"] == "268435456"  # not distributed's 65536
    assert env["MALLOC_MMAP_THRESHOLD_"] == "33554432"


def test_worker_malloc_refuses_other_variables():
    from fluxgraph.cluster.local import pre_spawn_environ

    with pytest.raises(ConfigError, match="MALLOC_"):
        pre_spawn_environ({"worker_malloc": {"LD_PRELOAD": "x.so"}})
