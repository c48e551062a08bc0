"""The one-pass block statistics equal numpy's separate reductions."""

from __future__ import annotations

import numpy as np
import pytest
from fluxgraph.kernels.stats import block_stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=20),
               elements=st.sampled_from([0.0, -3.5, 1.25, 7.0, 1e6, -0.0])),
    st.floats(500.0, 800.0),
)
def test_block_stats_equal_numpy(block, area):
    rows = np.linspace(area, area + 1.0, block.shape[0])
    got = block_stats(block, rows)
    b64 = block.astype(np.float64)
    assert got[0] == np.count_nonzero(block)
    assert got[1] == b64.min() and got[2] == b64.max()
    assert got[3] == pytest.approx((b64 * rows[:, None]).sum(), rel=1e-12, abs=1e-9)
    assert got[4] == pytest.approx(b64.sum(), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float32"])
def test_block_stats_of_integer_and_float_layers(dtype):
    block = np.array([[0, 3], [2, 0]], dtype=dtype)
    np.testing.assert_array_equal(block_stats(block, np.array([10.0, 20.0])), [2, 0, 3, 3 * 10 + 2 * 20, 5])


def test_block_stats_refuses_mismatched_rows():
    with pytest.raises(ValueError, match="do not match"):
        block_stats(np.zeros((3, 2), np.float32), np.ones(2))


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 30)),
                  elements=st.sampled_from([0.0, 2.5, -1.0, 3e5])),
       st.integers(0, 27), st.integers(0, 2**31))
def test_select_by_code_equals_numpy_where(values, code, seed):
    from fluxgraph.kernels.stats import select_by_code

    codes = np.random.default_rng(seed).integers(0, 27, values.shape).astype(np.uint8)
    expected = np.where(codes == code, values, np.float32(0))
    out = np.full_like(values, 9.0)
    got = select_by_code(values, codes, code, 0.0, out=out)
    assert got is out and got.dtype == np.float32
    assert got.tobytes() == expected.tobytes()
    with pytest.raises(ValueError, match="differ in shape"):
        select_by_code(values, codes[:, :0], code, 0.0)
