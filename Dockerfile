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
RUN pip install . && useradd --create-home flux
USER flux
WORKDIR /home/flux

# `docker run IMAGE demo`, `docker run IMAGE run --inputs s3://… --tiles … --out s3://…`,
# or `dask worker tcp://scheduler:8786` for a worker of the same image.
ENTRYPOINT ["fluxgraph"]
CMD ["--help"]
