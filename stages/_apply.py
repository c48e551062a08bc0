"""The one xarray wrapper every stage uses to run a numba kernel chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["apply_kernel", "broadcast_blocks"]


def broadcast_blocks(*blocks: np.ndarray) -> list[np.ndarray]:
    """Broadcast block arrays to one shape as read-only zero-stride views (no copies)."""
    shape = np.broadcast_shapes(*(b.shape for b in blocks))
    return [b if b.shape == shape else np.broadcast_to(b, shape) for b in blocks]


class _Blockwise:
    """Picklable block function: broadcast the block's inputs to one 2-D shape, call the kernel."""

    def __init__(self, kernel: Callable[..., Any], n_out: int, tail: tuple, kwargs: dict[str, Any]) -> None:
        self.kernel = kernel
        self.n_out = n_out
        self.tail = tail
        self.kwargs = kwargs

    def __call__(self, *blocks: np.ndarray) -> Any:
        # per-row inputs (lat only) arrive as (rows, 1): broadcasting gives zero-stride views
        out = self.kernel(*broadcast_blocks(*blocks), *self.tail, **self.kwargs)
        return tuple(out) if self.n_out > 1 else out


def apply_kernel(
    kernel: Callable[..., Any],
    *arrays: xr.DataArray,
    output_dtypes: Sequence[Any],
    tail: Sequence[Any] = (),
    **kwargs: Any,
) -> tuple[xr.DataArray, ...]:
    """Run ``kernel`` over aligned ``(lat, lon)`` DataArrays with ``xr.apply_ufunc(dask="parallelized")``.

    Parameters
    ----------
    kernel : callable
        A function of 2-D numpy arrays of one shape (the numba kernels of
        :mod:`fluxgraph.kernels`) returning one array or a tuple of arrays.
    *arrays : DataArray
        Inputs; DataArrays with only a ``lat`` dimension are broadcast per row.
    output_dtypes : sequence of dtype
        One dtype per output.
    tail : sequence
        Static positional arguments passed after the blocks (e.g. code lookup tables),
        not broadcast.
    **kwargs
        Keyword arguments passed to the kernel (parameters, lookup tables, flags).

    Returns
    -------
    tuple of DataArray
        Lazy outputs, chunked like the inputs.
    """
    n_out = len(output_dtypes)
    res = xr.apply_ufunc(
        _Blockwise(kernel, n_out, tuple(tail), kwargs),
        *arrays,
        dask="parallelized",
        output_dtypes=[np.dtype(d) for d in output_dtypes],
        output_core_dims=[[] for _ in range(n_out)] if n_out > 1 else [[]],
        keep_attrs=False,
    )
    return tuple(res) if n_out > 1 else (res,)
