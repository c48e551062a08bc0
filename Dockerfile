# One image for client, scheduler and workers (distributed warns on version mismatch).
# rasterio's wheels bundle GDAL, so a slim Python base is enough.
FROM python:3.12-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR \
    GDAL_CACHEMAX=512

WORKDIR /opt/fluxgraph
COPY pyproject.toml README.md ./
COPY fluxgraph ./fluxgraph
COPY stages ./stages
COPY kernels ./kernels
COPY cluster ./cluster
# the cloud extras so the client can launch EC2/Fargate/Kubernetes clusters from this image too;
# dask-cloudprovider's Fargate backend still calls dask-scheduler/dask-worker, which distributed 2026.6
# replaced by `dask scheduler` / `dask worker`: small wrappers keep both working
RUN pip install ".[aws,k8s]" \
 && printf '#!/bin/sh\nexec dask scheduler "$@"\n' > /usr/local/bin/dask-scheduler \
 && printf '#!/bin/sh\nexec dask worker "$@"\n' > /usr/local/bin/dask-worker \
 && chmod +x /usr/local/bin/dask-scheduler /usr/local/bin/dask-worker \
 && useradd --create-home flux
USER flux
WORKDIR /home/flux

# No fixed ENTRYPOINT: cluster backends pass their own commands (dask scheduler, dask worker).
# `docker run IMAGE fluxgraph demo`, `docker run IMAGE fluxgraph run --inputs s3://… --tiles … --out …`.
CMD ["fluxgraph", "--help"]
