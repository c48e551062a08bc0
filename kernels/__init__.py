"""Numba kernels on numpy arrays: no xarray, no I/O.

Every kernel works on 2-D arrays of one shape, indexed ``a[i, j]`` (inputs may be
broadcast or strided views). Each module cites the spec section it implements.
"""
